package watcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/internal/testutil"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

const (
	bobQuiet    = "b0b0b0b0-1111-4222-8333-444455556666"
	statusPage  = "https://quota.example.org"
	rulesNearly = `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.95
    clear: ratio < 0.90
    severity: warning
`
)

// crowd is a cloud where alice is a member of n course projects, each
// more than 95% full (10 GiB limits, a container of 9.6 GiB and more), and
// bobQuiet of one project alice cannot see, as full.
func crowd(n int) *synnefosim.Scenario {
	limit := func(b int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{quota.DiskSpace: {Member: b, Project: b}}
	}
	sc := &synnefosim.Scenario{
		ServiceToken: "svc-token",
		Users: []synnefosim.User{
			{UUID: alice, Name: "alice@example.org", Token: tokenA},
			{UUID: bobQuiet, Name: "bob@example.org", Token: "bob-token"},
		},
		Projects: []synnefosim.Project{
			{ID: alice, System: true, Members: []string{alice}, Limits: limit(100 * gib)},
			{ID: bobQuiet, System: true, Members: []string{bobQuiet}, Limits: limit(100 * gib)},
			{ID: "b0b-lab", Name: "bob-lab", Owner: bobQuiet, Members: []string{bobQuiet}, Limits: limit(10 * gib)},
		},
		Containers: []synnefosim.Container{{Account: bobQuiet, Name: "bob-data", Project: "b0b-lab", Bytes: 98 * gib / 10, Count: 1}},
	}
	for i := range n {
		id := fmt.Sprintf("c%07d-0000-4000-8000-%012d", i, i)
		sc.Projects = append(sc.Projects, synnefosim.Project{
			ID: id, Name: fmt.Sprintf("course-%03d", i), Owner: alice, Members: []string{alice}, Limits: limit(10 * gib),
		})
		sc.Containers = append(sc.Containers, synnefosim.Container{
			Account: alice, Name: fmt.Sprintf("data-%03d", i), Project: id, Bytes: 96*gib/10 + int64(i)<<20, Count: 1,
		})
	}
	return sc
}

// quietOptions shape newQuietHarness's configuration.
type quietOptions struct {
	service  bool   // add the service token's view
	schedule string // default @every 5m
	rules    string // default rulesNearly
}

// newQuietHarness is newHarnessFrom with two notifiers, a webhook ("ops")
// and a bot ("bot"), both on the harness's Slack fake, and the status
// page's external URL.
func newQuietHarness(t *testing.T, sc *synnefosim.Scenario, o quietOptions) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: newClock(), logs: &testutil.SyncBuffer{}}
	h.cloud = synnefosim.NewServer(sc)
	t.Cleanup(h.cloud.Close)
	h.slack = slacksink.New()
	t.Cleanup(h.slack.Close)
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "alice.token"), []byte(tokenA+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "webhook"), []byte(h.slack.WebhookURL()+"\n"), 0o600))
	service := ""
	if o.service {
		service = "  service_token: svc-token\n"
	}
	if o.schedule == "" {
		o.schedule = "@every 5m"
	}
	if o.rules == "" {
		o.rules = rulesNearly
	}
	cfgText := fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_file: alice.token
%s  timeout: 5s
  requests_per_second: 1000
schedule: %q
store:
  path: %s
http:
  listen: ""
  external_url: %s/
notifiers:
  - name: ops
    slack:
      webhook_url_file: webhook
  - name: bot
    slack:
      token: %s
      channel: "#quota"
      api_url: %s
