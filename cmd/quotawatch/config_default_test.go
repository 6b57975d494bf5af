package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfigPath(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unset", nil, "/etc/quotawatch/config.yaml"},
		{"empty", map[string]string{"QUOTAWATCH_CONFIG": ""}, "/etc/quotawatch/config.yaml"},
		{"set", map[string]string{"QUOTAWATCH_CONFIG": "/srv/qw.yaml"}, "/srv/qw.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := defaultConfigPath(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			require.Equal(t, tt.want, got)
		})
	}
}

// Without --config a command reads $QUOTAWATCH_CONFIG; --config wins over it.
func TestConfigFromTheEnvironment(t *testing.T) {
	c := newCLI(t)
	env := c.env()
	env["QUOTAWATCH_CONFIG"] = c.cfg
	code, stdout, stderr := runCmd(t, env, "validate")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, c.cfg+": OK")

	missing := filepath.Join(t.TempDir(), "missing.yaml")
	env["QUOTAWATCH_CONFIG"] = missing
	code, _, stderr = runCmd(t, env, "validate")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, missing)

	code, stdout, stderr = runCmd(t, env, "validate", "--config", c.cfg)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, c.cfg+": OK")
}
