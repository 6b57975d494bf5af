package rules

import (
	"math"
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustParse(t testing.TB, doc string) []*Rule {
	t.Helper()
	rules, err := ParseBytes([]byte(doc), ParseOptions{})
	require.NoError(t, err)
	return rules
}

func snap(account string, entries ...quota.Entry) quota.Snapshot {
	return quota.Snapshot{Account: account, User: "u-" + account, Time: t0, Entries: entries}
}

func entry(project, resource string, usage, limit int64) quota.Entry {
	return quota.Entry{Project: project, Resource: resource, Quota: quota.Quota{
		Usage: usage, Limit: limit, ProjectUsage: usage, ProjectLimit: limit}}
}

func TestEvaluateEventFields(t *testing.T) {
	rules := mustParse(t, `
rules:
  - name: full
    description: Disk nearly full
    resource: pithos.diskspace
    when: ratio > 0.9 && days_to_full < 10
    severity: critical
    notify: [ops]
    dry_run: true
    action: {reassign: {kind: container}}
`)
	e := NewEngine(rules)
	k := quota.Key{Account: "alice", Project: "p1", Resource: quota.DiskSpace}
	hist := []quota.Sample{
		{Time: t0.Add(-2 * time.Hour), Quota: quota.Quota{Usage: 90}},
		{Time: t0.Add(-time.Hour), Quota: quota.Quota{Usage: 92}},
	}
	out := e.Evaluate(Input{
		Now:       t0,
		Snapshots: []quota.Snapshot{snap("alice", entry("p1", quota.DiskSpace, 94, 100))},
		Projects:  map[string]quota.Project{"p1": {ID: "p1", Name: "CS101"}},
		History: func(got quota.Key) []quota.Sample {
			require.Equal(t, k, got)
			return hist
		},
	})
	require.Empty(t, out.Errors)
	require.Len(t, out.Events, 1)
	ev := out.Events[0]
	key := quota.InstanceKey{Rule: "full", Account: "alice", Project: "p1", Resource: quota.DiskSpace}
	require.Equal(t, quota.EventFiring, ev.Kind)
	require.Equal(t, key, ev.Key)
	require.Equal(t, t0, ev.Time)
	require.Equal(t, t0, ev.Since)
	require.Equal(t, quota.Critical, ev.Severity)
	require.Equal(t, "Disk nearly full", ev.Description)
	require.Equal(t, "CS101", ev.ProjectName)
	require.Equal(t, int64(94), ev.Quota.Usage)
	require.InDelta(t, 48.0, ev.GrowthPerDay, 1e-9) // 2 per hour
	require.InDelta(t, 6.0/48, float64(ev.DaysToFull), 1e-9)
	require.Equal(t, []string{"ops"}, ev.Notify)
	require.True(t, ev.DryRun)
	require.False(t, ev.Repeat)

	require.Len(t, out.Firing, 1)
	f := out.Firing[0]
	require.Equal(t, "u-alice", f.User)
	require.Equal(t, "CS101", f.ProjectName)
	require.Equal(t, quota.StateFiring, f.Instance.State)
	require.Equal(t, []quota.Instance{f.Instance}, out.Instances)
}

// TestEvaluateDeletes covers states of removed rules, vanished series,
// projects a rule no longer selects, and accounts no longer polled.
func TestEvaluateDeletes(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: vm, resource: cyclades.vm, projects: [keep, gone], when: usage >= limit}
`)
	firing := func(rule, account, project string) (quota.InstanceKey, quota.Instance) {
		k := quota.InstanceKey{Rule: rule, Account: account, Project: project, Resource: quota.VM}
		return k, quota.Instance{Key: k, State: quota.StateFiring, Since: t0.Add(-time.Hour), LastNotified: t0.Add(-time.Hour)}
	}
	prev := map[quota.InstanceKey]quota.Instance{}
	for _, x := range [][3]string{
		{"vm", "alice", "keep"}, {"removed", "alice", "keep"}, {"vm", "alice", "gone"},
		{"vm", "alice", "unselected"}, {"vm", "bob", "keep"}, {"vm", "carol", "keep"},
	} {
		k, inst := firing(x[0], x[1], x[2])
		prev[k] = inst
	}
	out := NewEngine(rules).Evaluate(Input{
		Now: t0,
		Snapshots: []quota.Snapshot{snap("alice",
			entry("keep", quota.VM, 2, 2), entry("unselected", quota.VM, 2, 2))},
		Failed:    map[string]string{"carol": "timeout"},
		Instances: prev,
	})
	require.Equal(t, []quota.InstanceKey{
		{Rule: "removed", Account: "alice", Project: "keep", Resource: quota.VM},
		{Rule: "vm", Account: "alice", Project: "gone", Resource: quota.VM},
		{Rule: "vm", Account: "alice", Project: "unselected", Resource: quota.VM},
		{Rule: "vm", Account: "bob", Project: "keep", Resource: quota.VM},
	}, out.Deleted)
	require.Empty(t, out.Instances)
	require.Len(t, out.Firing, 0) // no action
	// Every firing incident dropped is closed with a resolved event; carol
	// was not polled, so hers stays.
	var closed []string
	for _, ev := range out.Events {
		require.Equal(t, quota.EventResolved, ev.Kind)
		require.Contains(t, ev.Reason, "no longer watched")
		require.Equal(t, t0.Add(-time.Hour), ev.Since)
		closed = append(closed, ev.Key.String())
	}
	require.ElementsMatch(t, []string{
		"removed/alice/keep/cyclades.vm", "vm/alice/gone/cyclades.vm",
		"vm/alice/unselected/cyclades.vm", "vm/bob/keep/cyclades.vm",
	}, closed)
}

// TestEvaluateRuntimeError: a runtime error counts as false and is
// reported once per rule and expression for the engine's life.
func TestEvaluateRuntimeError(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: div, resource: cyclades.vm, when: usage % limit == 0}
`)
	e := NewEngine(rules)
	in := Input{Now: t0, Snapshots: []quota.Snapshot{snap("alice",
		entry("p1", quota.VM, 1, 0), entry("p2", quota.VM, 2, 0), entry("p3", quota.VM, 4, 2))}}
	out := e.Evaluate(in)
	require.Len(t, out.Errors, 1)
	require.EqualError(t, out.Errors[0],
		"rule div: when: runtime error: integer divide by zero (evaluated as false; first seen on alice/p1/cyclades.vm) (line 3)")
	require.Len(t, out.Events, 1) // p3 still evaluates
	require.Equal(t, "p3", out.Events[0].Key.Project)
	out = e.Evaluate(in)
	require.Empty(t, out.Errors)
}

