package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
)

func TestLoadBadEmailConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string // $DIR stands for the absolute path of testdata
	}{
		{"email-invalid-smtp.yaml", `testdata/email-invalid-smtp.yaml:9: notifiers[0].email.smtp: must be host:port (such as mail.example.org:587), got "mail.example.org"`},
		{"email-invalid-smtp-port.yaml", `testdata/email-invalid-smtp-port.yaml:9: notifiers[0].email.smtp: must be host:port (such as mail.example.org:587), got "mail.example.org:99999"`},
		{"email-invalid-smtp-missing.yaml", `testdata/email-invalid-smtp-missing.yaml:8: notifiers[0].email: smtp is required`},
		{"email-invalid-tls.yaml", `testdata/email-invalid-tls.yaml:10: notifiers[0].email.tls: must be starttls, tls or none, got "ssl"`},
		{"email-invalid-tls-none-remote.yaml", `testdata/email-invalid-tls-none-remote.yaml:10: notifiers[0].email.tls: none sends the password and the messages in the clear: it is allowed only toward a loopback host (localhost, 127.0.0.1, ::1), not "mail.example.org"`},
		{"email-invalid-from.yaml", `testdata/email-invalid-from.yaml:10: notifiers[0].email.from: must be an e-mail address such as quotawatch@example.org, got "quotawatch"`},
		{"email-invalid-from-missing.yaml", `testdata/email-invalid-from-missing.yaml:8: notifiers[0].email: from is required`},
		{"email-invalid-reply-to.yaml", `testdata/email-invalid-reply-to.yaml:11: notifiers[0].email.reply_to: must be an e-mail address, got "Ops <ops@example.org>"`},
		{"email-invalid-to-keyword.yaml", `testdata/email-invalid-to-keyword.yaml:11: notifiers[0].email.to[1]: unknown recipient "owner": use item_owner, project_owner or an e-mail address`},
		{"email-invalid-to-address.yaml", `testdata/email-invalid-to-address.yaml:13: notifiers[0].email.to[1]: invalid e-mail address "ops@@example.org"`},
		{"email-invalid-to-twice.yaml", `testdata/email-invalid-to-twice.yaml:11: notifiers[0].email.to[1]: "OPS@example.org" is listed twice (first on line 11)`},
		{"email-invalid-to-missing.yaml", `testdata/email-invalid-to-missing.yaml:8: notifiers[0].email: to is required`},
		{"email-invalid-to-empty.yaml", `testdata/email-invalid-to-empty.yaml:11: notifiers[0].email.to: must list at least one recipient: item_owner, project_owner or an e-mail address`},
		{"email-invalid-to-type.yaml", `testdata/email-invalid-to-type.yaml:11: notifiers[0].email.to: expected a list, got "ops@example.org"`},
		{"email-invalid-password-no-user.yaml", `testdata/email-invalid-password-no-user.yaml:11: notifiers[0].email.password_file: needs a username`},
		{"email-invalid-user-no-password.yaml", `testdata/email-invalid-user-no-password.yaml:11: notifiers[0].email: one of password, password_file or password_env is required with username`},
		{"email-invalid-password-two-forms.yaml", `testdata/email-invalid-password-two-forms.yaml:13: notifiers[0].email.password_env: only one of password, password_file and password_env may be set`},
		{"email-invalid-password-file-missing.yaml", `testdata/email-invalid-password-file-missing.yaml:12: notifiers[0].email.password_file: no file of that name can be read (no such file or directory); the value is not shown in case it is a secret`},
		{"email-invalid-max-per-hour.yaml", `testdata/email-invalid-max-per-hour.yaml:12: notifiers[0].email.max_per_hour: must be 1 or more, got 0`},
		{"email-invalid-unknown-key.yaml", `testdata/email-invalid-unknown-key.yaml:12: notifiers[0].email: unknown key "starttls"`},
		{"email-invalid-both.yaml", `testdata/email-invalid-both.yaml:12: notifiers[0].slack: set either slack or email, not both`},
		{"email-invalid-ca-file.yaml", `testdata/email-invalid-ca-file.yaml:11: notifiers[0].email.ca_file: no PEM certificate found in $DIR/secrets/not-pem.txt`},
	}
	dir := absTestdata(t, "")
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("testdata", tt.file), config.Options{LookupEnv: lookup(testEnv(t))})
			require.Nil(t, cfg)
			require.EqualError(t, err, strings.ReplaceAll(tt.want, "$DIR", dir))
			// Neither form of the password is ever echoed.
			require.NotContains(t, err.Error(), "inline-smtp-secret")
			require.NotContains(t, err.Error(), "smtp-password-from-file")
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
	files, err := filepath.Glob("testdata/email-invalid-*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		require.True(t, seen[filepath.Base(f)], "%s has no test case", f)
	}
}

