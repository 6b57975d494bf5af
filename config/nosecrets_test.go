package config

import (
	"path/filepath"
	"testing"

	"github.com/quotawatch/quotawatch/internal/smallfile"

	"github.com/stretchr/testify/require"
)

// The shipped systemd config names its secrets under CREDENTIALS_DIRECTORY
// and its store under STATE_DIRECTORY, which only the unit sets: from a
// shell, a read-only command loads it without reading either.
func TestNoSecretsLoadsTheSystemdConfigFromAShell(t *testing.T) {
	path := filepath.Join("..", "systemd", "config.yaml")
	empty := func(string) (string, bool) { return "", false }

	_, err := Load(path, Options{LookupEnv: empty})
	require.ErrorContains(t, err, "CREDENTIALS_DIRECTORY is not set")

	read := 0
	cfg, err := Load(path, Options{LookupEnv: empty, NoSecrets: true, ReadFile: func(p string) ([]byte, error) {
		read++
		return smallfile.Read(p)
	}})
	require.NoError(t, err)
	require.Equal(t, 1, read, "only the configuration itself is read")
	require.Equal(t, filepath.Join(DefaultStoreDir, DefaultStoreFile), cfg.Store.Path)
	require.True(t, cfg.Cloud.Accounts[0].Token.Unread())
	require.True(t, cfg.Notifiers[0].Slack.IsWebhook(), "the notifier keeps its kind")
	require.True(t, cfg.Notifiers[0].Slack.WebhookURL.Unread())

	// A STATE_DIRECTORY that is set still wins.
	cfg, err = Load(path, Options{NoSecrets: true, LookupEnv: func(k string) (string, bool) {
		if k == "STATE_DIRECTORY" {
			return "/srv/qw", true
		}
		return "", false
	}})
	require.NoError(t, err)
	require.Equal(t, "/srv/qw/quotawatch.db", cfg.Store.Path)
}
