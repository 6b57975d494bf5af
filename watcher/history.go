package watcher

import (
	"sort"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// forecastWindow is how much history the forecast variables look at.
const forecastWindow = 24 * time.Hour

// window keeps the last day of every series in memory for the forecast
// variables. Series are step functions, so it stores only the points where
// a series changed plus, per account, the times of its polls; the samples
// "as observed" are rebuilt from the two on demand. That keeps memory at a
// few words per series in steady state instead of one sample per poll.
type window struct {
	polls   map[string][]time.Time       // account → poll times, oldest first
	changes map[quota.Key][]quota.Sample // series → change points, oldest first
}

func newWindow() *window {
	return &window{polls: map[string][]time.Time{}, changes: map[quota.Key][]quota.Sample{}}
}

// add records one poll of an account.
func (w *window) add(s *quota.Snapshot) {
	w.polls[s.Account] = append(w.polls[s.Account], s.Time)
	for i := range s.Entries {
		e := &s.Entries[i]
		k := quota.Key{Account: s.Account, Project: e.Project, Resource: e.Resource}
		pts := w.changes[k]
		if n := len(pts); n > 0 && pts[n-1].Quota == e.Quota {
			continue
		}
		w.changes[k] = append(pts, quota.Sample{Time: s.Time, Quota: e.Quota})
	}
}

// trim forgets what is older than the window, keeping for each series the
// change in force at the window's start.
func (w *window) trim(now time.Time) {
	from := now.Add(-forecastWindow)
	for a, ts := range w.polls {
		i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(from) })
		if i > 0 {
			w.polls[a] = append(ts[:0:0], ts[i:]...)
		}
	}
	for k, pts := range w.changes {
		// Keep the last point at or before from, and everything after.
		i := sort.Search(len(pts), func(i int) bool { return pts[i].Time.After(from) })
		if i > 1 {
			w.changes[k] = append(pts[:0:0], pts[i-1:]...)
		}
	}
}

// forget drops series that were not seen in the latest poll of their
// account, so vanished projects do not keep memory.
func (w *window) forget(keep func(quota.Key) bool) {
	for k := range w.changes {
		if !keep(k) {
			delete(w.changes, k)
		}
	}
}

// samples returns the samples of k as observed at each poll of the last
// day, oldest first.
func (w *window) samples(k quota.Key) []quota.Sample {
	pts := w.changes[k]
	polls := w.polls[k.Account]
	if len(pts) == 0 || len(polls) == 0 {
		return nil
	}
	if flatUsage(pts) {
		// Usage did not change in the window: the slope is 0 whatever the
		// samples, which is what "no samples" yields too, without building
		// one sample per poll for every quiet series.
		return nil
	}
	out := make([]quota.Sample, 0, len(polls))
	j := 0
	for _, t := range polls {
		for j+1 < len(pts) && !pts[j+1].Time.After(t) {
			j++
		}
		if pts[j].Time.After(t) {
			continue // not yet observed at this poll
		}
		out = append(out, quota.Sample{Time: t, Quota: pts[j].Quota})
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
