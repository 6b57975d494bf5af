package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/view"
)

// The crash test runs `quotawatch run` as a real process against a
// simulated cloud whose rule keeps moving containers, kills it (SIGKILL or
// SIGTERM) at random moments, many of them while the cloud holds a
// reassign, restarts it each time, and then checks that no item was sent
// twice, that the journal agrees with the cloud, that every outcome was
// announced and that no recorded cycle lost its samples.
//
// go test runs a short variant; `make crash` (and CI) the full one:
//
//	QUOTAWATCH_CRASH_KILLS  number of kills (default 8)
//	QUOTAWATCH_CRASH_SEED   seed of the kill schedule (default: the time; logged)
//	QUOTAWATCH_CRASH_BIN    a built quotawatch binary (default: this test binary)
const (
	crashKillsEnv = "QUOTAWATCH_CRASH_KILLS"
	crashSeedEnv  = "QUOTAWATCH_CRASH_SEED"
	crashBinEnv   = "QUOTAWATCH_CRASH_BIN"
)

// crashSettle is the settle window of the crash test's configuration:
// longer than the longest hold of a reassign (4.5s when both faults hold
// one), short enough for the test to see moves given up on.
const crashSettle = 10 * time.Second

const crashUser = "a11ce000-0000-4000-8000-0000000000aa"

func srcID(i int) string { return fmt.Sprintf("5c000000-0000-4000-8000-%012d", i) }
func dstID(i int) string { return fmt.Sprintf("d5000000-0000-4000-8000-%012d", i) }
func itemName(src, n int) string {
	return fmt.Sprintf("c%03dn%d", src, n)
}

// crashScenario: sources projects of five 1 GiB containers each, 96% full;
// the rule moves them one at a time to the destinations, which always have
// room and never fill up, until the source is empty. Each item needs
// exactly one move, so any second POST of an item is a repeated move.
func crashScenario(sources int) *synnefosim.Scenario {
	g := quota.GiB
	sc := &synnefosim.Scenario{Users: []synnefosim.User{{UUID: crashUser, Name: "alice@example.org", Token: "alice-token"}}}
	lim := func(n int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{quota.DiskSpace: {Member: n, Project: n}}
	}
	sc.Projects = append(sc.Projects, synnefosim.Project{ID: crashUser, System: true, Members: []string{crashUser}, Limits: lim(g)})
	for i := range sources {
		sc.Projects = append(sc.Projects, synnefosim.Project{ID: srcID(i), Name: fmt.Sprintf("src-%03d", i), Owner: crashUser,
			Members: []string{crashUser}, Limits: lim(5*g + g/5)})
		for n := range 5 {
			sc.Containers = append(sc.Containers, synnefosim.Container{Account: crashUser, Name: itemName(i, n), Project: srcID(i), Bytes: g, Count: 1})
		}
	}
	for i := range 4 {
		sc.Projects = append(sc.Projects, synnefosim.Project{ID: dstID(i), Name: fmt.Sprintf("dst-%d", i), Owner: crashUser,
			Members: []string{crashUser}, Limits: lim(int64(sources) * 10 * g)})
	}
	return sc
}

const crashConfig = `cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_env: CRASH_TOKEN
  timeout: 2s
  requests_per_second: 1000
schedule: "@every 1s"
store:
  path: %s
http:
  listen: ""
max_actions_per_cycle: 4
settle_window: %s
notifiers:
  - name: ops
    slack:
      webhook_url_env: CRASH_WEBHOOK
rules:
  - name: spill
    resource: pithos.diskspace
    projects: ["src-*"]
    when: ratio > 0.9
    clear: ratio < 0.1
    cooldown: 1s
    repeat: 0s
    action:
      reassign:
        kind: container
        to: ["dst-*"]
        strategy: first_fit
`

// postLog records every reassign POST the cloud receives, as it arrives.
type postLog struct {
	mu       sync.Mutex
	paths    []string
	at       []time.Time // when each arrived
	inflight atomic.Int32
}

func (p *postLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/object-store/") {
			p.mu.Lock()
			p.paths = append(p.paths, r.URL.Path)
			p.at = append(p.at, time.Now())
			p.mu.Unlock()
			p.inflight.Add(1)
			defer p.inflight.Add(-1)
		}
		h.ServeHTTP(w, r)
	})
}

