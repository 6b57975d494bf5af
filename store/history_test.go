package store

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func ms(t time.Time) int64 { return t.UnixMilli() }

// blockMs is a day, the span of one history block.
const blockMs = int64(24 * time.Hour / time.Millisecond)

func compareKeys(a, b quota.Key) int {
	return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Resource, b.Resource))
}

// model is the obvious in-memory history: every poll kept in full.
type model struct {
	polls map[string][]modelPoll // by account
}

type modelPoll struct {
	t int64
	q map[quota.Key]quota.Quota
}

func (m *model) add(sn quota.Snapshot) {
	p := modelPoll{t: ms(sn.Time), q: map[quota.Key]quota.Quota{}}
	for _, e := range sn.Entries {
		k := quota.Key{Account: sn.Account, Project: e.Project, Resource: e.Resource}
		if _, dup := p.q[k]; !dup {
			p.q[k] = e.Quota
		}
	}
	m.polls[sn.Account] = append(m.polls[sn.Account], p)
}

func sample(t int64, q quota.Quota) quota.Sample {
	return quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: q}
}

func (m *model) at(k quota.Key, t int64) (quota.Sample, bool) {
	ps := m.polls[k.Account]
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].t > t {
			continue
		}
		if q, ok := ps[i].q[k]; ok {
			return sample(ps[i].t, q), true
		}
	}
	return quota.Sample{}, false
}

func (m *model) series(k quota.Key, from, to int64) []quota.Sample {
	var out []quota.Sample
	for _, p := range m.polls[k.Account] {
		if q, ok := p.q[k]; ok && p.t >= from && p.t <= to {
			out = append(out, sample(p.t, q))
		}
	}
	return out
}

func (m *model) changes(k quota.Key, from, to int64) []quota.Sample {
	var out []quota.Sample
	if s, ok := m.at(k, from); ok {
		out = append(out, s)
	}
	for _, s := range m.series(k, from+1, to) {
		if len(out) == 0 || out[len(out)-1].Quota != s.Quota {
			out = append(out, s)
		}
	}
	return out
}

func (m *model) keys() []quota.Key {
	seen := map[quota.Key]bool{}
	for _, ps := range m.polls {
		for _, p := range ps {
			for k := range p.q {
				seen[k] = true
			}
		}
	}
	ks := make([]quota.Key, 0, len(seen))
	for k := range seen {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, compareKeys)
	return ks
}