// TestEvaluateExtremes feeds limits that break naive arithmetic.
func TestEvaluateExtremes(t *testing.T) {
	rules := mustParse(t, `
rules:
  - {name: inf, resource: cyclades.vm, when: ratio > 100 && days_to_full == 0}
  - {name: unl, resource: cyclades.vm, when: unlimited && limit == 9223372036854775807 && headroom > 10 * 1024^3}
  - {name: zero, resource: cyclades.vm, when: usage == 0 && ratio == 0 && days_to_full > 1e300}
`)
	u := quota.Unlimited
	out := NewEngine(rules).Evaluate(Input{Now: t0, Snapshots: []quota.Snapshot{snap("a",
		entry("full", quota.VM, 1, 0),
		quota.Entry{Project: "unl", Resource: quota.VM, Quota: quota.Quota{Limit: u, ProjectLimit: u}},
		entry("empty", quota.VM, 0, 0),
	)}})
	require.Empty(t, out.Errors)
	var got []string
	for _, ev := range out.Events {
		got = append(got, ev.Key.Rule+"/"+ev.Key.Project)
	}
	// empty has no headroom at all: days_to_full is 0 there.
	require.Equal(t, []string{"inf/full", "unl/unl", "zero/unl"}, got)
}

func TestGrowth(t *testing.T) {
	at := func(d time.Duration, usage int64) quota.Sample {
		return quota.Sample{Time: t0.Add(d), Quota: quota.Quota{Usage: usage}}
	}
	tests := []struct {
		name    string
		samples []quota.Sample
		cur     int64
		curTime time.Time
		want    float64
	}{
		{name: "none", want: 0},
		{name: "two", samples: []quota.Sample{at(-2*time.Hour, 0)}, cur: 10, curTime: t0, want: 0},
		{name: "short span", samples: []quota.Sample{at(-50*time.Minute, 0), at(-20*time.Minute, 5)}, cur: 10, curTime: t0, want: 0},
		{name: "linear", samples: []quota.Sample{at(-2*time.Hour, 0), at(-time.Hour, 10)}, cur: 20, curTime: t0, want: 240},
		{name: "current already last", samples: []quota.Sample{at(-2*time.Hour, 0), at(-time.Hour, 10), at(0, 20)}, cur: 20, curTime: t0, want: 240},
		{name: "old ignored", samples: []quota.Sample{at(-48*time.Hour, 1e9), at(-2*time.Hour, 0), at(-time.Hour, 10)}, cur: 20, curTime: t0, want: 240},
		{name: "shrinking", samples: []quota.Sample{at(-24*time.Hour, 48), at(-12*time.Hour, 24)}, cur: 0, curTime: t0, want: -48},
		{name: "least squares", samples: []quota.Sample{at(-3*time.Hour, 0), at(-2*time.Hour, 10), at(-time.Hour, 10)}, cur: 20, curTime: t0, want: 144},
		{name: "huge values", samples: []quota.Sample{at(-2*time.Hour, math.MaxInt64), at(-time.Hour, math.MaxInt64)}, cur: math.MaxInt64, curTime: t0, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Growth(tt.samples, quota.Quota{Usage: tt.cur}, tt.curTime, t0)
			require.InDelta(t, tt.want, got, 1e-6)
		})
	}
	require.Equal(t, 0.0, DaysToFull(-5, 10))
	require.Equal(t, 0.0, DaysToFull(0, 10))
	require.True(t, math.IsInf(DaysToFull(10, 0), 1))
	require.True(t, math.IsInf(DaysToFull(10, -1), 1))
	require.Equal(t, 2.5, DaysToFull(10, 4))
}

