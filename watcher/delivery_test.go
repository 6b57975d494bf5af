package watcher_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/notify"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

// rulesNearlyFull fires for every project over 90% of its diskspace and
// moves nothing.
const rulesNearlyFull = `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.9
`

// withOptions rebuilds the harness's watcher over the same store with its
// usual options changed by f.
func (h *harness) withOptions(f func(o *watcher.Options)) {
	h.t.Helper()
	require.NoError(h.t, h.w.Close())
	o := watcher.Options{
		Config: h.cfg, Now: h.clock.Now, NotifyRate: 1000,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	f(&o)
	w, err := watcher.New(context.Background(), o)
	require.NoError(h.t, err)
	h.w = w
	h.t.Cleanup(func() { _ = w.Close() })
}

// useBot makes the harness's notifier a bot posting to the Slack fake.
func (h *harness) useBot() {
	h.cfg.Notifiers[0].Slack = config.Slack{
		Token: config.Secret(slacksink.DefaultToken), Channel: "#quota", APIURL: h.slack.APIURL(),
	}
}

// fullProjects is alice with n projects, each over 90% full.
func fullProjects(n int) (*synnefosim.Scenario, []string) {
	lim := func(b int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{quota.DiskSpace: {Member: b, Project: b}}
	}
	sc := &synnefosim.Scenario{
		Users:    []synnefosim.User{{UUID: alice, Name: "alice@example.org", Token: tokenA}},
		Projects: []synnefosim.Project{{ID: alice, System: true, Members: []string{alice}, Limits: lim(100 * gib)}},
	}
	names := make([]string, n)
	for i := range n {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i+1, i+1)
		names[i] = fmt.Sprintf("full-project-%02d", i)
		sc.Projects = append(sc.Projects, synnefosim.Project{ID: id, Name: names[i], Owner: alice, Members: []string{alice}, Limits: lim(10 * gib)})
		sc.Containers = append(sc.Containers, synnefosim.Container{Account: alice, Name: fmt.Sprintf("data-%02d", i), Project: id, Bytes: 95 * gib / 10})
	}
	return sc, names
}

// accepted returns, per Slack message accepted, the project it is about,
// out of names.
func accepted(t *testing.T, s *slacksink.Server, names []string) []string {
	t.Helper()
	var out []string
	for _, m := range s.Messages() {
		var about []string
		for _, n := range names {
			if strings.Contains(m.Text, n) {
				about = append(about, n)
			}
		}
		require.Len(t, about, 1, "one incident per message: %q", m.Text)
		out = append(out, about[0])
	}
	return out
}

// firingOrder returns the projects of a report's firing events, in the
// order they were enqueued.
func firingOrder(rep *watcher.Report) []string {
	var out []string
	for _, e := range rep.Events {
		if e.Kind == quota.EventFiring {
			out = append(out, e.ProjectName)
		}
	}
	return out
}

// Slack answers 500 five times, then 200: with an hourly schedule the
// daemon's outbox timer still delivers the alert within three minutes, at
// the backoff's times: 5, 10, 20, 40 and 60 s after each failure. Time is
// scaled down 25 times (a 200 ms base).
func TestRunRetriesBetweenCycles(t *testing.T) {
	const unit = 40 * time.Millisecond // one second, scaled
	h := newHarness(t, "seed.yaml", rulesNearlyFull)
	h.cfg.Schedule = "@every 1h"
	h.withOptions(func(o *watcher.Options) {
		o.Now = nil // the outbox timer runs on the real clock
		o.RetryBase, o.RetryMax = 5*unit, 60*unit
	})
	h.slack.FailNext(5, http.StatusInternalServerError, 0)
	d := h.runDaemon(t, watcher.RunOptions{})
	require.Eventually(t, func() bool { return len(h.slack.Messages()) == 1 }, 15*time.Second, unit/4)

	reqs := h.slack.Requests()
	require.Len(t, reqs, 6, "five failures and the delivery; nothing sent twice")
	for i, r := range reqs {
		want := http.StatusInternalServerError
		if i == 5 {
			want = http.StatusOK
		}
		require.Equal(t, want, r.Status, "request %d", i)
	}
	for i, backoff := range []time.Duration{5, 10, 20, 40, 60} {
		gap := reqs[i+1].Time.Sub(reqs[i].Time)
		require.GreaterOrEqual(t, gap, backoff*unit, "attempt %d waits its backoff", i+2)
		// The slack is for a loaded machine (-race, shared cores).
		require.Less(t, gap, (backoff+15)*unit, "attempt %d comes at its time, not at the next cycle", i+2)
	}
	require.Less(t, reqs[5].Time.Sub(reqs[0].Time), 180*unit, "delivered within three minutes")
	require.NoError(t, d.stop(t))
	require.Equal(t, 1, countPath(h.cloud.Cloud.Requests(), "/account/v1.0/quotas"), "one cycle only")

	// The production default is 5s doubling to a minute.
	var got []time.Duration
	for n := range 6 {
		got = append(got, notify.Backoff(n))
	}
	require.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}, got)
}

func countPath(rs []synnefosim.Request, path string) int {
	n := 0
	for _, r := range rs {
		if r.Path == path {
			n++
		}
	}
	return n
}

// scaledSleep records the waits asked for and sleeps a hundredth of each.
type scaledSleep struct {
	mu    sync.Mutex
	asked []time.Duration
}

func (s *scaledSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.asked = append(s.asked, d)
	s.mu.Unlock()
	t := time.NewTimer(d / 100)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *scaledSleep) total() (time.Duration, []time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum time.Duration
	for _, d := range s.asked {
		sum += d
	}
	return sum, append([]time.Duration(nil), s.asked...)
}