rules:
%s`, h.cloud.AuthURL(), service, o.schedule, filepath.Join(h.dir, "quotawatch.db"), statusPage,
		slacksink.DefaultToken, h.slack.APIURL(), o.rules)
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "config.yaml"), []byte(cfgText), 0o600))
	var err error
	h.cfg, err = config.Load(filepath.Join(h.dir, "config.yaml"), config.Options{})
	require.NoError(t, err)
	h.start()
	return h
}

func (h *harness) webhookMessages() []slacksink.Received {
	var out []slacksink.Received
	for _, m := range h.slack.Messages() {
		if m.Endpoint == slacksink.EndpointWebhook {
			out = append(out, m)
		}
	}
	return out
}

func (h *harness) botMessages() []slacksink.Received {
	var out []slacksink.Received
	for _, m := range h.slack.Messages() {
		if m.Endpoint != slacksink.EndpointWebhook {
			out = append(out, m)
		}
	}
	return out
}

var courseRE = regexp.MustCompile(`course-\d{3}`)

// courses counts how often each course project is named.
func courses(texts ...string) map[string]int {
	n := map[string]int{}
	for _, s := range texts {
		for _, m := range courseRE.FindAllString(s, -1) {
			n[m]++
		}
	}
	return n
}

// TestCrowdCrossingIsQuiet: 150 projects crossing a threshold in one cycle
// make a handful of messages per notifier, every incident reachable once,
// nothing left undelivered.
func TestCrowdCrossingIsQuiet(t *testing.T) {
	const n = 150
	h := newQuietHarness(t, crowd(n), quietOptions{})
	rep := h.cycle()
	require.False(t, rep.Failed(), "%+v", rep.Polls)
	require.Equal(t, n, countEvents(rep, quota.EventFiring, ""))
	require.Zero(t, rep.Undelivered, "nothing undelivered after the cycle's delivery")

	// Webhook: a digest names every incident, once, and links the status page.
	hook := h.webhookMessages()
	require.NotEmpty(t, hook)
	require.LessOrEqual(t, len(hook), 5)
	var hookText []string
	for _, m := range hook {
		hookText = append(hookText, string(m.Blocks))
	}
	named := courses(hookText...)
	require.Len(t, named, n, "every incident is in the digest")
	for c, k := range named {
		require.Equal(t, 1, k, "%s is named once", c)
	}
	require.Contains(t, strings.Join(hookText, ""), statusPage+"/|status page")

	// Bot: one digest, every incident in its thread, once.
	bot := h.botMessages()
	require.LessOrEqual(t, len(bot), 5)
	var parents []slacksink.Received
	for _, m := range bot {
		if m.ThreadTS == "" {
			parents = append(parents, m)
		}
	}
	require.Len(t, parents, 1, "one digest")
	parent := parents[0]
	var thread []string
	for _, r := range h.slack.Replies(parent.Channel, parent.TS) {
		thread = append(thread, string(r.Blocks))
	}
	named = courses(thread...)
	require.Len(t, named, n, "every incident is in the digest's thread")
	for c, k := range named {
		require.Equal(t, 1, k, "%s is in the thread once", c)
	}
	// Each incident's thread is the digest's, for its later events.
	st := h.w.Store()
	for _, ev := range rep.Events {
		th, ok, err := st.Thread("bot", ev.Key)
		require.NoError(t, err)
		require.True(t, ok, ev.Key.String())
		require.Equal(t, store.Thread{Channel: parent.Channel, TS: parent.TS}, th)
	}
	require.NoError(t, st.Release())

	// They resolve together: again a handful of messages.
	before := len(h.slack.Messages())
	for i := range n {
		require.NoError(t, h.cloud.Cloud.GrowContainer(alice, fmt.Sprintf("data-%03d", i), -5*gib))
	}
	rep = h.cycle()
	require.Equal(t, n, countEvents(rep, quota.EventResolved, ""))
	require.Zero(t, rep.Undelivered)
	require.LessOrEqual(t, len(h.slack.Messages())-before, 10, "five per notifier at most")
}

// TestServiceViewDedup: a project that an account sees is reported (and
// acted on) once, as the account's; the service view still reports the
// projects no account sees.
func TestServiceViewDedup(t *testing.T) {
	h := newQuietHarness(t, crowd(3), quietOptions{service: true, rules: rulesNearly + `
  - name: rebalance
    resource: pithos.diskspace
    when: ratio > 0.95
    severity: critical
    action:
      reassign:
        kind: container
        to: ["course-*"]
