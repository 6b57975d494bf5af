package watcher_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

// notifySocket is a fake systemd notify socket that records what it gets.
type notifySocket struct {
	mu   sync.Mutex
	msgs []string
	// onReady runs when READY=1 arrives.
	onReady func()
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ns := &notifySocket{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, msg)
			f := ns.onReady
			ns.mu.Unlock()
			if strings.Contains(msg, "READY=1") && f != nil {
				f()
			}
		}
	}()
	return ns
}

func (n *notifySocket) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

func (n *notifySocket) count(s string) int {
	c := 0
	for _, m := range n.all() {
		if strings.Contains(m, s) {
			c++
		}
	}
	return c
}

// daemon runs the harness's watcher with Run in the background.
type daemon struct {
	cancel context.CancelFunc
	done   chan error
	addr   chan string
	hup    chan struct{}
}

func (h *harness) runDaemon(t *testing.T, ro watcher.RunOptions) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{cancel: cancel, done: make(chan error, 1), addr: make(chan string, 1), hup: make(chan struct{}, 1)}
	ro.Reload = d.hup
	ro.Listening = func(a string) { d.addr <- a }
	if ro.LoadConfig == nil {
		ro.LoadConfig = func() (*config.Config, error) {
			return config.Load(filepath.Join(h.dir, "config.yaml"), config.Options{})
		}
	}
	go func() { d.done <- h.w.Run(ctx, ro) }()
	t.Cleanup(func() {
		cancel()
		<-d.done
	})
	return d
}

func (d *daemon) stop(t *testing.T) error {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestRunSystemdNotifications(t *testing.T) {
	ns := newNotifySocket(t)
	h := newHarness(t, "seed.yaml", rulesSeed)
	polledBeforeReady := make(chan bool, 1)
	ns.mu.Lock()
	ns.onReady = func() {
		polled := false
		for _, r := range h.cloud.Cloud.Requests() {
			if r.Path == "/account/v1.0/quotas" {
				polled = true
			}
		}
		select {
		case polledBeforeReady <- polled:
		default:
		}
	}
	ns.mu.Unlock()
	d := h.runDaemon(t, watcher.RunOptions{Watchdog: 300 * time.Millisecond})
	select {
	case polled := <-polledBeforeReady:
		require.True(t, polled, "READY only after the first poll")
	case <-time.After(10 * time.Second):
		t.Fatal("no READY")
	}
	require.Eventually(t, func() bool { return ns.count("WATCHDOG=1") >= 2 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, d.stop(t))
	// The socket is read asynchronously: wait for the last datagram.
	require.Eventually(t, func() bool { return ns.count("STOPPING=1") == 1 }, 5*time.Second, 10*time.Millisecond)
	msgs := ns.all()
	require.Contains(t, msgs[len(msgs)-1], "STOPPING=1", "nothing after STOPPING")
	require.Equal(t, 1, ns.count("READY=1"))
}

func TestRunReload(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.999
`)
	h.serveHTTP()
	d := h.runDaemon(t, watcher.RunOptions{})
	addr := <-d.addr
	metric := func(name string) string {
		_, body := get(t, "http://"+addr+"/metrics")
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
				return l
			}
		}
		return ""
	}
	require.Eventually(t, func() bool { code, _ := get(t, "http://"+addr+"/-/ready"); return code == 200 }, 10*time.Second, 20*time.Millisecond)

	// A bad configuration is refused; the daemon keeps the running one.
	cfgPath := filepath.Join(h.dir, "config.yaml")
	good, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgPath, append(good, []byte("bogus_key: 1\n")...), 0o600))
	d.hup <- struct{}{}
	require.Eventually(t, func() bool {
		return metric("quotawatch_config_last_reload_successful") == "quotawatch_config_last_reload_successful 0"
	}, 10*time.Second, 20*time.Millisecond)
	code, _ := get(t, "http://"+addr+"/-/healthy")
	require.Equal(t, 200, code, "still running")

	// A good configuration with a lower threshold is swapped in: the
	// next cycle fires the new rule.
	newCfg := strings.Replace(string(good), "ratio > 0.999", "ratio > 0.5", 1)
	newCfg = strings.Replace(newCfg, `"@every 5m"`, `"@every 1s"`, 1)
	require.NoError(t, os.WriteFile(cfgPath, []byte(newCfg), 0o600))
	d.hup <- struct{}{}
	require.Eventually(t, func() bool {
		return metric("quotawatch_config_last_reload_successful") == "quotawatch_config_last_reload_successful 1"
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.HasPrefix(metric(`quotawatch_rule_instances{rule="nearly-full",state="firing"}`), `quotawatch_rule_instances{rule="nearly-full",state="firing"} 1`)
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, d.stop(t))
}

func TestRunMetricsAndHealth(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.serveHTTP()
	d := h.runDaemon(t, watcher.RunOptions{})
	addr := <-d.addr
	require.Eventually(t, func() bool { code, _ := get(t, "http://"+addr+"/-/ready"); return code == 200 }, 10*time.Second, 20*time.Millisecond)
	code, body := get(t, "http://"+addr+"/metrics")
	require.Equal(t, 200, code)
	for _, want := range []string{
		`quotawatch_cycles_total{result="ok"} 1`,
		`quotawatch_poll_success{account="alice"} 1`,
		`quotawatch_poll_last_success_timestamp_seconds{account="alice"} 1.7724`,
		`quotawatch_api_requests_total{code="200",method="GET",service="account"}`,
		`quotawatch_api_requests_total{code="202",method="POST",service="object-store"} 1`,
		`quotawatch_quota_usage_bytes{account="alice",project="` + alice + `",project_name="system:` + alice + `",resource="pithos.diskspace"} 2.062632878e+10`,
		`quotawatch_quota_usage{account="alice",project="` + alice + `",project_name="system:` + alice + `",resource="cyclades.vm"} 1`,
		`quotawatch_quota_ratio{account="alice",project="` + cs333 + `",project_name="CS333 lab assignments",resource="pithos.diskspace"} 0`,
		`quotawatch_rule_instances{rule="container-rebalance",state="firing"} 1`,
		`quotawatch_actions_total{kind="container",result="applied",rule="container-rebalance"} 1`,
		`quotawatch_notifications_total{notifier="ops",result="delivered"} 2`,
		`quotawatch_outbox_messages{state="pending"} 0`,
		`quotawatch_config_last_reload_successful 1`,
		`quotawatch_cycle_duration_seconds_count 1`,
	} {
		require.Contains(t, body, want)
	}
	code, body = get(t, "http://"+addr+"/")
	require.Equal(t, 200, code)
	require.Contains(t, body, "container-rebalance")
	require.Contains(t, body, "course_container")
	require.NotContains(t, body, tokenA)
	require.NoError(t, d.stop(t))
}

func TestRunStopsPromptlyDuringASlowCall(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/account/v1.0/quotas", Latency: synnefosim.Duration(time.Minute)}})
	d := h.runDaemon(t, watcher.RunOptions{})
	require.Eventually(t, func() bool {
		for _, r := range h.cloud.Cloud.Requests() {
			if r.Path == "/identity/v2.0/tokens" {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the /quotas call is now hanging
	start := time.Now()
	err := d.stop(t)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 10*time.Second, "shutdown is bounded")
	// The store is still usable and nothing was half-written.
	require.NoError(t, h.w.Close())
	h.start()
}

// panicClock panics once, at its n-th reading.
type panicClock struct {
	*clock
	n atomic.Int32
}

func (p *panicClock) Now() time.Time {
	if p.n.Add(-1) == 0 {
		panic("clock exploded")
	}
	return p.clock.Now()
}

func TestRunSurvivesAPanickingCycle(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.999
`)
	pc := &panicClock{clock: h.clock}
	h.cfg.Schedule = "@every 1s"
	h.cfg.HTTP.Listen = "127.0.0.1:0"
	require.NoError(t, h.w.Close())
	reg := prometheus.NewRegistry()
	w, err := watcher.New(context.Background(), watcher.Options{Config: h.cfg, Now: pc.Now, NotifyRate: 1000, Registry: reg, Logger: slog.New(slog.NewTextHandler(h.logs, nil))})
	require.NoError(t, err)
	h.w = w
	t.Cleanup(func() { _ = w.Close() })
	pc.n.Store(2) // the start-up reconcile reads the clock once; the first cycle panics
	d := h.runDaemon(t, watcher.RunOptions{})
	addr := <-d.addr
	metric := func(name string) string {
		_, body := get(t, "http://"+addr+"/metrics")
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, name+" ") {
				return l
			}
		}
		return ""
	}
	require.Eventually(t, func() bool {
		return metric(`quotawatch_cycles_total{result="panic"}`) == `quotawatch_cycles_total{result="panic"} 1` &&
			strings.HasPrefix(metric(`quotawatch_cycles_total{result="ok"}`), `quotawatch_cycles_total{result="ok"} `)
	}, 10*time.Second, 50*time.Millisecond, "a later cycle ran after the panic")
	require.Contains(t, h.logs.String(), "cycle panicked")
	require.NoError(t, d.stop(t))
}

