package config_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
)

// TestExampleConfig loads the documented example at the repository root, as
// CI does, with stubbed secrets so it passes on a clean clone.
func TestExampleConfig(t *testing.T) {
	env := map[string]string{
		"CREDENTIALS_DIRECTORY": "/run/credentials/quotawatch.service",
		"QUOTAWATCH_BOB_TOKEN":  "bob-token",
	}
	files := map[string]string{
		"/run/credentials/quotawatch.service/alice.token":   "alice-token\n",
		"/run/credentials/quotawatch.service/slack-webhook": "https://hooks.slack.example/services/T0/B0/x\n",
		"/etc/quotawatch/slack-bot.token":                   "xoxb-bot-token\n",
		"/etc/quotawatch/smtp-password":                     "smtp-password\n",
	}
	var read []string
	opt := config.Options{
		LookupEnv: lookup(env),
		ReadFile: func(p string) ([]byte, error) {
			read = append(read, p)
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			// The example file itself is real.
			return os.ReadFile(p)
		},
	}
	cfg, err := config.Load("../config.example.yaml", opt)
	require.NoError(t, err)

	require.Equal(t, "https://accounts.example.org/identity/v2.0", cfg.Cloud.AuthURL)
	require.Len(t, cfg.Cloud.Accounts, 2)
	require.Equal(t, "alice-token", cfg.Cloud.Accounts[0].Token.Reveal())
	require.Equal(t, "bob-token", cfg.Cloud.Accounts[1].Token.Reveal())
	require.False(t, cfg.Cloud.ServiceToken.IsSet())
	require.Equal(t, 30*time.Second, cfg.Cloud.Timeout)
	require.Empty(t, cfg.Cloud.CAFile)
	require.InDelta(t, 10.0, cfg.Cloud.RequestsPerSecond, 0)
	require.Equal(t, "@every 5m", cfg.Schedule)
	require.Equal(t, config.Store{Path: "/var/lib/quotawatch/quotawatch.db", Retention: 90 * 24 * time.Hour}, cfg.Store)
	require.Equal(t, "127.0.0.1:9457", cfg.HTTP.Listen)
	require.False(t, cfg.DryRun)
	require.Equal(t, 10, cfg.MaxActionsPerCycle)
	require.Nil(t, cfg.HA, "the ha: section is commented out")

	require.Len(t, cfg.Notifiers, 3)
	require.True(t, cfg.Notifiers[0].Slack.IsWebhook())
	require.False(t, cfg.Notifiers[1].Slack.IsWebhook())
	require.Equal(t, "#storage", cfg.Notifiers[1].Slack.Channel)
	require.Equal(t, "xoxb-bot-token", cfg.Notifiers[1].Slack.Token.Reveal())
	require.Nil(t, cfg.Notifiers[0].Email)
	require.Equal(t, &config.Email{
		Host: "mail.example.org", Port: 587, TLS: "starttls", From: "quotawatch@example.org",
		Username: "quotawatch", Password: "smtp-password",
		To:         []string{config.ToItemOwner, config.ToProjectOwner, "ops@example.org"},
		MaxPerHour: 12,
	}, cfg.Notifiers[2].Email)

	var names []string
	for _, r := range cfg.Rules {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"container-rebalance", "vm-rebalance", "full-within-3-days"}, names)
	require.NotNil(t, cfg.Rules[0].Action)
	require.NotNil(t, cfg.Rules[1].Action)
	require.Nil(t, cfg.Rules[2].Action)

	// Every stubbed secret file was read: none of the example's paths is
	// left unchecked.
	for p := range files {
		require.True(t, slices.Contains(read, p), "%s not read", p)
	}
}

// TestExampleHASection uncomments the example's ha: section, which must
// then load as it reads.
func TestExampleHASection(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	require.NoError(t, err)
	var out []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "# ha:":
			in = true
		case in && !strings.HasPrefix(line, "#   "):
			in = false
		}
		if in {
			line = strings.TrimPrefix(line, "# ")
		}
		out = append(out, line)
	}
	files := map[string]string{
		"/etc/quotawatch/etcd-ca.pem":                         "testdata/secrets/ca.pem",
		"/run/credentials/quotawatch.service/etcd-client.pem": "testdata/secrets/etcd-client.pem",
		"/run/credentials/quotawatch.service/etcd-client.key": "testdata/secrets/etcd-client.key",
		"/run/credentials/quotawatch.service/alice.token":     "testdata/secrets/alice.token",
		"/run/credentials/quotawatch.service/slack-webhook":   "testdata/secrets/slack-webhook",
		"/etc/quotawatch/slack-bot.token":                     "testdata/secrets/slack-bot.token",
		"/etc/quotawatch/smtp-password":                       "testdata/secrets/smtp-password",
	}
	opt := config.Options{
		LookupEnv: lookup(map[string]string{
			"CREDENTIALS_DIRECTORY": "/run/credentials/quotawatch.service",
			"QUOTAWATCH_BOB_TOKEN":  "bob-token",
		}),
		ReadFile: func(p string) ([]byte, error) {
			if f, ok := files[p]; ok {
				return os.ReadFile(f)
			}
			return nil, os.ErrNotExist
		},
	}
	cfg, err := config.Parse("/etc/quotawatch/config.yaml", []byte(strings.Join(out, "\n")), opt)
	require.NoError(t, err)
	require.NotNil(t, cfg.HA)
	e := cfg.HA.Etcd
	require.Equal(t, []string{"https://etcd-1:2379", "https://etcd-2:2379", "https://etcd-3:2379"}, e.Endpoints)
	require.Equal(t, "/quotawatch/prod/", e.Prefix)
	require.Equal(t, 15*time.Second, e.LeaseTTL)
	require.NotEmpty(t, e.CAPEM)
	require.NotEmpty(t, e.CertPEM)
	require.True(t, e.KeyPEM.IsSet())
}
