package config_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/config"
)

func TestLoadBadHAConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string // $DIR stands for the absolute path of testdata
	}{
		{"ha-invalid-empty.yaml", `testdata/ha-invalid-empty.yaml:4: ha: etcd is required`},
		{"ha-invalid-type.yaml", `testdata/ha-invalid-type.yaml:4: ha: expected a mapping, got "etcd"`},
		{"ha-invalid-unknown-key.yaml", "testdata/ha-invalid-unknown-key.yaml:5: ha: unknown key \"consul\"\n" +
			`testdata/ha-invalid-unknown-key.yaml:8: ha.etcd: unknown key "ttl"`},
		{"ha-invalid-endpoints-missing.yaml", `testdata/ha-invalid-endpoints-missing.yaml:5: ha.etcd: endpoints is required`},
		{"ha-invalid-endpoints-empty.yaml", `testdata/ha-invalid-endpoints-empty.yaml:6: ha.etcd.endpoints: must list at least one etcd member, such as https://etcd-1:2379`},
		{"ha-invalid-endpoints-type.yaml", `testdata/ha-invalid-endpoints-type.yaml:6: ha.etcd.endpoints: expected a list, got "https://etcd-1:2379"`},
		{"ha-invalid-endpoint-type.yaml", `testdata/ha-invalid-endpoint-type.yaml:8: ha.etcd.endpoints[1]: expected a string, got a mapping`},
		{"ha-invalid-endpoint-scheme.yaml", strings.Join([]string{
			`testdata/ha-invalid-endpoint-scheme.yaml:7: ha.etcd.endpoints[0]: must be an http:// or https:// URL with a host and a port and nothing else, such as https://etcd-1:2379, got "etcd-1:2379"`,
			`testdata/ha-invalid-endpoint-scheme.yaml:8: ha.etcd.endpoints[1]: must be an http:// or https:// URL with a host and a port and nothing else, such as https://etcd-1:2379, got "unix://etcd-2:2379"`,
			`testdata/ha-invalid-endpoint-scheme.yaml:9: ha.etcd.endpoints[2]: must be an http:// or https:// URL with a host and a port and nothing else, such as https://etcd-1:2379, got "https://:2379"`,
		}, "\n")},
		{"ha-invalid-endpoint-port.yaml", strings.Join([]string{
			`testdata/ha-invalid-endpoint-port.yaml:7: ha.etcd.endpoints[0]: needs a port (etcd's is usually 2379), got "https://etcd-1"`,
			`testdata/ha-invalid-endpoint-port.yaml:8: ha.etcd.endpoints[1]: port must be 1 to 65535, got "https://etcd-2:99999"`,
			`testdata/ha-invalid-endpoint-port.yaml:9: ha.etcd.endpoints[2]: port must be 1 to 65535, got "https://etcd-3:0"`,
		}, "\n")},
		{"ha-invalid-endpoint-path.yaml", strings.Join([]string{
			`testdata/ha-invalid-endpoint-path.yaml:7: ha.etcd.endpoints[0]: must have no path, query or fragment, got "https://etcd-1:2379/v3"`,
			`testdata/ha-invalid-endpoint-path.yaml:8: ha.etcd.endpoints[1]: must have no path, query or fragment, got "https://etcd-2:2379?timeout=1s"`,
			`testdata/ha-invalid-endpoint-path.yaml:9: ha.etcd.endpoints[2]: must have no path, query or fragment, got "https://etcd-3:2379#x"`,
		}, "\n")},
		{"ha-invalid-endpoint-userinfo.yaml", strings.Join([]string{
			`testdata/ha-invalid-endpoint-userinfo.yaml:7: ha.etcd.endpoints[0]: must not carry a user name or password (etcd authenticates quotawatch by its client certificate); the value is not shown`,
			`testdata/ha-invalid-endpoint-userinfo.yaml:8: ha.etcd.endpoints[1]: must be an http:// or https:// URL with a host and a port and nothing else, such as https://etcd-1:2379; the value is not shown in case it holds a password`,
		}, "\n")},
		{"ha-invalid-endpoint-duplicate.yaml", `testdata/ha-invalid-endpoint-duplicate.yaml:9: ha.etcd.endpoints[2]: "https://ETCD-1:2379" is listed twice (first on line 7)`},
		{"ha-invalid-endpoint-mixed.yaml", `testdata/ha-invalid-endpoint-mixed.yaml:8: ha.etcd.endpoints[1]: http:// among https:// endpoints: the members of one cluster take one scheme`},
		{"ha-invalid-cert-no-key.yaml", `testdata/ha-invalid-cert-no-key.yaml:7: ha.etcd.cert_file: needs key_file (the client certificate's private key)`},
		{"ha-invalid-key-no-cert.yaml", `testdata/ha-invalid-key-no-cert.yaml:7: ha.etcd.key_file: needs cert_file (the client certificate)`},
		{"ha-invalid-tls-http.yaml", `testdata/ha-invalid-tls-http.yaml:7: ha.etcd: TLS files given but every endpoint is http://`},
		{"ha-invalid-ca-not-pem.yaml", `testdata/ha-invalid-ca-not-pem.yaml:7: ha.etcd.ca_file: no PEM certificate found in $DIR/secrets/not-pem.txt`},
		{"ha-invalid-ca-missing.yaml", `testdata/ha-invalid-ca-missing.yaml:7: ha.etcd.ca_file: no file of that name can be read (no such file or directory); the value is not shown in case it is a secret`},
		{"ha-invalid-key-mismatch.yaml", `testdata/ha-invalid-key-mismatch.yaml:8: ha.etcd: cert_file $DIR/secrets/etcd-client.pem and key_file $DIR/secrets/etcd-other.key do not make a certificate and key pair: tls: private key does not match public key`},
		{"ha-invalid-key-switched.yaml", `testdata/ha-invalid-key-switched.yaml:8: ha.etcd: cert_file $DIR/secrets/etcd-client.key and key_file $DIR/secrets/etcd-client.pem do not make a certificate and key pair: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched`},
		{"ha-invalid-key-missing.yaml", `testdata/ha-invalid-key-missing.yaml:8: ha.etcd.key_file: no file of that name can be read (no such file or directory); the value is not shown in case it is a secret`},
		{"ha-invalid-key-unset-var.yaml", `testdata/ha-invalid-key-unset-var.yaml:8: ha.etcd.key_file: environment variable UNSET_DIRECTORY is not set`},
		{"ha-invalid-prefix.yaml", `testdata/ha-invalid-prefix.yaml:7: ha.etcd.prefix: must begin and end with "/" (such as /quotawatch/prod/), got "quotawatch/prod"`},
		{"ha-invalid-lease-ttl-short.yaml", `testdata/ha-invalid-lease-ttl-short.yaml:7: ha.etcd.lease_ttl: must be between 2s and 5m, got 1s`},
		{"ha-invalid-lease-ttl-long.yaml", `testdata/ha-invalid-lease-ttl-long.yaml:7: ha.etcd.lease_ttl: must be between 2s and 5m, got 10m`},
		{"ha-invalid-lease-ttl-fraction.yaml", `testdata/ha-invalid-lease-ttl-fraction.yaml:7: ha.etcd.lease_ttl: must be whole seconds (etcd counts leases in seconds), got 2500ms`},
		{"ha-invalid-lease-ttl-syntax.yaml", `testdata/ha-invalid-lease-ttl-syntax.yaml:7: ha.etcd.lease_ttl: invalid duration "15": use a number with a unit such as 30s, 5m, 12h or 7d`},
	}
	dir := absTestdata(t, "")
	key := readTestdata(t, "secrets/etcd-client.key")
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("testdata", tt.file), config.Options{LookupEnv: lookup(testEnv(t))})
			require.Nil(t, cfg)
			require.EqualError(t, err, strings.ReplaceAll(tt.want, "$DIR", dir))
			require.NotContains(t, fmt.Sprintf("%+v", err), "hunter2")
			require.NotContains(t, fmt.Sprintf("%+v", err), keyBody(key))
		})
	}
	files, err := filepath.Glob("testdata/ha-invalid-*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		require.True(t, seen[filepath.Base(f)], "%s has no test case", f)
	}
}

