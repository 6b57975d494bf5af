package view

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

// randomStatus is a status source with names shared between projects,
// several accounts and ratios that tie, are infinite or are not numbers.
type randomStatus struct {
	latest   []store.Latest
	insts    []quota.Instance
	projects map[string]quota.Project
}

func (r *randomStatus) Latest() ([]store.Latest, error)             { return r.latest, nil }
func (r *randomStatus) Instances() ([]quota.Instance, error)        { return r.insts, nil }
func (r *randomStatus) Projects() (map[string]quota.Project, error) { return r.projects, nil }

func newRandomStatus(seed uint64) *randomStatus {
	rng := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	src := &randomStatus{projects: map[string]quota.Project{}}
	names := []string{"Alpha", "alpha", "Beta", "Ωμέγα", "Project 10", "Project 9", "u@example.org (personal)"}
	resources := []string{quota.DiskSpace, quota.VM, quota.CPU, quota.RAM}
	seen := map[quota.Key]bool{}
	for range 300 {
		k := quota.Key{Account: []string{"b", "a", "c"}[rng.IntN(3)], Project: fmt.Sprintf("p%02d", rng.IntN(30)),
			Resource: resources[rng.IntN(len(resources))]}
		if seen[k] {
			continue
		}
		seen[k] = true
		if rng.IntN(5) > 0 {
			src.projects[k.Project] = quota.Project{ID: k.Project, Name: names[rng.IntN(len(names))]}
		}
		usage, limit := int64(rng.IntN(4))*quota.GiB, int64(rng.IntN(3))*quota.GiB
		q := quota.Quota{Usage: usage, Limit: limit, ProjectUsage: usage, ProjectLimit: limit + quota.GiB}
		src.latest = append(src.latest, store.Latest{Key: k, Sample: quota.Sample{Time: t0.Add(time.Duration(rng.IntN(3)) * time.Minute), Quota: q}})
		if rng.IntN(3) == 0 {
			src.insts = append(src.insts, quota.Instance{Key: quota.InstanceKey{Rule: []string{"full", "empty"}[rng.IntN(2)],
				Account: k.Account, Project: k.Project, Resource: k.Resource},
				State: []quota.State{quota.StateOK, quota.StatePending, quota.StateFiring}[rng.IntN(3)], Since: t0})
		}
	}
	if seed%2 == 0 {
		slices.SortFunc(src.latest, func(a, b store.Latest) int {
			return cmp.Or(cmp.Compare(a.Key.Account, b.Key.Account), cmp.Compare(a.Key.Project, b.Key.Project), cmp.Compare(a.Key.Resource, b.Key.Resource))
		})
	}
	return src
}

// The one-pass status is the query then the selection, for any filter.
func TestSelectStatusIsQueryThenSelect(t *testing.T) {
	filters := []StatusFilter{{}, {Top: 5}, {Project: "Alpha"}, {Project: "p1*"}, {Project: "system:*"}, {Account: "a"},
		{Rule: "full"}, {State: "firing"}, {State: "pending", Top: 3}, {Project: "[ab]*", Account: "?", Rule: "e*"}}
	for seed := range uint64(8) {
		src := newRandomStatus(seed)
		all, err := QueryStatus(src)
		require.NoError(t, err)
		for _, f := range filters {
			want := all.Select(f)
			got, err := SelectStatus(src, f)
			require.NoError(t, err)
			require.Equal(t, want, got, "seed %d filter %+v", seed, f)
		}
	}
}

// QueryStatus orders the series by account, project name and resource,
// ties in the source's order, as comparing the names does.
func TestQueryStatusOrdersByName(t *testing.T) {
	for seed := range uint64(8) {
		src := newRandomStatus(seed)
		st, err := QueryStatus(src)
		require.NoError(t, err)
		name := namer(src.projects)
		want := make([]StatusRow, len(src.latest))
		for i, l := range src.latest {
			want[i] = seriesRow(l.Key, name(l.Key.Project), l.Sample)
		}
		slices.SortStableFunc(want, func(a, b StatusRow) int {
			return cmp.Or(strings.Compare(a.Account, b.Account), strings.Compare(a.ProjectName, b.ProjectName), strings.Compare(a.Resource, b.Resource))
		})
		require.Equal(t, want, st.Quotas, "seed %d", seed)
	}
}

