package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// With the shipped systemd config, the read-only commands run from a shell
// (no CREDENTIALS_DIRECTORY: the secrets are not read), while validate,
// which checks the secrets, still says what is missing.
func TestReadOnlyCommandsNeedNoSecrets(t *testing.T) {
	c := newCLI(t)
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)

	// The store the unit would use: $STATE_DIRECTORY/quotawatch.db.
	state := t.TempDir()
	data, err := os.ReadFile(filepath.Join(c.dir, "q.db"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(state, "quotawatch.db"), data, 0o600))
	cfg := filepath.Join("..", "..", "systemd", "config.yaml")
	env := map[string]string{"STATE_DIRECTORY": state}

	for _, args := range [][]string{
		{"status", "--config", cfg},
		{"history", "--config", cfg},
		{"actions", "--config", cfg},
		{"silence", "list", "--config", cfg},
		{"backup", "--config", cfg, filepath.Join(t.TempDir(), "b.db")},
	} {
		code, _, stderr := runCmd(t, env, args...)
		require.Equal(t, exitOK, code, "%v: %s", args, stderr)
	}
	code, _, stderr = runCmd(t, env, "validate", "--config", cfg)
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "CREDENTIALS_DIRECTORY is not set")
}
