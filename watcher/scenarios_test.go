package watcher_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

const (
	projA = "aaaa0000-0000-4000-8000-00000000000a"
	projB = "bbbb0000-0000-4000-8000-00000000000b"
)

// twoProjects is alice with a system project and two more projects, A and
// B, with the given diskspace limits (bytes, member = project).
func twoProjects(limitA, limitB int64) *synnefosim.Scenario {
	lim := func(n int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{quota.DiskSpace: {Member: n, Project: n}}
	}
	return &synnefosim.Scenario{
		Users: []synnefosim.User{{UUID: alice, Name: "alice@example.org", Token: tokenA}},
		Projects: []synnefosim.Project{
			{ID: alice, System: true, Members: []string{alice}, Limits: lim(10 * gib)},
			{ID: projA, Name: "project-a", Owner: alice, Members: []string{alice}, Limits: lim(limitA)},
			{ID: projB, Name: "project-b", Owner: alice, Members: []string{alice}, Limits: lim(limitB)},
		},
	}
}

func TestVMGoesWhereEveryResourceFits(t *testing.T) {
	lims := func(cpu, ram int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{
			quota.VM:   {Member: 5, Project: 5},
			quota.CPU:  {Member: cpu, Project: cpu},
			quota.RAM:  {Member: ram, Project: ram},
			quota.Disk: {Member: 100 * gib, Project: 100 * gib},
		}
	}
	sc := &synnefosim.Scenario{
		Users: []synnefosim.User{{UUID: alice, Name: "alice@example.org", Token: tokenA}},
		Projects: []synnefosim.Project{
			{ID: alice, System: true, Members: []string{alice}, Limits: lims(4, 8*gib)},
			// RAM fits here, CPU does not (2 free, the VM has 4).
			{ID: projA, Name: "ram-only", Owner: alice, Members: []string{alice}, Limits: lims(2, 64*gib)},
			// Everything fits here.
			{ID: projB, Name: "roomy", Owner: alice, Members: []string{alice}, Limits: lims(16, 16*gib)},
		},
		Flavors: []synnefosim.Flavor{{ID: 1, VCPUs: 4, RAM: 4096, Disk: 20}},
		Servers: []synnefosim.VM{{ID: 4242, Name: "big-vm", Owner: alice, Flavor: 1, Status: "ACTIVE"}},
	}
	h := newHarnessFrom(t, sc, `
  - name: vm-rebalance
    resource: cyclades.cpu
    when: ratio >= 1
    clear: ratio < 0.8
    action:
      reassign:
        kind: server
        to: ["ram-only", "roomy"]
        strategy: first_fit
`)
	rep := h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.Equal(t, "big-vm", rep.Plan[0].ItemName)
	require.Equal(t, projB, rep.Plan[0].To, "first_fit skips the project where CPU does not fit")
	require.Equal(t, quota.ActionVerified, rep.Plan[0].State)
	require.Equal(t, int64(4), h.cloud.Cloud.Quota(alice, projB, quota.CPU).Usage)
	require.Equal(t, 4*gib, h.cloud.Cloud.Quota(alice, projB, quota.RAM).Usage)
	require.Equal(t, 20*gib, h.cloud.Cloud.Quota(alice, projB, quota.Disk).Usage, "the system volume moves with the VM")
	require.Equal(t, int64(0), h.cloud.Cloud.Quota(alice, projA, quota.CPU).Usage)
	require.Equal(t, int64(0), h.cloud.Cloud.Quota(alice, alice, quota.VM).Usage)
}

func TestNoHeadroomExplainsOnce(t *testing.T) {
	sc := twoProjects(20*gib, 5*gib)
	sc.Projects[0].Limits[quota.DiskSpace] = synnefosim.Limit{Member: gib, Project: gib}
	sc.Containers = []synnefosim.Container{
		{Account: alice, Name: "course_data", Project: projA, Bytes: 12 * gib},
		{Account: alice, Name: "notes", Project: projA, Bytes: 7*gib + gib/2},
	}
	h := newHarnessFrom(t, sc, rulesSeed)
	rep := h.cycle()
	require.NotEmpty(t, rep.Plan)
	for _, r := range rep.Plan {
		require.True(t, r.Skipped, "nothing can move: %+v", r)
	}
	require.Positive(t, countEvents(rep, quota.EventAction, quota.ResultSkipped))
	texts := strings.Join(h.slackTexts(), "\n")
	require.Contains(t, texts, "course_data", "Slack says which item could not move")
	require.Contains(t, texts, "12.0 GiB", "and how much room it needed")
	sent := len(h.slack.Messages())

	for range 10 {
		rep = h.cycle()
		require.Zero(t, countEvents(rep, quota.EventAction, quota.ResultSkipped), "the same reason is not repeated every cycle")
	}
	require.Len(t, h.slack.Messages(), sent, "no new Slack messages while nothing changes")
	require.Equal(t, projA, h.container("course_data").Project)
	require.Empty(t, h.journal())
}

