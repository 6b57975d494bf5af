package series

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// BenchmarkWeekRewrite80k writes a week of 5-minute cycles of 80,000
// series in which 5% changed (as BenchmarkAppendCycle80k), without fsync,
// then times the cycles that follow, which rewrite that week as week
// packs a step at a time: rewrite-ms is the slowest of those commits,
// rewrite-median-ms their median, rewrite-cycles how many there were,
// rewrite-total-s all of it. The timed loop is cycles after it, for
// comparison.
func BenchmarkWeekRewrite80k(b *testing.B) {
	const n = 80_000
	st, err := openTest(filepath.Join(b.TempDir(), "w.db"), false, true)
	require.NoError(b, err)
	defer st.close()
	es := make([]quota.Entry, n)
	for i := range es {
		v := int64(i+1) << 20
		es[i] = quota.Entry{Project: fmt.Sprintf("project-%05d", i/8), Resource: fmt.Sprintf("resource-%d", i%8),
			Quota: quota.Quota{Usage: v, Limit: 4 * v, ProjectUsage: 2 * v, ProjectLimit: 8 * v}}
	}
	at := start.Add(-5 * time.Minute)
	cycle := 0
	commit := func(step time.Duration) time.Duration {
		cycle++
		for i := cycle % 20; i < n; i += 20 {
			es[i].Quota = es[i].Quota.Add(4096)
		}
		at = at.Add(step)
		t0 := time.Now()
		if err := st.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for range weekDays*288 + 1 { // the first poll of the eighth day folds the seventh
		commit(5 * time.Minute)
	}
	dayPacks := func() int {
		var k int
		require.NoError(b, st.view(func(tx *bbolt.Tx, _ *Engine) error {
			k = tx.Bucket(bChunks).Stats().KeyN
			return nil
		}))
		return k
	}
	var times []time.Duration
	var total time.Duration
	for dayPacks() > 0 {
		d := commit(5 * time.Minute)
		times = append(times, d)
		total += d
		if len(times) > 10_000 {
			b.Fatal("the rewrite does not end")
		}
	}
	slices.Sort(times)
	for b.Loop() {
		commit(time.Minute)
	}
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "rewrite-ms")
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "rewrite-median-ms")
	b.ReportMetric(float64(len(times)), "rewrite-cycles")
	b.ReportMetric(total.Seconds(), "rewrite-total-s")
}