func readTestdata(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", rel))
	require.NoError(t, err)
	return string(data)
}

// keyBody is the base64 body of a PEM key, without its armour lines: what
// must never be shown, in whole or in part.
func keyBody(pem string) string {
	lines := strings.Split(strings.TrimSpace(pem), "\n")
	return lines[1]
}

func TestLoadHAConfigs(t *testing.T) {
	dir := absTestdata(t, "")

	cfg, err := config.Load("testdata/good-minimal.yaml", config.Options{LookupEnv: lookup(nil)})
	require.NoError(t, err)
	require.Nil(t, cfg.HA, "no ha: section, no high availability")

	cfg, err = config.Load("testdata/ha-good-minimal.yaml", config.Options{LookupEnv: lookup(nil)})
	require.NoError(t, err)
	require.Equal(t, &config.HA{Etcd: config.Etcd{
		Endpoints: []string{"http://127.0.0.1:2379", "http://[::1]:22379", "http://LOCALHOST:32379"},
		Prefix:    "/quotawatch/",
		LeaseTTL:  15 * time.Second,
	}}, cfg.HA)
	tc, err := cfg.HA.Etcd.TLS()
	require.NoError(t, err)
	require.Nil(t, tc, "plain http:// endpoints take no TLS")

	cfg, err = config.Load("testdata/ha-good-full.yaml", config.Options{LookupEnv: lookup(testEnv(t))})
	require.NoError(t, err)
	require.Equal(t, &config.HA{Etcd: config.Etcd{
		Endpoints: []string{"https://etcd-1.example.org:2379", "https://etcd-2.example.org:2379", "https://10.0.0.3:2379"},
		CAFile:    filepath.Join(dir, "secrets", "ca.pem"),
		CertFile:  filepath.Join(dir, "secrets", "etcd-client.pem"),
		KeyFile:   filepath.Join(dir, "secrets", "etcd-client.key"),
		CAPEM:     []byte(readTestdata(t, "secrets/ca.pem")),
		CertPEM:   []byte(readTestdata(t, "secrets/etcd-client.pem")),
		KeyPEM:    config.Secret(readTestdata(t, "secrets/etcd-client.key")),
		Prefix:    "/quotawatch/prod/",
		LeaseTTL:  30 * time.Second,
	}}, cfg.HA)
	tc, err = cfg.HA.Etcd.TLS()
	require.NoError(t, err)
	require.NotNil(t, tc.RootCAs)
	require.Len(t, tc.Certificates, 1)
	require.GreaterOrEqual(t, tc.MinVersion, uint16(tls.VersionTLS12))

	// https:// with no CA trusts the system roots.
	cfg, err = config.Parse("c.yaml", []byte("cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\n"+
		"ha:\n  etcd:\n    endpoints: [\"https://etcd-1:2379\"]\n    ca_file: \"\"\n"), config.Options{LookupEnv: lookup(nil)})
	require.NoError(t, err)
	tc, err = cfg.HA.Etcd.TLS()
	require.NoError(t, err)
	require.NotNil(t, tc)
	require.Nil(t, tc.RootCAs)
	require.Empty(t, tc.Certificates)
}