// fullness orders ratios as byRatio does: the fullest first, NaN last,
// the zeros equal.
func TestFullnessOrdersAsByRatio(t *testing.T) {
	rs := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 0, math.Copysign(0, -1), 1, -1, 0.5, 1e-300, -1e-300, 5e-324, math.MaxFloat64, 2, 0.95}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		rs = append(rs, rng.NormFloat64(), math.Float64frombits(rng.Uint64()))
	}
	for _, a := range rs {
		for _, b := range rs[:40] {
			want := byRatio(StatusRow{Ratio: Float(a)}, StatusRow{Ratio: Float(b)})
			require.Equal(t, want, cmp.Compare(fullness(a), fullness(b)), "%v vs %v", a, b)
		}
	}
}

// A column's Append writes what its Cell returns.
func TestStatusColumnsAppendAsCell(t *testing.T) {
	src := newRandomStatus(3)
	st, err := QueryStatus(src)
	require.NoError(t, err)
	for _, cols := range [][]Column[StatusRow]{RuleColumns(), BriefRuleColumns(), QuotaColumns()} {
		cellOnly := slices.Clone(cols)
		for i := range cellOnly {
			require.NotNil(t, cellOnly[i].Append, cellOnly[i].Header)
			cellOnly[i].Append = nil
		}
		for _, rows := range [][]StatusRow{st.Rules, st.Quotas} {
			var got, cells, tabbed bytes.Buffer
			require.NoError(t, WriteTable(&got, cols, rows))
			require.NoError(t, WriteTable(&cells, cellOnly, rows))
			require.Equal(t, cells.String(), got.String())
			header := make([]string, len(cols))
			text := make([][]string, len(rows))
			for i, c := range cols {
				header[i] = c.Header
				for j, r := range rows {
					text[j] = append(text[j], c.Cell(r))
				}
			}
			require.NoError(t, writeTabbed(&tabbed, header, text))
			require.Equal(t, tabbed.String(), got.String(), "aligned as the tabwriter aligns")
		}
	}
}

// timeAppender renders as Time does, across changes, zero times and
// other zones.
func TestTimeAppender(t *testing.T) {
	app := timeAppender()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tm := range []time.Time{t0, t0, {}, t0, t0.Add(500 * time.Millisecond), t0.Add(time.Second), {}, {},
		t0.In(time.FixedZone("x", 3600)), time.Unix(0, 0)} {
		require.Equal(t, Time(tm), string(app([]byte("x"), tm))[1:])
	}
}

// keyLister is a history source without SelectKeys.
type keyLister struct{ *selectingSource }

func (k keyLister) SelectKeys() {}

// selectingSource lists keys both ways.
type selectingSource struct {
	keys     []quota.Key
	projects map[string]quota.Project
}

func (s *selectingSource) Keys() ([]quota.Key, error)                  { return s.keys, nil }
func (s *selectingSource) Projects() (map[string]quota.Project, error) { return s.projects, nil }
func (s *selectingSource) Series(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	return []quota.Sample{{Time: from, Quota: quota.Quota{Usage: int64(len(k.String()))}}}, nil
}

func (s *selectingSource) Downsample(k quota.Key, from, to time.Time, n int) ([]quota.Sample, error) {
	return s.Series(k, from, to)
}

func (s *selectingSource) SelectKeys(account, project, resource func(string) bool) ([]quota.Key, error) {
	var out []quota.Key
	for i := len(s.keys) - 1; i >= 0; i-- { // in no particular order
		if k := s.keys[i]; account(k.Account) && project(k.Project) && resource(k.Resource) {
			out = append(out, s.keys[i])
		}
	}
	return out, nil
}

