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
type window struct {
	polls   map[string][]time.Time // account → poll times, oldest first
	series  map[quota.Key]*windowSeries
	trimmed time.Time
	// seed returns the stored samples of a series entering the window.
	seed func(k quota.Key, from, to time.Time) []quota.Sample
}

type windowSeries struct {
	pts  []quota.Sample // change points, oldest first
	seen time.Time      // last poll that had the series
}

func newWindow(seed func(k quota.Key, from, to time.Time) []quota.Sample) *window {
	return &window{polls: map[string][]time.Time{}, series: map[quota.Key]*windowSeries{}, seed: seed}
}

// add records one poll of an account, for the series keep selects.
func (w *window) add(s *quota.Snapshot, keep func(project, resource string) bool) {
	polls := w.polls[s.Account]
	if n := len(polls); n == 0 || polls[n-1].Before(s.Time) {
		w.polls[s.Account] = append(polls, s.Time)
	}
	for i := range s.Entries {
		e := &s.Entries[i]
		if !keep(e.Project, e.Resource) {
			continue
		}
		k := quota.Key{Account: s.Account, Project: e.Project, Resource: e.Resource}
		ws := w.series[k]
		if ws == nil {
			ws = w.enter(k, s.Time)
		}
		ws.seen = s.Time
		if n := len(ws.pts); n > 0 && ws.pts[n-1].Quota == e.Quota {
			continue
		}
		ws.pts = append(ws.pts, quota.Sample{Time: s.Time, Quota: e.Quota})
	}
}

// enter starts keeping a series, with what the store has of its last day
// (before now, which the caller adds).
func (w *window) enter(k quota.Key, now time.Time) *windowSeries {
	ws := &windowSeries{}
	w.series[k] = ws
	if w.seed == nil {
		return ws
	}
	past := w.seed(k, now.Add(-forecastWindow), now.Add(-time.Nanosecond))
	polls := w.polls[k.Account]
	for _, s := range past {
		if n := len(ws.pts); n == 0 || ws.pts[n-1].Quota != s.Quota {
			ws.pts = append(ws.pts, s)
		}
		ws.seen = s.Time
		if i, found := slices.BinarySearchFunc(polls, s.Time, time.Time.Compare); !found {
			polls = slices.Insert(polls, i, s.Time)
		}
	}
	w.polls[k.Account] = polls
	return ws
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
	from := now.Add(-forecastWindow)
	for a, ts := range w.polls {
		i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(from) })
		if i > 0 {
			w.polls[a] = append(ts[:0:0], ts[i:]...)
		}
	}
	for k, ws := range w.series {
		if ws.seen.Before(from) || !keep(k) {
			delete(w.series, k)
			continue
		}
		i := sort.Search(len(ws.pts), func(i int) bool { return ws.pts[i].Time.After(from) })
		if i > 1 {
			ws.pts = append(ws.pts[:0:0], ws.pts[i-1:]...)
		}
	}
}

// samples returns the samples of k as observed at each poll of the last
// day, oldest first, and whether the window keeps k at all.
func (w *window) samples(k quota.Key, now time.Time) ([]quota.Sample, bool) {
	ws := w.series[k]
	if ws == nil {
		return nil, false
	}
	polls := w.polls[k.Account]
	if len(ws.pts) == 0 || len(polls) == 0 || flatUsage(ws.pts) {
		// Usage did not change in the window: the slope is 0 whatever the
		// samples, which is what "no samples" yields too, without building
		// one sample per poll for every quiet series.
		return nil, true
	}
	from := now.Add(-forecastWindow)
	start := sort.Search(len(polls), func(i int) bool { return !polls[i].Before(from) })
	out := make([]quota.Sample, 0, len(polls)-start)
	j := 0
	for _, t := range polls[start:] {
		for j+1 < len(ws.pts) && !ws.pts[j+1].Time.After(t) {
			j++
		}
		if ws.pts[j].Time.After(t) || t.After(ws.seen) {
			continue // not observed at this poll
		}
		out = append(out, quota.Sample{Time: t, Quota: ws.pts[j].Quota})
	}
	return out, true
}

// flatUsage reports whether usage is the same at every change point.
func flatUsage(pts []quota.Sample) bool {
	for _, p := range pts[1:] {
		if p.Usage != pts[0].Usage {
			return false
		}
	}
	return true
}