// scenario drives random polls through a store and the model.
type scenario struct {
	name     string
	seed     uint64
	accounts int
	series   int     // per account
	polls    int     // cycles
	step     int64   // ms between cycles
	pChange  float64 // per series per poll
	pAbsent  float64 // per series per poll: toggles presence
	pSkip    float64 // per account per cycle: poll failed
	pGap     float64 // per cycle: the daemon was down for days
	pRelease float64 // per cycle: Release between cycles
	pReopen  float64 // per cycle: Close and Open again (restart)
	dup      bool    // snapshots may repeat an entry
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func randomQuota(r *rand.Rand) quota.Quota {
	pick := func() int64 {
		switch r.IntN(6) {
		case 0:
			return quota.Unlimited
		case 1:
			return -r.Int64N(1 << 40)
		case 2:
			return math.MinInt64
		default:
			return r.Int64N(1 << 40)
		}
	}
	return quota.Quota{Usage: pick(), Limit: pick(), Pending: pick() % 3, ProjectUsage: pick(), ProjectLimit: pick(), ProjectPending: pick() % 2}
}

func runScenario(t *testing.T, sc scenario) (*Store, *model, string) {
	t.Helper()
	r := rand.New(rand.NewPCG(sc.seed, 7))
	path := filepath.Join(t.TempDir(), "q.db")
	open := func() *Store {
		st, err := Open(path, Options{NoSync: true})
		require.NoError(t, err)
		return st
	}
	st := open()
	m := &model{polls: map[string][]modelPoll{}}
	type ser struct {
		q       quota.Quota
		present bool
	}
	state := make([][]ser, sc.accounts)
	for a := range state {
		state[a] = make([]ser, sc.series)
		for i := range state[a] {
			state[a][i] = ser{q: randomQuota(r), present: r.IntN(4) != 0}
		}
	}
	now := start.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
	for c := 0; c < sc.polls; c++ {
		now = now.Add(time.Duration(sc.step) * time.Millisecond)
		if r.Float64() < sc.pGap {
			now = now.Add(time.Duration(1+r.IntN(3)) * 24 * time.Hour)
		}
		b := &Batch{Time: now}
		for a := range state {
			acct := fmt.Sprintf("acct%d", a)
			if r.Float64() < sc.pSkip {
				continue
			}
			sn := quota.Snapshot{Account: acct, Time: now.Add(time.Duration(r.IntN(900)) * time.Millisecond)}
			for i := range state[a] {
				s := &state[a][i]
				if r.Float64() < sc.pAbsent {
					s.present = !s.present
				}
				if r.Float64() < sc.pChange {
					if r.IntN(2) == 0 {
						d := r.Int64N(1<<20) - 1<<19
						s.q = s.q.Add(d)
					} else {
						s.q = randomQuota(r)
					}
				}
				if s.present {
					e := quota.Entry{Project: fmt.Sprintf("p%d", i%7), Resource: fmt.Sprintf("r%d", i), Quota: s.q}
					sn.Entries = append(sn.Entries, e)
					if sc.dup && r.IntN(10) == 0 {
						e.Quota = randomQuota(r)
						sn.Entries = append(sn.Entries, e)
					}
				}
			}
			r.Shuffle(len(sn.Entries), func(i, j int) { sn.Entries[i], sn.Entries[j] = sn.Entries[j], sn.Entries[i] })
			b.Snapshots = append(b.Snapshots, sn)
			m.add(sn)
		}
		require.NoError(t, st.Commit(b))
		switch {
		case r.Float64() < sc.pReopen:
			require.NoError(t, st.Close())
			st = open()
		case r.Float64() < sc.pRelease:
			require.NoError(t, st.Release())
		}
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, m, path
}

var scenarios = []scenario{
	{name: "regular", seed: 1, accounts: 1, series: 20, polls: 900, step: 300_000, pChange: 0.05},
	{name: "churn", seed: 2, accounts: 2, series: 15, polls: 700, step: 300_000, pChange: 0.3, pAbsent: 0.05, pSkip: 0.1},
	{name: "gaps and restarts", seed: 3, accounts: 3, series: 8, polls: 400, step: 600_000, pChange: 0.2, pAbsent: 0.1, pSkip: 0.2, pGap: 0.01, pRelease: 0.3, pReopen: 0.05},
	{name: "duplicates", seed: 4, accounts: 1, series: 10, polls: 300, step: 900_000, pChange: 0.5, pAbsent: 0.2, dup: true, pReopen: 0.1},
	{name: "restart every cycle", seed: 5, accounts: 2, series: 5, polls: 150, step: 3_600_000, pChange: 0.3, pAbsent: 0.1, pReopen: 1},
}

// checkAgainstModel runs every query at random times and compares.
func checkAgainstModel(t *testing.T, st *Store, m *model, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	keys := m.keys()
	got, err := st.Keys()
	require.NoError(t, err)
	require.Equal(t, keys, got)

	var first, last int64 = math.MaxInt64, 0
	for _, ps := range m.polls {
		first = min(first, ps[0].t)
		last = max(last, ps[len(ps)-1].t)
	}
	randT := func() int64 {
		if r.IntN(5) == 0 { // exactly on a poll
			for _, ps := range m.polls {
				return ps[r.IntN(len(ps))].t
			}
		}
		return first - blockMs + r.Int64N(last-first+2*blockMs)
	}
	latest, err := st.Latest()
	require.NoError(t, err)
	var want []Latest
	for _, k := range keys {
		s, ok := m.at(k, math.MaxInt64)
		require.True(t, ok)
		want = append(want, Latest{Key: k, Sample: s})
		seen, ok, err := st.LastSeen(k)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, s.Time, seen, "last seen %s", k)
	}
	require.Equal(t, want, latest)
	unsorted, err := st.LatestUnsorted()
	require.NoError(t, err)
	require.ElementsMatch(t, want, unsorted, "LatestUnsorted lists what Latest does")
	selected, err := st.SelectKeys(nil, nil, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, keys, selected, "SelectKeys with no match selects every key")

	for range 300 {
		k := keys[r.IntN(len(keys))]
		t1 := randT()
		gs, gok, err := st.At(k, time.UnixMilli(t1))
		require.NoError(t, err)
		ws, wok := m.at(k, t1)
		require.Equal(t, wok, gok, "at %s %d", k, t1)
		require.Equal(t, ws, gs, "at %s %d", k, t1)

		t2 := randT()
		from, to := min(t1, t2), max(t1, t2)
		ser, err := st.Series(k, time.UnixMilli(from), time.UnixMilli(to))
		require.NoError(t, err)
		require.Equal(t, m.series(k, from, to), ser, "series %s [%d,%d]", k, from, to)

		ch, err := st.Changes(k, time.UnixMilli(from), time.UnixMilli(to))
		require.NoError(t, err)
		require.Equal(t, m.changes(k, from, to), ch, "changes %s [%d,%d]", k, from, to)

		n := 1 + r.IntN(40)
		ds, err := st.Downsample(k, time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC(), n)
		require.NoError(t, err)
		var wd []quota.Sample
		for i := range n {
			ti := time.UnixMilli(to).UTC()
			if n > 1 {
				ti = time.UnixMilli(from).UTC().Add(time.Duration(float64(time.Duration(to-from)*time.Millisecond) * float64(i) / float64(n-1)))
			}
			if s, ok := m.at(k, ms(ti)); ok {
				wd = append(wd, quota.Sample{Time: ti, Quota: s.Quota})
			}
		}
		require.Equal(t, wd, ds, "downsample %s [%d,%d] n=%d", k, from, to, n)
	}
	_, ok, err := st.At(quota.Key{Account: "nobody"}, time.Now())
	require.NoError(t, err)
	require.False(t, ok)
}

func TestHistoryAgainstModel(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			st, m, path := runScenario(t, sc)
			checkAgainstModel(t, st, m, sc.seed)
			// A restart rebuilds the cache from checkpoint and log.
			require.NoError(t, st.Close())
			st2, err := Open(path, Options{})
			require.NoError(t, err)
			checkAgainstModel(t, st2, m, sc.seed+1)
			require.NoError(t, st2.Close())
			// So does a read-only open.
			ro, err := Open(path, Options{ReadOnly: true})
			require.NoError(t, err)
			defer ro.Close()
			checkAgainstModel(t, ro, m, sc.seed+2)
		})
	}
}