// A source that selects keys itself gives the history that filtering
// every key gives.
func TestQueryHistorySelectsKeysAsFiltering(t *testing.T) {
	src := newRandomStatus(4)
	sel := &selectingSource{projects: src.projects}
	for _, l := range src.latest {
		sel.keys = append(sel.keys, l.Key)
	}
	queries := []HistoryQuery{{}, {Project: "Alpha"}, {Project: "p0*", Resource: quota.DiskSpace}, {Account: "a", Resource: "cyclades.*"},
		{Project: "p07"}, {Project: "nothing"}}
	for _, q := range queries {
		q.From, q.To, q.Points = time.Unix(0, 0), time.Unix(100, 0), 3
		got, err := QueryHistory(sel, q)
		require.NoError(t, err)
		want, err := QueryHistory(keyLister{sel}, q)
		require.NoError(t, err)
		require.Equal(t, want, got, "%+v", q)
	}
}

// unsortedStatus is a sorted source that also lists its series in no
// order.
type unsortedStatus struct {
	*randomStatus
	seed uint64
}

func (u unsortedStatus) LatestUnsorted() ([]store.Latest, error) {
	l := slices.Clone(u.latest)
	rand.New(rand.NewPCG(u.seed, 2)).Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	return l, nil
}

// A source whose series come in no order gives the status a sorted one
// gives.
func TestStatusOfUnsortedSeries(t *testing.T) {
	for seed := uint64(0); seed < 8; seed += 2 { // even seeds are sorted
		src := newRandomStatus(seed)
		want, err := QueryStatus(src)
		require.NoError(t, err)
		got, err := QueryStatus(unsortedStatus{src, seed})
		require.NoError(t, err)
		require.Equal(t, want, got, "seed %d", seed)
		for _, f := range []StatusFilter{{}, {Top: 7}, {Project: "Alpha"}, {State: "firing"}} {
			want, err := SelectStatus(src, f)
			require.NoError(t, err)
			got, err := SelectStatus(unsortedStatus{src, seed}, f)
			require.NoError(t, err)
			require.Equal(t, want, got, "seed %d filter %+v", seed, f)
		}
	}
}

// pickingSource picks named series and refuses to list them all.
type pickingSource struct {
	*selectingSource
	picked int
}

func (p *pickingSource) Keys() ([]quota.Key, error) { return nil, fmt.Errorf("listed every key") }
func (p *pickingSource) SelectKeys(_, _, _ func(string) bool) ([]quota.Key, error) {
	return nil, fmt.Errorf("selected from every key")
}

func (p *pickingSource) HistoryAccounts() ([]string, error) {
	return []string{"a", "b", "c", "gone"}, nil
}

func (p *pickingSource) PickKeys(keys []quota.Key) ([]quota.Key, error) {
	p.picked++
	var out []quota.Key
	for _, k := range keys {
		if slices.Contains(p.keys, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// A query that names its series in full reads only them, and gives the
// history that filtering every key gives; one with a pattern lists.
func TestQueryHistoryPicksNamedSeries(t *testing.T) {
	src := newRandomStatus(6)
	sel := &selectingSource{projects: src.projects}
	for _, l := range src.latest {
		sel.keys = append(sel.keys, l.Key)
	}
	k := sel.keys[len(sel.keys)/2]
	named := []HistoryQuery{
		{Project: Glob(k.Project), Resource: Glob(k.Resource), Account: Glob(k.Account)},
		{Project: Glob(k.Project), Resource: Glob(k.Resource)},
		{Project: "Alpha", Resource: quota.DiskSpace},
		{Project: "Project 10", Resource: quota.VM, Account: "b"},
		{Project: "nothing", Resource: quota.VM},
	}
	for _, q := range named {
		q.From, q.To, q.Points = time.Unix(0, 0), time.Unix(100, 0), 3
		p := &pickingSource{selectingSource: sel}
		got, err := QueryHistory(p, q)
		require.NoError(t, err, "%+v", q)
		require.Equal(t, 1, p.picked)
		want, err := QueryHistory(keyLister{sel}, q)
		require.NoError(t, err)
		require.Equal(t, want, got, "%+v", q)
	}
	want, err := QueryHistory(keyLister{sel}, HistoryQuery{Project: "Alpha", Resource: quota.DiskSpace})
	require.NoError(t, err)
	require.NotEmpty(t, want, "a name the random projects hold")
	_, err = QueryHistory(&pickingSource{selectingSource: sel}, HistoryQuery{Project: "p0*", Resource: quota.VM})
	require.ErrorContains(t, err, "selected from every key")
}
