package replay

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
)

// A partial cycle reads and changes only the states of the series it
// holds, and of those gone; Due names the series whose states change with
// their values unchanged.
func TestPartialCycles(t *testing.T) {
	rs, err := rules.ParseBytes([]byte(`
rules:
  - {name: slow, resource: cyclades.vm, when: usage >= limit, for: 30m}
  - {name: full, resource: pithos.diskspace, when: ratio > 0.9, repeat: 0s}
`), rules.ParseOptions{})
	require.NoError(t, err)
	sim := New(rules.NewEngine(rs), -1, false)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	entry := func(p, res string, usage int64) quota.Entry {
		return quota.Entry{Project: p, Resource: res, Quota: quota.Quota{Usage: usage, Limit: 10, ProjectUsage: usage, ProjectLimit: 10}}
	}
	step := func(at time.Duration, es ...quota.Entry) Result {
		return sim.Step(Cycle{Now: t0.Add(at), Partial: true, Snapshots: []quota.Snapshot{{Account: "a", Time: t0.Add(at), Entries: es}}})
	}
	kinds := func(r Result) []string {
		var out []string
		for _, ev := range r.Events {
			out = append(out, string(ev.Kind)+" "+ev.Key.Rule+" "+ev.Key.Project)
		}
		return out
	}
	require.Empty(t, sim.Due(t0))
	r := step(0, entry("p1", quota.VM, 10), entry("p2", quota.DiskSpace, 10), entry("p3", quota.DiskSpace, 10))
	require.ElementsMatch(t, []string{"firing full p2", "firing full p3"}, kinds(r))
	require.Len(t, sim.Instances(), 3)

	// Every state changed: each is due once more.
	require.ElementsMatch(t, []quota.Key{
		{Account: "a", Project: "p1", Resource: quota.VM},
		{Account: "a", Project: "p2", Resource: quota.DiskSpace},
		{Account: "a", Project: "p3", Resource: quota.DiskSpace},
	}, sim.Due(t0.Add(5*time.Minute)))
	r = step(5*time.Minute, entry("p1", quota.VM, 10), entry("p2", quota.DiskSpace, 10), entry("p3", quota.DiskSpace, 10))
	require.Empty(t, kinds(r))

	// Then only the pending one, when its for runs out; p3 left out keeps
	// its state.
	require.Empty(t, sim.Due(t0.Add(10*time.Minute)))
	r = step(10*time.Minute, entry("p2", quota.DiskSpace, 1))
	require.Equal(t, []string{"resolved full p2"}, kinds(r))
	require.Len(t, sim.Instances(), 2)
	require.Equal(t, []quota.Key{{Account: "a", Project: "p1", Resource: quota.VM}}, sim.Due(t0.Add(30*time.Minute)))
	r = step(30*time.Minute, entry("p1", quota.VM, 10))
	require.Equal(t, []string{"firing slow p1"}, kinds(r))

	// A series gone ends its states.
	r = sim.Step(Cycle{Now: t0.Add(35 * time.Minute), Partial: true, Gone: []quota.Key{{Account: "a", Project: "p3", Resource: quota.DiskSpace}},
		Snapshots: []quota.Snapshot{{Account: "a", Time: t0.Add(35 * time.Minute)}}})
	require.Equal(t, []string{"resolved full p3"}, kinds(r))
	require.Len(t, sim.Instances(), 1)
}
