package watcher_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
)

// TestDryRunThenReal: moves reported in dry run start no cooldown for real
// ones: once dry_run is turned off (a reload), the next cycle moves,
// instead of staying silent for the rule's cooldown.
func TestDryRunThenReal(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed, "dry_run: true")
	rep := h.cycle()
	require.Len(t, rep.Plan, 1)
	require.True(t, rep.Plan[0].DryRun)
	require.Equal(t, alice, h.container("course_container").Charged)

	// Still in dry run: the report waits for the cooldown, and plan says so.
	rep = h.cycle()
	require.Len(t, rep.Plan, 1)
	require.True(t, rep.Plan[0].Skipped)
	require.Contains(t, rep.Plan[0].Reason, "cooldown")

	path := filepath.Join(h.dir, "config.yaml")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(raw), "dry_run: true", "dry_run: false", 1)), 0o600))
	cfg, err := config.Load(path, config.Options{})
	require.NoError(t, err)
	require.NoError(t, h.w.Reload(cfg))

	rep = h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.False(t, rep.Plan[0].DryRun)
	require.Equal(t, quota.ActionVerified, rep.Plan[0].State)
	require.Equal(t, cs333, h.container("course_container").Charged)
}
