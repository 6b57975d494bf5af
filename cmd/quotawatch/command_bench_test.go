package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

// The commands benchmarks' store: 10,000 projects x 8 resources (80,000
// series) polled for 30 days, 5% of the series changing at each poll.
const (
	cmdBenchProjects = 10_000
	cmdBenchDays     = 30
	// cmdBenchFormat names the layout of the cached store: raise it when
	// the history is written differently.
	cmdBenchFormat = 4
)

// benchPoll is the poll interval of a benchmark's history, the default
// schedule's; the QUOTAWATCH_BENCH_POLL environment variable (a duration
// such as 1h) overrides it for a quicker run.
func benchPoll(b *testing.B) time.Duration {
	if v := os.Getenv("QUOTAWATCH_BENCH_POLL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	return 5 * time.Minute
}

// benchBinary builds quotawatch once per benchmark run.
func benchBinary(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "quotawatch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cmdBenchStore returns the benchmark's store, written once and kept in
// the temporary directory under a name that holds its parameters (writing
// it takes minutes at the default poll interval), and the time of its
// first poll.
func cmdBenchStore(b *testing.B) (string, time.Time) {
	b.Helper()
	every := benchPoll(b)
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("quotawatch-bench-store-v%d.%d-%dp-%dd-%s", store.SchemaVersion, cmdBenchFormat, cmdBenchProjects, cmdBenchDays, every))
	path := filepath.Join(dir, "q.db")
	if _, err := os.Stat(path); err == nil {
		return path, start
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	writeBenchStore(b, tmp, start, every)
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	_ = os.Remove(tmp + ".lock")
	b.Logf("wrote %s in %s", path, time.Since(began).Round(time.Second))
	return path, start
}

// writeBenchStore writes the history through Commit, as cycles do.
func writeBenchStore(b *testing.B, path string, start time.Time, every time.Duration) {
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	resources := []string{quota.DiskSpace, quota.VM, quota.CPU, quota.RAM, quota.Disk, quota.FloatingIP, quota.PrivateNetwork, quota.TotalRAM}
	es := make([]quota.Entry, 0, cmdBenchProjects*len(resources))
	var projects []quota.Project
	for p := range cmdBenchProjects {
		id := fmt.Sprintf("project-%05d", p)
		projects = append(projects, quota.Project{ID: id, Name: "Project " + strconv.Itoa(p)})
		for _, r := range resources {
			lim := int64(100)
			if quota.UnitOf(r) == quota.Bytes {
				lim = 100 * quota.GiB
			}
			use := lim / 100 * int64(10+p%60)
			es = append(es, quota.Entry{Project: id, Resource: r,
				Quota: quota.Quota{Usage: use, Limit: lim, ProjectUsage: use, ProjectLimit: lim}})
		}
	}
	polls := int(time.Duration(cmdBenchDays) * 24 * time.Hour / every)
	for t := range polls {
		for i := t % 20; i < len(es); i += 20 {
			es[i].Quota = es[i].Quota.Add(quota.MiB)
		}
		at := start.Add(time.Duration(t) * every)
		batch := &store.Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "bench", Time: at, Entries: es}}}
		if t == 0 {
			batch.Projects = projects
		}
		if err := st.Commit(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCommand times one read-only command of the built binary as a whole
// process, from its start to its exit, its output read through a pipe as a
// terminal or a pager would.
func benchCommand(b *testing.B, args ...string) {
	bin := benchBinary(b)
	path, start := cmdBenchStore(b)
	cfg := filepath.Join(b.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`cloud:
  auth_url: http://127.0.0.1:9/identity/v2.0
  accounts:
    - name: bench
      token: bench-token
store:
  path: %s
`, path)), 0o600); err != nil {
		b.Fatal(err)
	}
	// --since reaches back to the store's first poll.
	since := strconv.Itoa(int(time.Since(start)/(24*time.Hour))+1) + "d"
	args = append(args, "--config", cfg)
	for i, a := range args {
		if a == "SINCE" {
			args[i] = since
		}
	}
	run := func() {
		cmd := exec.Command(bin, args...)
		cmd.Stdout = io.Discard // a pipe
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
	}
	run() // the page cache holds the file from here on, as it does between cycles
	b.ResetTimer()
	began := time.Now()
	n := 0
	for b.Loop() {
		run()
		n++
	}
	b.ReportMetric(float64(time.Since(began).Microseconds())/1000/float64(n), "ms/command")
}

// BenchmarkStatusCommand80k times `status` on a store of 80,000 series
// with 30 days of history: the whole process (start, opening the store,
// the query, the table written to a pipe, exit), with the file in the page
// cache. Writing the store and building the binary are not timed.
func BenchmarkStatusCommand80k(b *testing.B) {
	benchCommand(b, "status")
}

// BenchmarkHistoryCommand80k times `history` of one series over the whole
// 30 days of the same store, as a whole process, with the file in the page
// cache.
func BenchmarkHistoryCommand80k(b *testing.B) {
	benchCommand(b, "history", "--project", "project-00042", "--resource", quota.DiskSpace, "--since", "SINCE")
}