func TestNoPingPong(t *testing.T) {
	sc := twoProjects(100*gib, 100*gib)
	sc.Containers = []synnefosim.Container{
		{Account: alice, Name: "x", Project: projA, Bytes: 20 * gib},
		{Account: alice, Name: "y", Project: projA, Bytes: 72 * gib},
		{Account: alice, Name: "z", Project: projB, Bytes: 65 * gib},
	}
	h := newHarnessFrom(t, sc, `
  - name: rebalance
    resource: pithos.diskspace
    projects: ["project-*"]
    when: ratio > 0.9
    clear: ratio < 0.8
    cooldown: 5m
    action:
      reassign:
        kind: container
        to: ["project-*"]
`)
	rep := h.cycle()
	moved := moves(rep)
	require.Len(t, moved, 1, "%+v", rep.Plan)
	require.Equal(t, "x", moved[0].ItemName, "y does not fit in B; x does")
	require.Equal(t, projB, h.container("x").Project)

	// B now grows past the threshold; moving x back to A is refused for
	// 24h, and z does not fit in A.
	for range 20 {
		require.NoError(t, h.cloud.Cloud.GrowContainer(alice, "z", gib))
		h.cycle()
	}
	require.Equal(t, projB, h.container("x").Project, "x never goes back")
	require.Equal(t, projB, h.container("z").Project)
	acts := h.journal()
	require.Len(t, acts, 1, "one move in 21 cycles")
}

func TestPollFailuresAlertOnceAndBlockActions(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/account/v1.0/quotas", Status: 503}})
	var failed int
	for range 5 {
		rep := h.cycle()
		require.True(t, rep.Failed())
		require.Empty(t, rep.Plan, "no actions on insufficient data")
		failed += countEvents(rep, quota.EventPollFailed, "")
	}
	require.Equal(t, 1, failed, "one poll_failed after three failures in a row")
	require.Equal(t, alice, h.container("course_container").Project)
	require.Contains(t, strings.Join(h.slackTexts(), "\n"), "alice")

	h.cloud.Cloud.SetFaults(nil)
	rep := h.cycle()
	require.False(t, rep.Failed())
	require.Equal(t, 1, countEvents(rep, quota.EventPollRecovered, ""))
	require.Len(t, rep.Plan, 1, "acts again once the data is back")
	rep = h.cycle()
	require.Zero(t, countEvents(rep, quota.EventPollRecovered, ""))
}

