package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestPlanMoveQuotas(t *testing.T) {
	rules := mustParse(t, `
rules:
  - name: full
    resource: pithos.diskspace
    when: ratio > 0.9
    action: {reassign: {kind: container}}
`)
	e := NewEngine(rules)
	g := quota.GiB
	src := entry("p1", quota.DiskSpace, 19*g, 20*g)
	dst := entry("p2", quota.DiskSpace, 2*g, 30*g)
	out := e.Evaluate(Input{Now: t0, Snapshots: []quota.Snapshot{snap("alice", src, dst)},
		Projects: map[string]quota.Project{"p1": {Name: "CS101"}, "p2": {Name: "CS333"}}})
	require.Len(t, out.Firing, 1)
	f := out.Firing[0]
	projects := map[string]quota.Project{"p1": {Name: "CS101"}, "p2": {Name: "CS333"}}
	p := e.NewPlanner(PlannerInput{Now: t0, Snapshots: []quota.Snapshot{snap("alice", src, dst)}, Projects: projects, Cap: 2})
	item := quota.Item{Kind: quota.KindContainer, ID: "c1", Name: "course_data", Owner: "u-alice", Project: "p1",
		Quantities: quota.ContainerQuantities(5 * g)}
	plan := p.Plan(f, []quota.Item{item})
	require.Empty(t, plan.Skips)
	require.Equal(t, []quota.Move{{
		Rule: "full", Account: "alice", Kind: quota.KindContainer, ItemID: "c1", ItemName: "course_data", Owner: "u-alice",
		From: "p1", FromName: "CS101", To: "p2", ToName: "CS333", Quantities: item.Quantities,
		Resource:     quota.DiskSpace,
		SourceBefore: src.Quota, SourceAfter: src.Quota.Add(-5 * g),
		DestBefore: dst.Quota, DestAfter: dst.Quota.Add(5 * g),
	}}, quotaMoves(plan.Moves))
	require.Equal(t, item, plan.Moves[0].Item)
	require.False(t, plan.Moves[0].DryRun)
	require.Equal(t, 1, p.left)
	q, _ := p.ledgers["alice"].Get("p2", quota.DiskSpace)
	require.Equal(t, 7*g, q.Usage)

	failed := p.Failed(plan.Moves[0], "413 over quota")
	require.Len(t, failed.Events, 1)
	ev := failed.Events[0]
	require.Equal(t, quota.EventAction, ev.Kind)
	require.Equal(t, quota.ResultFailed, ev.Result)
	require.Equal(t, "413 over quota", ev.Reason)
	require.Equal(t, "c1", ev.Move.ItemID)
	require.Equal(t, f.Instance.Key, ev.Key)
	require.Equal(t, "CS101", ev.ProjectName)
	require.False(t, ev.DryRun)
	require.Equal(t, t0, failed.Instance.LastAction, "a failed move starts the cooldown too")

	dry := e.NewPlanner(PlannerInput{Now: t0, Snapshots: []quota.Snapshot{snap("alice", src, dst)}, Projects: projects, Cap: 2, DryRun: true})
	dplan := dry.Plan(f, []quota.Item{item})
	require.Len(t, dplan.Moves, 1)
	require.True(t, dry.Applied(dplan.Moves[0]).Events[0].DryRun)
}

// quotaMoves returns the moves of a plan as quota moves.
func quotaMoves(ms []Move) []quota.Move {
	var out []quota.Move
	for _, m := range ms {
		out = append(out, m.Move)
	}
	return out
}