`})
	rep := h.cycle()
	require.False(t, rep.Failed(), "%+v", rep.Polls)
	firing := map[string][]string{} // rule/project → accounts it fired through
	for _, ev := range rep.Events {
		if ev.Kind == quota.EventFiring {
			k := ev.Key.Rule + "/" + ev.Key.Project
			firing[k] = append(firing[k], ev.Key.Account)
		}
	}
	for i := range 3 {
		for _, rule := range []string{"nearly-full", "rebalance"} {
			require.Equal(t, []string{"alice"}, firing[fmt.Sprintf("%s/c%07d-0000-4000-8000-%012d", rule, i, i)], "reported once, as the account's")
		}
	}
	require.Equal(t, []string{watcher.ServiceAccount}, firing["nearly-full/b0b-lab"], "what only the service view sees is still reported")
	require.Equal(t, []string{watcher.ServiceAccount}, firing["rebalance/b0b-lab"])
	for _, r := range rep.Plan {
		require.Equal(t, "alice", r.Account, "the service view never plans")
	}
	st := h.w.Store()
	insts, err := st.Instances()
	require.NoError(t, err)
	require.NoError(t, st.Release())
	for _, in := range insts {
		if in.Key.Account == watcher.ServiceAccount {
			require.Equal(t, "b0b-lab", in.Key.Project, "no service instance for what alice sees: %s", in.Key)
		}
	}
}

// TestSilenceMatches checks the matchers: globs on the rule, the project
// by id or name, and the resource; every matcher set must match.
func TestSilenceMatches(t *testing.T) {
	k := quota.InstanceKey{Rule: "container-rebalance", Account: "alice", Project: cs333, Resource: quota.DiskSpace}
	tests := []struct {
		name string
		sl   store.Silence
		want bool
	}{
		{"rule", store.Silence{Rule: "container-rebalance"}, true},
		{"rule glob", store.Silence{Rule: "container-*"}, true},
		{"other rule", store.Silence{Rule: "vm-*"}, false},
		{"project by id", store.Silence{Project: cs333}, true},
		{"project by name", store.Silence{Project: "CS333 lab assignments"}, true},
		{"project by name glob", store.Silence{Project: "CS333*"}, true},
		{"other project", store.Silence{Project: "CS101*"}, false},
		{"resource glob", store.Silence{Resource: "pithos.*"}, true},
		{"other resource", store.Silence{Resource: "cyclades.*"}, false},
		{"all must match", store.Silence{Rule: "container-*", Resource: "cyclades.*"}, false},
		{"all match", store.Silence{Rule: "*", Project: "CS333*", Resource: "pithos.diskspace"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, watcher.SilenceMatches(tt.sl, k, "CS333 lab assignments"))
		})
	}
	require.False(t, watcher.SilenceMatches(store.Silence{Rule: "*"}, quota.InstanceKey{Account: "alice"}, ""), "poll events are never silenced")
}

func TestSilenceSpecCheck(t *testing.T) {
	ok := watcher.SilenceSpec{Rule: "r", For: time.Hour, Comment: "why"}
	require.NoError(t, ok.Check())
	for name, s := range map[string]watcher.SilenceSpec{
		"no matcher": {For: time.Hour, Comment: "why"},
		"bad glob":   {Rule: "[", For: time.Hour, Comment: "why"},
		"no for":     {Rule: "r", Comment: "why"},
		"too long":   {Rule: "r", For: 100 * 24 * time.Hour, Comment: "why"},
		"no comment": {Rule: "r", For: time.Hour, Comment: "  "},
	} {
		require.Error(t, s.Check(), name)
	}
}

// silenceSeed silences the seed's full project for d, straight into the
// store (no daemon runs: the watcher is closed for it).
func (h *harness) silenceSeed(d time.Duration) store.Silence {
	h.t.Helper()
	require.NoError(h.t, h.w.Close())
	sl, err := watcher.AddSilence(context.Background(), h.cfg,
		watcher.SilenceSpec{Rule: "container-*", Project: "system:*", For: d, Comment: "course migration"}, h.clock.Now())
	require.NoError(h.t, err)
	h.start()
	return sl
}

// TestSilenceKeepsQuietAndStill: a silenced incident is evaluated and
// recorded, but tells nothing and moves nothing; plan shows why; the
// silence survives a restart; when it ends the incident is told.
func TestSilenceKeepsQuietAndStill(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	sl := h.silenceSeed(20 * time.Minute)
	require.Equal(t, uint64(1), sl.ID)
	h.restart()

	rep := h.cycle()
	require.Zero(t, countEvents(rep, quota.EventFiring, ""))
	require.Empty(t, h.slack.Messages(), "no message")
	require.Empty(t, h.journal(), "no move")
	require.Equal(t, alice, h.container("course_container").Project)
	require.Len(t, rep.Plan, 1)
	require.True(t, rep.Plan[0].Skipped)
	require.Equal(t, "silenced by 1: course migration", rep.Plan[0].Reason)
	st := h.w.Store()
	insts, err := st.Instances()
	require.NoError(t, err)
	require.NoError(t, st.Release())
	require.Len(t, insts, 1, "still evaluated and recorded")
	require.Equal(t, quota.StateFiring, insts[0].State)
	page := httptest.NewRecorder()
	h.w.Handler(nil).ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Contains(t, page.Body.String(), `<h2>Silences <span class="count">1</span></h2>`)
	require.Regexp(t, `<tr><td>1</td><td>container-\*</td><td>system:\*</td><td>[^<]*</td><td>[^<]*</td><td>course migration</td></tr>`, page.Body.String(), "the status page shows the silence")
	api := httptest.NewRecorder()
	h.w.Handler(nil).ServeHTTP(api, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(api.Body.Bytes(), &rows))
	require.NotEmpty(t, rows)
	require.Equal(t, "container-rebalance", rows[0]["rule"])
	require.Equal(t, "silenced by 1: course migration", rows[0]["silenced"], "the API marks silenced rows as status --output json does")
	require.NotContains(t, rows[len(rows)-1], "silenced", "only silenced rows say so")

	rep = h.cycle() // +10m: still silenced
	require.Empty(t, rep.Events)
	require.Empty(t, h.slack.Messages())

	h.clock.Advance(10 * time.Minute)
	rep = h.cycle() // +25m: the silence is over: told, and acted on
	require.Equal(t, 1, countEvents(rep, quota.EventFiring, ""))
	require.True(t, rep.Events[0].Repeat, "told as still firing")
	require.Len(t, h.journal(), 1)
	require.NotEmpty(t, h.slack.Messages())
}

// TestSilenceHidesResolution: an incident that opened and resolved under
// a silence is never told, not even its resolution.
func TestSilenceHidesResolution(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: container-full
    resource: pithos.diskspace
    when: ratio > 0.95
    clear: ratio < 0.90
`)
	h.silenceSeed(time.Hour)
	require.Zero(t, countEvents(h.cycle(), quota.EventFiring, ""))
	require.NoError(t, h.cloud.Cloud.GrowContainer(alice, "course_container", -10*gib))
	require.Zero(t, countEvents(h.cycle(), quota.EventResolved, ""))
	h.clock.Advance(time.Hour)
	require.Empty(t, h.cycle().Events)
	require.Empty(t, h.slack.Messages())
}

