package watcher

import (
	"sort"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// forecastWindow is how much history the forecast variables look at.
const forecastWindow = 24 * time.Hour

// trimEvery is how often the window drops what fell out of it; between
// trims it holds at most this much more than a day.
const trimEvery = time.Hour

// window keeps the last day of every series in memory for the forecast
// variables. Series are step functions, so it stores only the points where
// a series changed plus, per account, the times of its polls; the samples
// "as observed" are rebuilt from the two on demand. That keeps memory at a
// few words per series in steady state instead of one sample per poll.
type window struct {
	polls   map[string][]time.Time // account → poll times, oldest first
	series  map[quota.Key]*windowSeries
	trimmed time.Time
}

type windowSeries struct {
	pts  []quota.Sample // change points, oldest first
	seen time.Time      // last poll that had the series
}

func newWindow() *window {
	return &window{polls: map[string][]time.Time{}, series: map[quota.Key]*windowSeries{}}
}

// add records one poll of an account.
func (w *window) add(s *quota.Snapshot) {
	w.polls[s.Account] = append(w.polls[s.Account], s.Time)
	for i := range s.Entries {
		e := &s.Entries[i]
		k := quota.Key{Account: s.Account, Project: e.Project, Resource: e.Resource}
		ws := w.series[k]
		if ws == nil {
			ws = &windowSeries{}
			w.series[k] = ws
		}
		ws.seen = s.Time
		if n := len(ws.pts); n > 0 && ws.pts[n-1].Quota == e.Quota {
			continue
		}
		ws.pts = append(ws.pts, quota.Sample{Time: s.Time, Quota: e.Quota})
	}
}

// trim forgets, once an hour, what is older than the window: old polls, old
// change points (keeping for each series the one in force at the window's
// start) and series not seen for a whole window (a project left).
func (w *window) trim(now time.Time) {
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
		if ws.seen.Before(from) {
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
// day, oldest first.
func (w *window) samples(k quota.Key, now time.Time) []quota.Sample {
	ws := w.series[k]
	polls := w.polls[k.Account]
	if ws == nil || len(ws.pts) == 0 || len(polls) == 0 {
		return nil
	}
	if flatUsage(ws.pts) {
		// Usage did not change in the window: the slope is 0 whatever the
		// samples, which is what "no samples" yields too, without building
		// one sample per poll for every quiet series.
		return nil
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
	return out
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
