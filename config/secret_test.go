package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/config"
)

// TestSecretForms loads every secret of the file in each of its three forms
// (inline, file and environment), with files given relative to the config's
// folder, absolute, and through ${VAR}.
func TestSecretForms(t *testing.T) {
	places := []struct {
		name     string
		key      string
		template string // {SECRET} is replaced by the secret's line
		value    string // a valid value for this place
		get      func(*config.Config) config.Secret
	}{
		{
			name: "account token", key: "token", value: "account-s3cret",
			template: "cloud:\n  auth_url: https://a.example/identity/v2.0\n  accounts:\n    - name: alice\n      {SECRET}\n",
			get:      func(c *config.Config) config.Secret { return c.Cloud.Accounts[0].Token },
		},
		{
			name: "service token", key: "service_token", value: "service-s3cret",
			template: "cloud:\n  auth_url: https://a.example/identity/v2.0\n  {SECRET}\n",
			get:      func(c *config.Config) config.Secret { return c.Cloud.ServiceToken },
		},
		{
			name: "slack webhook", key: "webhook_url", value: "https://hooks.slack.example/services/T0/B0/s3cret",
			template: "cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\n" +
				"notifiers:\n  - name: ops\n    slack:\n      {SECRET}\n",
			get: func(c *config.Config) config.Secret { return c.Notifiers[0].Slack.WebhookURL },
		},
		{
			name: "slack bot token", key: "token", value: "xoxb-s3cret",
			template: "cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\n" +
				"notifiers:\n  - name: ops\n    slack:\n      channel: C01\n      {SECRET}\n",
			get: func(c *config.Config) config.Secret { return c.Notifiers[0].Slack.Token },
		},
	}
	forms := []struct {
		name string
		line func(key, credsDir string) string
	}{
		{"inline", func(key, _ string) string { return key + ": %q" }},
		{"file relative to the config", func(key, _ string) string { return key + "_file: secrets/value" }},
		{"file absolute", func(key, creds string) string { return key + "_file: " + filepath.Join(creds, "value") }},
		{"file under ${CREDENTIALS_DIRECTORY}", func(key, _ string) string { return key + "_file: ${CREDENTIALS_DIRECTORY}/value" }},
		{"environment", func(key, _ string) string { return key + "_env: QW_SECRET" }},
	}
	for _, pl := range places {
		for _, f := range forms {
			t.Run(pl.name+"/"+f.name, func(t *testing.T) {
				root := t.TempDir()
				confDir := filepath.Join(root, "etc", "quotawatch")
				creds := filepath.Join(root, "run", "credentials")
				for _, d := range []string{filepath.Join(confDir, "secrets"), creds} {
					require.NoError(t, os.MkdirAll(d, 0o755))
					// Surrounding whitespace and the trailing newline are trimmed.
					require.NoError(t, os.WriteFile(filepath.Join(d, "value"), []byte("  "+pl.value+"\n\n"), 0o600))
				}
				line := f.line(pl.key, creds)
				if strings.Contains(line, "%q") {
					line = fmt.Sprintf(line, pl.value)
				}
				path := filepath.Join(confDir, "config.yaml")
				require.NoError(t, os.WriteFile(path, []byte(strings.Replace(pl.template, "{SECRET}", line, 1)), 0o600))
				env := map[string]string{"CREDENTIALS_DIRECTORY": creds, "QW_SECRET": pl.value + "\n"}

				cfg, err := config.Load(path, config.Options{LookupEnv: lookup(env)})
				require.NoError(t, err)
				require.Equal(t, pl.value, pl.get(cfg).Reveal())
				require.Equal(t, path, cfg.File)
			})
		}
	}
}