// TestSkipEventsDedup: a reason is told once per incident, again after
// repeat; the caller's map is never written through.
func TestSkipEventsDedup(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: r, resource: pithos.diskspace, when: ratio > 0.9, repeat: 1h, action: {reassign: {kind: container}}}
`)
	oldKey, recentKey := skipKey(Skip{Reason: "old reason"}), skipKey(Skip{Reason: "recent reason"})
	newKey := skipKey(Skip{ItemID: "c9", Reason: "new reason"})
	shared := map[string]time.Time{oldKey: t0.Add(-2 * time.Hour), recentKey: t0.Add(-time.Minute)}
	f := Firing{Rule: rules[0], Instance: quota.Instance{
		Key:     quota.InstanceKey{Rule: "r", Account: "a", Project: "p", Resource: quota.DiskSpace},
		Skipped: shared,
	}}
	skips := []Skip{
		{Reason: "recent reason"},
		{Reason: "old reason"},
		{ItemID: "c9", ItemName: "box", Reason: "new reason"},
		{ItemID: "c9", ItemName: "box", Reason: "new reason"},
	}
	told := func(now time.Time) []quota.Event {
		evs, _ := skipEvents(&f, skips, true, now)
		return evs
	}
	evs, changed := skipEvents(&f, skips, true, t0)
	require.True(t, changed)
	require.Len(t, evs, 2)
	require.Equal(t, "old reason", evs[0].Reason)
	require.Nil(t, evs[0].Move)
	require.Equal(t, "new reason", evs[1].Reason)
	require.Equal(t, "box", evs[1].Move.ItemName)
	require.Equal(t, quota.ResultSkipped, evs[1].Result)
	require.True(t, evs[1].DryRun)
	require.Equal(t, t0, f.Instance.Skipped[oldKey])
	require.Equal(t, t0, f.Instance.Skipped[newKey])
	require.Equal(t, t0.Add(-2*time.Hour), shared[oldKey])
	require.NotContains(t, shared, newKey)

	require.Empty(t, told(t0.Add(58*time.Minute)))
	require.Len(t, told(t0.Add(time.Hour)), 3)
}

// TestSkipEventsSameReasonOtherFigures: a reason whose figures move with
// usage is still the same reason; another item is another reason.
func TestSkipEventsSameReasonOtherFigures(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: r, resource: pithos.diskspace, when: ratio > 0.9, action: {reassign: {kind: container}}}
`)
	f := Firing{Rule: rules[0], Instance: quota.Instance{Key: quota.InstanceKey{Rule: "r", Account: "a", Project: "p", Resource: quota.DiskSpace}}}
	told := func(skips []Skip, now time.Time) []quota.Event {
		evs, _ := skipEvents(&f, skips, false, now)
		return evs
	}
	first := []Skip{{ItemID: "c1", ItemName: "data", Reason: "no project with 12.0 GiB headroom for data"}}
	require.Len(t, told(first, t0), 1)
	grown := []Skip{{ItemID: "c1", ItemName: "data", Reason: "no project with 12.1 GiB headroom for data"}}
	require.Empty(t, told(grown, t0.Add(5*time.Minute)))
	other := []Skip{{ItemID: "c2", ItemName: "data2", Reason: "no project with 12.1 GiB headroom for data2"}}
	require.Len(t, told(other, t0.Add(10*time.Minute)), 1)
	require.Len(t, f.Instance.Skipped, 2)
}

// TestPlanRuleDryRunLeavesNoTrace: a rule in dry run (global dry run off)
// plans its moves but leaves the shared ledger and budget to live rules;
// under the global dry run, plans share them as real ones would.
func TestPlanRuleDryRunLeavesNoTrace(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: dry, resource: cyclades.ram, projects: [s1], when: usage >= limit, clear: usage == 0, dry_run: true, action: {reassign: {kind: server, max_items: 2}}}
  - {name: live, resource: cyclades.ram, projects: [s2], when: ratio >= 1, action: {reassign: {kind: server}}}
