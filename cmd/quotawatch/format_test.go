package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

func TestPlanLines(t *testing.T) {
	full := quota.InstanceKey{Rule: "full", Account: "alice", Project: "p1", Resource: quota.DiskSpace}
	move := quota.Move{Rule: "full", Account: "alice", Kind: quota.KindContainer, ItemID: "c1", ItemName: "c1",
		From: "p1", To: "p2", Resource: quota.DiskSpace, Quantities: quota.Quantities{quota.DiskSpace: 1}}
	refused := quota.Move{Rule: "full", Account: "alice", Kind: quota.KindContainer, ItemID: "c2", ItemName: "c2",
		From: "p1", Resource: quota.DiskSpace}
	rep := &watcher.Report{
		Plan: []watcher.PlanRow{{Move: move, DryRun: true}, {Move: refused, Skipped: true, Reason: "no destination"}},
		Events: []quota.Event{
			{Kind: quota.EventFiring, Key: full},
			{Kind: quota.EventAction, Key: full, Result: quota.ResultApplied, Move: &move},
			{Kind: quota.EventAction, Key: full, Result: quota.ResultSkipped, Move: &refused, Reason: "no destination"},
			{Kind: quota.EventFiring, Key: quota.InstanceKey{Rule: "alert", Account: "alice", Project: "p3", Resource: quota.VM}, ProjectName: "Three"},
			{Kind: quota.EventPollFailed, Key: quota.InstanceKey{Account: "bob"}},
		},
	}
	lines := planLines(rep)
	require.Len(t, lines, 4, "two moves, the alert's row, the poll's row")
	kinds := func(l planLine) []quota.EventKind {
		var out []quota.EventKind
		for _, e := range l.Events {
			out = append(out, e.Kind)
		}
		return out
	}
	require.Equal(t, []quota.EventKind{quota.EventFiring, quota.EventAction}, kinds(lines[0]))
	require.Equal(t, []quota.EventKind{quota.EventAction}, kinds(lines[1]))
	require.Equal(t, quota.ResultSkipped, lines[1].Events[0].Result)
	require.Equal(t, "alert", lines[2].Rule)
	require.Equal(t, "Three", lines[2].FromName)
	require.Empty(t, lines[2].ItemID)
	require.Equal(t, []quota.EventKind{quota.EventPollFailed}, kinds(lines[3]))
	require.Equal(t, "bob", lines[3].Account)

	// One shape: every row has the same keys.
	var buf bytes.Buffer
	require.NoError(t, view.WriteJSON(&buf, lines))
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rows))
	want := slices.Sorted(maps.Keys(rows[0]))
	for _, r := range rows[1:] {
		require.Equal(t, want, slices.Sorted(maps.Keys(r)))
	}
	require.Contains(t, want, "reason")
	require.Contains(t, want, "events")

	require.Empty(t, planLines(&watcher.Report{}), "nothing planned is an empty array")
	require.NotNil(t, planLines(&watcher.Report{}))
}

// TestPrintEventsDryRun: a dry-run move reads as planned, never applied.
func TestPrintEventsDryRun(t *testing.T) {
	move := quota.Move{Rule: "full", Account: "alice", Kind: quota.KindContainer, ItemName: "c1", From: "p1", To: "p2"}
	var buf bytes.Buffer
	require.NoError(t, printEvents(&buf, []quota.Event{{Kind: quota.EventAction, Result: quota.ResultApplied, DryRun: true, Move: &move}}))
	require.Contains(t, buf.String(), "action planned (dry run)")
	require.NotContains(t, buf.String(), "applied")
}
