package watcher_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/internal/testutil"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

const (
	alice  = "0f2c6a1e-4b7d-4e21-9c3a-5d8e7f6a1b2c"
	cs333  = "c5333a1b-2f4e-4d6a-8b9c-0e1f2a3b4c5d"
	gib    = int64(1) << 30
	tokenA = "alice-token"
)

// clock is a settable clock shared by the watcher and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a simulated cloud, a Slack fake, a config and a store in a
// temporary directory, and the watcher built from them.
type harness struct {
	// progress, if set before start, is the watcher's Options.Progress.
	progress func(phase string, done, total int)
	t        *testing.T
	dir      string
	cloud    *synnefosim.Server
	slack    *slacksink.Server
	clock    *clock
	cfg      *config.Config
	w        *watcher.Watcher
	logs     *testutil.SyncBuffer // everything the watcher logged, at debug level
}

// rulesSeed is the seed's rule: move a container out of a nearly full
// project.
const rulesSeed = `
  - name: container-rebalance
    description: Move a container out of a project that is nearly full
    resource: pithos.diskspace
    when: ratio > 0.95
    clear: ratio < 0.90
    severity: warning
    action:
      reassign:
        kind: container
        select: largest
        to: ["*"]
`

// newHarness starts everything from a scenario file and the rules YAML (a
// list, indented two spaces).
func newHarness(t *testing.T, scenario, rulesYAML string, extra ...string) *harness {
	t.Helper()
	sc, err := synnefosim.LoadScenario(filepath.Join("..", "synnefosim", "testdata", scenario))
	require.NoError(t, err)
	return newHarnessFrom(t, sc, rulesYAML, extra...)
}

func newHarnessFrom(t *testing.T, sc *synnefosim.Scenario, rulesYAML string, extra ...string) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: newClock(), logs: &testutil.SyncBuffer{}}
	h.cloud = synnefosim.NewServer(sc)
	t.Cleanup(h.cloud.Close)
	h.slack = slacksink.New()
	t.Cleanup(h.slack.Close)
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "alice.token"), []byte(tokenA+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "webhook"), []byte(h.slack.WebhookURL()+"\n"), 0o600))
	cfgText := fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_file: alice.token
  timeout: 5s
  requests_per_second: 1000
schedule: "@every 5m"
store:
  path: %s
  retention: 90d
http:
  listen: ""
max_actions_per_cycle: 10
notifiers:
  - name: ops
    slack:
      webhook_url_file: webhook
%s
rules:
%s`, h.cloud.AuthURL(), filepath.Join(h.dir, "quotawatch.db"), strings.Join(extra, "\n"), rulesYAML)
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "config.yaml"), []byte(cfgText), 0o600))
	var err error
	h.cfg, err = config.Load(filepath.Join(h.dir, "config.yaml"), config.Options{})
	require.NoError(t, err)
	h.start()
	return h
}

// start builds a watcher over the harness's store (as a restart would).
func (h *harness) start() {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := watcher.New(context.Background(), watcher.Options{Config: h.cfg, Now: h.clock.Now, NotifyRate: 1000, Logger: log, Progress: h.progress})
	require.NoError(h.t, err)
	h.w = w
	h.t.Cleanup(func() { _ = w.Close() })
	require.NoError(h.t, w.Reconcile(context.Background()))
}

// restart closes the watcher and starts a new one on the same store.
func (h *harness) restart() {
	h.t.Helper()
	require.NoError(h.t, h.w.Close())
	h.start()
}

// cycle advances the clock by the schedule interval and runs one cycle.
func (h *harness) cycle() *watcher.Report {
	h.t.Helper()
	h.clock.Advance(5 * time.Minute)
	rep, err := h.w.Cycle(context.Background())
	require.NoError(h.t, err)
	return rep
}

func (h *harness) container(name string) synnefosim.ContainerState {
	h.t.Helper()
	for _, c := range h.cloud.Cloud.State().Containers {
		if c.Name == name {
			return c
		}
	}
	h.t.Fatalf("no container %s", name)
	return synnefosim.ContainerState{}
}

// slackTexts returns the text of every message Slack accepted.
func (h *harness) slackTexts() []string {
	var out []string
	for _, m := range h.slack.Messages() {
		if m.OK {
			out = append(out, m.Text)
		}
	}
	return out
}

// journal reads the action journal from the store (after the watcher
// released it).
func (h *harness) journal() []quota.Action {
	h.t.Helper()
	st := h.w.Store()
	acts, err := st.Actions(time.Time{}, h.clock.Now().Add(time.Hour))
	require.NoError(h.t, err)
	require.NoError(h.t, st.Release())
	return acts
}

func countEvents(rep *watcher.Report, kind quota.EventKind, res quota.ActionResult) int {
	n := 0
	for _, e := range rep.Events {
		if e.Kind == kind && (res == "" || e.Result == res) {
			n++
		}
	}
	return n
}

func TestSeedContainerMovesToCS333(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	before := h.cloud.Cloud.Quota(alice, alice, quota.DiskSpace)
	require.Greater(t, before.Ratio(), 0.95)

	rep := h.cycle()
	require.False(t, rep.Failed(), "polls: %+v plan: %+v", rep.Polls, rep.Plan)
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	mv := rep.Plan[0]
	require.Equal(t, "course_container", mv.ItemName)
	require.Equal(t, cs333, mv.To)
	require.Equal(t, "CS333 lab assignments", mv.ToName)
	require.Equal(t, quota.ActionVerified, mv.State)

	// The cloud shows the new project and the moved usage.
	require.Equal(t, cs333, h.container("course_container").Project)
	after := h.cloud.Cloud.Quota(alice, alice, quota.DiskSpace)
	require.Equal(t, before.Usage-20615843020, after.Usage)
	require.Equal(t, int64(20615843020), h.cloud.Cloud.Quota(alice, cs333, quota.DiskSpace).Usage)

	// The journal shows intent → applied → verified for one move.
	acts := h.journal()
	require.Len(t, acts, 1)
	require.Equal(t, quota.ActionVerified, acts[0].State)
	require.Equal(t, "course_container", acts[0].ItemName)
	require.False(t, acts[0].DryRun)

	// Slack was told: the firing and the move, in one webhook message.
	texts := strings.Join(h.slackTexts(), "\n")
	require.Contains(t, texts, "course_container")
	require.Contains(t, texts, "CS333 lab assignments")
	require.Equal(t, 0, rep.Undelivered)

	// Next cycle: the source is back under the clear threshold: resolved.
	rep = h.cycle()
	require.Empty(t, rep.Plan)
	require.Equal(t, 1, countEvents(rep, quota.EventResolved, ""))
	require.Len(t, h.journal(), 1, "no second move")
}
