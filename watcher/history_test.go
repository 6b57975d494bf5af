package watcher

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestWindowSamplesAsObserved(t *testing.T) {
	w := newWindow()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 5 * time.Minute) }
	k := quota.Key{Account: "a", Project: "p", Resource: quota.DiskSpace}
	usages := []int64{10, 10, 20, 20, 20, 35}
	for i, u := range usages {
		w.add(&quota.Snapshot{Account: "a", Time: at(i), Entries: []quota.Entry{
			{Project: "p", Resource: quota.DiskSpace, Quota: quota.Quota{Usage: u, Limit: 100}},
		}})
	}
	require.Len(t, w.series[k].pts, 3, "only changes are kept")
	got := w.samples(k, at(5))
	require.Len(t, got, len(usages))
	for i, s := range got {
		require.Equal(t, usages[i], s.Usage)
		require.Equal(t, at(i), s.Time)
	}

	// Past the window, old polls and changes go, keeping the value in force.
	now := t0.Add(forecastWindow + 12*time.Minute)
	w.trim(now)
	got = w.samples(k, now)
	require.Len(t, got, 3)
	require.Equal(t, []int64{20, 20, 35}, []int64{got[0].Usage, got[1].Usage, got[2].Usage})
	require.Len(t, w.series[k].pts, 2)

	// A series whose usage never changed needs no samples: its slope is 0.
	flat := quota.Key{Account: "a", Project: "q", Resource: quota.DiskSpace}
	for i := range 4 {
		w.add(&quota.Snapshot{Account: "a", Time: now.Add(time.Duration(i) * time.Minute), Entries: []quota.Entry{
			{Project: "q", Resource: quota.DiskSpace, Quota: quota.Quota{Usage: 5, Limit: 100 + int64(i)}},
		}})
	}
	require.Nil(t, w.samples(flat, now))

	// A series gone for a whole window is forgotten at the next trim.
	later := now.Add(forecastWindow + 2*time.Hour)
	w.trim(later)
	require.NotContains(t, w.series, k)
	require.NotContains(t, w.series, flat)
}
