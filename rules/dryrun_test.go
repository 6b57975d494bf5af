package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// TestDryRunStartsNoCooldownForRealMoves: a move reported in dry run holds
// back the next report for the cooldown, but once dry run is turned off
// the move is planned at the next cycle, not an hour later.
func TestDryRunStartsNoCooldownForRealMoves(t *testing.T) {
	g := quota.GiB
	snaps := []quota.Snapshot{snap("alice",
		entry("s", quota.DiskSpace, 10*g, 10*g), entry("d", quota.DiskSpace, 0, 100*g))}
	items := []quota.Item{container("x", "s", 6*g)}
	e := NewEngine(mustParse(t, `
rules:
  - {name: r, resource: pithos.diskspace, when: ratio > 0.9, cooldown: 1h, action: {reassign: {kind: container, to: [d]}}}
`))
	// A dry-run cycle reports the move.
	out := e.Evaluate(Input{Now: t0, Snapshots: snaps, DryRun: true})
	require.Len(t, out.Firing, 1)
	p := e.NewPlanner(PlannerInput{Now: t0, Snapshots: snaps, Cap: 10, DryRun: true})
	plan := p.Plan(out.Firing[0], items)
	require.Len(t, plan.Moves, 1)
	inst := p.Applied(plan.Moves[0]).Instance
	dryEntry := quota.Action{ID: 1, Time: t0, State: quota.ActionApplied, DryRun: true, Move: plan.Moves[0].Move}
	states := map[quota.InstanceKey]quota.Instance{inst.Key: inst}

	later := t0.Add(5 * time.Minute)
	for _, tc := range []struct {
		name   string
		dryRun bool
		moves  int
	}{
		{"still in dry run: the report waits for the cooldown", true, 0},
		{"dry run off: the real move goes at once", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := e.Evaluate(Input{Now: later, Snapshots: snaps, Instances: states, DryRun: tc.dryRun})
			if tc.moves == 0 {
				require.Empty(t, out.Firing, "the cooldown of reports holds")
				require.Len(t, out.CoolingDown, 1, "and plan says so")
				require.Contains(t, out.CoolingDown[0].Reason, "cooldown: last move out of s at 2026-03-01 12:00 UTC")
				return
			}
			require.Len(t, out.Firing, 1)
			p := e.NewPlanner(PlannerInput{Now: later, Snapshots: snaps, Cap: 10, Journal: []quota.Action{dryEntry}})
			plan := p.Plan(out.Firing[0], items)
			require.Empty(t, plan.Skips)
			require.Len(t, plan.Moves, tc.moves)
			require.False(t, plan.Moves[0].DryRun)
		})
	}
}