// TestMatcher checks the shortcuts against path.Match itself.
func TestMatcher(t *testing.T) {
	patterns := []string{"*", "CS*", "CS333", "CS[0-9]*", "c?", `a\*`, "lab-*", ""}
	names := []string{"", "CS", "CS333", "CS333-lab", "cs333", "CS/1", "c1", "a*", "lab-", "lab-x/y", "other"}
	for _, p := range patterns {
		m := newMatcher(p)
		for _, n := range names {
			want, err := path.Match(p, n)
			require.NoError(t, err)
			require.Equal(t, want, m.match(n), "%q on %q", p, n)
		}
	}
}

func TestErrorRendering(t *testing.T) {
	e := &Error{Line: 14, Rule: "container-rebalance", Field: "when", Msg: "unknown name ration"}
	require.Equal(t, "rule container-rebalance: when: unknown name ration (line 14)", e.Error())
	require.Equal(t, "rule container-rebalance: when: unknown name ration", e.Detail())
	require.Equal(t, "did not find expected key", (&Error{Msg: "did not find expected key"}).Error())
}

// The service view speaks of projects: its member fields are the project's.
func TestServiceView(t *testing.T) {
	es := ServiceView([]quota.Entry{{Project: "p", Resource: quota.CPU, Quota: quota.Quota{
		Usage: 1, Limit: 2, Pending: 3, ProjectUsage: 90, ProjectLimit: 100, ProjectPending: 4,
	}}})
	want := quota.Quota{Usage: 90, Limit: 100, Pending: 4, ProjectUsage: 90, ProjectLimit: 100, ProjectPending: 4}
	if es[0].Quota != want {
		t.Fatalf("ServiceView = %+v, want %+v", es[0].Quota, want)
	}
}
