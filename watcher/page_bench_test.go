package watcher_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/watcher"
)

// The status page benchmark's store: 10,000 projects x 8 resources, polled
// every pageBenchEvery for 30 days, 5% of the series changing at each
// poll; pageBenchFiring diskspace series fill up and fire.
const (
	pageBenchProjects = 10_000
	pageBenchFiring   = 40
	pageBenchDays     = 30
)

// pageBenchEvery is the poll interval of the benchmark's history, the
// default schedule's; the QUOTAWATCH_BENCH_POLL environment variable (a
// duration such as 1h) overrides it for a quicker run.
func pageBenchEvery(b *testing.B) time.Duration {
	if v := os.Getenv("QUOTAWATCH_BENCH_POLL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	return 5 * time.Minute
}

// pageBenchStore writes the benchmark's history through Commit.
func pageBenchStore(b *testing.B, path string, start time.Time, every time.Duration) time.Time {
	b.Helper()
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	resources := []string{quota.DiskSpace, quota.VM, quota.CPU, quota.RAM, quota.Disk, quota.FloatingIP, quota.PrivateNetwork, quota.TotalRAM}
	es := make([]quota.Entry, 0, pageBenchProjects*len(resources))
	var projects []quota.Project
	for p := range pageBenchProjects {
		id := fmt.Sprintf("project-%05d", p)
		projects = append(projects, quota.Project{ID: id, Name: "Project " + strconv.Itoa(p)})
		for _, r := range resources {
			lim := int64(100)
			if quota.UnitOf(r) == quota.Bytes {
				lim = 100 * quota.GiB
			}
			use := lim / 100 * int64(10+p%60)
			if r == quota.DiskSpace && p < pageBenchFiring {
				use = lim / 100 * 80
			}
			es = append(es, quota.Entry{Project: id, Resource: r,
				Quota: quota.Quota{Usage: use, Limit: lim, ProjectUsage: use, ProjectLimit: lim}})
		}
	}
	polls := int(time.Duration(pageBenchDays) * 24 * time.Hour / every)
	at := start
	for t := range polls {
		for i := t % 20; i < len(es); i += 20 {
			es[i].Quota = es[i].Quota.Add(quota.MiB)
		}
		for p := range pageBenchFiring {
			// The firing ones grow from 80% to 97% over the month.
			e := &es[p*len(resources)]
			e.Quota = e.Quota.Add(17 * quota.GiB / int64(polls))
		}
		at = start.Add(time.Duration(t) * every)
		batch := &store.Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "bench", Time: at, Entries: es}}}
		if t == 0 {
			batch.Projects = projects
		}
		if t == polls-1 {
			for p := range pageBenchFiring {
				batch.Instances = append(batch.Instances, quota.Instance{State: quota.StateFiring, Since: at.Add(-24 * time.Hour),
					Key: quota.InstanceKey{Rule: "disk-full", Account: "bench", Project: projects[p].ID, Resource: quota.DiskSpace}})
			}
		}
		if err := st.Commit(batch); err != nil {
			b.Fatal(err)
		}
	}
	for p := range 30 { // a month of moves out of the fullest projects
		id, err := st.Intent(quota.Action{Time: start.Add(time.Duration(p) * 24 * time.Hour), Move: quota.Move{Rule: "disk-full",
			Account: "bench", Kind: quota.KindContainer, ItemID: "c" + strconv.Itoa(p), ItemName: "container-" + strconv.Itoa(p),
			From: projects[p%pageBenchFiring].ID, To: projects[pageBenchProjects-1-p].ID, Quantities: quota.Quantities{quota.DiskSpace: quota.GiB}}})
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range []quota.ActionState{quota.ActionApplied, quota.ActionVerified} {
			if err := st.SetActionState(id, s, "", start.Add(time.Duration(p)*24*time.Hour+time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	}
	return at
}

// BenchmarkStatusPage80k times the status page of a daemon whose store
// holds 80,000 series with 30 days of history (40 of them firing, each
// with a plot): ms-first-byte is from sending the request to reading the
// first byte of the answer, as a browser sees it. Writing the store is not
// timed. Run it with:
//
//	go test -run '^$' -bench StatusPage80k ./watcher/
func BenchmarkStatusPage80k(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "q.db")
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	began := time.Now()
	last := pageBenchStore(b, path, start, pageBenchEvery(b))
	b.Logf("wrote the store in %s", time.Since(began).Round(time.Second))

	cfgText := fmt.Sprintf(`cloud:
  auth_url: http://127.0.0.1:9/identity/v2.0
  accounts:
    - name: bench
      token: bench-token
store:
  path: %s
http:
  listen: ""
rules:
  - name: disk-full
    resource: pithos.diskspace
    when: ratio > 0.95
%s`, path, benchRules())
	cfg, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(cfgText), config.Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := func() time.Time { return last.Add(time.Minute) }
	w, err := watcher.New(context.Background(), watcher.Options{Config: cfg, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	srv := httptest.NewServer(w.Handler(nil))
	b.Cleanup(srv.Close)

	get := func() (first, total time.Duration, n int64) {
		t0 := time.Now()
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var one [1]byte
		if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
			b.Fatal(err)
		}
		first = time.Since(t0)
		n, err = io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return first, time.Since(t0), n + 1
	}
	get() // the first request opens the store and loads its cache
	var first, total time.Duration
	var size int64
	for b.Loop() {
		f, t, n := get()
		first += f
		total += t
		size = n
	}
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "ms-first-byte")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-page")
	b.ReportMetric(float64(size)/1024, "page-KiB")
}
