package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quotawatch/quotawatch/synnefosim"
)

// daemonEnv makes the test binary run the command line instead of the
// tests, so that a benchmark can measure the daemon as its own process.
const daemonEnv = "QUOTAWATCH_TEST_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) == "1" {
		stop := profileDaemon()
		code := mainArgs(strings.Split(os.Getenv(daemonEnv+"_ARGS"), "\n"))
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// profileDaemon writes a CPU profile of the daemon run by a benchmark to
// QUOTAWATCH_BENCH_CPUPROFILE, from QUOTAWATCH_BENCH_CPUPROFILE_AFTER (a
// duration) on, so that the first cycles can be left out.
func profileDaemon() (stop func()) {
	path := os.Getenv("QUOTAWATCH_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	after, _ := time.ParseDuration(os.Getenv("QUOTAWATCH_BENCH_CPUPROFILE_AFTER"))
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	started := make(chan bool, 1)
	t := time.AfterFunc(after, func() { started <- pprof.StartCPUProfile(f) == nil })
	return func() {
		if !t.Stop() && <-started {
			pprof.StopCPUProfile()
		}
		_ = f.Close()
	}
}

// BenchmarkDaemonRSS80k runs the real daemon as a separate process against
// a simulated cloud of 10,000 projects x 8 resources (80,000 series), lets
// it reach steady state, and reports its resident memory.
func BenchmarkDaemonRSS80k(b *testing.B) {
	srv := synnefosim.NewServer(synnefosim.LargeScenario(10000))
	defer srv.Close()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	require := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	require(os.WriteFile(cfg, []byte(fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: bench
      token: bench-token
  requests_per_second: 1000
schedule: "@every 1s"
store:
  path: %s
http:
  listen: 127.0.0.1:0
rules:
  - name: diskspace
    resource: pithos.diskspace
    when: ratio > 0.97
  - name: forecast
    resource: pithos.diskspace
    when: days_to_full < 3
  - name: cpu
    resource: cyclades.cpu
    when: ratio > 0.97
`, srv.AuthURL(), filepath.Join(dir, "q.db"))), 0o600))
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), daemonEnv+"=1", daemonEnv+"_ARGS="+strings.Join([]string{"run", "--config", cfg, "--log-level", "debug"}, "\n"))
		stderr, err := cmd.StderrPipe()
		require(err)
		require(cmd.Start())
		// Cycles are counted from the log, so that the measurement does not
		// itself make the daemon render its metrics, and at the line the
		// memory tuner writes once it handed the cycle's garbage back.
		done := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			n := 0
			for sc.Scan() {
				if strings.Contains(sc.Text(), `msg="memory released"`) {
					if n++; n == 16 {
						close(done)
					}
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			_ = cmd.Process.Kill()
			b.Fatal("the daemon did not reach 16 cycles")
		}
		rss, hwm, anon, file := procMemory(b, cmd.Process.Pid)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		b.ReportMetric(rss, "rss-MB")
		b.ReportMetric(hwm, "peak-rss-MB")
		b.ReportMetric(anon, "anon-MB")
		b.ReportMetric(file, "file-MB")
	}
}

// procMemory reads the resident memory of a process (total, peak, anonymous
// and file-backed, such as the store's mmap), in MB.
func procMemory(b *testing.B, pid int) (rss, hwm, anon, file float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fs[1], 64)
		switch fs[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return rss, hwm, anon, file
}
