package watcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

// benchRules are 20 rules of the kinds operators write: thresholds on every
// resource, a few limited to project globs, two forecasts, none firing.
func benchRules() string {
	var b strings.Builder
	resources := []string{quota.DiskSpace, quota.VM, quota.CPU, quota.RAM, quota.Disk, quota.FloatingIP, quota.PrivateNetwork}
	for i := range 16 {
		r := resources[i%len(resources)]
		fmt.Fprintf(&b, "  - name: threshold-%02d\n    resource: %s\n    when: ratio > %.2f\n", i, r, 0.97+float64(i%3)/100)
	}
	b.WriteString("  - name: project-glob-a\n    resource: pithos.diskspace\n    projects: [\"project-0*\"]\n    when: project_ratio > 0.99\n")
	b.WriteString("  - name: project-glob-b\n    resource: \"cyclades.*\"\n    projects: [\"project-1*\"]\n    when: usage > limit\n")
	b.WriteString("  - name: forecast-disk\n    resource: pithos.diskspace\n    when: days_to_full < 3\n")
	b.WriteString("  - name: forecast-ram\n    resource: cyclades.ram\n    when: days_to_full < 1 && ratio > 0.5\n")
	return b.String()
}

// benchEnv is a 10,000-project cloud and a watcher configured for it.
func benchEnv(b *testing.B) (*watcher.Watcher, *synnefosim.Server, *clock) {
	return benchEnvN(b, 10000)
}

func benchEnvN(b *testing.B, projects int) (*watcher.Watcher, *synnefosim.Server, *clock) {
	b.Helper()
	srv := synnefosim.NewServer(synnefosim.LargeScenario(projects))
	b.Cleanup(srv.Close)
	dir := b.TempDir()
	cfgText := fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: bench
      token: bench-token
  requests_per_second: 1000
store:
  path: %s
http:
  listen: ""
rules:
%s`, srv.AuthURL(), filepath.Join(dir, "q.db"), benchRules())
	cfg, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(cfgText), config.Options{})
	if err != nil {
		b.Fatal(err)
	}
	clk := newClock()
	w, err := watcher.New(context.Background(), watcher.Options{Config: cfg, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	return w, srv, clk
}

// quotasBody fetches the raw /quotas body the cycle decodes.
func quotasBody(b *testing.B, srv *synnefosim.Server) []byte {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/account/v1.0/quotas", nil)
	req.Header.Set("X-Auth-Token", "bench-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecodeQuotas10k is the yardstick: a bare encoding/json decode of
// the /quotas body of a user in 10,000 projects x 8 resources.
func BenchmarkDecodeQuotas10k(b *testing.B) {
	_, srv, _ := benchEnv(b)
	body := quotasBody(b, srv)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		var q map[string]map[string]quota.Quota
		if err := json.Unmarshal(body, &q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCycle10k is one whole steady-state cycle (poll over HTTP,
// decode, record, evaluate 20 rules, deliver) against the in-process
// simulator. It also reports the bare decode time measured the same way,
// the ratio between the two (target: at most 2), and the heap the watcher
// keeps.
func BenchmarkCycle10k(b *testing.B) { benchCycle(b, 10_000) }

// BenchmarkCycle100k is the same at 100,000 projects (800,000 series), in
// this process. With QUOTAWATCH_BENCH_PROFILE=prefix it writes heap
// profiles of the steady cycles only: prefix.cpu, prefix.allocs.base and
// prefix.allocs (compare them with pprof -base) and prefix.heap, the live
// heap after the last cycle, simulator included.
func BenchmarkCycle100k(b *testing.B) { benchCycle(b, 100_000) }

// writeProfile writes the named runtime profile to path.
func writeProfile(b *testing.B, name, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func benchCycle(b *testing.B, projects int) {
	w, srv, clk := benchEnvN(b, projects)
	ctx := context.Background()
	// The first cycle authenticates, lists project names and writes every
	// series once; steady state starts after it.
	for range 2 {
		clk.Advance(5 * time.Minute)
		if _, err := w.Cycle(ctx); err != nil {
			b.Fatal(err)
		}
	}
	body := quotasBody(b, srv)
	const decodes = 5
	start := time.Now()
	for range decodes {
		var q map[string]map[string]quota.Quota
		if err := json.Unmarshal(body, &q); err != nil {
			b.Fatal(err)
		}
	}
	decode := time.Since(start) / decodes

	prof := os.Getenv("QUOTAWATCH_BENCH_PROFILE")
	if prof != "" {
		runtime.GC()
		writeProfile(b, "allocs", prof+".allocs.base")
		f, err := os.Create(prof + ".cpu")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		clk.Advance(5 * time.Minute)
		rep, err := w.Cycle(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed() {
			b.Fatalf("cycle failed: %+v", rep.Polls)
		}
	}
	b.StopTimer()
	if prof != "" {
		pprof.StopCPUProfile()
		runtime.GC()
		writeProfile(b, "allocs", prof+".allocs")
		writeProfile(b, "heap", prof+".heap")
	}
	perCycle := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(decode.Microseconds())/1000, "decode-ms")
	b.ReportMetric(float64(perCycle)/float64(decode), "x-decode")
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MB")
}

// BenchmarkRequestsPerCycle2k counts the API requests of steady-state
// cycles for one account in 2,000 projects with nothing firing, over a
// simulated day: one per cycle, plus one an hour for the project names.
func BenchmarkRequestsPerCycle2k(b *testing.B) {
	w, srv, clk := benchEnvN(b, 2000)
	ctx := context.Background()
	clk.Advance(5 * time.Minute)
	if _, err := w.Cycle(ctx); err != nil {
		b.Fatal(err)
	}
	srv.Cloud.ResetRequests()
	cycles := 0
	for b.Loop() {
		// A day of 5-minute cycles per iteration.
		for range 288 {
			clk.Advance(5 * time.Minute)
			rep, err := w.Cycle(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(rep.Events) > 0 || len(rep.Plan) > 0 {
				b.Fatalf("something fired: %+v", rep.Events)
			}
			cycles++
		}
	}
	reqs := srv.Cloud.Requests()
	names := 0
	for _, r := range reqs {
		if strings.HasSuffix(r.Path, "/projects") {
			names++
		}
	}
	b.ReportMetric(float64(len(reqs)-names)/float64(cycles), "quota-requests/cycle")
	b.ReportMetric(float64(names)/(float64(cycles)/12), "name-requests/hour")
}