func TestSnapshotNotAfterLastPollIsSkipped(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "q.db"), Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	k := quota.Key{Account: "a", Project: "p", Resource: "r"}
	for i, tc := range []struct {
		at    time.Time
		usage int64
	}{{start.Add(time.Hour), 1}, {start.Add(time.Hour), 2}, {start, 3}, {start.Add(2 * time.Hour), 4}} {
		require.NoError(t, st.Commit(&Batch{Snapshots: []quota.Snapshot{{Account: "a", Time: tc.at,
			Entries: []quota.Entry{{Project: "p", Resource: "r", Quota: quota.Quota{Usage: tc.usage}}}}}}), "commit %d", i)
	}
	got, err := st.Series(k, start, start.Add(3*time.Hour))
	require.NoError(t, err)
	require.Equal(t, []quota.Sample{sample(ms(start.Add(time.Hour)), quota.Quota{Usage: 1}), sample(ms(start.Add(2*time.Hour)), quota.Quota{Usage: 4})}, got)
}

func TestRetain(t *testing.T) {
	sc := scenario{seed: 11, accounts: 2, series: 6, polls: 24 * 6, step: 3_600_000, pChange: 0.3, pAbsent: 0.1}
	st, m, _ := runScenario(t, sc)
	// A series that disappears early is forgotten once its history is gone.
	early := start.Add(30 * time.Minute)
	require.NoError(t, st.Commit(&Batch{Snapshots: []quota.Snapshot{{Account: "gone", Time: early.Add(-20 * time.Minute),
		Entries: []quota.Entry{{Project: "x", Resource: "y", Quota: quota.Quota{Usage: 5}}}}}}))
	require.NoError(t, st.Commit(&Batch{Snapshots: []quota.Snapshot{{Account: "gone", Time: start.Add(7 * 24 * time.Hour)}}}))

	cut := start.Add(3*24*time.Hour + 5*time.Hour)
	require.NoError(t, st.Retain(context.Background(), cut))
	keep := ms(start.Add(3 * 24 * time.Hour)) // whole day blocks go
	for _, k := range m.keys() {
		got, err := st.Series(k, time.UnixMilli(0), start.Add(30*24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, m.series(k, keep, math.MaxInt64), got, "%s", k)
		_, ok, err := st.At(k, start.Add(2*24*time.Hour))
		require.NoError(t, err)
		require.False(t, ok, "%s: history before the cut is gone", k)
		ws, _ := m.at(k, math.MaxInt64)
		gs, ok, err := st.At(k, start.Add(30*24*time.Hour))
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, ws, gs)
	}
	keys, err := st.Keys()
	require.NoError(t, err)
	require.NotContains(t, keys, quota.Key{Account: "gone", Project: "x", Resource: "y"})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, st.Retain(ctx, start.Add(5*24*time.Hour)), context.Canceled)
}

