package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/internal/etcdtest"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/view"
)

// haTTL is the lease TTL of the failover test's instances.
const haTTL = 3 * time.Second

var haConfig = crashConfigHead + `ha:
  etcd:
    endpoints: [%s]
    prefix: /qw-test/
    lease_ttl: %s
`

// crashConfigHead is crashConfig with http.listen on a free port.
var crashConfigHead = strings.Replace(crashConfig, `listen: ""`, `listen: "127.0.0.1:0"`, 1)

// haDaemon is one life of one instance.
type haDaemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	addr string    // its HTTP address, once it serves
	led  time.Time // when it logged that it leads
	// onCycle, if set, runs as a recorded cycle is logged: the cycle has
	// committed its decisions and is about to act and deliver.
	onCycle func()
}

var servingRE = regexp.MustCompile(`msg="serving http" addr=(\S+)`)

func (d *haDaemon) leadsSince() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.led, !d.led.IsZero()
}

func (d *haDaemon) httpAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// haState reads the instance's /api/v1/ha; ok is false if it does not
// answer.
func (d *haDaemon) haState() (leading bool, ok bool) {
	addr := d.httpAddr()
	if addr == "" {
		return false, false
	}
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get("http://" + addr + "/api/v1/ha")
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	var st struct {
		Leading bool `json:"leading"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return false, false
	}
	return st.Leading, true
}

// TestHAFailover runs two instances on a three-member etcd cluster against
// the simulated cloud whose rule keeps moving containers one at a time. It
// kills the leader while the cloud holds one of its reassigns, then the
// next leader at a random point of its cycle, then cuts the leader off from
// etcd, and checks: each takeover within two lease TTLs, the cut-off
// leader stopping before the other may act, no item moved twice, every
// outcome told (at least once), and no incident fired twice.
func TestHAFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("the failover test runs real daemons and an etcd cluster")
	}
	cluster := etcdtest.Start(t, 3)
	// a reaches etcd through a proxy to one member only, so it can be cut
	// off; b talks to the other two.
	proxy := etcdtest.NewProxy(t, strings.TrimPrefix(cluster.Endpoint(0), "http://"))

	const sources = 8
	cloud, err := synnefosim.New(crashScenario(sources))
	require.NoError(t, err)
	cloud.Now = time.Now
	// Every third reassign is held past the client's timeout.
	cloud.SetFaults([]synnefosim.Fault{{Path: "/object-store/v1/*", Method: http.MethodPost, Every: 3, Hold: synnefosim.Duration(2500 * time.Millisecond)}})
	posts := &postLog{}
	srv := httptest.NewServer(posts.wrap(cloud))
	t.Cleanup(srv.Close)
	cloud.BaseURL = srv.URL
	slack := slacksink.New()
	t.Cleanup(slack.Close)

	dir := t.TempDir()
	cfgs := map[string]string{}
	for name, eps := range map[string][]string{"a": {proxy.Endpoint()}, "b": cluster.Endpoints()[1:]} {
		path := filepath.Join(dir, name+".yaml")
		quoted := make([]string, len(eps))
		for i, e := range eps {
			quoted[i] = fmt.Sprintf("%q", e)
		}
		require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, haConfig, srv.URL+"/identity/v2.0",
			filepath.Join(dir, name+".db"), crashSettle, strings.Join(quoted, ", "), haTTL), 0o600))
		cfgs[name] = path
	}
	env := map[string]string{"CRASH_TOKEN": "alice-token", "CRASH_WEBHOOK": slack.WebhookURL()}

	logFile, err := os.Create(filepath.Join(dir, "daemons.log"))
	require.NoError(t, err)
	defer logFile.Close()
	var logMu sync.Mutex
	var tail []string
	defer func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("daemon logs (last lines):\n%s", strings.Join(tail, "\n"))
			logMu.Unlock()
		}
	}()
	lives := 0
	start := func(name string) *haDaemon {
		t.Helper()
		lives++
		life := fmt.Sprintf("%s%d", name, lives)
		d := &haDaemon{name: name}
		d.cmd, d.done = spawnDaemon(t, "", env, func(l string) {
			{
				d.mu.Lock()
				if m := servingRE.FindStringSubmatch(l); m != nil {
					d.addr = m[1]
				}
				if strings.Contains(l, `msg="this instance now leads"`) && d.led.IsZero() {
					d.led = time.Now()
				}
				if strings.Contains(l, `msg="cycle recorded"`) && d.onCycle != nil {
					d.onCycle()
				}
				d.mu.Unlock()
				logMu.Lock()
				fmt.Fprintf(logFile, "[%s] %s\n", life, l)
				if len(tail) >= 80 {
					tail = tail[1:]
				}
				tail = append(tail, "["+life+"] "+l)
				logMu.Unlock()
			}
		}, "run", "--config", cfgs[name], "--log-level", "debug")
		return d
	}
	kill := func(d *haDaemon, sig syscall.Signal) {
		t.Helper()
		require.NoError(t, d.cmd.Process.Signal(sig))
		<-d.done
		_ = d.cmd.Wait()
	}
	wait := func(within time.Duration, what string, cond func() bool) time.Duration {
		t.Helper()
		began := time.Now()
		for !cond() {
			require.Less(t, time.Since(began), within, "not within %s: %s", within, what)
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(began)
	}
	leads := func(d *haDaemon) func() bool {
		return func() bool { _, ok := d.leadsSince(); return ok }
	}
	serves := func(d *haDaemon) func() bool {
		return func() bool { _, ok := d.haState(); return ok }
	}
	var takeovers []time.Duration

	a := start("a")
	wait(20*time.Second, "a leads", leads(a))
	b := start("b")
	wait(20*time.Second, "b serves", serves(b))

	// 1. Kill the leader while the cloud holds one of its reassigns.
	wait(30*time.Second, "a reassign in flight", func() bool { return posts.inflight.Load() > 0 })
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	kill(a, syscall.SIGKILL)
	took := wait(2*haTTL, "b leads within two TTLs of a's death", leads(b))
	takeovers = append(takeovers, took)
	acted, ok := posts.firstAfter(killed)
	wait(2*haTTL, "b moves within two TTLs of a's death", func() bool { acted, ok = posts.firstAfter(killed); return ok })
	t.Logf("kill 1 (mid-move): b led after %s, moved after %s", took, acted.Sub(killed))

	// 2. Kill the new leader at a random point of its cycle.
	a = start("a")
	wait(20*time.Second, "a serves", serves(a))
	midCycle := make(chan struct{}, 1)
	b.mu.Lock()
	b.onCycle = func() {
		select {
		case midCycle <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	select {
	case <-midCycle:
	case <-time.After(10 * time.Second):
		t.Fatal("b recorded no cycle")
	}
	killed = time.Now()
	kill(b, syscall.SIGKILL)
	took = wait(2*haTTL, "a leads within two TTLs of b's death", leads(a))
	takeovers = append(takeovers, took)
	t.Logf("kill 2 (mid-cycle): a led after %s", took)

	// 3. Cut the leader off from etcd: it stops acting before its lease
	// can expire, so before b may act.
	b = start("b")
	wait(20*time.Second, "b serves", serves(b))
	wait(5*time.Second, "a says it leads", func() bool { l, _ := a.haState(); return l })
	cut := time.Now()
	proxy.Block()
	var aStopped, bLed time.Duration
	wait(4*haTTL, "a stops and b leads", func() bool {
		if l, ok := a.haState(); ok && !l && aStopped == 0 {
			aStopped = time.Since(cut)
		}
		if l, _ := b.haState(); l && bLed == 0 {
			bLed = time.Since(cut)
		}
		return aStopped > 0 && bLed > 0
	})
	t.Logf("partition: a stopped acting after %s, b led after %s (lease TTL %s)", aStopped, bLed, haTTL)
	require.Less(t, aStopped, haTTL, "a cut-off leader stops acting within its lease TTL")
	require.Less(t, aStopped, bLed, "the cut-off leader stops before the other leads")
	proxy.Unblock()

	// Let the cloud come to rest: every item moved, no move open, the
	// outbox drained, b leading.
	deadline := time.Now().Add(crashSettle + 90*time.Second)
	var rows []view.ActionRow
	for {
		time.Sleep(500 * time.Millisecond)
		left := 0
		for _, c := range cloud.State().Containers {
			if strings.HasPrefix(c.Charged, "5c") {
				left++
			}
		}
		code, out, stderr := runCmd(t, env, "actions", "--config", cfgs["b"], "--since", "1d", "--output", "json")
		require.Equal(t, exitOK, code, stderr)
		rows = nil
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		open := 0
		for _, r := range rows {
			if r.State == quota.ActionIntent || r.State == quota.ActionUnknown {
				open++
			}
		}
		pending, _ := outboxLen(t, filepath.Join(dir, "b.db"))
		if left == 0 && open == 0 && pending == 0 && posts.inflight.Load() == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no rest: %d items left, %d moves open, %d messages pending", left, open, pending)
	}
	kill(a, syscall.SIGTERM)
	kill(b, syscall.SIGTERM)

	// No item was sent twice.
	byPath := map[string]int{}
	for _, p := range posts.all() {
		byPath[p]++
	}
	for p, n := range byPath {
		require.Equal(t, 1, n, "POSTed %d times: %s", n, p)
	}
	// The shared journal agrees with the cloud: one success per item, where
	// the cloud has it.
	where := map[string]string{}
	for _, c := range cloud.State().Containers {
		where[c.Name] = c.Charged
	}
	succeeded := map[string]int{}
	failed := map[string]int{}
	for _, r := range rows {
		switch r.State {
		case quota.ActionApplied, quota.ActionVerified:
			succeeded[r.ItemName]++
			require.Equal(t, r.To, where[r.ItemName], "move %d of %s", r.ID, r.ItemName)
		case quota.ActionFailed:
			failed[r.ItemName]++
		}
	}
	for i := range sources {
		for n := range 5 {
			require.Equal(t, 1, succeeded[itemName(i, n)], "%s: successful moves in the journal", itemName(i, n))
		}
	}
	// Every outcome was told, at least once.
	told, messages := toldOutcomes(slack.Messages())
	repeats := 0
	for item, n := range succeeded {
		require.GreaterOrEqual(t, told[item]["moved"], n, "%s: moves told", item)
		repeats += told[item]["moved"] - n
	}
	for item, n := range failed {
		require.GreaterOrEqual(t, told[item]["failed"], n, "%s: failures told", item)
		repeats += told[item]["failed"] - n
	}
	// No incident fired twice: one firing line per source project, however
	// often a message was sent again.
	firing := map[string]map[string]bool{} // project -> distinct firing lines
	takeoverMsgs := 0
	for _, m := range slack.Messages() {
		for _, line := range strings.Split(m.Text, "\n") {
			if strings.Contains(line, "changed leader") {
				takeoverMsgs++
			}
			// A firing line, or a digest of firings ("8 firing: spill
			// ...; fullest: src-000 96.2%, ..."), names each project.
			if !strings.Contains(line, "spill") || !strings.Contains(strings.ToLower(line), "firing") || strings.Contains(line, "resolved") {
				continue
			}
			for i := range sources {
				name := fmt.Sprintf("src-%03d", i)
				if strings.Contains(line, name+" ") {
					if firing[name] == nil {
						firing[name] = map[string]bool{}
					}
					firing[name][line] = true
				}
			}
		}
	}
	// Each takeover was told: a from b, b from a, and b again after the
	// partition (at least once each).
	require.GreaterOrEqual(t, takeoverMsgs, 3, "leader-change messages")
	for i := range sources {
		name := fmt.Sprintf("src-%03d", i)
		require.Len(t, firing[name], 1, "%s: want one firing, told once or more: %v", name, firing[name])
	}
	t.Logf("failover figures: takeovers after %v (TTL %s); partition: stopped after %s, other led after %s; "+
		"%d moves, %d POSTs, %d messages, %d told again, %d leader-change messages",
		takeovers, haTTL, aStopped, bLed, len(rows), len(posts.all()), messages, repeats, takeoverMsgs)
}

// With ha, what would decide outside the leader's daemon is refused: a
// lone `once`, and `approve` or `silence add` when no daemon answers.
func TestHARefusesDecisionsOutsideTheDaemon(t *testing.T) {
	c := newCLI(t)
	cfg, err := os.ReadFile(c.cfg)
	require.NoError(t, err)
	cfg = append(cfg, []byte("ha:\n  etcd:\n    endpoints: [\"http://127.0.0.1:1\"]\n")...)
	require.NoError(t, os.WriteFile(c.cfg, cfg, 0o600))

	code, _, stderr := c.run("once")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "configures ha, where only the elected leader acts")
	code, _, stderr = c.run("approve", "1")
	require.NotEqual(t, exitOK, code)
	require.Contains(t, stderr, "only the leader's daemon records decisions")
	code, _, stderr = runCmd(t, c.env(), "silence", "add", "--config", c.cfg, "--rule", "container-rebalance", "--for", "1h", "--comment", "maintenance")
	require.NotEqual(t, exitOK, code)
	require.Contains(t, stderr, "only the leader's daemon records decisions")
	require.Empty(t, c.cloud.Cloud.Requests(), "nothing asked of the cloud")
	_, err = os.Stat(filepath.Join(c.dir, "q.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "no store written")
}
