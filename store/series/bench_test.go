package series

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// Workload W: 10,000 series, 8,640 polls at 5 minutes
// from 2026-01-01T00:00:00Z. Every value (usage, limit, project_usage,
// project_limit) starts at 1_000_000*(s+1), pending values are 0; at poll
// t >= 1 series s changes iff (s*7919 + t*104729) % 20 == 0, by
// ((s*31 + t*17) % 1000) * 1024 bytes of usage (and so of project usage).
const (
	wSeries = 10_000
	wPolls  = 8_640
)

func workloadEntries() []quota.Entry {
	es := make([]quota.Entry, wSeries)
	for s := range es {
		v := int64(1_000_000 * (s + 1))
		es[s] = quota.Entry{Project: fmt.Sprintf("project-%04d", s/10), Resource: fmt.Sprintf("resource-%d", s%10),
			Quota: quota.Quota{Usage: v, Limit: v, ProjectUsage: v, ProjectLimit: v}}
	}
	return es
}

func workloadStep(es []quota.Entry, t int) {
	for s := range es {
		if (s*7919+t*104729)%20 == 0 {
			es[s].Quota = es[s].Quota.Add(int64((s*31+t*17)%1000) * 1024)
		}
	}
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	require.NoError(b, err)
	return fi.Size()
}

// BenchmarkWorkloadW writes workload W once, a transaction per poll as
// the store commits it (that part is not timed), then times Series and
// Changes queries of one series over the 30 days. It reports the file
// size per sample as written and after compaction, and the query times.
// Run it with:
//
//	go test -run '^$' -bench WorkloadW ./store/series/
func BenchmarkWorkloadW(b *testing.B) { benchWorkload(b, workloadStep) }

// splitmix64 is the finaliser of SplitMix64.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// workloadPrimeStep is workload W' (W's rates without its regularity): at
// poll t >= 1, with h = splitmix64(s<<32 | t), series s changes iff
// h % 20 == 0, by ((h>>32) % 1000) * 1024 bytes of usage (and so of
// project usage). Start values, polls and limits are W's.
func workloadPrimeStep(es []quota.Entry, t int) {
	for s := range es {
		if h := splitmix64(uint64(s)<<32 | uint64(t)); h%20 == 0 {
			es[s].Quota = es[s].Quota.Add(int64((h>>32)%1000) * 1024)
		}
	}
}

// BenchmarkWorkloadWPrime is BenchmarkWorkloadW on workload W'.
func BenchmarkWorkloadWPrime(b *testing.B) { benchWorkload(b, workloadPrimeStep) }

// benchWorkload writes a workload of wSeries series and wPolls polls,
// changed by step, then queries one series; see BenchmarkWorkloadW.
func benchWorkload(b *testing.B, step func(es []quota.Entry, t int)) {
	dir := b.TempDir()
	path := filepath.Join(dir, "w.db")
	st, err := openTest(path, false, true)
	require.NoError(b, err)
	defer st.close()
	es := workloadEntries()
	began := time.Now()
	for t := range wPolls {
		if t > 0 {
			step(es, t)
		}
		at := start.Add(time.Duration(t) * 5 * time.Minute)
		require.NoError(b, st.commit(at, quota.Snapshot{Account: "w", Time: at, Entries: es}))
	}
	writeS := time.Since(began).Seconds()
	require.NoError(b, st.release())
	samples := float64(wSeries * wPolls)
	live := fileSize(b, path)
	compacted := filepath.Join(dir, "compact.db")
	require.NoError(b, st.compact(compacted))
	cs := fileSize(b, compacted)

	k := quota.Key{Account: "w", Project: "project-0123", Resource: "resource-4"}
	from, to := start, start.Add(30*24*time.Hour)
	got, err := st.series(k, from, to)
	require.NoError(b, err)
	require.Len(b, got, wPolls)
	require.Equal(b, es[1234].Quota, got[len(got)-1].Quota)

	var nSeries, nChanges int
	var tSeries, tChanges time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := st.series(k, from, to); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := st.changes(k, from, to); err != nil {
			b.Fatal(err)
		}
		tSeries += t1.Sub(t0)
		tChanges += time.Since(t1)
		nSeries++
		nChanges++
	}
	// A command opens the store, loads the head and queries: the head of
	// every series (Load, as `status` does), or of the series it reads
	// (LoadSeries).
	require.NoError(b, st.release())
	const opens = 5
	openQuery := func(load func(tx *bbolt.Tx) (*Engine, error)) float64 {
		t0 := time.Now()
		for range opens {
			db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
			require.NoError(b, err)
			require.NoError(b, db.View(func(tx *bbolt.Tx) error {
				e, err := load(tx)
				if err != nil {
					return err
				}
				got, err := e.Series(tx, k, from, to)
				if len(got) != wPolls {
					b.Fatalf("%d samples", len(got))
				}
				return err
			}))
			require.NoError(b, db.Close())
		}
		return float64(time.Since(t0).Microseconds()) / 1000 / opens
	}
	b.ReportMetric(openQuery(func(tx *bbolt.Tx) (*Engine, error) { return LoadSeries(tx, k) }), "open-query-ms")
	b.ReportMetric(openQuery(func(tx *bbolt.Tx) (*Engine, error) { return Load(tx, nil) }), "open-all-query-ms")
	b.ReportMetric(float64(live)/samples, "bytes/sample")
	b.ReportMetric(float64(cs)/samples, "bytes/sample-compacted")
	b.ReportMetric(float64(tSeries.Microseconds())/1000/float64(nSeries), "query-ms")
	b.ReportMetric(float64(tChanges.Microseconds())/1000/float64(nChanges), "changes-ms")
	b.ReportMetric(writeS, "write-s")
}

