package backtests

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

const testRules = `
rules:
  - {name: warn, resource: pithos.diskspace, when: ratio > 0.8, clear: ratio < 0.75, repeat: 2h}
  - {name: slow, resource: cyclades.vm, when: usage >= limit, for: 30m}
  - {name: fill, resource: pithos.diskspace, when: days_to_full < 1 && ratio > 0.5}
  - name: move
    resource: pithos.diskspace
    when: ratio > 0.9
    clear: ratio < 0.85
    cooldown: 3h
    action: {reassign: {kind: container, to: ["*"]}}
  - {name: wide, resource: "*", when: project_ratio > 0.95}
`

// testStore writes three days of polls at 5 minutes for an account and the
// service view: 12 projects whose usage walks at random, one appearing on
// the second day and one gone after it, some polls of the account missing,
// and a listing of containers at each poll where a project is over 90%.
func testStore(t *testing.T) (*store.Store, time.Time, time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := store.Open(path, store.Options{NoSync: true})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	const n = 12
	use := make([]int64, n)
	vms := make([]int64, n)
	var projects []quota.Project
	for p := range n {
		use[p] = int64(40+rng.IntN(50)) * quota.GiB
		projects = append(projects, quota.Project{ID: fmt.Sprintf("p%02d", p), Name: fmt.Sprintf("project %d", p)})
	}
	polls := 3 * 24 * 12
	var at time.Time
	for i := range polls {
		at = start.Add(time.Duration(i) * 5 * time.Minute)
		acct := quota.Snapshot{Account: "alice", Time: at}
		svc := quota.Snapshot{Account: ServiceAccount, Time: at, Service: true}
		var listings []store.Listing
		for p := range n {
			if (p == 10 && i < polls/3) || (p == 11 && i > 2*polls/3) {
				continue
			}
			if rng.IntN(4) == 0 {
				use[p] = min(max(use[p]+int64(rng.IntN(7)-3)*quota.GiB/2, 0), 110*quota.GiB)
			}
			if rng.IntN(20) == 0 {
				vms[p] = int64(rng.IntN(3))
			}
			id := projects[p].ID
			d := quota.Quota{Usage: use[p], Limit: 100 * quota.GiB, ProjectUsage: use[p], ProjectLimit: 100 * quota.GiB}
			acct.Entries = append(acct.Entries,
				quota.Entry{Project: id, Resource: quota.DiskSpace, Quota: d},
				quota.Entry{Project: id, Resource: quota.VM, Quota: quota.Quota{Usage: vms[p], Limit: 2, ProjectUsage: vms[p], ProjectLimit: 2}})
			if p%3 == 0 {
				// The service view sees more of some projects than alice.
				svc.Entries = append(svc.Entries, quota.Entry{Project: id + "-s", Resource: quota.DiskSpace,
					Quota: quota.Quota{Usage: use[p] * 9 / 10, Limit: 100 * quota.GiB, ProjectUsage: use[p] * 9 / 10, ProjectLimit: 100 * quota.GiB}})
			}
			if use[p] > 90*quota.GiB {
				listings = append(listings, store.Listing{Time: at, Account: "alice", Project: id, Kind: quota.KindContainer, Items: []quota.Item{
					{Kind: quota.KindContainer, ID: id + "-a", Name: "data", Quantities: quota.Quantities{quota.DiskSpace: use[p] / 2}},
					{Kind: quota.KindContainer, ID: id + "-b", Name: "logs", Quantities: quota.Quantities{quota.DiskSpace: use[p] / 4}},
				}})
			}
		}
		snaps := []quota.Snapshot{svc}
		if i%50 != 7 { // now and then alice's poll failed
			snaps = append(snaps, acct)
		}
		b := &store.Batch{Time: at, Snapshots: snaps}
		if i == 0 {
			b.Projects = projects
		}
		require.NoError(t, st.Commit(b))
		require.NoError(t, st.RecordListings(listings, 0))
	}
	require.NoError(t, st.Close())
	ro, err := store.Open(path, store.Options{ReadOnly: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ro.Close() })
	return ro, start, at
}

