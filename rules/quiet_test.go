package rules

import (
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

const quietRules = `
rules:
  - name: full
    resource: pithos.diskspace
    when: ratio > 0.9
    clear: ratio < 0.8
    repeat: 0
    action: {reassign: {kind: container}}
`

// silenceProject silences every incident of the projects matching glob
// (by id or name).
func silenceProject(glob string) SilenceFunc {
	return func(k quota.InstanceKey, name string) (string, bool) {
		if ok, _ := path.Match(glob, k.Project); ok {
			return "silenced by 1: test", true
		}
		if ok, _ := path.Match(glob, name); ok && name != "" {
			return "silenced by 1: test", true
		}
		return "", false
	}
}

// step evaluates one cycle at t0+at over one series and carries the state.
type stepper struct {
	t     *testing.T
	e     *Engine
	insts map[quota.InstanceKey]quota.Instance
}

func (s *stepper) step(at time.Duration, usage int64, silenced SilenceFunc) Output {
	s.t.Helper()
	out := s.e.Evaluate(Input{
		Now:       t0.Add(at),
		Snapshots: []quota.Snapshot{snap("alice", entry("p1", quota.DiskSpace, usage, 100))},
		Projects:  map[string]quota.Project{"p1": {ID: "p1", Name: "CS101"}},
		Instances: s.insts,
		Silenced:  silenced,
	})
	for _, in := range out.Instances {
		s.insts[in.Key] = in
	}
	for _, k := range out.Deleted {
		delete(s.insts, k)
	}
	return out
}

func kinds(out Output) []string {
	var ks []string
	for _, ev := range out.Events {
		k := string(ev.Kind)
		if ev.Repeat {
			k += " repeat"
		}
		ks = append(ks, k)
	}
	return ks
}

func TestSilencedIncidents(t *testing.T) {
	t.Run("evaluated and recorded, told nothing, plan nothing", func(t *testing.T) {
		s := &stepper{t: t, e: NewEngine(mustParse(t, quietRules)), insts: map[quota.InstanceKey]quota.Instance{}}
		out := s.step(0, 95, silenceProject("CS1*"))
		require.Empty(t, out.Events)
		require.Empty(t, out.Firing)
		require.Len(t, out.Silenced, 1)
		require.Equal(t, "silenced by 1: test", out.Silenced[0].Reason)
		require.Len(t, out.Instances, 1)
		require.Equal(t, quota.StateFiring, out.Instances[0].State)
		require.True(t, out.Instances[0].LastNotified.IsZero(), "never told")

		// Still silenced: still nothing.
		out = s.step(5*time.Minute, 96, silenceProject("p1"))
		require.Empty(t, out.Events)
		require.Len(t, out.Silenced, 1)

		// The silence ends: told once as still firing, whatever repeat says,
		// and the planner gets it.
		out = s.step(10*time.Minute, 96, nil)
		require.Equal(t, []string{"firing repeat"}, kinds(out))
		require.Len(t, out.Firing, 1)
		out = s.step(15*time.Minute, 96, nil)
		require.Empty(t, out.Events, "told once")

		// Resolution, announced since the incident was.
		out = s.step(20*time.Minute, 10, nil)
		require.Equal(t, []string{"resolved"}, kinds(out))
	})
	t.Run("a resolution under a silence is not told", func(t *testing.T) {
		s := &stepper{t: t, e: NewEngine(mustParse(t, quietRules)), insts: map[quota.InstanceKey]quota.Instance{}}
		require.Equal(t, []string{"firing"}, kinds(s.step(0, 95, nil)))
		require.Empty(t, s.step(5*time.Minute, 10, silenceProject("*")).Events)
	})
	t.Run("an incident never told has no resolution to tell", func(t *testing.T) {
		s := &stepper{t: t, e: NewEngine(mustParse(t, quietRules)), insts: map[quota.InstanceKey]quota.Instance{}}
		require.Empty(t, s.step(0, 95, silenceProject("*")).Events)
		require.Empty(t, s.step(5*time.Minute, 10, nil).Events)
		require.Empty(t, s.insts)
	})
	t.Run("other projects are not silenced", func(t *testing.T) {
		s := &stepper{t: t, e: NewEngine(mustParse(t, quietRules)), insts: map[quota.InstanceKey]quota.Instance{}}
		out := s.step(0, 95, silenceProject("CS2*"))
		require.Equal(t, []string{"firing"}, kinds(out))
		require.Len(t, out.Firing, 1)
		require.Empty(t, out.Silenced)
	})
}

// TestServiceViewLeavesOutWhatAccountsSee: one incident, one report, as the
// account's; the service view keeps what no account sees; an account whose
// poll failed still shadows its projects; a service incident already open
// for a series an account now sees is closed, saying why.
func TestServiceViewLeavesOutWhatAccountsSee(t *testing.T) {
	rules := mustParse(t, quietRules+`
  - name: project-full
    resource: pithos.diskspace
    when: project_ratio > 0.9
`)
	service := func(entries ...quota.Entry) quota.Snapshot {
		s := snap("service", entries...)
		s.Service, s.User = true, ""
		return s
	}
	full := func(p string) quota.Entry { return entry(p, quota.DiskSpace, 95, 100) }
	accounts := func(out Output) map[string][]string {
		m := map[string][]string{}
		for _, ev := range out.Events {
			if ev.Kind == quota.EventFiring {
				m[ev.Key.Rule+"/"+ev.Key.Project] = append(m[ev.Key.Rule+"/"+ev.Key.Project], ev.Key.Account)
			}
		}
		return m
	}
	e := NewEngine(rules)
	out := e.Evaluate(Input{
		Now:       t0,
		Snapshots: []quota.Snapshot{snap("alice", full("p1")), service(full("p1"), full("p9"))},
	})
	require.Equal(t, map[string][]string{
		"full/p1": {"alice"}, "project-full/p1": {"alice"},
		"full/p9": {"service"}, "project-full/p9": {"service"},
	}, accounts(out))
	for _, f := range out.Firing {
		require.Equal(t, "alice", f.Instance.Key.Account, "the service view never plans")
	}

	// alice's poll fails: her projects stay hers.
	prev := map[quota.InstanceKey]quota.Instance{}
	for _, in := range out.Instances {
		prev[in.Key] = in
	}
	out = e.Evaluate(Input{
		Now:       t0.Add(5 * time.Minute),
		Snapshots: []quota.Snapshot{service(full("p1"), full("p9"))},
		Failed:    map[string]string{"alice": "timeout"},
		Instances: prev,
	})
	require.Empty(t, accounts(out))

	// A service incident open from before (when no account saw p2) closes
	// once an account sees p2, and says why.
	sk := quota.InstanceKey{Rule: "project-full", Account: "service", Project: "p2", Resource: quota.DiskSpace}
	out = e.Evaluate(Input{
		Now:       t0.Add(10 * time.Minute),
		Snapshots: []quota.Snapshot{snap("alice", entry("p2", quota.DiskSpace, 1, 100)), service(full("p2"))},
		Instances: map[quota.InstanceKey]quota.Instance{sk: {Key: sk, State: quota.StateFiring, Since: t0, LastNotified: t0}},
	})
	require.Contains(t, out.Deleted, sk)
	require.Len(t, out.Events, 1)
	require.Equal(t, quota.EventResolved, out.Events[0].Kind)
	require.Equal(t, sk, out.Events[0].Key)
	require.Contains(t, out.Events[0].Reason, "now reported through an account")
}
