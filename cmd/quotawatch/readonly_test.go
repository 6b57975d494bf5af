package main

import (
	"os"
	"path/filepath"
	"strings"
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
		{"silence", "add", "--config", cfg, "--rule", "container-rebalance", "--for", "1h", "--comment", "from a shell"},
		{"silence", "expire", "--config", cfg, "1"},
		{"proposals", "--config", cfg},
		{"backup", "--config", cfg, filepath.Join(t.TempDir(), "b.db")},
	} {
		code, _, stderr := runCmd(t, env, args...)
		require.Equal(t, exitOK, code, "%v: %s", args, stderr)
	}
	code, _, stderr = runCmd(t, env, "validate", "--config", cfg)
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "CREDENTIALS_DIRECTORY is not set")
}

// After a move, plan lists the rule's cooldown as a refusal with its
// reason instead of leaving the incident out.
func TestPlanListsTheCooldown(t *testing.T) {
	c := newCLI(t)
	// A rule that keeps firing after its move.
	raw, err := os.ReadFile(c.cfg)
	require.NoError(t, err)
	raw = []byte(strings.Replace(string(raw), "when: ratio > 0.95\n    clear: ratio < 0.90", "when: ratio > 0.95\n    clear: ratio < 0", 1))
	require.NoError(t, os.WriteFile(c.cfg, raw, 0o600))
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	code, stdout, stderr := c.run("plan")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "skipped: cooldown: last move out of ")
}
