package watcher

import (
	"slices"
	"sort"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// forecastWindow is how much history the forecast variables look at.
const forecastWindow = 24 * time.Hour

// trimEvery is how often the window drops what fell out of it; between
// trims it holds at most this much more than a day.
const trimEvery = time.Hour

// window keeps the last day of the series that forecasting rules watch, in
// memory. Series are step functions, so it stores only the points where a
// series changed plus, per account, the times of its polls; the samples "as
// observed" are rebuilt from the two on demand. That keeps memory at a few
// words per series in steady state instead of one sample per poll. Series
// enter the window seeded from the store, so a restart or a reload that
// adds a forecasting rule loses no history.
//
// A large cloud has hundreds of thousands of such series, so the layout is
// flat: per account one slice of series indexed by a map whose key holds
// the project id and an interned resource, with a series' first change
// point inline and times as Unix nanoseconds. A quiet series then costs
// one slice element and one map slot, and nothing the collector must
// follow but its project id.
type window struct {
	accts map[string]*windowAccount
	// resources interns resource names: a series' key holds the index.
	resources map[string]uint32
	trimmed   time.Time
	// seed returns the stored samples of a series entering the window.
	seed func(k quota.Key, from, to time.Time) []quota.Sample
}

// windowAccount is the window of one account.
type windowAccount struct {
	polls  []int64 // poll times (Unix ns), oldest first
	index  map[seriesRef]int32
	series []windowSeries
}

// seriesRef names a series within its account.
type seriesRef struct {
	project  string
	resource uint32
}

// windowSeries is one series: at least one change point, oldest first.
type windowSeries struct {
	seen  int64         // last poll that had the series (Unix ns)
	first changePoint   // the oldest change point
	more  []changePoint // the later ones; nil while the series is quiet
}

// changePoint is a quota from the poll where it began to hold on.
type changePoint struct {
	t int64 // Unix ns
	q quota.Quota
}

func (ws *windowSeries) points() int { return 1 + len(ws.more) }

func (ws *windowSeries) point(i int) *changePoint {
	if i == 0 {
		return &ws.first
	}
	return &ws.more[i-1]
}

func (ws *windowSeries) last() *changePoint { return ws.point(len(ws.more)) }

// push adds a change point after the others.
func (ws *windowSeries) push(p changePoint) { ws.more = append(ws.more, p) }

// dropBefore forgets the change points before the i-th.
func (ws *windowSeries) dropBefore(i int) {
	if i <= 0 {
		return
	}
	ws.first = *ws.point(i)
	if rest := ws.more[i:]; len(rest) > 0 {
		ws.more = append(ws.more[:0:0], rest...)
	} else {
		ws.more = nil
	}
}

func newWindow(seed func(k quota.Key, from, to time.Time) []quota.Sample) *window {
	return &window{accts: map[string]*windowAccount{}, resources: map[string]uint32{}, seed: seed}
}

func (w *window) account(name string) *windowAccount {
	a := w.accts[name]
	if a == nil {
		a = &windowAccount{index: map[seriesRef]int32{}}
		w.accts[name] = a
	}
	return a
}

// resource returns the interned index of a resource name.
func (w *window) resource(name string) uint32 {
	r, ok := w.resources[name]
	if !ok {
		r = uint32(len(w.resources))
		w.resources[name] = r
	}
	return r
}

// add records one poll of an account, for the series keep selects.
func (w *window) add(s *quota.Snapshot, keep func(project, resource string) bool) {
	a := w.account(s.Account)
	now := s.Time.UnixNano()
	if n := len(a.polls); n == 0 || a.polls[n-1] < now {
		a.polls = append(a.polls, now)
	}
	lastName, lastRes := "", uint32(0)
	for i := range s.Entries {
		e := &s.Entries[i]
		if !keep(e.Project, e.Resource) {
			continue
		}
		if e.Resource != lastName || lastName == "" {
			lastName, lastRes = e.Resource, w.resource(e.Resource)
		}
		ref := seriesRef{project: e.Project, resource: lastRes}
		j, ok := a.index[ref]
		if !ok {
			w.enter(a, quota.Key{Account: s.Account, Project: e.Project, Resource: e.Resource}, ref, s.Time, e.Quota)
			continue
		}
		ws := &a.series[j]
		ws.seen = now
		if ws.last().q != e.Quota {
			ws.push(changePoint{t: now, q: e.Quota})
		}
	}
}

// enter starts keeping a series, with what the store has of its last day
// before now, and its quota q at now.
func (w *window) enter(a *windowAccount, k quota.Key, ref seriesRef, now time.Time, q quota.Quota) {
	var ws windowSeries
	have := false
	if w.seed != nil {
		past := w.seed(k, now.Add(-forecastWindow), now.Add(-time.Nanosecond))
		for _, s := range past {
			t := s.Time.UnixNano()
			switch {
			case !have:
				ws.first, have = changePoint{t: t, q: s.Quota}, true
			case ws.last().q != s.Quota:
				ws.push(changePoint{t: t, q: s.Quota})
			}
			ws.seen = t
			if i, found := slices.BinarySearch(a.polls, t); !found {
				a.polls = slices.Insert(a.polls, i, t)
			}
		}
	}
	t := now.UnixNano()
	switch {
	case !have:
		ws.first = changePoint{t: t, q: q}
	case ws.last().q != q:
		ws.push(changePoint{t: t, q: q})
	}
	ws.seen = t
	a.index[ref] = int32(len(a.series))
	a.series = append(a.series, ws)
}

// trim forgets, once an hour, what is older than the window: old polls, old
// change points (keeping for each series the one in force at the window's
// start) and series not seen for a whole window (a project left), or that
// no rule forecasts any more.
func (w *window) trim(now time.Time, keep func(k quota.Key) bool) {
	if now.Sub(w.trimmed) < trimEvery {
		return
	}
	w.trimmed = now
	from := now.Add(-forecastWindow).UnixNano()
	names := make([]string, len(w.resources))
	for name, r := range w.resources {
		names[r] = name
	}
	for acct, a := range w.accts {
		i := sort.Search(len(a.polls), func(i int) bool { return a.polls[i] >= from })
		if i > 0 {
			a.polls = append(a.polls[:0:0], a.polls[i:]...)
		}
		gone := 0
		for ref, j := range a.index {
			ws := &a.series[j]
			if ws.seen < from || !keep(quota.Key{Account: acct, Project: ref.project, Resource: names[ref.resource]}) {
				delete(a.index, ref)
				gone++
				continue
			}
			n := ws.points()
			i := sort.Search(n, func(i int) bool { return ws.point(i).t > from })
			ws.dropBefore(i - 1)
		}
		if gone > 0 {
			// Rebuilt without the series forgotten, each keeping its key.
			series := make([]windowSeries, 0, len(a.index))
			for ref, j := range a.index {
				a.index[ref] = int32(len(series))
				series = append(series, a.series[j])
			}
			a.series = series
		}
	}
}

// samples returns the samples of k as observed at each poll of the last
// day, oldest first, and whether the window keeps k at all.
func (w *window) samples(k quota.Key, now time.Time) ([]quota.Sample, bool) {
	ws := w.find(k)
	if ws == nil {
		return nil, false
	}
	polls := w.accts[k.Account].polls
	if len(polls) == 0 || flatUsage(ws) {
		// Usage did not change in the window: the slope is 0 whatever the
		// samples, which is what "no samples" yields too, without building
		// one sample per poll for every quiet series.
		return nil, true
	}
	from := now.Add(-forecastWindow).UnixNano()
	start := sort.Search(len(polls), func(i int) bool { return polls[i] >= from })
	out := make([]quota.Sample, 0, len(polls)-start)
	j, n := 0, ws.points()
	for _, t := range polls[start:] {
		for j+1 < n && ws.point(j+1).t <= t {
			j++
		}
		p := ws.point(j)
		if p.t > t || t > ws.seen {
			continue // not observed at this poll
		}
		out = append(out, quota.Sample{Time: time.Unix(0, t).UTC(), Quota: p.q})
	}
	return out, true
}

// find returns the series k, or nil when the window does not keep it.
func (w *window) find(k quota.Key) *windowSeries {
	a := w.accts[k.Account]
	if a == nil {
		return nil
	}
	r, ok := w.resources[k.Resource]
	if !ok {
		return nil
	}
	j, ok := a.index[seriesRef{project: k.Project, resource: r}]
	if !ok {
		return nil
	}
	return &a.series[j]
}

// flatUsage reports whether usage is the same at every change point.
func flatUsage(ws *windowSeries) bool {
	for i := range ws.more {
		if ws.more[i].q.Usage != ws.first.q.Usage {
			return false
		}
	}
	return true
}