// TestFailedCommitLeavesNothing: a batch that cannot be written (an event
// JSON cannot hold) changes neither the file nor what queries report.
func TestFailedCommitLeavesNothing(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "q.db"), Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	k := quota.Key{Account: "a", Project: "p", Resource: "r"}
	snap := func(at time.Time, usage int64) quota.Snapshot {
		return quota.Snapshot{Account: "a", Time: at, Entries: []quota.Entry{{Project: "p", Resource: "r", Quota: quota.Quota{Usage: usage}}}}
	}
	t1, t2 := start.Add(time.Hour), start.Add(25*time.Hour) // t2 would fold the first block
	require.NoError(t, st.Commit(&Batch{Time: t1, Snapshots: []quota.Snapshot{snap(t1, 1)}}))
	err = st.Commit(&Batch{Time: t2, Snapshots: []quota.Snapshot{snap(t2, 2)},
		Outbox: []Outgoing{{Notifier: "ops", Event: quota.Event{GrowthPerDay: math.NaN()}}}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "outbox")

	want := []quota.Sample{sample(ms(t1), quota.Quota{Usage: 1})}
	got, err := st.Series(k, start, t2)
	require.NoError(t, err)
	require.Equal(t, want, got)
	p, _, err := st.OutboxLen()
	require.NoError(t, err)
	require.Zero(t, p)

	require.NoError(t, st.Commit(&Batch{Time: t2, Snapshots: []quota.Snapshot{snap(t2, 3)}}))
	got, err = st.Series(k, start, t2)
	require.NoError(t, err)
	require.Equal(t, append(want, sample(ms(t2), quota.Quota{Usage: 3})), got)
}

// TestRetainForgetsSeriesGoneAtBlockStart: a series that vanished at the
// first poll of the open block has no history left there once the blocks
// before go, whether or not a restart rebuilt the cache from the log.
func TestRetainForgetsSeriesGoneAtBlockStart(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.db")
			st, err := Open(path, Options{NoSync: true})
			require.NoError(t, err)
			defer func() { require.NoError(t, st.Close()) }()
			x := quota.Entry{Project: "p", Resource: "x", Quota: quota.Quota{Usage: 1}}
			y := quota.Entry{Project: "p", Resource: "y", Quota: quota.Quota{Usage: 2}}
			for i, es := range [][]quota.Entry{{x, y}, {x, y}, {y}, {y}} {
				at := start.Add(time.Duration(i) * 12 * time.Hour) // polls 2 and 3 are in the second block
				require.NoError(t, st.Commit(&Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "a", Time: at, Entries: es}}}))
			}
			if restart {
				require.NoError(t, st.Close())
				st, err = Open(path, Options{NoSync: true})
				require.NoError(t, err)
			}
			require.NoError(t, st.Retain(context.Background(), start.Add(36*time.Hour)))
			keys, err := st.Keys()
			require.NoError(t, err)
			require.Equal(t, []quota.Key{{Account: "a", Project: "p", Resource: "y"}}, keys)
			got, err := st.Series(keys[0], start, start.Add(48*time.Hour))
			require.NoError(t, err)
			require.Equal(t, []quota.Sample{sample(ms(start.Add(24*time.Hour)), y.Quota), sample(ms(start.Add(36*time.Hour)), y.Quota)}, got)
		})
	}
}
