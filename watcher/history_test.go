package watcher

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func all(string, string) bool { return true }

func TestWindowSamplesAsObserved(t *testing.T) {
	w := newWindow(nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 5 * time.Minute) }
	k := quota.Key{Account: "a", Project: "p", Resource: quota.DiskSpace}
	usages := []int64{10, 10, 20, 20, 20, 35}
	for i, u := range usages {
		w.add(&quota.Snapshot{Account: "a", Time: at(i), Entries: []quota.Entry{
			{Project: "p", Resource: quota.DiskSpace, Quota: quota.Quota{Usage: u, Limit: 100}},
			{Project: "p", Resource: quota.CPU, Quota: quota.Quota{Usage: u, Limit: 100}},
		}}, func(_, r string) bool { return r == quota.DiskSpace })
	}
	require.Equal(t, 3, w.find(k).points(), "only changes are kept")
	require.Nil(t, w.find(quota.Key{Account: "a", Project: "p", Resource: quota.CPU}), "only what keep selects")
	got, ok := w.samples(k, at(5))
	require.True(t, ok)
	require.Len(t, got, len(usages))
	for i, s := range got {
		require.Equal(t, usages[i], s.Usage)
		require.Equal(t, at(i), s.Time)
	}

	// Past the window, old polls and changes go, keeping the value in force.
	now := t0.Add(forecastWindow + 12*time.Minute)
	w.trim(now, func(quota.Key) bool { return true })
	got, _ = w.samples(k, now)
	require.Len(t, got, 3)
	require.Equal(t, []int64{20, 20, 35}, []int64{got[0].Usage, got[1].Usage, got[2].Usage})
	require.Equal(t, 2, w.find(k).points())

	// A series whose usage never changed needs no samples: its slope is 0.
	flat := quota.Key{Account: "a", Project: "q", Resource: quota.DiskSpace}
	for i := range 4 {
		w.add(&quota.Snapshot{Account: "a", Time: now.Add(time.Duration(i) * time.Minute), Entries: []quota.Entry{
			{Project: "q", Resource: quota.DiskSpace, Quota: quota.Quota{Usage: 5, Limit: 100 + int64(i)}},
		}}, all)
	}
	got, ok = w.samples(flat, now)
	require.True(t, ok)
	require.Nil(t, got)

	// A series gone for a whole window is forgotten at the next trim, and
	// so is one that no rule forecasts any more.
	w.trim(now.Add(forecastWindow+2*time.Hour), func(quota.Key) bool { return true })
	require.Nil(t, w.find(k))
	_, ok = w.samples(k, now)
	require.False(t, ok)
}

func TestWindowSeedsFromTheStore(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := quota.Key{Account: "a", Project: "p", Resource: quota.DiskSpace}
	stored := []quota.Sample{
		{Time: t0, Quota: quota.Quota{Usage: 1}},
		{Time: t0.Add(5 * time.Minute), Quota: quota.Quota{Usage: 2}},
		{Time: t0.Add(10 * time.Minute), Quota: quota.Quota{Usage: 3}},
	}
	var asked []time.Time
	w := newWindow(func(key quota.Key, from, to time.Time) []quota.Sample {
		require.Equal(t, k, key)
		asked = append(asked, from, to)
		return stored
	})
	now := t0.Add(15 * time.Minute)
	w.add(&quota.Snapshot{Account: "a", Time: now, Entries: []quota.Entry{
		{Project: "p", Resource: quota.DiskSpace, Quota: quota.Quota{Usage: 4}},
	}}, all)
	require.Equal(t, []time.Time{now.Add(-forecastWindow), now.Add(-time.Nanosecond)}, asked)
	got, ok := w.samples(k, now)
	require.True(t, ok)
	require.Equal(t, []int64{1, 2, 3, 4}, []int64{got[0].Usage, got[1].Usage, got[2].Usage, got[3].Usage})
}

// Forgetting some series leaves every other one with its own points.
func TestWindowTrimKeepsTheOthersWhole(t *testing.T) {
	w := newWindow(nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(p string) quota.Key { return quota.Key{Account: "a", Project: p, Resource: quota.DiskSpace} }
	var projects []string
	for i := range 20 {
		projects = append(projects, fmt.Sprintf("p%02d", i))
	}
	for poll := range 4 {
		var es []quota.Entry
		for i, p := range projects {
			es = append(es, quota.Entry{Project: p, Resource: quota.DiskSpace,
				Quota: quota.Quota{Usage: int64(1000*i + poll), Limit: 1 << 20}})
		}
		w.add(&quota.Snapshot{Account: "a", Time: t0.Add(time.Duration(poll) * 5 * time.Minute), Entries: es}, all)
	}
	now := t0.Add(15 * time.Minute)
	gone := map[string]bool{}
	for i := 0; i < len(projects); i += 3 {
		gone[projects[i]] = true
	}
	w.trim(now.Add(trimEvery), func(k quota.Key) bool { return !gone[k.Project] })
	for i, p := range projects {
		got, ok := w.samples(key(p), now)
		if i%3 == 0 {
			require.False(t, ok, p)
			continue
		}
		require.True(t, ok, p)
		require.Len(t, got, 4, p)
		for poll, s := range got {
			require.Equal(t, int64(1000*i+poll), s.Usage, p)
			require.Equal(t, t0.Add(time.Duration(poll)*5*time.Minute), s.Time, p)
		}
	}
}
