package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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
	require.NoError(t, printEvents(&buf, []quota.Event{{Kind: quota.EventAction, Result: quota.ResultApplied, DryRun: true, Move: &move}}, 0))
	require.Contains(t, buf.String(), "action planned (dry run)")
	require.NotContains(t, buf.String(), "applied")
}

// TestNarrowTerminal: on a terminal narrower than the table the usage
// folds to percentages and the least useful columns go; no name is cut;
// a pipe gets the whole table.
func TestNarrowTerminal(t *testing.T) {
	gib := int64(quota.GiB)
	move := quota.Move{Rule: "container-rebalance", Account: "alice", Kind: quota.KindContainer, ItemID: "c1", ItemName: "course_container",
		From: "p1", FromName: "alice@example.org (personal)", To: "p2", ToName: "CS333 lab assignments", Resource: quota.DiskSpace,
		Quantities:   quota.Quantities{quota.DiskSpace: 19 * gib},
		SourceBefore: quota.Quota{Usage: 19 * gib, Limit: 20 * gib, ProjectUsage: 19 * gib, ProjectLimit: 20 * gib},
		SourceAfter:  quota.Quota{Usage: 0, Limit: 20 * gib, ProjectUsage: 0, ProjectLimit: 20 * gib},
		DestBefore:   quota.Quota{Usage: 10 * gib, Limit: 100 * gib, ProjectUsage: 10 * gib, ProjectLimit: 100 * gib},
		DestAfter:    quota.Quota{Usage: 29 * gib, Limit: 100 * gib, ProjectUsage: 29 * gib, ProjectLimit: 100 * gib}}
	rep := &watcher.Report{Plan: []watcher.PlanRow{{Move: move, DryRun: true}},
		Events: []quota.Event{{Kind: quota.EventFiring, Key: quota.InstanceKey{Rule: move.Rule, Account: "alice", Project: "p1", Resource: quota.DiskSpace},
			ProjectName: move.FromName, Quota: move.SourceBefore}}}
	width := func(s string) int {
		n := 0
		for _, l := range strings.Split(s, "\n") {
			n = max(n, utf8.RuneCountInString(l))
		}
		return n
	}
	var full, narrow bytes.Buffer
	require.NoError(t, printReport(&full, rep, "text", true, 0))
	require.NoError(t, printReport(&narrow, rep, "text", true, 100))
	require.Greater(t, width(full.String()), 100, full.String())
	require.LessOrEqual(t, width(narrow.String()), 100, narrow.String())
	for _, name := range []string{"container-rebalance", "course_container", "alice@example.org (personal)", "CS333 lab assignments", "would move (dry run)", "19.0 GiB / 20.0 GiB (95.0%) → 0 B / 20.0 GiB (0.0%)"} {
		require.Contains(t, narrow.String(), name)
	}
	require.Contains(t, full.String(), "19.0 GiB / 20.0 GiB (95.0%) → 0 B / 20.0 GiB (0.0%)")
	t.Logf("100 columns:\n%s", narrow.String())

	// Wide enough for the table without the account, kind and amount, the
	// usage as percentages.
	var mid bytes.Buffer
	require.NoError(t, printReport(&mid, rep, "text", true, 150))
	require.LessOrEqual(t, width(mid.String()), 150, mid.String())
	require.Contains(t, mid.String(), "95.0% → 0.0%")
	require.NotContains(t, mid.String(), "AMOUNT")
	t.Logf("150 columns:\n%s", mid.String())

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	env := func(k string) (string, bool) { return map[string]string{"COLUMNS": "100"}[k], k == "COLUMNS" }
	require.Zero(t, termWidth(w, env), "a pipe gets the whole table")
	require.Zero(t, termWidth(&full, env))
}
