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
	k := quota.Key{Account: "a", Project: "p", Resource: quota.DiskSpace}
	usages := []int64{10, 10, 20, 20, 20, 35}
	for i, u := range usages {
		w.add(&quota.Snapshot{Account: "a", Time: t0.Add(time.Duration(i) * 5 * time.Minute), Entries: []quota.Entry{
			{Project: "p", Resource: quota.DiskSpace, Quota: quota.Quota{Usage: u, Limit: 100}},
		}})
	}
	require.Len(t, w.changes[k], 3, "only changes are kept")
	got := w.samples(k)
	require.Len(t, got, len(usages))
	for i, s := range got {
		require.Equal(t, usages[i], s.Usage)
		require.Equal(t, t0.Add(time.Duration(i)*5*time.Minute), s.Time)
	}

	// Past the window, old polls and changes go, keeping the value in force.
	w.trim(t0.Add(forecastWindow + 12*time.Minute))
	got = w.samples(k)
	require.Len(t, got, 3)
	require.Equal(t, []int64{20, 20, 35}, []int64{got[0].Usage, got[1].Usage, got[2].Usage})

	// A series whose usage never changed needs no samples: its slope is 0.
	flat := quota.Key{Account: "a", Project: "q", Resource: quota.DiskSpace}
	for i := range 4 {
		w.add(&quota.Snapshot{Account: "a", Time: t0.Add(forecastWindow + time.Duration(15+i)*time.Minute), Entries: []quota.Entry{
			{Project: "q", Resource: quota.DiskSpace, Quota: quota.Quota{Usage: 5, Limit: 100 + int64(i)}},
		}})
	}
	require.Nil(t, w.samples(flat))

	w.forget(func(key quota.Key) bool { return key == flat })
	require.Nil(t, w.samples(k))
}