// TestPathResolution checks where relative and ${VAR} paths point, through a
// ReadFile stub that records what is read.
func TestPathResolution(t *testing.T) {
	cwd, err := os.Getwd()
	require.NoError(t, err)
	tests := []struct {
		name      string
		file      string // as given to Parse
		tokenFile string
		env       map[string]string
		wantRead  string
		wantErr   string
	}{
		{name: "relative to the config's folder", file: "conf/qw.yaml", tokenFile: "alice.token",
			wantRead: filepath.Join(cwd, "conf", "alice.token")},
		{name: "parent folder", file: "conf/sub/qw.yaml", tokenFile: "../alice.token",
			wantRead: filepath.Join(cwd, "conf", "alice.token")},
		{name: "absolute stays", file: "conf/qw.yaml", tokenFile: "/etc/quotawatch/alice.token",
			wantRead: "/etc/quotawatch/alice.token"},
		{name: "absolute config file", file: "/etc/quotawatch/qw.yaml", tokenFile: "alice.token",
			wantRead: "/etc/quotawatch/alice.token"},
		{name: "no file name: current folder", file: "", tokenFile: "alice.token",
			wantRead: filepath.Join(cwd, "alice.token")},
		{name: "variable", file: "conf/qw.yaml", tokenFile: "${CREDENTIALS_DIRECTORY}/alice.token",
			env: map[string]string{"CREDENTIALS_DIRECTORY": "/run/credentials/quotawatch.service"}, wantRead: "/run/credentials/quotawatch.service/alice.token"},
		{name: "two variables", file: "conf/qw.yaml", tokenFile: "${A}/${B}.token",
			env: map[string]string{"A": "/x", "B": "alice"}, wantRead: "/x/alice.token"},
		{name: "relative variable is anchored too", file: "conf/qw.yaml", tokenFile: "${A}/alice.token",
			env: map[string]string{"A": "creds"}, wantRead: filepath.Join(cwd, "conf", "creds", "alice.token")},
		{name: "bare $ is literal", file: "conf/qw.yaml", tokenFile: "$A/alice.token",
			env: map[string]string{"A": "/x"}, wantRead: filepath.Join(cwd, "conf", "$A", "alice.token")},
		{name: "unset variable", file: "conf/qw.yaml", tokenFile: "${CREDENTIALS_DIRECTORY}/alice.token",
			wantErr: "conf/qw.yaml:5: cloud.accounts[0].token_file: environment variable CREDENTIALS_DIRECTORY is not set"},
		{name: "empty variable", file: "conf/qw.yaml", tokenFile: "${A}/alice.token", env: map[string]string{"A": ""},
			wantErr: "conf/qw.yaml:5: cloud.accounts[0].token_file: environment variable A is empty"},
		{name: "empty name", file: "conf/qw.yaml", tokenFile: "${}/alice.token",
			wantErr: `conf/qw.yaml:5: cloud.accounts[0].token_file: invalid environment variable name "" in "${}/alice.token"`},
		{name: "unterminated", file: "conf/qw.yaml", tokenFile: "${A/alice.token",
			wantErr: `conf/qw.yaml:5: cloud.accounts[0].token_file: unterminated ${ in "${A/alice.token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var read []string
			opt := config.Options{
				LookupEnv: lookup(tt.env),
				ReadFile: func(p string) ([]byte, error) {
					read = append(read, p)
					return []byte("tok\n"), nil
				},
			}
			data := "cloud:\n  auth_url: https://a.example/identity/v2.0\n  accounts:\n    - name: alice\n" +
				"      token_file: " + tt.tokenFile + "\n"
			cfg, err := config.Parse(tt.file, []byte(data), opt)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.Empty(t, read)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []string{tt.wantRead}, read)
			require.Equal(t, "tok", cfg.Cloud.Accounts[0].Token.Reveal())
		})
	}
}

// TestOtherPathsResolve checks that ca_file and store.path follow the same
// rules as secret files.
func TestOtherPathsResolve(t *testing.T) {
	var read []string
	opt := config.Options{
		LookupEnv: lookup(map[string]string{"STATE": "/var/lib/qw", "STATE_DIRECTORY": "/ignored"}),
		ReadFile: func(p string) ([]byte, error) {
			read = append(read, p)
			return os.ReadFile("testdata/secrets/ca.pem")
		},
	}
	data := "cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\n  ca_file: tls/ca.pem\n" +
		"store:\n  path: ${STATE}/history.db\n"
	cfg, err := config.Parse("/etc/quotawatch/config.yaml", []byte(data), opt)
	require.NoError(t, err)
	require.Equal(t, "/etc/quotawatch/tls/ca.pem", cfg.Cloud.CAFile)
	require.Equal(t, []string{"/etc/quotawatch/tls/ca.pem"}, read)
	require.Equal(t, "/var/lib/qw/history.db", cfg.Store.Path)

	data = "cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\nstore:\n  path: state/q.db\n"
	cfg, err = config.Parse("/etc/quotawatch/config.yaml", []byte(data), opt)
	require.NoError(t, err)
	require.Equal(t, "/etc/quotawatch/state/q.db", cfg.Store.Path)
}

func TestSecretFormatting(t *testing.T) {
	s := config.Secret("hunter2")
	require.Equal(t, "hunter2", s.Reveal())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v", "%T"} {
		got := fmt.Sprintf(verb, s)
		require.NotContains(t, got, "hunter2", verb)
		require.NotContains(t, got, fmt.Sprintf("%x", "hunter2"), verb)
		if verb != "%T" {
			require.Equal(t, "<secret>", got, verb)
		}
	}
	require.Equal(t, "<secret>", s.String())
	require.Equal(t, "<secret>", s.GoString())
	j, err := json.Marshal(map[string]any{"s": s, "p": &s})
	require.NoError(t, err)
	require.JSONEq(t, `{"s":"<secret>","p":"<secret>"}`, string(j))
	y, err := yaml.Marshal(map[string]any{"s": s})
	require.NoError(t, err)
	require.Equal(t, "s: <secret>\n", string(y))
	txt, err := s.MarshalText()
	require.NoError(t, err)
	require.Equal(t, "<secret>", string(txt))
}

// TestNoLeak prints, marshals and logs a Config full of secrets in every
// way a program might, and looks for any of them in the output.
func TestNoLeak(t *testing.T) {
	cfg, err := config.Load("testdata/good-full.yaml", config.Options{LookupEnv: lookup(testEnv(t))})
	require.NoError(t, err)
	secrets := []string{
		cfg.Cloud.ServiceToken.Reveal(),
		cfg.Notifiers[0].Slack.WebhookURL.Reveal(),
		cfg.Notifiers[1].Slack.Token.Reveal(),
		cfg.Notifiers[2].Slack.WebhookURL.Reveal(),
		cfg.Notifiers[3].Slack.Token.Reveal(),
	}
	for _, a := range cfg.Cloud.Accounts {
		secrets = append(secrets, a.Token.Reveal())
	}
	for _, s := range secrets {
		require.NotEmpty(t, s)
	}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs["fmt "+verb] = fmt.Sprintf(verb, cfg)
		outputs["fmt "+verb+" value"] = fmt.Sprintf(verb, *cfg)
		outputs["fmt "+verb+" accounts"] = fmt.Sprintf(verb, cfg.Cloud.Accounts)
		outputs["fmt "+verb+" notifiers"] = fmt.Sprintf(verb, cfg.Notifiers)
	}
	j, err := json.Marshal(cfg)
	require.NoError(t, err)
	// json.Marshal escapes < and > by default.
	outputs["json"] = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(j))
	y, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	outputs["yaml"] = string(y)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		log := slog.New(h(&b))
		log.Info("loaded", "config", cfg, "cloud", cfg.Cloud, "token", cfg.Cloud.Accounts[0].Token,
			slog.Any("slack", cfg.Notifiers[1].Slack))
		outputs[name] = b.String()
	}

	for name, out := range outputs {
		require.Contains(t, out, "<secret>", name)
		for _, s := range secrets {
			require.NotContains(t, out, s, name)
		}
	}
}

// TestErrorsDoNotLeak loads broken configs whose problems sit right next to
// secrets and checks that no message repeats them.
func TestErrorsDoNotLeak(t *testing.T) {
	const secret = "xoxbS3CRETvalue"
	head := "cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\nnotifiers:\n  - name: ops\n    slack:\n"
	tests := []struct {
		name  string
		slack string
		env   map[string]string
	}{
		{"webhook not a URL", "      webhook_url: " + secret + "\n", nil},
		{"webhook from env not a URL", "      webhook_url_env: HOOK\n", map[string]string{"HOOK": secret}},
		{"secret pasted into an _env key", "      token_env: xoxb-" + secret + "\n      channel: C1\n", nil},
		{"secret pasted into an _env key that looks like a name", "      token_env: " + secret + "\n      channel: C1\n", nil},
		{"two forms", "      token: " + secret + "\n      token_env: TOKEN\n      channel: C1\n", map[string]string{"TOKEN": secret}},
		{"both modes", "      token: " + secret + "\n      webhook_url: https://h.example/" + secret + "\n", nil},
		{"token without channel", "      token: " + secret + "\n", nil},
		{"secret as a mapping", "      token:\n        value: " + secret + "\n      channel: C1\n", nil},
		{"secret pasted into a _file key", "      token_file: " + secret + "\n      channel: C1\n", nil},
		{"webhook URL pasted into a _file key", "      webhook_url_file: https://hooks.example/services/" + secret + "\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(head+tt.slack), config.Options{LookupEnv: lookup(tt.env)})
			require.Error(t, err)
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, fmt.Sprintf("%+v", err), secret)
		})
	}
}

// TestSecretFilesMustBeSmallRegularFiles: a *_file or ca_file naming a
// FIFO, a device, a directory or a file over 1 MiB fails at once, naming
// the key and line, instead of hanging or filling memory.
func TestSecretFilesMustBeSmallRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte("x"), 1<<20+1), 0o600))
	tests := []struct {
		name, line, want string
	}{
		{"token from /dev/zero", "token_file: /dev/zero", "c.yaml:5: cloud.accounts[0].token_file: read /dev/zero: not a regular file (a character device)"},
		{"token from a FIFO", "token_file: " + fifo, "c.yaml:5: cloud.accounts[0].token_file: read " + fifo + ": not a regular file (a FIFO)"},
		{"token from a directory", "token_file: " + dir, "c.yaml:5: cloud.accounts[0].token_file: read " + dir + ": not a regular file (a directory)"},
		{"token from a huge file", "token_file: " + big, "c.yaml:5: cloud.accounts[0].token_file: read " + big + ": larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := "cloud:\n  auth_url: https://a.example/identity/v2.0\n  accounts:\n    - name: alice\n      " + tt.line + "\n"
			done := make(chan error, 1)
			go func() {
				_, err := config.Parse("c.yaml", []byte(yml), config.Options{})
				done <- err
			}()
			select {
			case err := <-done:
				require.EqualError(t, err, tt.want)
			case <-time.After(5 * time.Second):
				t.Fatal("loading hangs")
			}
		})
	}
	yml := "cloud:\n  auth_url: https://a.example/identity/v2.0\n  ca_file: /dev/zero\n  accounts:\n    - {name: alice, token: x}\n"
	_, err := config.Parse("c.yaml", []byte(yml), config.Options{})
	require.ErrorContains(t, err, "c.yaml:3: cloud.ca_file: read /dev/zero: not a regular file (a character device)")
}