// firstAfter is when the first POST after t arrived, if one did.
func (p *postLog) firstAfter(t time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, at := range p.at {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (p *postLog) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

// crashDaemon is one life of the daemon.
type crashDaemon struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed once its log is read to the end
	logged atomic.Bool   // it logged a line: its signal handlers are set
}

var recordedRE = regexp.MustCompile(`msg="cycle recorded" at=(\S+)`)

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs real daemons for a while")
	}
	kills := 8
	if v := os.Getenv(crashKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, crashKillsEnv)
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, crashSeedEnv)
		seed = n
	}
	t.Logf("crash test: %d kills, %s=%d", kills, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	began := time.Now()

	// About as many items as the kills let the daemon move.
	sources := max(6, kills*3/5)
	cloud, err := synnefosim.New(crashScenario(sources))
	require.NoError(t, err)
	cloud.Now = time.Now
	// The cloud is still at some reassigns after the client gave up (a 3s
	// hold, past the 2s timeout), and slow at others (1.5s, answered).
	cloud.SetFaults([]synnefosim.Fault{
		{Path: "/object-store/v1/*", Method: http.MethodPost, Every: 3, Hold: synnefosim.Duration(1500 * time.Millisecond)},
		{Path: "/object-store/v1/*", Method: http.MethodPost, Every: 5, Hold: synnefosim.Duration(3 * time.Second)},
	})
	posts := &postLog{}
	srv := httptest.NewServer(posts.wrap(cloud))
	t.Cleanup(srv.Close)
	cloud.BaseURL = srv.URL
	slack := slacksink.New()
	t.Cleanup(slack.Close)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	dbPath := filepath.Join(dir, "q.db")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, crashConfig, srv.URL+"/identity/v2.0", dbPath, crashSettle), 0o600))
	env := map[string]string{"CRASH_TOKEN": "alice-token", "CRASH_WEBHOOK": slack.WebhookURL()}

	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	require.NoError(t, err)
	defer logFile.Close()
	var logMu sync.Mutex
	var recorded []time.Time
	var lostAnswers, reconciled int
	var logTail []string
	defer func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("daemon log (last lines):\n%s", strings.Join(logTail, "\n"))
			logMu.Unlock()
		}
	}()

	start := func(life int) *crashDaemon {
		t.Helper()
		d := &crashDaemon{}
		d.cmd, d.done = spawnDaemon(t, os.Getenv(crashBinEnv), env, func(l string) {
			{
				d.logged.Store(true)
				logMu.Lock()
				fmt.Fprintf(logFile, "[%d] %s\n", life, l)
				if m := recordedRE.FindStringSubmatch(l); m != nil {
					if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
						recorded = append(recorded, at)
					}
				}
				switch {
				case strings.Contains(l, `msg="move outcome unknown; will reconcile"`):
					lostAnswers++
				case strings.Contains(l, `msg="reconciled move"`):
					reconciled++
				}
				if len(logTail) >= 60 {
					logTail = logTail[1:]
				}
				logTail = append(logTail, fmt.Sprintf("[%d] %s", life, l))
				logMu.Unlock()
			}
		}, "run", "--config", cfgPath, "--log-level", "debug")
		return d
	}
	// stop signals the daemon and waits for it; a SIGTERM must end it
	// cleanly and within the stop timeout, once it is up (before it set
	// its handlers, SIGTERM ends it as SIGKILL would).
	stop := func(d *crashDaemon, sig syscall.Signal) {
		t.Helper()
		sent := time.Now()
		up := d.logged.Load()
		require.NoError(t, d.cmd.Process.Signal(sig))
		<-d.done
		err := d.cmd.Wait()
		if sig == syscall.SIGTERM && up {
			require.NoError(t, err, "a stop on SIGTERM is clean")
			require.Less(t, time.Since(sent), 15*time.Second, "a stop on SIGTERM is prompt")
		}
	}

	var sigkills, sigterms, held int
	for i := range kills {
		d := start(i)
		if rng.IntN(3) > 0 {
			// While the cloud is processing a reassign: wait for one to
			// arrive, then a moment into it.
			deadline := time.Now().Add(6 * time.Second)
			for posts.inflight.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if posts.inflight.Load() > 0 {
				held++
			}
			time.Sleep(time.Duration(rng.IntN(1200)) * time.Millisecond)
		} else {
			time.Sleep(time.Duration(100+rng.IntN(2400)) * time.Millisecond)
		}
		if rng.IntN(2) == 0 {
			sigkills++
			stop(d, syscall.SIGKILL)
		} else {
			sigterms++
			stop(d, syscall.SIGTERM)
		}
	}

	// Let the last life run past the settle window until it is at rest:
	// every item moved, no move open, nothing in flight, the outbox
	// drained.
	lastKill := time.Now()
	d := start(kills)
	deadline := time.Now().Add(crashSettle + 120*time.Second)
	atRest := func() (bool, string) {
		if time.Since(lastKill) < crashSettle+2*time.Second {
			return false, "within the settle window of the last kill"
		}
		if n := posts.inflight.Load(); n > 0 {
			return false, fmt.Sprintf("%d reassigns in flight", n)
		}
		left := 0
		for _, c := range cloud.State().Containers {
			if strings.HasPrefix(c.Charged, "5c") {
				left++
			}
		}
		if left > 0 {
			return false, fmt.Sprintf("%d items left to move", left)
		}
		code, out, stderr := runCmd(t, env, "actions", "--config", cfgPath, "--since", "1d", "--output", "json")
		if code != exitOK {
			return false, "actions: " + stderr
		}
		var rows []view.ActionRow
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		for _, r := range rows {
			if r.State == quota.ActionIntent || r.State == quota.ActionUnknown {
				return false, fmt.Sprintf("move %d is %s", r.ID, r.State)
			}
		}
		st, err := store.Open(dbPath, store.Options{ReadOnly: true, LockTimeout: 2 * time.Second})
		if err != nil {
			return false, err.Error()
		}
		defer st.Close()
		if pending, _, err := st.OutboxLen(); err != nil || pending > 0 {
			return false, fmt.Sprintf("%d messages pending (%v)", pending, err)
		}
		return true, ""
	}
	for {
		time.Sleep(500 * time.Millisecond)
		ok, why := atRest()
		if ok {
			break
		}
		require.True(t, time.Now().Before(deadline), "the daemon did not come to rest: %s", why)
	}
	stop(d, syscall.SIGTERM)
	var rows []view.ActionRow
	code, out, stderr := runCmd(t, env, "actions", "--config", cfgPath, "--since", "1d", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	rows = nil
	require.NoError(t, json.Unmarshal([]byte(out), &rows))

	// 1. No item was POSTed twice: every item needs one move only.
	byPath := map[string]int{}
	for _, p := range posts.all() {
		byPath[p]++
	}
	twice := 0
	for p, n := range byPath {
		if n > 1 {
			twice++
			t.Errorf("POSTed %d times: %s", n, p)
		}
	}

	// 2. The journal agrees with the cloud.
	origin := map[string]string{} // item -> its first project
	for i := range sources {
		for n := range 5 {
			origin[itemName(i, n)] = srcID(i)
		}
	}
	where := map[string]string{}
	for _, c := range cloud.State().Containers {
		where[c.Name] = c.Charged
	}
	byItem := map[string][]view.ActionRow{}
	states := map[string]int{}
	interrupted := 0
	for _, r := range rows {
		byItem[r.ItemName] = append(byItem[r.ItemName], r)
		states[string(r.State)]++
		if r.State == quota.ActionFailed && strings.HasPrefix(r.Error, "interrupted") {
			interrupted++
		}
	}
	contradictions := 0
	contradict := func(format string, a ...any) {
		contradictions++
		t.Errorf("journal contradicts the cloud: "+format, a...)
	}
	moved := 0
	for item, src := range origin {
		var succeeded []view.ActionRow
		for _, r := range byItem[item] {
			switch r.State {
			case quota.ActionApplied, quota.ActionVerified:
				succeeded = append(succeeded, r)
			case quota.ActionIntent, quota.ActionUnknown:
				contradict("%s: move %d still %s after settling", item, r.ID, r.State)
			}
		}
		switch {
		case len(succeeded) > 1:
			contradict("%s: %d successful moves", item, len(succeeded))
		case len(succeeded) == 1 && where[item] != succeeded[0].To:
			contradict("%s: journaled as moved to %s, the cloud has it in %s", item, succeeded[0].To, where[item])
		case len(succeeded) == 0 && where[item] != src:
			contradict("%s: moved to %s without a successful journal entry (%+v)", item, where[item], byItem[item])
		}
		if where[item] != src {
			moved++
		}
		for _, r := range byItem[item] {
			if r.State != quota.ActionFailed || where[item] != r.To {
				continue
			}
			later := false
			for _, s := range succeeded {
				later = later || (s.ID > r.ID && s.To == r.To)
			}
			if !later {
				contradict("%s: move %d journaled failed (%s) but the item is in its destination", item, r.ID, r.Error)
			}
		}
	}

	// 3. Every outcome was announced, and nothing announced that did not
	// happen: a moved item has a "moved" line, a failed entry a "failed"
	// one, and an item never moved no "moved" line. (Delivery is at least
	// once: a kill between Slack's answer and the outbox commit sends a
	// message again, so repeats are counted, not refused.)
	told, messages := toldOutcomes(slack.Messages())
	unannounced, repeats := 0, 0
	for item := range origin {
		var ok, failed int
		for _, r := range byItem[item] {
			switch r.State {
			case quota.ActionApplied, quota.ActionVerified:
				ok++
			case quota.ActionFailed:
				failed++
			}
		}
		for kind, want := range map[string]int{"moved": ok, "failed": failed} {
			got := told[item][kind]
			switch {
			case got < want:
				unannounced += want - got
				t.Errorf("%s: %d journaled %s outcome(s), %d announced", item, want, kind, got)
			case want == 0 && got > 0:
				t.Errorf("%s: announced %s, which the journal does not have", item, kind)
			case got > want:
				repeats += got - want
			}
		}
	}
	pending, dead := outboxLen(t, dbPath)
	if pending+dead > 0 {
		t.Errorf("outbox not drained at the end: %d pending, %d dead", pending, dead)
	}

	// 4. No committed samples lost: every cycle a daemon logged as recorded
	// has its poll in the history of a series polled at every cycle.
	logMu.Lock()
	rec := append([]time.Time(nil), recorded...)
	logMu.Unlock()
	require.NotEmpty(t, rec)
	st, err := store.Open(dbPath, store.Options{ReadOnly: true})
	require.NoError(t, err)
	samples, err := st.Series(quota.Key{Account: "alice", Project: srcID(0), Resource: quota.DiskSpace},
		rec[0].Add(-time.Second), rec[len(rec)-1].Add(time.Second))
	require.NoError(t, st.Close())
	require.NoError(t, err)
	have := map[int64]bool{}
	for _, s := range samples {
		have[s.Time.UnixMilli()] = true
	}
	lost := 0
	for _, at := range rec {
		if !have[at.UnixMilli()] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d recorded cycles have no samples in the store", lost, len(rec))
	}

	t.Logf("crash test figures: %d kills (%d SIGKILL, %d SIGTERM, %d while a reassign was held) in %s; "+
		"%d POSTs of %d items, %d moved, %d POSTed twice; %d answers lost, %d moves settled by reconciling; "+
		"journal %v, %d interrupted, %d contradicting the cloud; "+
		"%d Slack messages, %d outcomes unannounced, %d repeated deliveries; %d cycles recorded, %d without samples",
		kills, sigkills, sigterms, held, time.Since(began).Round(time.Second),
		len(posts.all()), len(origin), moved, twice, lostAnswers, reconciled, states, interrupted, contradictions,
		messages, unannounced, repeats, len(rec), lost)
}