// TestSilenceWhileRunning: a silence added while the daemon runs goes
// through its control socket, is in force at the next cycle, within
// seconds, and ending it is too.
func TestSilenceWhileRunning(t *testing.T) {
	h := newQuietHarness(t, crowd(1), quietOptions{schedule: "@every 1s", rules: `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.99
    clear: ratio < 0.90
`})
	d := h.runDaemon(t, watcher.RunOptions{Notify: func(string) error { return nil }})
	sock := watcher.ControlSocket(h.cfg.Store.Path)
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 10*time.Millisecond)
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	ctx := context.Background()
	sl, err := watcher.AddSilence(ctx, h.cfg, watcher.SilenceSpec{Project: "course-*", For: time.Hour, Comment: "exams", By: "tester"}, h.clock.Now())
	require.NoError(t, err, "through the daemon, which holds the store")
	list, err := watcher.ListSilences(ctx, h.cfg)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, sl.ID, list[0].ID)
	require.NotEqual(t, "tester", list[0].CreatedBy, "who asked is what the kernel says")

	// The project crosses; the next cycles (a second apart) record the
	// incident and tell nothing.
	require.NoError(t, h.cloud.Cloud.GrowContainer(alice, "data-000", gib/2))
	firing := func() bool {
		insts, err := h.w.Store().Instances()
		return err == nil && len(insts) == 1 && insts[0].State == quota.StateFiring
	}
	require.Eventually(t, firing, 10*time.Second, 20*time.Millisecond)
	time.Sleep(1500 * time.Millisecond) // a cycle more
	require.Empty(t, h.slack.Messages())

	_, err = watcher.ExpireSilence(ctx, h.cfg, sl.ID, h.clock.Now())
	require.NoError(t, err)
	_, err = watcher.ExpireSilence(ctx, h.cfg, 42, h.clock.Now())
	require.ErrorContains(t, err, "not found")
	require.Eventually(t, func() bool { return len(h.slack.Messages()) >= 2 }, 10*time.Second, 20*time.Millisecond,
		"told by both notifiers once the silence ended")
	// The protocol itself: one JSON object a line, one answer.
	for req, want := range map[string]string{
		`{"op":"silence_list"}`:                                      `"ok":true`,
		`{"op":"frobnicate"}`:                                        `{"ok":false,"error":"unknown op \"frobnicate\""}`,
		`{"op":"silence_add","project":"x","for":"2h"}`:              `"error":"--comment is required`,
		`{"op":"silence_add","rule":"x","for":"soon","comment":"c"}`: `"error":"for \"soon\": `,
		`not json`: `"error":"bad request: `,
	} {
		conn, err := net.Dial("unix", sock)
		require.NoError(t, err)
		_, err = conn.Write([]byte(req + "\n"))
		require.NoError(t, err)
		answer, err := io.ReadAll(conn)
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		require.Contains(t, string(answer), want, req)
	}

	require.NoError(t, d.stop(t))
	_, err = os.Stat(sock)
	require.ErrorIs(t, err, os.ErrNotExist, "the socket goes with the daemon")

	// No daemon: the commands work on the store.
	require.NoError(t, h.w.Close())
	list, err = watcher.ListSilences(ctx, h.cfg)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.True(t, list[0].Expired)
}