func TestInterruptedMoveIsReconciledNotRepeated(t *testing.T) {
	t.Run("applied before the stop", func(t *testing.T) {
		h := newHarness(t, "seed.yaml", rulesSeed)
		// A previous run journaled the intent and the cloud applied the
		// move, but the run stopped before recording the outcome.
		st := h.w.Store()
		id, err := st.Intent(quota.Action{Time: h.clock.Now(), State: quota.ActionIntent, Move: quota.Move{
			Rule: "container-rebalance", Account: "alice", Kind: quota.KindContainer,
			ItemID: "course_container", ItemName: "course_container", From: alice, To: cs333,
			ToName: "CS333 lab assignments", Resource: quota.DiskSpace,
			Quantities: quota.ContainerQuantities(20615843020),
		}})
		require.NoError(t, err)
		require.NoError(t, st.Release())
		c, err := client.New(client.Config{AuthURL: h.cloud.AuthURL(), Token: tokenA})
		require.NoError(t, err)
		require.NoError(t, c.ReassignContainer(context.Background(), "course_container", cs333))
		h.cloud.Cloud.ResetRequests()

		h.restart()
		acts := h.journal()
		require.Len(t, acts, 1)
		require.Equal(t, id, acts[0].ID)
		require.Contains(t, []quota.ActionState{quota.ActionApplied, quota.ActionVerified}, acts[0].State)
		rep := h.cycle()
		require.Empty(t, rep.Plan, "nothing left to move")
		for _, r := range h.cloud.Cloud.Requests() {
			// The token request and the user catalogs are reads.
			if !strings.HasPrefix(r.Path, "/identity") && !strings.HasSuffix(r.Path, "/user_catalogs") {
				require.NotEqual(t, "POST", r.Method, "no second move: %+v", r)
			}
		}
		require.Len(t, h.journal(), 1)
	})
	t.Run("stopped during the call: the call is let finish", func(t *testing.T) {
		h := newHarness(t, "seed.yaml", rulesSeed)
		h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/object-store/v1/*", Method: "POST", Latency: synnefosim.Duration(2 * time.Second)}})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			// Stop the daemon while the POST is in flight.
			for {
				for _, r := range h.cloud.Cloud.Requests() {
					if r.Method == "GET" && strings.Contains(r.Query, "format=json") {
						time.Sleep(200 * time.Millisecond)
						cancel()
						return
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		h.clock.Advance(5 * time.Minute)
		rep, err := h.w.Cycle(ctx)
		require.NoError(t, err)
		require.True(t, rep.Interrupted)
		require.Len(t, rep.Plan, 1)
		require.Equal(t, quota.ActionVerified, rep.Plan[0].State, "the POST already sent finished within the stop's grace, and was read back")
		require.Equal(t, cs333, h.container("course_container").Project)
		h.cloud.Cloud.SetFaults(nil)

		h.restart()
		acts := h.journal()
		require.Len(t, acts, 1)
		require.Equal(t, quota.ActionVerified, acts[0].State)
		posts := 0
		for _, r := range h.cloud.Cloud.Requests() {
			if r.Method == "POST" && strings.HasPrefix(r.Path, "/object-store") {
				posts++
			}
		}
		require.Equal(t, 1, posts, "the POST is never re-sent")
	})
	t.Run("died before the call: given up only after the settle window", func(t *testing.T) {
		h := newHarness(t, "seed.yaml", rulesSeed)
		st := h.w.Store()
		_, err := st.Intent(quota.Action{Time: h.clock.Now(), State: quota.ActionIntent, Move: quota.Move{
			Rule: "container-rebalance", Account: "alice", Kind: quota.KindContainer,
			ItemID: "course_container", ItemName: "course_container", From: alice, To: cs333,
			ToName: "CS333 lab assignments", Resource: quota.DiskSpace,
			Quantities: quota.ContainerQuantities(20615843020),
		}})
		require.NoError(t, err)
		require.NoError(t, st.Release())

		// Within the window the move may still land: it stays open, is
		// not told, and nothing is sent in its place.
		h.restart()
		acts := h.journal()
		require.Len(t, acts, 1)
		require.Equal(t, quota.ActionUnknown, acts[0].State)
		for range 2 { // +5m, +10m
			rep := h.cycle()
			require.Empty(t, moves(rep), "%+v", rep.Plan)
			require.Equal(t, quota.ActionUnknown, h.journal()[0].State)
		}
		require.NotContains(t, strings.Join(h.slackTexts(), "\n"), "interrupted")

		// Past the window (+15m) it is failed (interrupted), told once.
		h.cycle()
		acts = h.journal()
		require.Equal(t, quota.ActionFailed, acts[0].State)
		require.True(t, acts[0].Interrupted)
		require.Contains(t, acts[0].Error, "interrupted")
		told := 0
		for _, txt := range h.slackTexts() {
			if strings.Contains(txt, "interrupted") {
				told++
			}
		}
		require.Equal(t, 1, told, "%q", h.slackTexts())
		for _, r := range h.cloud.Cloud.Requests() {
			require.False(t, r.Method == "POST" && strings.HasPrefix(r.Path, "/object-store"), "no POST while the move was open: %+v", r)
		}
	})
}

// A reassign the cloud is still processing when its answer is lost (the
// call timed out) is neither called failed nor sent again, nor replaced by
// another item: it is read back at every cycle until it lands.
func TestMoveStillProcessedIsWaitedFor(t *testing.T) {
	h := newHarness(t, "seed.yaml", strings.Replace(rulesSeed, "    severity: warning\n", "    severity: warning\n    cooldown: 1s\n", 1))
	// Longer than the client's 5s timeout.
	hold := 6 * time.Second
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/object-store/v1/*", Method: "POST", Hold: synnefosim.Duration(hold)}})
	start := time.Now()
	rep := h.cycle()
	mv := moves(rep)
	require.Len(t, mv, 1)
	require.Equal(t, "course_container", mv[0].ItemName)
	require.Equal(t, quota.ActionUnknown, mv[0].State, "read back in the source while still processed: unknown, not failed")
	require.Less(t, time.Since(start), hold, "the read-back came before the cloud was done")

	// Past the cooldown, still processing: nothing is sent, neither the
	// same item nor another in its place.
	rep = h.cycle()
	require.Empty(t, moves(rep), "%+v", rep.Plan)
	require.Equal(t, quota.ActionUnknown, h.journal()[0].State)
	require.Equal(t, alice, h.container("course_container").Project, "the cloud is still at it")

	require.Eventually(t, func() bool { return h.container("course_container").Project == cs333 }, 2*hold, 20*time.Millisecond)
	h.cycle()
	acts := h.journal()
	require.Len(t, acts, 1)
	require.Equal(t, quota.ActionVerified, acts[0].State)
	require.False(t, acts[0].Interrupted)
	h.cycle()
	require.Len(t, h.journal(), 1)
	posts := 0
	for _, r := range h.cloud.Cloud.Requests() {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/object-store") {
			posts++
		}
	}
	require.Equal(t, 1, posts, "one POST in all")
	moved := 0
	for _, txt := range h.slackTexts() {
		require.NotContains(t, txt, "failed")
		if strings.Contains(txt, "course_container") {
			moved++
		}
	}
	require.Equal(t, 1, moved, "the move is told once: %q", h.slackTexts())
}

func TestSlackOutageLosesNothing(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.slack.SetDown(true)
	rep := h.cycle() // firing + moved
	require.Equal(t, 2, rep.Undelivered)
	rep = h.cycle() // resolved
	require.Equal(t, 3, rep.Undelivered)
	h.cycle()
	require.Empty(t, h.slackTexts())

	// Restart while Slack is still down: the outbox survives.
	h.restart()
	h.slack.SetDown(false)
	h.clock.Advance(10 * time.Minute) // past any backoff
	rep = h.cycle()
	require.Zero(t, rep.Undelivered)
	texts := strings.Join(h.slackTexts(), "\n")
	iFiring := strings.Index(texts, "is at")
	iMoved := strings.Index(texts, "moved container course_container")
	iResolved := strings.Index(texts, "RESOLVED")
	require.True(t, iFiring >= 0 && iMoved > iFiring && iResolved > iMoved, "in order: %s", texts)
	// Delivered exactly once.
	rep = h.cycle()
	require.Zero(t, rep.Delivered)
	require.Equal(t, 1, strings.Count(strings.Join(h.slackTexts(), "\n"), "moved container course_container"))
}

func TestSteadyStateIsOneRequestPerAccount(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.999
`)
	h.cycle()
	for range 5 {
		h.cloud.Cloud.ResetRequests()
		h.cycle()
		reqs := h.cloud.Cloud.Requests()
		require.Len(t, reqs, 1, "%+v", reqs)
		require.Equal(t, "/account/v1.0/quotas", reqs[0].Path)
	}
	// Names are listed again after an hour, with the memberships.
	h.clock.Advance(time.Hour)
	h.cloud.Cloud.ResetRequests()
	h.cycle()
	reqs := h.cloud.Cloud.Requests()
	require.Len(t, reqs, 3, "%+v", reqs)
	require.Equal(t, "/account/v1.0/projects/memberships", reqs[2].Path)
}

// moves returns the rows of a report that are moves, not refusals.
func moves(rep *watcher.Report) []watcher.PlanRow {
	var out []watcher.PlanRow
	for _, r := range rep.Plan {
		if !r.Skipped {
			out = append(out, r)
		}
	}
	return out
}

func TestServiceTokenViewAlertsButNeverMoves(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: project-full
    resource: pithos.diskspace
    when: project_ratio > 0.95
    action:
      reassign:
        kind: container
`)
	h.cfg.Cloud.ServiceToken = config.Secret("svc-token")
	h.cfg.Cloud.Accounts = nil
	h.restart()
	rep := h.cycle()
	require.False(t, rep.Failed(), "%+v", rep.Polls)
	require.Equal(t, watcher.ServiceAccount, rep.Polls[0].Account)
	require.Equal(t, 1, countEvents(rep, quota.EventFiring, ""))
	ev := rep.Events[0]
	require.Equal(t, watcher.ServiceAccount, ev.Key.Account)
	require.Equal(t, alice, ev.Key.Project)
	require.Empty(t, rep.Plan, "the service view only alerts")
	require.Equal(t, alice, h.container("course_container").Project)
	for _, r := range h.cloud.Cloud.Requests() {
		require.NotContains(t, r.Path, "/object-store", "no listing, no move")
	}
}

func TestRetentionDropsOldHistory(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.999
`)
	h.cycle()
	first := h.clock.Now()
	k := quota.Key{Account: "alice", Project: cs333, Resource: quota.DiskSpace}
	st := h.w.Store()
	old, err := st.Series(k, first.Add(-time.Minute), first.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, old, 1)
	require.NoError(t, st.Release())

	h.clock.Advance(h.cfg.Store.Retention + 7*24*time.Hour)
	h.cycle()
	old, err = st.Series(k, first.Add(-time.Minute), first.Add(time.Minute))
	require.NoError(t, err)
	require.Empty(t, old, "history older than the retention is gone")
	last, ok, err := st.LastSeen(k)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, h.clock.Now(), last.UTC())
	require.NoError(t, st.Release())
}

func TestForecastFiresAcrossARestart(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: filling-up
    resource: pithos.diskspace
    when: days_to_full < 2
    clear: days_to_full > 3
`)
	fired := -1
	for i := range 14 {
		if i == 7 {
			h.restart() // the window comes back from the store
		}
		require.NoError(t, h.cloud.Cloud.GrowContainer(alice, "notes", 50<<20))
		rep := h.cycle()
		if countEvents(rep, quota.EventFiring, "") > 0 && fired < 0 {
			fired = i
			ev := rep.Events[0]
			require.InDelta(t, float64(288*50<<20), ev.GrowthPerDay, float64(1<<20), "50 MiB per 5 minutes")
			require.Less(t, float64(ev.DaysToFull), 1.0)
		}
	}
	// Three samples spanning an hour are needed: the 13th poll at the
	// earliest (12 intervals of 5 minutes), counting those before the restart.
	require.Equal(t, 12, fired)
}

func TestDryRunReportsButCallsNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rule  string
		extra string
	}{
		{"rule", strings.Replace(rulesSeed, "    severity: warning\n", "    severity: warning\n    dry_run: true\n", 1), ""},
		{"global", rulesSeed, "dry_run: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "seed.yaml", tc.rule, tc.extra)
			rep := h.cycle()
			mv := moves(rep)
			require.Len(t, mv, 1)
			require.True(t, mv[0].DryRun)
			require.Equal(t, cs333, mv[0].To)
			require.Equal(t, alice, h.container("course_container").Project, "nothing moved")
			for _, r := range h.cloud.Cloud.Requests() {
				// The token request and the user catalogs are reads.
				if !strings.HasPrefix(r.Path, "/identity") && !strings.HasSuffix(r.Path, "/user_catalogs") {
					require.Equal(t, "GET", r.Method, "%+v", r)
				}
			}
			acts := h.journal()
			require.Len(t, acts, 1)
			require.True(t, acts[0].DryRun)
			require.Contains(t, strings.Join(h.slackTexts(), "\n"), "DRY RUN")
			// The cooldown holds for reports too: no repeat next cycle.
			rep = h.cycle()
			require.Empty(t, moves(rep))
		})
	}
}

func TestBotThreadsAnIncident(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	// Replace the webhook notifier by a bot in the same fake Slack.
	h.cfg.Notifiers = []config.Notifier{{Name: "bot", Slack: config.Slack{
		Token: config.Secret(slacksink.DefaultToken), Channel: "#ops", APIURL: h.slack.APIURL(),
	}}}
	h.restart()

	h.cycle() // firing, then the move: a parent and a reply
	msgs := h.slack.Messages()
	var parent slacksink.Received
	for _, m := range msgs {
		if m.Endpoint == slacksink.EndpointPostMessage && m.ThreadTS == "" {
			parent = m
		}
	}
	require.NotEmpty(t, parent.TS, "%+v", msgs)
	replies := h.slack.Replies(parent.Channel, parent.TS)
	require.NotEmpty(t, replies)
	require.Contains(t, replies[len(replies)-1].Text, "course_container")

	h.cycle() // resolved: another reply, and the parent shows it
	replies2 := h.slack.Replies(parent.Channel, parent.TS)
	require.Greater(t, len(replies2), len(replies))
	require.Contains(t, replies2[len(replies2)-1].Text, "RESOLVED")
	cur, ok := h.slack.Message(parent.Channel, parent.TS)
	require.True(t, ok)
	require.Contains(t, strings.ToLower(cur.Text+string(cur.Blocks)), "resolved", "the parent is updated in place")

	// The thread id survives a restart in the store.
	h.restart()
	st := h.w.Store()
	th, ok, err := st.Thread("bot", quota.InstanceKey{Rule: "container-rebalance", Account: "alice", Project: alice, Resource: quota.DiskSpace})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, parent.TS, th.TS)
	require.NoError(t, st.Release())
	// Only one parent for the whole incident.
	parents := 0
	for _, m := range h.slack.Messages() {
		if m.Endpoint == slacksink.EndpointPostMessage && m.ThreadTS == "" {
			parents++
		}
	}
	require.Equal(t, 1, parents)
}

// Two rules firing on the same project in one cycle never plan the same
// item twice: the second sees the first's move.
func TestTwoRulesOneProjectNoDoubleMove(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed+`
  - name: empty-the-system-project
    resource: pithos.diskspace
    when: project == "`+alice+`"
    clear: usage < 0
    action:
      reassign:
        kind: container
        to: ["CS333*"]
`)
	rep := h.cycle()
	mv := moves(rep)
	require.Len(t, mv, 2, "%+v", rep.Plan)
	require.NotEqual(t, mv[0].ItemName, mv[1].ItemName)
	require.ElementsMatch(t, []string{"course_container", "notes"}, []string{mv[0].ItemName, mv[1].ItemName})
	for _, m := range mv {
		require.Equal(t, quota.ActionVerified, m.State)
	}
	require.Equal(t, cs333, h.container("notes").Project)
}

// Two accounts moving into one project in the same cycle: the second sees
// the project usage the first's move will add, so it does not overfill the
// project (which the cloud would refuse with a 413).
func TestTwoAccountsShareADestination(t *testing.T) {
	const bob = "b0b00000-0000-4000-8000-000000000002"
	lim := func(member, project int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{quota.DiskSpace: {Member: member, Project: project}}
	}
	sc := &synnefosim.Scenario{
		Users: []synnefosim.User{{UUID: alice, Token: tokenA}, {UUID: bob, Token: "bob-token"}},
		Projects: []synnefosim.Project{
			{ID: alice, System: true, Members: []string{alice}, Limits: lim(10*gib, 10*gib)},
			{ID: bob, System: true, Members: []string{bob}, Limits: lim(10*gib, 10*gib)},
			// Each member could take 8 GiB, the project only 10 GiB in all.
			{ID: projA, Name: "shared", Owner: alice, Members: []string{alice, bob}, Limits: lim(8*gib, 10*gib)},
		},
		Containers: []synnefosim.Container{
			{Account: alice, Name: "a-data", Bytes: 7 * gib}, {Account: alice, Name: "a-more", Bytes: 3 * gib},
			{Account: bob, Name: "b-data", Bytes: 7 * gib}, {Account: bob, Name: "b-more", Bytes: 3 * gib},
		},
	}
	h := newHarnessFrom(t, sc, `
  - name: spill
    resource: pithos.diskspace
    projects: ["system:*"]
    when: ratio > 0.95
    clear: ratio < 0.9
    action:
      reassign: {kind: container, to: ["shared"]}
`)
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "bob.token"), []byte("bob-token"), 0o600))
	h.cfg.Cloud.Accounts = append(h.cfg.Cloud.Accounts, config.Account{Name: "bob", Token: config.Secret("bob-token")})
	h.restart()
	rep := h.cycle()
	mv := moves(rep)
	require.Len(t, mv, 1, "only one 7 GiB container fits the shared project: %+v", rep.Plan)
	require.Equal(t, quota.ActionVerified, mv[0].State)
	for _, r := range rep.Plan {
		require.NotEqual(t, quota.ActionFailed, r.State, "no move is sent that the cloud must refuse: %+v", r)
	}
}

// A move the cloud answers with a server error may or may not have been
// applied: it is read back before it is called failed.
func TestServerErrorOnAMoveIsReadBack(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/object-store/v1/*", Method: "POST", Status: 503}})
	rep := h.cycle()
	mv := moves(rep)
	require.Len(t, mv, 1)
	require.Equal(t, quota.ActionFailed, mv[0].State, "still in the source when read back")
	reqs := h.cloud.Cloud.Requests()
	posted := false
	readBack := false
	for _, r := range reqs {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/object-store") {
			posted = true
		} else if posted && (r.Method == "GET" || r.Method == "HEAD") && strings.HasPrefix(r.Path, "/object-store") {
			readBack = true
		}
	}
	require.True(t, readBack, "the container was read back after the 503: %+v", reqs)
	require.Len(t, h.journal(), 1)
}

// Messages for a notifier removed from the configuration are set aside,
// not left pending forever.
func TestRemovedNotifierMessagesAreSetAside(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.slack.SetDown(true)
	rep := h.cycle()
	require.Equal(t, 2, rep.Undelivered)
	h.cfg.Notifiers = nil
	h.restart()
	h.clock.Advance(time.Hour)
	rep = h.cycle()
	require.Zero(t, rep.Undelivered)
	require.Contains(t, h.logs.String(), "set aside messages of notifiers no longer configured")
}

// A move whose answer and read-back are both lost is read back at every
// cycle, without a restart; still in the source, it is failed (interrupted)
// only once the settle window has passed, and told then, once.
func TestLostAnswerIsSettledAfterTheWindow(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed, "settle_window: 12m")
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{
		{Path: "/object-store/v1/*", Method: "POST", Status: 503},
		{Path: "/object-store/v1/*", Method: "HEAD", Status: 503},
	})
	rep := h.cycle()
	require.Equal(t, quota.ActionUnknown, moves(rep)[0].State, "outcome unknown")
	h.cloud.Cloud.SetFaults(nil)
	for range 2 { // +5m, +10m: within the window
		h.cycle()
		acts := h.journal()
		require.Len(t, acts, 1)
		require.Equal(t, quota.ActionUnknown, acts[0].State, "read back in the source within the window: %+v", acts[0])
	}
	h.cycle() // +15m
	acts := h.journal()
	require.Len(t, acts, 1)
	require.Equal(t, quota.ActionFailed, acts[0].State, "read back in the source past the window: %+v", acts[0])
	require.True(t, acts[0].Interrupted)
	require.Contains(t, acts[0].Error, "interrupted")
	h.cycle()
	told := 0
	for _, txt := range h.slackTexts() {
		if strings.Contains(txt, "interrupted") {
			told++
		}
	}
	require.Equal(t, 1, told, "%q", h.slackTexts())
}

// Items that cannot be listed are a refusal like any other: in every plan,
// told once per incident, and nothing moves until they can be listed.
func TestListingFailureIsARefusal(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/object-store/v1/*", Method: "GET", Status: 403}})
	rep := h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.True(t, rep.Plan[0].Skipped)
	require.Contains(t, rep.Plan[0].Reason, "listing containers of the project failed")
	require.Equal(t, 1, countEvents(rep, quota.EventAction, quota.ResultSkipped))
	rep = h.cycle()
	require.Len(t, rep.Plan, 1, "the refusal is in every plan")
	require.Zero(t, countEvents(rep, quota.EventAction, quota.ResultSkipped), "and told once")

	h.cloud.Cloud.SetFaults(nil)
	rep = h.cycle()
	mv := moves(rep)
	require.Len(t, mv, 1, "%+v", rep.Plan)
	require.Equal(t, quota.ActionVerified, mv[0].State)
	require.Len(t, h.journal(), 1, "one move in all")
}
