package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// member is a quota entry of one member of a shared project.
func member(project, resource string, usage, limit, projectUsage, projectLimit int64) quota.Entry {
	return quota.Entry{Project: project, Resource: resource, Quota: quota.Quota{
		Usage: usage, Limit: limit, ProjectUsage: projectUsage, ProjectLimit: projectLimit}}
}

func container(id, project string, size int64) quota.Item {
	return quota.Item{Kind: quota.KindContainer, ID: id, Name: id, Project: project, Quantities: quota.ContainerQuantities(size)}
}

func server(id, project string, cpu, ram int64) quota.Item {
	return quota.Item{Kind: quota.KindServer, ID: id, Name: id, Project: project,
		Quantities: quota.Quantities{quota.CPU: cpu, quota.RAM: ram, quota.VM: 1}}
}

// planStep is one firing instance planned, in cycle order.
type planStep struct {
	key   string // rule/account/project/resource
	items []quota.Item
	want  []string // "[dry] item from -> to" for a move, "skip: reason" for a refusal
}

// TestPlannerCycle drives one cycle's planner through firing instances in
// order: what one plan does is seen by the next ones.
func TestPlannerCycle(t *testing.T) {
	g := quota.GiB
	oneAccount := []quota.Snapshot{snap("alice",
		entry("s", quota.DiskSpace, 10*g, 10*g), entry("s2", quota.DiskSpace, 10*g, 10*g),
		entry("d", quota.DiskSpace, 0, 100*g))}
	// alice and bob each fill their own project; d is shared: 8 GiB per
	// member, 10 GiB in all.
	twoAccounts := []quota.Snapshot{
		snap("alice", entry("sa", quota.DiskSpace, 10*g, 10*g), member("d", quota.DiskSpace, 0, 8*g, 0, 10*g)),
		snap("bob", entry("sb", quota.DiskSpace, 10*g, 10*g), member("d", quota.DiskSpace, 0, 8*g, 0, 10*g)),
	}
	vms := []quota.Snapshot{snap("alice",
		entry("p", quota.CPU, 8, 8), entry("p", quota.RAM, 8*g, 8*g), entry("p", quota.VM, 2, 5),
		entry("q", quota.CPU, 0, 16), entry("q", quota.RAM, 0, 32*g), entry("q", quota.VM, 0, 5))}
	cooldown := "skip: cooldown: last move out of p at 2026-03-01 12:00 UTC; the next is allowed after 2026-03-01 13:00 UTC"

	for _, tc := range []struct {
		name    string
		rules   string
		snaps   []quota.Snapshot
		journal []quota.Action
		cap     int
		dryRun  bool
		steps   []planStep
		// after checks the ledgers at the end: account/project/resource →
		// the usage and project usage.
		after map[string][2]int64
	}{{
		name: "two rules on one project: an item planned out is not planned again",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, action: {reassign: {kind: container, to: [d]}}}
  - {name: b, resource: pithos.diskspace, projects: [s], when: 'project == "s"', clear: usage < 0, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: oneAccount, cap: 10,
		steps: []planStep{
			{key: "a/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)}, want: []string{"x s -> d"}},
			{key: "b/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)}, want: []string{"y s -> d"}},
		},
		after: map[string][2]int64{"alice/s/pithos.diskspace": {0, 0}, "alice/d/pithos.diskspace": {10 * g, 10 * g}},
	}, {
		name: "an item a dry-run rule planned out is still there for a live rule",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, dry_run: true, action: {reassign: {kind: container, to: [d]}}}
  - {name: b, resource: pithos.diskspace, projects: [s], when: 'project == "s"', clear: usage < 0, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: oneAccount, cap: 10,
		steps: []planStep{
			{key: "a/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)}, want: []string{"[dry] x s -> d"}},
			{key: "b/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)}, want: []string{"x s -> d"}},
		},
		after: map[string][2]int64{"alice/s/pithos.diskspace": {4 * g, 4 * g}, "alice/d/pithos.diskspace": {6 * g, 6 * g}},
	}, {
		name: "another account's move takes the shared project's room",
		rules: `
  - {name: spill, resource: pithos.diskspace, projects: [sa, sb], when: ratio > 0.95, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: twoAccounts, cap: 10,
		steps: []planStep{
			{key: "spill/alice/sa/pithos.diskspace", items: []quota.Item{container("a7", "sa", 7*g)}, want: []string{"a7 sa -> d"}},
			{key: "spill/bob/sb/pithos.diskspace", items: []quota.Item{container("b7", "sb", 7*g)}, want: []string{"skip: no project with 7.0 GiB headroom for b7"}},
		},
		// bob's own usage of d stays 0; the project's is alice's 7 GiB.
		after: map[string][2]int64{"alice/d/pithos.diskspace": {7 * g, 7 * g}, "bob/d/pithos.diskspace": {0, 7 * g}},
	}, {
		name: "a dry-run rule's move leaves the other accounts' ledgers alone",
		rules: `
  - {name: spill, resource: pithos.diskspace, projects: [sa, sb], when: ratio > 0.95, dry_run: true, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: twoAccounts, cap: 10,
		steps: []planStep{
			{key: "spill/alice/sa/pithos.diskspace", items: []quota.Item{container("a7", "sa", 7*g)}, want: []string{"[dry] a7 sa -> d"}},
			{key: "spill/bob/sb/pithos.diskspace", items: []quota.Item{container("b7", "sb", 7*g)}, want: []string{"[dry] b7 sb -> d"}},
		},
		after: map[string][2]int64{"alice/d/pithos.diskspace": {0, 0}, "bob/d/pithos.diskspace": {0, 0}},
	}, {
		name: "the cap is reached",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s, s2], when: ratio > 0.9, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: oneAccount, cap: 1,
		steps: []planStep{
			{key: "a/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g)}, want: []string{"x s -> d"}},
			{key: "a/alice/s2/pithos.diskspace", items: []quota.Item{container("z", "s2", 6*g)}, want: []string{"skip: " + ReasonBudget}},
		},
	}, {
		name: "a cap of 0 moves nothing",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: oneAccount, cap: 0,
		steps: []planStep{{key: "a/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g)}, want: []string{"skip: " + ReasonBudget}}},
	}, {
		name: "a negative cap is no cap",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, clear: usage == 0, action: {reassign: {kind: container, to: [d], max_items: 5}}}
`,
		snaps: oneAccount, cap: -1,
		steps: []planStep{{key: "a/alice/s/pithos.diskspace",
			items: []quota.Item{container("x", "s", 6*g), container("y", "s", 3*g), container("w", "s", g)},
			want:  []string{"x s -> d", "y s -> d", "w s -> d"}}},
	}, {
		name: "a dry-run rule takes nothing from the cap of live rules",
		rules: `
  - {name: dry, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, dry_run: true, action: {reassign: {kind: container, to: [d]}}}
  - {name: live, resource: pithos.diskspace, projects: [s2], when: ratio > 0.9, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: oneAccount, cap: 1,
		steps: []planStep{
			{key: "dry/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g)}, want: []string{"[dry] x s -> d"}},
			{key: "live/alice/s2/pithos.diskspace", items: []quota.Item{container("z", "s2", 6*g)}, want: []string{"z s2 -> d"}},
		},
		after: map[string][2]int64{"alice/s/pithos.diskspace": {10 * g, 10 * g}, "alice/d/pithos.diskspace": {6 * g, 6 * g}},
	}, {
		name: "under the global dry run, plans share the cap as real ones would",
		rules: `
  - {name: dry, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, dry_run: true, action: {reassign: {kind: container, to: [d]}}}
  - {name: live, resource: pithos.diskspace, projects: [s2], when: ratio > 0.9, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: oneAccount, cap: 1, dryRun: true,
		steps: []planStep{
			{key: "dry/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g)}, want: []string{"[dry] x s -> d"}},
			{key: "live/alice/s2/pithos.diskspace", items: []quota.Item{container("z", "s2", 6*g)}, want: []string{"skip: " + ReasonBudget}},
		},
		after: map[string][2]int64{"alice/s/pithos.diskspace": {4 * g, 4 * g}},
	}, {
		name: "under the global dry run, an item planned out is not planned again",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, action: {reassign: {kind: container, to: [d]}}}
  - {name: b, resource: pithos.diskspace, projects: [s], when: 'project == "s"', clear: usage < 0, action: {reassign: {kind: container, to: [d]}}}
`,
		snaps: oneAccount, cap: 10, dryRun: true,
		steps: []planStep{
			{key: "a/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)}, want: []string{"[dry] x s -> d"}},
			{key: "b/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)}, want: []string{"[dry] y s -> d"}},
		},
		after: map[string][2]int64{"alice/s/pithos.diskspace": {0, 0}, "alice/d/pithos.diskspace": {10 * g, 10 * g}},
	}, {
		name: "a move planned this cycle starts the rule's cooldown on the project",
		rules: `
  - {name: r, resource: "cyclades.[cr]*", projects: [p], when: ratio >= 1, action: {reassign: {kind: server, to: [q]}}}
`,
		snaps: vms, cap: 10,
		steps: []planStep{
			{key: "r/alice/p/cyclades.cpu", items: []quota.Item{server("vm1", "p", 4, 4*g), server("vm2", "p", 4, 4*g)}, want: []string{"vm1 p -> q"}},
			{key: "r/alice/p/cyclades.ram", items: []quota.Item{server("vm1", "p", 4, 4*g), server("vm2", "p", 4, 4*g)}, want: []string{cooldown}},
		},
	}, {
		name: "a dry-run move starts no cooldown",
		rules: `
  - {name: r, resource: "cyclades.[cr]*", projects: [p], when: ratio >= 1, dry_run: true, action: {reassign: {kind: server, to: [q]}}}
`,
		snaps: vms, cap: 10,
		steps: []planStep{
			{key: "r/alice/p/cyclades.cpu", items: []quota.Item{server("vm1", "p", 4, 4*g), server("vm2", "p", 4, 4*g)}, want: []string{"[dry] vm1 p -> q"}},
			{key: "r/alice/p/cyclades.ram", items: []quota.Item{server("vm1", "p", 4, 4*g), server("vm2", "p", 4, 4*g)}, want: []string{"[dry] vm1 p -> q"}},
		},
	}, {
		name: "the journal is read per account, without dry-run reports",
		rules: `
  - {name: r, resource: "cyclades.[cr]*", projects: [p], when: ratio >= 1, action: {reassign: {kind: server, to: [q]}}}
`,
		snaps: vms, cap: 10,
		journal: []quota.Action{
			{Time: t0.Add(-10 * time.Minute), State: quota.ActionVerified, Move: quota.Move{Rule: "r", Account: "bob", Kind: quota.KindServer, ItemID: "vm1", From: "p", To: "q"}},
			{Time: t0.Add(-10 * time.Minute), State: quota.ActionVerified, DryRun: true, Move: quota.Move{Rule: "r", Account: "alice", Kind: quota.KindServer, ItemID: "vm1", From: "p", To: "q"}},
		},
		steps: []planStep{{key: "r/alice/p/cyclades.cpu", items: []quota.Item{server("vm1", "p", 4, 4*g)}, want: []string{"vm1 p -> q"}}},
	}, {
		name: "a recent real move in the journal holds the rule back",
		rules: `
  - {name: r, resource: "cyclades.[cr]*", projects: [p], when: ratio >= 1, action: {reassign: {kind: server, to: [q]}}}
`,
		snaps: vms, cap: 10,
		journal: []quota.Action{
			{Time: t0, State: quota.ActionFailed, Move: quota.Move{Rule: "r", Account: "alice", Kind: quota.KindServer, ItemID: "vm9", From: "p", To: "q"}},
		},
		steps: []planStep{{key: "r/alice/p/cyclades.cpu", items: []quota.Item{server("vm1", "p", 4, 4*g)}, want: []string{cooldown}}},
	}, {
		name: "an open move is on its way: no other item is sent in its place",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, clear: ratio < 0.5, action: {reassign: {kind: container, to: [d], max_items: 2}}}
`,
		snaps: oneAccount, cap: 10,
		journal: []quota.Action{
			{Time: t0.Add(-2 * time.Hour), State: quota.ActionUnknown, Move: quota.Move{Rule: "a", Account: "alice", Kind: quota.KindContainer, ItemID: "x", From: "s", To: "d", Quantities: quota.ContainerQuantities(6 * g)}},
		},
		steps: []planStep{{key: "a/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)}}},
		after: map[string][2]int64{"alice/s/pithos.diskspace": {4 * g, 4 * g}, "alice/d/pithos.diskspace": {6 * g, 6 * g}},
	}, {
		name: "an open move's item is never sent again, past its cooldown too",
		rules: `
  - {name: a, resource: pithos.diskspace, projects: [s], when: ratio > 0.9, clear: usage == 0, action: {reassign: {kind: container, to: [d], max_items: 2}}}
`,
		snaps: oneAccount, cap: 10,
		journal: []quota.Action{
			{Time: t0.Add(-2 * time.Hour), State: quota.ActionIntent, Move: quota.Move{Rule: "a", Account: "alice", Kind: quota.KindContainer, ItemID: "x", From: "s", To: "d", Quantities: quota.ContainerQuantities(6 * g)}},
		},
		steps: []planStep{{key: "a/alice/s/pithos.diskspace", items: []quota.Item{container("x", "s", 6*g), container("y", "s", 4*g)},
			want: []string{"y s -> d", "skip: x: its move to d at 2026-03-01 10:00 UTC is not settled yet"}}},
		after: map[string][2]int64{"alice/s/pithos.diskspace": {0, 0}, "alice/d/pithos.diskspace": {10 * g, 10 * g}},
	}, {
		name: "an interrupted move may have landed: the item does not go back within 24h",
		rules: `
  - {name: r, resource: "cyclades.cpu", projects: [p], when: ratio >= 1, action: {reassign: {kind: server, to: [q]}}}
`,
		snaps: vms, cap: 10,
		journal: []quota.Action{
			{Time: t0.Add(-2 * time.Hour), State: quota.ActionFailed, Interrupted: true, Error: "interrupted", Move: quota.Move{Rule: "r", Account: "alice", Kind: quota.KindServer, ItemID: "vm1", From: "q", To: "p"}},
		},
		steps: []planStep{{key: "r/alice/p/cyclades.cpu", items: []quota.Item{server("vm1", "p", 4, 4*g)},
			want: []string{"skip: no project can take vm1: q: vm1 left it at 2026-03-01 10:00 UTC, less than 24h ago"}}},
	}, {
		name: "a refused move proves the item never left: it may go back",
		rules: `
  - {name: r, resource: "cyclades.cpu", projects: [p], when: ratio >= 1, action: {reassign: {kind: server, to: [q]}}}
`,
		snaps: vms, cap: 10,
		journal: []quota.Action{
			{Time: t0.Add(-2 * time.Hour), State: quota.ActionFailed, Error: "HTTP 413", Move: quota.Move{Rule: "r", Account: "alice", Kind: quota.KindServer, ItemID: "vm1", From: "q", To: "p"}},
		},
		steps: []planStep{{key: "r/alice/p/cyclades.cpu", items: []quota.Item{server("vm1", "p", 4, 4*g)}, want: []string{"vm1 p -> q"}}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(mustParse(t, "rules:\n"+tc.rules))
			out := e.Evaluate(Input{Now: t0, Snapshots: tc.snaps, DryRun: tc.dryRun})
			firing := map[string]Firing{}
			for _, f := range out.Firing {
				firing[f.Instance.Key.String()] = f
			}
			journal := append([]quota.Action(nil), tc.journal...)
			p := e.NewPlanner(PlannerInput{Now: t0, Snapshots: tc.snaps, Journal: journal, Cap: tc.cap, DryRun: tc.dryRun})
			for _, st := range tc.steps {
				f, ok := firing[st.key]
				require.True(t, ok, "%s is not firing: %v", st.key, out.Firing)
				plan := p.Plan(f, st.items)
				var got []string
				for _, m := range plan.Moves {
					s := fmt.Sprintf("%s %s -> %s", m.ItemName, m.From, m.To)
					if m.DryRun {
						s = "[dry] " + s
					}
					got = append(got, s)
					require.Equal(t, plan.DryRun, m.DryRun)
					require.Equal(t, m.ItemID, m.Item.ID, "the listed item comes with its move")
				}
				for _, s := range plan.Skips {
					got = append(got, "skip: "+s.Reason)
				}
				require.Equal(t, st.want, got, st.key)
				// A fresh incident tells every refusal, and records it.
				require.Len(t, plan.Events, len(plan.Skips))
				require.Equal(t, len(plan.Skips) > 0, plan.Changed)
				require.Len(t, plan.Instance.Skipped, len(plan.Skips))
			}
			require.Equal(t, tc.journal, journal, "the input journal is not written")
			for k, want := range tc.after {
				parts := strings.Split(k, "/")
				require.Len(t, parts, 3, k)
				q, ok := p.ledgers[parts[0]].Get(parts[1], parts[2])
				require.True(t, ok, k)
				require.Equal(t, want, [2]int64{q.Usage, q.ProjectUsage}, k)
			}
		})
	}
}

// TestPlannerOutcomes: the planner tells each outcome of a move and starts
// the instance's cooldown, keeping what its plan recorded.
func TestPlannerOutcomes(t *testing.T) {
	g := quota.GiB
	snaps := []quota.Snapshot{snap("alice",
		entry("s", quota.DiskSpace, 10*g, 10*g), entry("d", quota.DiskSpace, 0, 100*g))}
	items := []quota.Item{container("x", "s", 6*g), container("busy", "s", 9*g)}
	items[1].Busy = "being written"
	for _, tc := range []struct {
		name    string
		dryRun  bool
		outcome func(*Planner, Move) Outcome
		result  quota.ActionResult // "" for no event
		reason  string
	}{
		{"applied", false, (*Planner).Applied, quota.ResultApplied, ""},
		{"failed", false, func(p *Planner, m Move) Outcome { return p.Failed(m, "413 over quota") }, quota.ResultFailed, "413 over quota"},
		{"unknown", false, (*Planner).Unknown, "", ""},
		{"dry run reported", true, (*Planner).Applied, quota.ResultApplied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(mustParse(t, `
rules:
  - {name: r, resource: pithos.diskspace, severity: critical, description: full, notify: [ops], when: ratio > 0.9, action: {reassign: {kind: container, to: [d]}}}
`))
			out := e.Evaluate(Input{Now: t0, Snapshots: snaps, DryRun: tc.dryRun})
			require.Len(t, out.Firing, 1)
			f := out.Firing[0]
			p := e.NewPlanner(PlannerInput{Now: t0, Snapshots: snaps, Cap: 10, DryRun: tc.dryRun})
			plan := p.Plan(f, items)
			require.Len(t, plan.Moves, 1)
			require.Equal(t, []Skip{{ItemID: "busy", ItemName: "busy", Reason: "busy is busy: being written"}}, plan.Skips)
			require.Len(t, plan.Events, 1)
			require.Equal(t, quota.ResultSkipped, plan.Events[0].Result)
			require.Equal(t, tc.dryRun, plan.Events[0].DryRun)

			res := tc.outcome(p, plan.Moves[0])
			if tc.dryRun {
				// A report paces reports only: dry run turned off acts at once.
				require.Equal(t, t0, res.Instance.LastReport, "a report starts the cooldown of reports")
				require.True(t, res.Instance.LastAction.IsZero(), "a report starts no cooldown for real moves")
			} else {
				require.Equal(t, t0, res.Instance.LastAction, "every move tried starts the cooldown")
				require.True(t, res.Instance.LastReport.IsZero())
			}
			require.Equal(t, f.Instance.Key, res.Instance.Key)
			require.Equal(t, plan.Instance.Skipped, res.Instance.Skipped, "what the plan told stays recorded")
			if tc.result == "" {
				require.Empty(t, res.Events)
				return
			}
			require.Len(t, res.Events, 1)
			ev := res.Events[0]
			require.Equal(t, quota.EventAction, ev.Kind)
			require.Equal(t, tc.result, ev.Result)
			require.Equal(t, tc.reason, ev.Reason)
			require.Equal(t, plan.Moves[0].Move, *ev.Move)
			require.Equal(t, f.Instance.Key, ev.Key)
			require.Equal(t, quota.Critical, ev.Severity)
			require.Equal(t, "full", ev.Description)
			require.Equal(t, []string{"ops"}, ev.Notify)
			require.Equal(t, f.Quota, ev.Quota)
			require.Equal(t, f.Instance.Since, ev.Since)
			require.Equal(t, tc.dryRun, ev.DryRun)
			require.Equal(t, t0, ev.Time)
		})
	}
}

// TestPlannerOutcomeOfAnotherPlanner: a move the planner did not plan
// changes nothing.
func TestPlannerOutcomeOfAnotherPlanner(t *testing.T) {
	p := NewEngine(nil).NewPlanner(PlannerInput{Now: t0})
	require.Equal(t, Outcome{}, p.Applied(Move{Move: quota.Move{Rule: "r", Account: "a", From: "p", Resource: quota.DiskSpace}}))
}

// TestPlannerListFailed: a listing failure is a refusal, told once per
// incident like the others.
func TestPlannerListFailed(t *testing.T) {
	g := quota.GiB
	snaps := []quota.Snapshot{snap("alice", entry("s", quota.DiskSpace, 10*g, 10*g))}
	e := NewEngine(mustParse(t, `
rules:
  - {name: r, resource: pithos.diskspace, when: ratio > 0.9, dry_run: true, action: {reassign: {kind: container}}}
`))
	out := e.Evaluate(Input{Now: t0, Snapshots: snaps})
	require.Len(t, out.Firing, 1)
	f := out.Firing[0]
	plan := e.NewPlanner(PlannerInput{Now: t0, Snapshots: snaps, Cap: 10}).ListFailed(f, errors.New("503 Service Unavailable"))
	require.Empty(t, plan.Moves)
	require.Equal(t, []Skip{{Reason: "listing containers of the project failed: 503 Service Unavailable"}}, plan.Skips)
	require.True(t, plan.DryRun)
	require.True(t, plan.Changed)
	require.Len(t, plan.Events, 1)
	require.Equal(t, quota.ResultSkipped, plan.Events[0].Result)
	require.True(t, plan.Events[0].DryRun)

	// Next cycle, the same failure is not told again.
	f.Instance = plan.Instance
	later := t0.Add(5 * time.Minute)
	again := e.NewPlanner(PlannerInput{Now: later, Snapshots: snaps, Cap: 10}).ListFailed(f, errors.New("503 Service Unavailable"))
	require.Len(t, again.Skips, 1)
	require.Empty(t, again.Events)
	require.False(t, again.Changed)
}

// TestPlannerWithoutLedger: an instance of an account without a ledger (no
// snapshot, or the service view) plans nothing.
func TestPlannerWithoutLedger(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: r, resource: pithos.diskspace, when: ratio > 0.9, action: {reassign: {kind: container}}}
`)
	f := Firing{Rule: rules[0], Instance: quota.Instance{Key: quota.InstanceKey{Rule: "r", Account: "svc", Project: "p", Resource: quota.DiskSpace}}}
	p := NewEngine(rules).NewPlanner(PlannerInput{Now: t0, Snapshots: []quota.Snapshot{{Account: "svc", Service: true}}, Cap: 10})
	plan := p.Plan(f, []quota.Item{container("x", "p", 1)})
	require.Equal(t, Plan{Instance: f.Instance}, plan)
}

func TestJournalWindow(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: short, resource: pithos.diskspace, when: ratio > 0.9, cooldown: 2h, action: {reassign: {kind: container}}}
  - {name: long, resource: pithos.diskspace, when: ratio > 0.9, cooldown: 36h, action: {reassign: {kind: container}}}
`)
	require.Equal(t, BackMoveWindow, JournalWindow(nil))
	require.Equal(t, BackMoveWindow, JournalWindow([]Firing{{Rule: rules[0]}}))
	require.Equal(t, 36*time.Hour, JournalWindow([]Firing{{Rule: rules[0]}, {Rule: rules[1]}}))
}

// TestSettled: the event of a move settled after its cycle carries the
// rule's fields when the rule still exists.
func TestSettled(t *testing.T) {
	e := NewEngine(mustParse(t, `
rules:
  - {name: r, resource: pithos.diskspace, severity: critical, description: full, notify: [ops], when: ratio > 0.9, action: {reassign: {kind: container}}}
`))
	src := quota.Quota{Usage: 9, Limit: 10, ProjectUsage: 9, ProjectLimit: 10}
	a := quota.Action{ID: 7, Time: t0.Add(-time.Hour), State: quota.ActionIntent, Move: quota.Move{
		Rule: "r", Account: "alice", Kind: quota.KindContainer, ItemID: "x", ItemName: "x",
		From: "p", FromName: "CS101", To: "q", Resource: quota.DiskSpace, SourceBefore: src,
	}}
	ev := e.Settled(a, quota.ActionFailed, "interrupted", t0)
	require.Equal(t, quota.Event{
		Kind: quota.EventAction, Time: t0,
		Key:      quota.InstanceKey{Rule: "r", Account: "alice", Project: "p", Resource: quota.DiskSpace},
		Severity: quota.Critical, Description: "full", Notify: []string{"ops"},
		ProjectName: "CS101", Quota: src, DaysToFull: quota.Never,
		Result: quota.ResultFailed, Move: &a.Move, Reason: "interrupted",
	}, ev)
	ev.Move.ItemName = "changed"
	require.Equal(t, "x", a.ItemName, "the event has its own copy of the move")

	a.Rule = "gone"
	ev = e.Settled(a, quota.ActionApplied, "", t0)
	require.Equal(t, quota.ResultApplied, ev.Result)
	require.Empty(t, ev.Severity)
	require.Nil(t, ev.Notify)
	require.False(t, ev.DryRun)

	a.DryRun = true
	require.True(t, e.Settled(a, quota.ActionApplied, "", t0).DryRun, "a dry-run entry is told as a dry run")
}