// TestCrowdCrossingWithActions: the same crowd under a rule that acts and
// can move nothing (no destination) adds 150 refusals to the cycle: still
// a handful of messages per notifier, nothing undelivered.
func TestCrowdCrossingWithActions(t *testing.T) {
	const n = 150
	h := newQuietHarness(t, crowd(n), quietOptions{rules: `
  - name: rebalance
    resource: pithos.diskspace
    when: ratio > 0.95
    severity: critical
    action:
      reassign:
        kind: container
        to: ["spare-*"]
`})
	rep := h.cycle()
	require.Equal(t, n, countEvents(rep, quota.EventFiring, ""))
	require.Equal(t, n, countEvents(rep, quota.EventAction, quota.ResultSkipped))
	require.Zero(t, rep.Undelivered)
	require.LessOrEqual(t, len(h.webhookMessages()), 5)
	require.LessOrEqual(t, len(h.botMessages()), 5)
	var all []string
	for _, m := range h.botMessages() {
		all = append(all, string(m.Blocks))
	}
	require.Len(t, courses(all...), n)
}

// TestDigestSettledAsItGoes: a delivery that dies after a digest's parent
// and first reply has recorded those incidents; after the restart the
// others go under the same parent, and nothing is sent twice.
func TestDigestSettledAsItGoes(t *testing.T) {
	const n = 150
	h := newQuietHarness(t, crowd(n), quietOptions{})
	host := strings.TrimPrefix(h.slack.URL, "http://")
	h.withOptions(func(o *watcher.Options) {
		// The webhook's digest, the bot's parent and first reply; then the
		// daemon dies.
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &crashAfter{slackHost: host, n: 3}}
	})
	h.clock.Advance(5 * time.Minute)
	require.PanicsWithValue(t, "the daemon died mid-delivery", func() { _, _ = h.w.Cycle(context.Background()) })
	require.Len(t, h.botMessages(), 2)

	h.withOptions(func(*watcher.Options) {}) // restarted
	rep := h.cycle()
	require.Zero(t, rep.Undelivered)
	require.Len(t, h.webhookMessages(), 1, "the webhook's digest went before the crash, once")
	var parents []slacksink.Received
	for _, m := range h.botMessages() {
		if m.ThreadTS == "" {
			parents = append(parents, m)
		}
	}
	require.Len(t, parents, 1, "one digest")
	var thread []string
	for _, r := range h.slack.Replies(parents[0].Channel, parents[0].TS) {
		thread = append(thread, string(r.Blocks))
	}
	named := courses(thread...)
	require.Len(t, named, n)
	for c, k := range named {
		require.Equal(t, 1, k, "%s told once", c)
	}
}
