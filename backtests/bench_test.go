package backtests

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// benchRulesFile holds the 20 rules the rule and backtest benchmarks share.
const benchRulesFile = "../rules/testdata/bench-rules.yaml"

var benchResources = []string{
	quota.DiskSpace, quota.VM, quota.CPU, quota.RAM, quota.Disk,
	quota.FloatingIP, quota.PrivateNetwork, quota.PendingApp,
}

const (
	benchProjects = 10_000 // x 8 resources: 80,000 series
	benchDays     = 30
)

// benchEvery is the poll interval of the benchmark's history, the default
// schedule's; QUOTAWATCH_BENCH_POLL (a duration such as 1h) overrides it
// for a quicker run.
func benchEvery(b *testing.B) time.Duration {
	if v := os.Getenv("QUOTAWATCH_BENCH_POLL"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err)
		return d
	}
	return 5 * time.Minute
}

var benchStart = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

// benchStore writes 30 days of 80,000 series through Commit, about 1% of
// them above their thresholds as in the rule benchmark. 5% of the series
// change at each poll: with spread, every series once every 20 polls (as
// the store benchmarks do); otherwise every series of the same 5% of the
// projects at every poll (the busy projects) while the rest stay put. The store is kept in the temporary
// directory, keyed by its parameters, for the next run.
func benchStore(b *testing.B, every time.Duration, spread bool) (string, time.Time) {
	b.Helper()
	polls := int(time.Duration(benchDays) * 24 * time.Hour / every)
	last := benchStart.Add(time.Duration(polls-1) * every)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("quotawatch-backtest-bench-v2-%d-%s-%v.db", benchProjects, every, spread))
	if _, err := os.Stat(path); err == nil {
		return path, last
	}
	tmp := path + ".part"
	_ = os.Remove(tmp)
	st, err := store.Open(tmp, store.Options{NoSync: true})
	require.NoError(b, err)
	es := make([]quota.Entry, 0, benchProjects*len(benchResources))
	var projects []quota.Project
	for p := range benchProjects {
		id := fmt.Sprintf("p-%05d", p)
		name := id
		switch p % 10 {
		case 1:
			name = fmt.Sprintf("course-%d", p)
		case 2:
			name = fmt.Sprintf("lab-%d", p)
		}
		projects = append(projects, quota.Project{ID: id, Name: name, System: p%50 == 0})
		for ri, r := range benchResources {
			limit := int64(100)
			if quota.UnitOf(r) == quota.Bytes {
				limit = 100 * quota.GiB
			}
			usage := limit * int64((p*7+ri*13)%70) / 100
			if (p+ri)%100 == 0 {
				usage = limit * 99 / 100
			}
			es = append(es, quota.Entry{Project: id, Resource: r, Quota: quota.Quota{
				Usage: usage, Limit: limit, ProjectUsage: usage, ProjectLimit: limit}})
		}
	}
	began := time.Now()
	for t := range polls {
		if t > 0 {
			for i := range es {
				if (spread && (i+t)%20 == 0) || (!spread && (i/len(benchResources))%20 == 0) {
					// Up and down, so nothing fills for good.
					d := int64(1)
					if quota.UnitOf(es[i].Resource) == quota.Bytes {
						d = quota.MiB
					}
					if (t/20)%2 == 1 {
						d = -d
					}
					es[i].Quota = es[i].Quota.Add(d)
				}
			}
		}
		at := benchStart.Add(time.Duration(t) * every)
		batch := &store.Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "bench", Time: at, Entries: es}}}
		if t == 0 {
			batch.Projects = projects
		}
		require.NoError(b, st.Commit(batch))
	}
	require.NoError(b, st.Close())
	require.NoError(b, os.Rename(tmp, path))
	_ = os.Remove(tmp + ".lock")
	b.Logf("wrote %s in %s", path, time.Since(began).Round(time.Second))
	return path, last
}

// BenchmarkBacktest30d80k replays 30 days of 80,000 series (8,640 polls
// at 5 minutes) through the rule benchmark's 20 rules, reading the store
// as the command does (read-only). Writing the store is not timed (and is
// reused from the temporary directory). It reports the time per replay
// and the peak heap, sampled. Run it with:
//
//	go test -run '^$' -bench Backtest30d80k -benchtime=1x ./backtests/
func BenchmarkBacktest30d80k(b *testing.B) {
	every := benchEvery(b)
	for _, spread := range []bool{false, true} {
		name := "busy=5%"
		if spread {
			name = "spread=all"
		}
		b.Run(name, func(b *testing.B) {
			path, last := benchStore(b, every, spread)
			doc, err := os.ReadFile(benchRulesFile)
			require.NoError(b, err)
			rs, err := rules.ParseBytes(doc, rules.ParseOptions{})
			require.NoError(b, err)
			require.Len(b, rs, 20)
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						runtime.ReadMemStats(&ms)
						if ms.HeapAlloc > peak.Load() {
							peak.Store(ms.HeapAlloc)
						}
					}
				}
			}()
			var rep *Report
			cpu0 := cpuTime()
			for b.Loop() {
				st, err := store.Open(path, store.Options{ReadOnly: true})
				require.NoError(b, err)
				rep, err = Run(st, Options{Rules: rs, From: last.Add(-benchDays * 24 * time.Hour), To: last, MaxActions: 10,
					Notifiers: []string{"ops"}})
				require.NoError(b, err)
				require.NoError(b, st.Close())
			}
			cpu := cpuTime() - cpu0
			close(stop)
			wg.Wait()
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
			b.ReportMetric(float64(peak.Load())/(1<<20), "MB-heap-peak")
			b.ReportMetric(float64(rep.Cycles), "cycles")
			b.ReportMetric(float64(len(rep.Incidents)), "incidents")
			refused := 0
			for _, r := range rep.Refusals {
				refused += r.Count
			}
			b.ReportMetric(float64(refused), "refusals")
			_ = base
		})
	}
}

// cpuTime is the CPU time the process used so far: on a shared machine
// the wall time says little.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