// TestHAFilesReadOnce: the TLS files are read at load time, through
// Options.ReadFile, each once; a shell's read-only command (NoSecrets)
// reads none of them.
func TestHAFilesReadOnce(t *testing.T) {
	env := testEnv(t)
	var read []string
	opt := config.Options{LookupEnv: lookup(env), ReadFile: func(p string) ([]byte, error) {
		read = append(read, p)
		return os.ReadFile(p)
	}}
	_, err := config.Load("testdata/ha-good-full.yaml", opt)
	require.NoError(t, err)
	dir := absTestdata(t, "")
	require.ElementsMatch(t, []string{
		"testdata/ha-good-full.yaml",
		filepath.Join(dir, "secrets", "ca.pem"),
		filepath.Join(dir, "secrets", "etcd-client.pem"),
		filepath.Join(dir, "secrets", "etcd-client.key"),
	}, read)

	read = nil
	delete(env, "CREDENTIALS_DIRECTORY")
	opt.NoSecrets = true
	cfg, err := config.Load("testdata/ha-good-full.yaml", opt)
	require.NoError(t, err)
	require.Equal(t, []string{"testdata/ha-good-full.yaml"}, read, "only the configuration itself is read")
	e := cfg.HA.Etcd
	require.True(t, e.Unread)
	require.True(t, e.KeyPEM.Unread())
	require.Empty(t, e.CAPEM)
	require.Empty(t, e.CertPEM)
	require.Len(t, e.Endpoints, 3)
	_, err = e.TLS()
	require.ErrorContains(t, err, "not read")

	// The checks that need no file still hold.
	_, err = config.Load("testdata/ha-invalid-cert-no-key.yaml", opt)
	require.ErrorContains(t, err, "ha.etcd.cert_file: needs key_file")
}