// The selection of what to evaluate, the read-ahead of quiet series and
// the planner's partial ledgers change nothing: the report is the one of
// evaluating every series at every poll on the full ledgers.
func TestSelectionAgreesWithEvaluatingAll(t *testing.T) {
	st, start, end := testStore(t)
	rs, err := rules.ParseBytes([]byte(testRules), rules.ParseOptions{})
	require.NoError(t, err)
	opt := Options{Rules: rs, From: start.Add(6 * time.Hour), To: end, MaxActions: 10, Notifiers: []string{"ops"},
		Window: 5 * time.Hour}
	fast, err := Run(st, opt)
	require.NoError(t, err)
	opt.evaluateAll = true
	all, err := Run(st, opt)
	require.NoError(t, err)
	require.Equal(t, all, fast)

	// The run is not trivial.
	seen := map[string]bool{}
	for _, in := range fast.Incidents {
		seen[in.Rule] = true
	}
	for _, r := range []string{"warn", "slow", "fill", "move", "wide"} {
		require.True(t, seen[r], "rule %s fired: %v", r, seen)
	}
	require.NotEmpty(t, fast.Moves)
	require.NotEmpty(t, fast.Refusals)
	require.Equal(t, 3*24*12-6*12, fast.Cycles)
	require.Contains(t, fast.Items, "as listed at the time")
}

// A window of a day or of an hour gives the same report.
func TestWindowsAgree(t *testing.T) {
	st, start, end := testStore(t)
	rs, err := rules.ParseBytes([]byte(testRules), rules.ParseOptions{})
	require.NoError(t, err)
	opt := Options{Rules: rs, From: start.Add(30 * time.Hour), To: end, MaxActions: 10}
	day, err := Run(st, opt)
	require.NoError(t, err)
	opt.Window = time.Hour
	hour, err := Run(st, opt)
	require.NoError(t, err)
	require.Equal(t, day, hour)
	for _, in := range day.Incidents {
		require.False(t, in.Opened.Before(opt.From))
	}
}

// The forecast's history is the store's samples of the last day, as the
// daemon's forecast window has them.
func TestHistoryIsTheStoresLastDay(t *testing.T) {
	st, start, end := testStore(t)
	rs, err := rules.ParseBytes([]byte(testRules), rules.ParseOptions{})
	require.NoError(t, err)
	checked := 0
	opt := Options{Rules: rs, From: start.Add(6 * time.Hour), To: end, Window: 7 * time.Hour}
	opt.afterPoll = func(r *run) {
		if r.cycle%37 != 0 {
			return
		}
		for _, p := range []string{"p00", "p03", "p10", "p11"} {
			k := quota.Key{Account: "alice", Project: p, Resource: quota.DiskSpace}
			got := slices.Clone(r.history(k))
			want, err := st.Series(k, r.now.Add(-24*time.Hour), r.now)
			require.NoError(t, err)
			if len(got) == 0 {
				// Flat usage: no samples, the same slope of 0.
				require.Zero(t, rules.Growth(want, quota.Quota{}, time.Time{}, r.now), "%s at %s", k, r.now)
				continue
			}
			require.Equal(t, want, got, "%s at %s", k, r.now)
			checked++
		}
	}
	_, err = Run(st, opt)
	require.NoError(t, err)
	require.Greater(t, checked, 20)
}

// Rules whose states change with no change of values: a clear that holds
// as soon as the rule fires, a for, repeats, a cooldown's end, and a
// forecast. Evaluating only what is due gives what evaluating all gives.
func TestSelectionAgreesOnStatesThatChangeAlone(t *testing.T) {
	st, start, end := testStore(t)
	rs, err := rules.ParseBytes([]byte(`
rules:
  - {name: flap, resource: pithos.diskspace, when: ratio > 0.8, clear: ratio < 0.9}
  - {name: lag, resource: cyclades.vm, when: usage >= 1, for: 20m, repeat: 1h}
  - {name: once, resource: cyclades.vm, when: usage >= 2, repeat: 0s}
  - {name: trend, resource: pithos.diskspace, when: growth_per_day > 0 || ratio > 2, clear: growth_per_day < 0}
  - name: move
    resource: pithos.diskspace
    when: ratio > 0.9
    cooldown: 1h
    action: {reassign: {kind: container, to: ["*"]}}
`), rules.ParseOptions{})
	require.NoError(t, err)
	opt := Options{Rules: rs, From: start.Add(6 * time.Hour), To: end, MaxActions: 10, Notifiers: []string{"ops"}}
	fast, err := Run(st, opt)
	require.NoError(t, err)
	opt.evaluateAll = true
	all, err := Run(st, opt)
	require.NoError(t, err)
	require.Equal(t, all, fast)
	seen := map[string]int{}
	for _, in := range fast.Incidents {
		seen[in.Rule]++
	}
	for _, r := range []string{"flap", "lag", "once", "trend", "move"} {
		require.Greater(t, seen[r], 1, "rule %s fired: %v", r, seen)
	}
}
