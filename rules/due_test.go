package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestDue(t *testing.T) {
	e := NewEngine(mustParse(t, `
rules:
  - {name: slow, resource: cyclades.vm, when: usage >= limit, for: 30m}
  - {name: loud, resource: cyclades.vm, when: usage >= limit, repeat: 2h}
  - {name: quiet, resource: cyclades.vm, when: usage >= limit, repeat: 0s}
  - {name: mover, resource: pithos.diskspace, when: ratio > 0.9, cooldown: 3h, action: {reassign: {kind: container}}}
`))
	key := func(rule string) quota.InstanceKey { return quota.InstanceKey{Rule: rule, Account: "a", Project: "p"} }
	tests := []struct {
		name string
		inst quota.Instance
		at   time.Time
		ok   bool
	}{
		{"pending until its for", quota.Instance{Key: key("slow"), State: quota.StatePending, Since: t0}, t0.Add(30 * time.Minute), true},
		{"firing, told again at its repeat", quota.Instance{Key: key("loud"), State: quota.StateFiring, Since: t0, LastNotified: t0}, t0.Add(2 * time.Hour), true},
		{"firing, never told again", quota.Instance{Key: key("quiet"), State: quota.StateFiring, Since: t0, LastNotified: t0}, time.Time{}, false},
		{"firing, not told yet", quota.Instance{Key: key("quiet"), State: quota.StateFiring, Since: t0}, time.Time{}, true},
		{"firing with an action plans every cycle", quota.Instance{Key: key("mover"), State: quota.StateFiring, Since: t0, LastNotified: t0}, time.Time{}, true},
		{"ok until its cooldown ends", quota.Instance{Key: key("mover"), State: quota.StateOK, Since: t0, LastAction: t0.Add(-time.Hour)}, t0.Add(2 * time.Hour), true},
		{"a removed rule's", quota.Instance{Key: key("gone"), State: quota.StateFiring, Since: t0}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, ok := e.Due(tt.inst)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.at, at)
		})
	}
}

// A native expression reads the history only when its forecast decides:
// the cheap side of && goes first. The VM reads it before it runs.
func TestForecastOnlyWhenRead(t *testing.T) {
	e := NewEngine(mustParse(t, `
rules:
  - {name: fill, resource: pithos.diskspace, when: days_to_full < 3 && ratio > 0.5}
  - {name: vm, resource: cyclades.disk, when: 'days_to_full < 3 && project in ["p1", "p2"]'}
`))
	hist := func(u0 int64) []quota.Sample {
		return []quota.Sample{
			{Time: t0.Add(-2 * time.Hour), Quota: quota.Quota{Usage: u0}},
			{Time: t0.Add(-time.Hour), Quota: quota.Quota{Usage: u0 + 10}},
		}
	}
	var asked []quota.Key
	in := Input{
		Now: t0,
		Snapshots: []quota.Snapshot{snap("alice",
			entry("p1", quota.DiskSpace, 40, 100), // ratio 0.4: no forecast
			entry("p2", quota.DiskSpace, 80, 100), // fills in a few hours
			entry("p1", quota.Disk, 10, 100),      // the VM: always
		)},
		History: func(k quota.Key) []quota.Sample {
			asked = append(asked, k)
			return hist(map[string]int64{quota.DiskSpace: 60, quota.Disk: 0}[k.Resource])
		},
	}
	in.Snapshots[0].Entries[1], in.Snapshots[0].Entries[2] = in.Snapshots[0].Entries[2], in.Snapshots[0].Entries[1]
	out := e.Evaluate(in)
	require.Empty(t, out.Errors)
	require.Equal(t, []quota.Key{
		{Account: "alice", Project: "p1", Resource: quota.Disk},
		{Account: "alice", Project: "p2", Resource: quota.DiskSpace},
	}, asked)
	require.Len(t, out.Events, 2)
	growth := map[string]float64{}
	for _, ev := range out.Events {
		growth[ev.Key.String()] = ev.GrowthPerDay
	}
	// 60, 70 and now 80; 0, 10 and now 10.
	require.InDeltaMapValues(t, map[string]float64{
		"fill/alice/p2/" + quota.DiskSpace: 240,
		"vm/alice/p1/" + quota.Disk:        120,
	}, growth, 1e-9)

	// A Trend gives the same.
	asked = nil
	trends := map[quota.Key]*Trend{}
	in.Trend = func(k quota.Key) *Trend {
		if trends[k] == nil {
			trends[k] = &Trend{}
			for _, s := range in.History(k) {
				trends[k].Add(s.Time, s.Usage)
			}
		}
		return trends[k]
	}
	out2 := e.Evaluate(in)
	require.Len(t, asked, 2)
	require.Equal(t, out.Events, out2.Events)
}
