package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// FuzzParse: arbitrary YAML never panics, every problem is an *Error, and
// whatever parses also evaluates.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.yaml", "testdata/invalid/*.yaml", "testdata/scenarios/*.yaml"} {
		files, err := filepath.Glob(pattern)
		require.NoError(f, err)
		for _, file := range files {
			data, err := os.ReadFile(file)
			require.NoError(f, err)
			f.Add(data)
		}
	}
	f.Add([]byte("rules: &a [*a]"))
	f.Add([]byte("rules:\n  - name: x\n    when: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseBytes(data, ParseOptions{Notifiers: []string{"ops"}})
		if err != nil {
			require.Nil(t, rules)
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var pe *Error
				require.True(t, errors.As(e, &pe), "%T: %v", e, e)
			}
			return
		}
		e := NewEngine(rules)
		var entries []quota.Entry
		for _, r := range quota.KnownResources() {
			entries = append(entries, entry("p1", r, 10, 10), entry("p2", r, 0, 100))
		}
		in := Input{Now: t0, Snapshots: []quota.Snapshot{snap("a", entries...)}}
		out := e.Evaluate(in)
		for _, fr := range out.Firing {
			e.NewPlanner(PlannerInput{Now: t0, Snapshots: in.Snapshots, Cap: -1}).Plan(fr, []quota.Item{
				{Kind: fr.Rule.Action.Kind, ID: "1", Name: "x", Project: "p1", Quantities: quota.Quantities{fr.Instance.Key.Resource: 5}},
			})
		}
	})
}

const fuzzRules = `
rules:
  - name: ratio
    resource: pithos.*
    when: ratio > 0.9 || project_ratio > 0.9 || days_to_full < 1
    clear: ratio < 0.5 && growth_per_day <= 0
    for: 5m
    action: {reassign: {kind: container, max_items: 3}}
  - name: arith
    resource: pithos.diskspace
    when: usage % (limit + 1) > headroom / 2 && effective_limit * 2 - pending != project_pending ^ 2
    action: {reassign: {kind: container, strategy: first_fit}}
  - name: vm
    resource: cyclades.*ram
    when: unlimited || usage >= effective_limit
    action: {reassign: {kind: server, select: smallest}}
`

// FuzzEvaluate: arbitrary quota numbers and history never make Evaluate or
// Plan panic.
func FuzzEvaluate(f *testing.F) {
	f.Add(int64(95), int64(100), int64(0), int64(95), int64(100), int64(0), int64(50), int64(3600), int64(1), int64(5))
	f.Add(int64(1), int64(0), int64(0), int64(1), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add(quota.Unlimited, quota.Unlimited, int64(-1), int64(-9223372036854775808), quota.Unlimited, int64(3), quota.Unlimited, int64(-1), int64(-1), quota.Unlimited)
	rules := mustParse(f, fuzzRules)
	f.Fuzz(func(t *testing.T, usage, limit, pending, pu, pl, pp, hist, step, other, qty int64) {
		e := NewEngine(rules)
		q := quota.Quota{Usage: usage, Limit: limit, Pending: pending, ProjectUsage: pu, ProjectLimit: pl, ProjectPending: pp}
		o := quota.Quota{Usage: other, Limit: limit, ProjectUsage: other, ProjectLimit: pl}
		var entries []quota.Entry
		for _, r := range []string{quota.DiskSpace, quota.RAM, quota.CPU, quota.VM, quota.Disk} {
			entries = append(entries,
				quota.Entry{Project: "p1", Resource: r, Quota: q},
				quota.Entry{Project: "p2", Resource: r, Quota: o})
		}
		history := []quota.Sample{
			{Time: t0.Add(-time.Duration(step) * 3), Quota: quota.Quota{Usage: hist}},
			{Time: t0.Add(-time.Duration(step) * 2), Quota: quota.Quota{Usage: hist * 2}},
			{Time: t0.Add(-time.Duration(step)), Quota: quota.Quota{Usage: usage - hist}},
		}
		in := Input{
			Now: t0, Snapshots: []quota.Snapshot{snap("a", entries...), {Account: "svc", Service: true, Time: t0, Entries: entries}},
			History: func(quota.Key) []quota.Sample { return history },
		}
		for cycle := range 3 {
			out := e.Evaluate(in)
			in.Instances = map[quota.InstanceKey]quota.Instance{}
			for _, inst := range out.Instances {
				in.Instances[inst.Key] = inst
			}
			p := e.NewPlanner(PlannerInput{Now: in.Now, Snapshots: in.Snapshots, History: in.History, Cap: 2})
			for _, fr := range out.Firing {
				require.False(t, fr.Rule.Action == nil)
				items := []quota.Item{
					{Kind: fr.Rule.Action.Kind, ID: "1", Name: "one", Project: "p1", Quantities: quota.Quantities{fr.Instance.Key.Resource: qty, quota.VM: 1}},
					{Kind: fr.Rule.Action.Kind, ID: "2", Name: "two", Project: "p1", Quantities: quota.Quantities{fr.Instance.Key.Resource: -qty}},
				}
				plan := p.Plan(fr, items)
				for _, m := range plan.Moves {
					p.Applied(m)
				}
				require.GreaterOrEqual(t, p.left, 0)
			}
			in.Now = in.Now.Add(time.Duration(cycle+1) * 5 * time.Minute)
		}
	})
}