// serveHTTP restarts the harness's watcher with its HTTP endpoints on a
// free loopback port.
func (h *harness) serveHTTP() {
	h.t.Helper()
	h.cfg.HTTP.Listen = "127.0.0.1:0"
	require.NoError(h.t, h.w.Close())
	w, err := watcher.New(context.Background(), watcher.Options{Config: h.cfg, Now: h.clock.Now, NotifyRate: 1000, Registry: prometheus.NewRegistry()})
	require.NoError(h.t, err)
	h.w = w
	h.t.Cleanup(func() { _ = w.Close() })
}

// A reload during a slow cycle is not held up by it, and the daemon stays
// healthy: the main loop never waits for a cycle.
func TestRunReloadDuringASlowCycle(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.999
`)
	h.cfg.Schedule = "@every 1s"
	h.serveHTTP()
	d := h.runDaemon(t, watcher.RunOptions{})
	addr := <-d.addr
	require.Eventually(t, func() bool { code, _ := get(t, "http://"+addr+"/-/ready"); return code == 200 }, 10*time.Second, 20*time.Millisecond)

	// Set at start-up; a reload moves it.
	reloaded := func() string {
		_, body := get(t, "http://"+addr+"/metrics")
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "quotawatch_config_last_reload_success_timestamp_seconds ") {
				return l
			}
		}
		return ""
	}
	atStart := reloaded()
	require.NotEmpty(t, atStart)
	require.NotEqual(t, "quotawatch_config_last_reload_success_timestamp_seconds 0", atStart)
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/account/v1.0/quotas", Latency: synnefosim.Duration(5 * time.Second)}})
	// The next cycle starts within a second and then waits 5s on /quotas.
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	d.hup <- struct{}{}
	require.Eventually(t, func() bool {
		return reloaded() != atStart
	}, 3*time.Second, 20*time.Millisecond, "the reload went through while the cycle ran")
	require.Less(t, time.Since(start), 2*time.Second, "well before the slow cycle ends")
	code, _ := get(t, "http://"+addr+"/-/healthy")
	require.Equal(t, 200, code)
	code, _ = get(t, "http://"+addr+"/")
	require.Equal(t, 200, code, "the status page does not wait for the cycle")
	require.NoError(t, d.stop(t))
}