`)
	e := NewEngine(rules)
	g := quota.GiB
	entries := []quota.Entry{
		entry("s1", quota.RAM, 8*g, 8*g), entry("s1", quota.VM, 2, 5),
		entry("s2", quota.RAM, 8*g, 8*g), entry("s2", quota.VM, 1, 5),
		entry("d", quota.RAM, 0, 16*g), entry("d", quota.VM, 0, 5),
	}
	vm := func(id, project string) quota.Item {
		return quota.Item{Kind: quota.KindServer, ID: id, Name: id, Project: project,
			Quantities: quota.Quantities{quota.RAM: 4 * g, quota.VM: 1}}
	}
	for _, global := range []bool{false, true} {
		out := e.Evaluate(Input{Now: t0, Snapshots: []quota.Snapshot{snap("a", entries...)}, DryRun: global})
		require.Len(t, out.Firing, 2)
		p := e.NewPlanner(PlannerInput{Now: t0, Snapshots: []quota.Snapshot{snap("a", entries...)}, Cap: 2, DryRun: global})
		dry := p.Plan(out.Firing[0], []quota.Item{vm("v1", "s1"), vm("v2", "s1")})
		live := p.Plan(out.Firing[1], []quota.Item{vm("v3", "s2")})
		require.Len(t, dry.Moves, 2)
		if global {
			require.Empty(t, live.Moves)
			require.Equal(t, []Skip{{Reason: ReasonBudget}}, live.Skips)
			continue
		}
		require.Len(t, live.Moves, 1)
		require.Equal(t, quota.Quota{Usage: 0, Limit: 16 * g, ProjectUsage: 0, ProjectLimit: 16 * g}, live.Moves[0].DestBefore)
		require.Equal(t, 1, p.left)
		q, _ := p.ledgers["a"].Get("s1", quota.VM)
		require.Equal(t, int64(2), q.Usage)
	}
}

// TestPlanCooldownOnInstance: Plan itself refuses an instance whose last
// move is within the rule's cooldown, even if handed one.
func TestPlanCooldownOnInstance(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: r, resource: cyclades.vm, when: usage >= limit, cooldown: 90m, action: {reassign: {kind: server}}}
`)
	e := NewEngine(rules)
	entries := []quota.Entry{entry("p1", quota.VM, 2, 2), entry("p2", quota.VM, 0, 5)}
	f := Firing{Rule: rules[0], Instance: quota.Instance{
		Key:        quota.InstanceKey{Rule: "r", Account: "a", Project: "p1", Resource: quota.VM},
		State:      quota.StateFiring,
		LastAction: t0.Add(-time.Hour),
	}}
	items := []quota.Item{{Kind: quota.KindServer, ID: "1", Name: "vm1", Project: "p1", Quantities: quota.Quantities{quota.VM: 1}}}
	planner := func(now time.Time, projects map[string]quota.Project) *Planner {
		return e.NewPlanner(PlannerInput{Now: now, Snapshots: []quota.Snapshot{snap("a", entries...)}, Projects: projects, Cap: -1})
	}
	plan := planner(t0, map[string]quota.Project{"p1": {Name: "CS101"}}).Plan(f, items)
	require.Empty(t, plan.Moves)
	require.Equal(t, []Skip{{Reason: "cooldown: last move out of CS101 at 2026-03-01 11:00 UTC; the next is allowed after 2026-03-01 12:30 UTC"}}, plan.Skips)

	plan = planner(t0.Add(30*time.Minute), nil).Plan(f, items)
	require.Empty(t, plan.Skips)
	require.Len(t, plan.Moves, 1)
}

// TestPlanCooldownIsPerRuleAndProject: a move by any instance of the rule
// out of the project (here the cpu instance, per the journal) holds back the
// rule's other instances there (ram), and not other rules or projects.
func TestPlanCooldownIsPerRuleAndProject(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: r, resource: "cyclades.[cr]*", when: ratio > 0.9, cooldown: 1h, action: {reassign: {kind: server}}}
`)
	journal := []quota.Action{{Time: t0.Add(-10 * time.Minute), State: quota.ActionVerified, Move: quota.Move{
		Rule: "r", Account: "a", Kind: quota.KindServer, ItemID: "1", From: "p", To: "q", Resource: quota.CPU,
	}}}
	plan := func(rule, project string, j []quota.Action) Plan {
		f := Firing{Rule: rules[0], Instance: quota.Instance{Key: quota.InstanceKey{Rule: rule, Account: "a", Project: project, Resource: quota.RAM}}}
		return NewEngine(rules).NewPlanner(PlannerInput{Now: t0, Snapshots: []quota.Snapshot{{Account: "a"}}, Journal: j, Cap: -1}).Plan(f, nil)
	}
	p := plan("r", "p", journal)
	require.Len(t, p.Skips, 1)
	require.Contains(t, p.Skips[0].Reason, "cooldown")
	require.NotContains(t, plan("r", "other", journal).Skips[0].Reason, "cooldown")
	dry := slices.Clone(journal)
	dry[0].DryRun = true
	require.NotContains(t, plan("r", "p", dry).Skips[0].Reason, "cooldown", "a dry-run report starts no cooldown for others")
}
