package config_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
)

// BenchmarkParseExample measures a full load and validation of the example
// configuration (what a SIGHUP reload costs), rules compilation included.
func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile("../config.example.yaml")
	require.NoError(b, err)
	opt := config.Options{
		LookupEnv: lookup(map[string]string{
			"CREDENTIALS_DIRECTORY": "/run/credentials/quotawatch.service",
			"QUOTAWATCH_BOB_TOKEN":  "bob-token",
		}),
		ReadFile: func(string) ([]byte, error) { return []byte("https://hooks.slack.example/x\n"), nil },
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := config.Parse("/etc/quotawatch/config.yaml", data, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/load")
}