func outboxLen(t *testing.T, path string) (pending, dead int) {
	t.Helper()
	st, err := store.Open(path, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer st.Close()
	pending, dead, err = st.OutboxLen()
	require.NoError(t, err)
	return pending, dead
}

// toldOutcomes counts, per item, the "moved" and "failed" lines of the
// messages Slack took, and the messages.
func toldOutcomes(msgs []slacksink.Received) (told map[string]map[string]int, messages int) {
	told = map[string]map[string]int{} // item -> "moved"/"failed" -> lines
	for _, m := range msgs {
		if !m.OK {
			continue
		}
		messages++
		for _, line := range strings.Split(m.Text, "\n") {
			for _, kind := range []string{"moved", "failed"} {
				verb := "spill: moved container "
				if kind == "failed" {
					verb = "spill: failed to move container "
				}
				if i := strings.Index(line, verb); i >= 0 {
					item, _, _ := strings.Cut(line[i+len(verb):], " ")
					if told[item] == nil {
						told[item] = map[string]int{}
					}
					told[item][kind]++
				}
			}
		}
	}
	return told, messages
}

// spawnDaemon runs the command line as its own process: bin if set (a
// built quotawatch), else this test binary. env is added to the process's
// environment, and each line it writes to stderr is handed to line; done
// is closed once stderr is read to the end. The process is killed when
// the test ends.
func spawnDaemon(t *testing.T, bin string, env map[string]string, line func(string), args ...string) (*exec.Cmd, chan struct{}) {
	t.Helper()
	var cmd *exec.Cmd
	if bin != "" {
		cmd = exec.Command(bin, args...)
		cmd.Env = os.Environ()
	} else {
		cmd = exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), daemonEnv+"=1", daemonEnv+"_ARGS="+strings.Join(args, "\n"))
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line(sc.Text())
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, done
}
