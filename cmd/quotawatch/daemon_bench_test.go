package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/synnefosim"
)

// daemonBenchRules are 20 rules of the kinds operators write: thresholds
// on every resource, a few limited to project globs, two forecasts.
func daemonBenchRules() string {
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

// sixInts is the bare decode's value: the six integers of a quota.
type sixInts struct {
	Usage          int64 `json:"usage"`
	Limit          int64 `json:"limit"`
	Pending        int64 `json:"pending"`
	ProjectUsage   int64 `json:"project_usage"`
	ProjectLimit   int64 `json:"project_limit"`
	ProjectPending int64 `json:"project_pending"`
}

var (
	reServing  = regexp.MustCompile(`msg="serving http" addr=(\S+)`)
	reCycleSum = regexp.MustCompile(`(?m)^quotawatch_cycle_duration_seconds_sum (\S+)$`)
	reCycleN   = regexp.MustCompile(`(?m)^quotawatch_cycle_duration_seconds_count (\S+)$`)
)

// benchDaemonCycle runs the daemon as its own process (the test binary
// running the command line, with the daemon's own memory settings) against
// a simulated cloud of projects x 8 resources, every interval. Between two
// cycles it grows 40% of the containers, so that 5% of the series change
// at each cycle, and times a bare encoding/json decode of the same /quotas
// body in this process (fetched before the daemon polls it). Each
// iteration of the benchmark is one cycle: its
// time is what the daemon's quotawatch_cycle_duration_seconds recorded,
// and its resident memory is read once the daemon logged that it handed
// the cycle's garbage back. The peak is the process's whole life; the
// cycle peak that of the timed, steady cycles only.
func benchDaemonCycle(b *testing.B, projects int, interval time.Duration) {
	srv := synnefosim.NewServer(synnefosim.LargeScenario(projects))
	defer srv.Close()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: bench
      token: bench-token
  requests_per_second: 1000
schedule: "@every %s"
store:
  path: %s
http:
  listen: 127.0.0.1:0
rules:
%s`, srv.AuthURL(), interval, filepath.Join(dir, "q.db"), daemonBenchRules())), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), daemonEnv+"=1",
		daemonEnv+"_ARGS="+strings.Join([]string{"run", "--config", cfg, "--log-level", "debug"}, "\n"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	addr := make(chan string, 1)
	released := make(chan struct{}, 16)
	// QUOTAWATCH_BENCH_DAEMON_LOG=path keeps what the daemon wrote to
	// stderr, with GODEBUG=gctrace=1 its collections.
	var keep io.Writer = io.Discard
	if p := os.Getenv("QUOTAWATCH_BENCH_DAEMON_LOG"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		keep = f
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(keep, line)
			if m := reServing.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			if strings.Contains(line, `msg="memory released"`) {
				released <- struct{}{}
			}
		}
	}()
	wait := func() {
		select {
		case <-released:
		case <-time.After(10 * time.Minute):
			b.Fatal("the daemon finished no cycle in 10 minutes")
		}
	}
	var metricsURL string
	select {
	case a := <-addr:
		metricsURL = "http://" + a + "/metrics"
	case <-time.After(5 * time.Minute):
		b.Fatal("the daemon did not serve http")
	}
	// cycleTotal reads the daemon's cycle-duration histogram.
	cycleTotal := func() (sum float64, n int) {
		resp, err := http.Get(metricsURL)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		ms, mn := reCycleSum.FindSubmatch(body), reCycleN.FindSubmatch(body)
		if ms == nil || mn == nil {
			b.Fatalf("no cycle duration in the metrics:\n%s", body)
		}
		sum, _ = strconv.ParseFloat(string(ms[1]), 64)
		n, _ = strconv.Atoi(string(mn[1]))
		return sum, n
	}
	const user = "00000000-0000-4000-8000-000000000000"
	round := 0
	churn := func() {
		// 40% of the containers: 40% of the diskspace series, 5% of all.
		round++
		for i := range projects {
			if (i+round)%5 < 2 {
				if err := srv.Cloud.GrowContainer(user, fmt.Sprintf("container-%05d", i), 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	var gets []float64 // how long the simulator took to build and send a body
	decode := func() time.Duration {
		asked := time.Now()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/account/v1.0/quotas", nil)
		req.Header.Set("X-Auth-Token", "bench-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		gets = append(gets, float64(time.Since(asked).Microseconds())/1000)
		best := time.Duration(1<<63 - 1)
		for range 3 {
			began := time.Now()
			var q map[string]map[string]sixInts
			if err := json.Unmarshal(body, &q); err != nil {
				b.Fatal(err)
			}
			best = min(best, time.Since(began))
		}
		return best
	}
	// The first cycle authenticates, lists project names and writes every
	// series; steady state starts after the second.
	for i := range 2 {
		wait()
		if i == 0 {
			_, h, _, _ := procMemory(b, cmd.Process.Pid)
			b.Logf("peak of the first cycle %.0f MB", h)
		}
		churn()
	}
	// The simulator builds a body once the containers grew, when first
	// asked for it: the bare decode asks right after the growth, so that
	// the building is the simulator's time, not the daemon's cycle, and the
	// body decoded is the one the next cycle polls.
	d := decode().Seconds()
	lastSum, lastN := cycleTotal()
	// The peak of the first cycles (every series written, every name
	// listed) is kept apart from that of the steady cycles: resetting the
	// kernel's high-water mark needs Linux 4.0, else the steady peak is
	// the whole life's.
	_, warmHWM, _, _ := procMemory(b, cmd.Process.Pid)
	b.Logf("peak of the first two cycles %.0f MB", warmHWM)
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", cmd.Process.Pid), []byte("5"), 0)
	var cycles, decodes, ratios, rss []float64
	for b.Loop() {
		wait()
		sum, n := cycleTotal()
		if n != lastN+1 {
			b.Fatalf("%d cycles ran between two releases", n-lastN)
		}
		cycle := sum - lastSum
		lastSum, lastN = sum, n
		r, h, anon, file := procMemory(b, cmd.Process.Pid)
		b.Logf("cycle %.0f ms, decode %.0f ms, rss %.0f MB (anon %.0f, file %.0f), peak so far %.0f MB", cycle*1000, d*1000, r, anon, file, h)
		cycles, decodes, ratios, rss = append(cycles, cycle*1000), append(decodes, d*1000), append(ratios, cycle/d), append(rss, r)
		churn()
		d = decode().Seconds()
	}
	_, hwm, _, _ := procMemory(b, cmd.Process.Pid)
	med := func(xs []float64) float64 {
		s := slices.Sorted(slices.Values(xs))
		return s[len(s)/2]
	}
	b.ReportMetric(med(cycles), "cycle-ms")
	b.ReportMetric(med(decodes), "decode-ms")
	b.ReportMetric(med(gets), "sim-get-ms")
	b.ReportMetric(med(ratios), "x-decode")
	b.ReportMetric(slices.Min(ratios), "x-decode-min")
	b.ReportMetric(slices.Max(ratios), "x-decode-max")
	b.ReportMetric(med(rss), "rss-MB")
	b.ReportMetric(max(hwm, warmHWM), "peak-rss-MB")
	b.ReportMetric(hwm, "cycle-peak-rss-MB")
}

// BenchmarkDaemonCycle10k is the daemon's steady-state cycle at 10,000
// projects x 8 resources (80,000 series), 5% of them changing per cycle.
// Each iteration is a cycle; run it with -benchtime=5x or more:
//
//	go test -run '^$' -bench DaemonCycle10k -benchtime 7x ./cmd/quotawatch/
func BenchmarkDaemonCycle10k(b *testing.B) { benchDaemonCycle(b, 10_000, 3*time.Second) }

// BenchmarkDaemonCycle100k is the same at 100,000 projects (800,000
// series), every 30 seconds: a cycle, the bare decodes and the growth of
// the containers between two cycles take a loaded machine over 20.
func BenchmarkDaemonCycle100k(b *testing.B) { benchDaemonCycle(b, 100_000, 30*time.Second) }