func TestLoadEmailConfigs(t *testing.T) {
	dir := absTestdata(t, "")
	cfg, err := config.Load("testdata/email-good.yaml", config.Options{LookupEnv: lookup(testEnv(t))})
	require.NoError(t, err)
	require.Equal(t, []config.Notifier{{Name: "owners", Email: &config.Email{
		Host: "mail.example.org", Port: 587, TLS: "starttls",
		From: "quotawatch@example.org", Username: "quotawatch", Password: "smtp-password-from-file",
		To:         []string{config.ToItemOwner, config.ToProjectOwner, "ops@example.org"},
		MaxPerHour: config.DefaultEmailMaxPerHour,
	}, DigestAfter: config.DefaultDigestAfter}}, cfg.Notifiers)

	env := testEnv(t)
	env["SMTP_PASSWORD"] = "env-smtp-secret\n"
	cfg, err = config.Load("testdata/email-good-full.yaml", config.Options{LookupEnv: lookup(env)})
	require.NoError(t, err)
	require.Equal(t, []config.Notifier{
		{Name: "owners", Email: &config.Email{
			Host: "127.0.0.1", Port: 2525, TLS: "none",
			From: "quotawatch@example.org", ReplyTo: "help@example.org",
			Username: "quotawatch", Password: "env-smtp-secret",
			To: []string{config.ToItemOwner, "Ops@Example.org"}, MaxPerHour: 3,
		}, DigestAfter: config.DefaultDigestAfter},
		{Name: "tls", Email: &config.Email{
			Host: "::1", Port: 465, TLS: "tls", CAFile: filepath.Join(dir, "secrets", "ca.pem"),
			From: "quotawatch@example.org", To: []string{config.ToProjectOwner}, MaxPerHour: config.DefaultEmailMaxPerHour,
		}, DigestAfter: config.DefaultDigestAfter},
	}, cfg.Notifiers)
	require.Equal(t, []string{"owners", "tls"}, cfg.Rules[0].Notify)
}

// TestEmailPasswordDoesNotLeak prints and marshals an e-mail notifier in
// every way a program might, and loads broken ones whose problems sit next
// to the password.
func TestEmailPasswordDoesNotLeak(t *testing.T) {
	cfg, err := config.Load("testdata/email-good.yaml", config.Options{LookupEnv: lookup(testEnv(t))})
	require.NoError(t, err)
	e := cfg.Notifiers[0].Email
	secret := e.Password.Reveal()
	require.NotEmpty(t, secret)
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, e), fmt.Sprintf(verb, *e), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, cfg.Notifiers))
	}
	j, err := json.Marshal(cfg)
	require.NoError(t, err)
	outs = append(outs, string(j))
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("loaded", "email", e, "config", cfg)
	outs = append(outs, b.String())
	for _, out := range outs {
		require.NotContains(t, out, secret)
	}

	const pasted = "S3cretSMTPpassw0rd"
	head := "cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\nnotifiers:\n  - name: owners\n    email:\n" +
		"      smtp: mail.example.org:587\n      from: q@example.org\n      to: [ops@example.org]\n"
	tests := []struct {
		name, yaml string
		env        map[string]string
	}{
		{"pasted into password_file", "      username: u\n      password_file: " + pasted + "\n", nil},
		{"pasted into password_env", "      username: u\n      password_env: " + pasted + "-x\n", nil},
		{"two forms", "      username: u\n      password: " + pasted + "\n      password_env: P\n", map[string]string{"P": pasted}},
		{"no username", "      password: " + pasted + "\n", nil},
		{"as a mapping", "      username: u\n      password:\n        v: " + pasted + "\n", nil},
		{"beside a bad tls", "      username: u\n      password: " + pasted + "\n      tls: none\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(head+tt.yaml), config.Options{LookupEnv: lookup(tt.env)})
			require.Error(t, err)
			require.NotContains(t, fmt.Sprintf("%+v", err), pasted)
		})
	}
}