// TestEtcdKeyDoesNotLeak prints, marshals and logs a configuration with an
// etcd client key in every way a program might, and loads broken ones
// whose problems sit next to the key.
func TestEtcdKeyDoesNotLeak(t *testing.T) {
	cfg, err := config.Load("testdata/ha-good-full.yaml", config.Options{LookupEnv: lookup(testEnv(t))})
	require.NoError(t, err)
	key := cfg.HA.Etcd.KeyPEM.Reveal()
	require.Contains(t, key, "PRIVATE KEY")
	body := keyBody(key)

	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs["fmt "+verb] = fmt.Sprintf(verb, cfg)
		outs["fmt "+verb+" value"] = fmt.Sprintf(verb, *cfg)
		outs["fmt "+verb+" ha"] = fmt.Sprintf(verb, cfg.HA)
		outs["fmt "+verb+" etcd"] = fmt.Sprintf(verb, cfg.HA.Etcd)
	}
	j, err := json.Marshal(cfg)
	require.NoError(t, err)
	outs["json"] = string(j)
	y, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	outs["yaml"] = string(y)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("loaded", "config", cfg, "ha", cfg.HA, slog.Any("etcd", cfg.HA.Etcd))
		outs[name] = b.String()
	}
	for name, out := range outs {
		require.NotContains(t, out, body, name)
		require.NotContains(t, out, fmt.Sprintf("%x", body), name)
		require.NotContains(t, out, "PRIVATE KEY", name)
	}

	// The key pasted where a path belongs, or beside other problems.
	head := "cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\nha:\n  etcd:\n" +
		"    endpoints: [\"https://etcd-1:2379\"]\n"
	pasted, err := json.Marshal(key) // a quoted YAML scalar holding the PEM
	require.NoError(t, err)
	tests := []struct{ name, yaml string }{
		{"pasted into key_file", "    cert_file: secrets/etcd-client.pem\n    key_file: " + string(pasted) + "\n"},
		{"pasted into cert_file", "    cert_file: " + string(pasted) + "\n    key_file: secrets/etcd-client.key\n"},
		{"key without cert", "    key_file: secrets/etcd-client.key\n"},
		{"key and cert switched", "    cert_file: secrets/etcd-client.key\n    key_file: secrets/etcd-client.pem\n"},
		{"key for another cert", "    cert_file: secrets/etcd-other.key\n    key_file: secrets/etcd-client.key\n"},
		{"key as a mapping", "    cert_file: secrets/etcd-client.pem\n    key_file:\n      pem: " + string(pasted) + "\n"},
		{"beside a bad prefix", "    cert_file: secrets/etcd-client.pem\n    key_file: secrets/etcd-client.key\n    prefix: nope\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("testdata/c.yaml", []byte(head+tt.yaml), config.Options{LookupEnv: lookup(nil)})
			require.Error(t, err)
			out := fmt.Sprintf("%+v", err)
			require.NotContains(t, out, body)
			require.NotContains(t, out, "PRIVATE KEY")
		})
	}
}