// Sixty incidents while Slack answers every other request with 429 and
// Retry-After: 1: the cycle's delivery waits each one out and goes on, so
// all sixty go in that one delivery, in order, each once, within the
// equivalent of 90 s (Slack's waits are slept a hundred times faster).
func TestRateLimitedBacklogDrainsInOneDelivery(t *testing.T) {
	sc, names := fullProjects(60)
	h := newHarnessFrom(t, sc, rulesNearlyFull)
	h.useBot()
	h.cfg.Notifiers[0].DigestAfter = 100 // one message per incident: delivery, not grouping, is under test
	sl := &scaledSleep{}
	h.withOptions(func(o *watcher.Options) { o.Sleep = sl.sleep })
	h.slack.FailEvery(2, http.StatusTooManyRequests, time.Second)

	start := time.Now()
	rep := h.cycle()
	elapsed := time.Since(start)
	order := firingOrder(rep)
	require.Len(t, order, 60)
	require.Equal(t, 60, rep.Delivered)
	require.Zero(t, rep.Undelivered)
	require.Equal(t, order, accepted(t, h.slack, names), "in the order enqueued, without duplicates")

	waited, asked := sl.total()
	limited := 0
	for _, r := range h.slack.Requests() {
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	require.Equal(t, 59, limited, "every other request")
	require.Len(t, asked, limited, "each 429 waited out once")
	for _, d := range asked {
		require.Equal(t, time.Second, d, "for its Retry-After")
	}
	require.Less(t, waited+elapsed, 90*time.Second, "within the equivalent of 90 s")
}

// crashAfter panics at the Slack request after the first n, as a daemon
// dying mid-delivery would stop; other requests pass.
type crashAfter struct {
	slackHost string
	mu        sync.Mutex
	n         int
}

func (c *crashAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == c.slackHost {
		c.mu.Lock()
		c.n--
		crash := c.n < 0
		c.mu.Unlock()
		if crash {
			panic("the daemon died mid-delivery")
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A bot delivery that dies after 3 of 6 messages has recorded the 3 as
// delivered: the next delivery sends only the other 3.
func TestBotMessagesAreSettledAsTheyGo(t *testing.T) {
	sc, names := fullProjects(6)
	h := newHarnessFrom(t, sc, rulesNearlyFull)
	h.useBot()
	h.cfg.Notifiers[0].DigestAfter = 100 // one message per incident
	host := strings.TrimPrefix(h.slack.URL, "http://")
	h.withOptions(func(o *watcher.Options) {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &crashAfter{slackHost: host, n: 3}}
	})
	h.clock.Advance(5 * time.Minute)
	require.PanicsWithValue(t, "the daemon died mid-delivery", func() { _, _ = h.w.Cycle(context.Background()) })
	sent := accepted(t, h.slack, names)
	require.Len(t, sent, 3)

	h.withOptions(func(*watcher.Options) {}) // restarted
	rep := h.cycle()
	require.Equal(t, 3, rep.Delivered, "only the three not yet sent")
	all := accepted(t, h.slack, names)
	require.Len(t, all, 6, "nothing sent twice")
	require.ElementsMatch(t, names, all)
	require.Equal(t, sent, all[:3])
}

// While Slack is down the daemon keeps retrying on its timer, keeps the
// message, and stops cleanly.
func TestRunSlackOutage(t *testing.T) {
	const unit = 10 * time.Millisecond
	h := newHarness(t, "seed.yaml", rulesNearlyFull)
	h.cfg.Schedule = "@every 1h"
	h.withOptions(func(o *watcher.Options) {
		o.Now = nil
		o.RetryBase, o.RetryMax = 5*unit, 20*unit
	})
	h.slack.SetDown(true)
	d := h.runDaemon(t, watcher.RunOptions{})
	require.Eventually(t, func() bool { return len(h.slack.Requests()) >= 5 }, 10*time.Second, unit)
	start := time.Now()
	require.NoError(t, d.stop(t))
	require.Less(t, time.Since(start), 5*time.Second)
	n := len(h.slack.Requests())
	time.Sleep(30 * unit)
	require.Len(t, h.slack.Requests(), n, "the timer stopped with the daemon")
	require.Empty(t, h.slack.Messages())
	pending, dead, err := h.w.Store().OutboxLen()
	require.NoError(t, err)
	require.Equal(t, []int{1, 0}, []int{pending, dead}, "the message is kept")

	// Slack is back: the next start delivers it.
	h.slack.SetDown(false)
	h.withOptions(func(o *watcher.Options) { o.Now = nil })
	_, err = h.w.Cycle(context.Background())
	require.NoError(t, err)
	require.Len(t, h.slack.Messages(), 1)
}

// A message still due after a delivery (it ran out of time while pacing)
// is retried by the timer at its floor, not in a busy loop.
func TestOutboxTimerDoesNotSpin(t *testing.T) {
	f := newFakes(t, "")
	f.ops.setAnswer(func(notify.Pending) notify.Outcome {
		return notify.Outcome{Err: fmt.Errorf("notify ops: pace: %w", notify.ErrPaced), RetryAt: f.clock.Now()}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx, watcher.RunOptions{}) }()
	time.Sleep(2500 * time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	calls := f.ops.calls()
	// The start-up cycle, then the timer about once a second.
	require.GreaterOrEqual(t, len(calls), 2, "the timer retried")
	require.LessOrEqual(t, len(calls), 4, "no faster than once a second")
	for _, c := range calls {
		require.Len(t, c, 1)
		require.Zero(t, c[0].Attempts, "nothing was tried, nothing counted")
	}
}