// BenchmarkAppendCycle80k times one commit of a poll of 80,000 series in
// which 5% changed. Setup runs a day of such cycles at 5 minutes and
// reports the heap the store's cache holds at the end of it (cache-MB) and
// the time of the commit that then folds the day into chunks (fold-ms);
// the timed cycles follow at one minute, so none of them folds.
func BenchmarkAppendCycle80k(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			const n = 80_000
			st, err := openTest(filepath.Join(b.TempDir(), "c.db"), false, !sync)
			require.NoError(b, err)
			defer st.close()
			es := make([]quota.Entry, n)
			for i := range es {
				v := int64(i+1) << 20
				es[i] = quota.Entry{Project: fmt.Sprintf("project-%05d", i/8), Resource: fmt.Sprintf("resource-%d", i%8),
					Quota: quota.Quota{Usage: v, Limit: 4 * v, ProjectUsage: 2 * v, ProjectLimit: 8 * v}}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			at := start
			cycle := 0
			commit := func(step time.Duration) {
				cycle++
				for i := cycle % 20; i < n; i += 20 {
					es[i].Quota = es[i].Quota.Add(4096)
				}
				at = at.Add(step)
				if err := st.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}); err != nil {
					b.Fatal(err)
				}
			}
			for range 287 { // up to 23:55 of the first day
				commit(5 * time.Minute)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			t0 := time.Now()
			commit(5 * time.Minute) // the first poll of the next day folds
			fold := time.Since(t0)
			b.ReportAllocs()
			for b.Loop() {
				commit(time.Minute)
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "cache-MB")
			b.ReportMetric(float64(fold.Microseconds())/1000, "fold-ms")
		})
	}
}

// BenchmarkHead80k measures the head cache of 80,000 series at the end of
// a day of 5-minute cycles in which 5% of the series changed each time,
// with the file released as between cycles: head-MB is the heap in use
// that closing the store then frees (after a GC each side), head-exact-MB
// the cache's own accounting. It times opening the store again, which
// rebuilds the cache from the checkpoint and the day's open-block log.
func BenchmarkHead80k(b *testing.B) {
	const n = 80_000
	path := filepath.Join(b.TempDir(), "h.db")
	es := make([]quota.Entry, n)
	for i := range es {
		v := int64(i+1) << 20
		es[i] = quota.Entry{Project: fmt.Sprintf("project-%05d", i/8), Resource: fmt.Sprintf("resource-%d", i%8),
			Quota: quota.Quota{Usage: v, Limit: 4 * v, ProjectUsage: 2 * v, ProjectLimit: 8 * v}}
	}
	st, err := openTest(path, false, true)
	require.NoError(b, err)
	at := start.Add(time.Minute)
	for cycle := range 288 { // 00:01 to 23:56: the whole day is in the log
		for i := cycle % 20; i < n; i += 20 {
			es[i].Quota = es[i].Quota.Add(4096)
		}
		require.NoError(b, st.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}))
		require.NoError(b, st.release())
		at = at.Add(5 * time.Minute)
	}
	exact := float64(st.e.MemBytes()) / 1e6
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	require.NoError(b, st.close())
	runtime.GC()
	runtime.ReadMemStats(&without)
	head := float64(int64(with.HeapInuse)-int64(without.HeapInuse)) / 1e6
	runtime.KeepAlive(es) // not freed between the two readings
	// What seeding the forecast window at startup does: the last day of
	// many series, all of it in the open block's log.
	st, err = openTest(path, true, false)
	require.NoError(b, err)
	t0 := time.Now()
	const queries = 2000
	for i := range queries {
		e := es[i*(n/queries)]
		got, err := st.series(quota.Key{Account: "a", Project: e.Project, Resource: e.Resource}, start, at)
		require.NoError(b, err)
		require.Len(b, got, 288)
		require.Equal(b, e.Quota, got[287].Quota)
	}
	query := time.Since(t0)
	require.NoError(b, st.close())
	for b.Loop() {
		st, err := openTest(path, false, true)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(head, "head-MB")
	b.ReportMetric(exact, "head-exact-MB")
	b.ReportMetric(float64(query.Microseconds())/queries, "day-query-us")
}
