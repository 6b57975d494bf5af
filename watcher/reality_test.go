package watcher_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

// cpuProjects is alice with a system project full of CPU and two projects
// A and B with room; a shared VM of 4 CPUs sits in the system project.
func cpuProjects() *synnefosim.Scenario {
	lims := func(cpu int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{
			quota.VM:   {Member: 5, Project: 5},
			quota.CPU:  {Member: cpu, Project: cpu},
			quota.RAM:  {Member: 64 * gib, Project: 64 * gib},
			quota.Disk: {Member: 100 * gib, Project: 100 * gib},
		}
	}
	return &synnefosim.Scenario{
		Users: []synnefosim.User{{UUID: alice, Name: "alice@example.org", Token: tokenA}},
		Projects: []synnefosim.Project{
			{ID: alice, System: true, Members: []string{alice}, Limits: lims(4)},
			{ID: projA, Name: "project-a", Owner: alice, Members: []string{alice}, Limits: lims(16)},
			{ID: projB, Name: "project-b", Owner: alice, Members: []string{alice}, Limits: lims(8)},
		},
		Flavors: []synnefosim.Flavor{{ID: 1, VCPUs: 4, RAM: 4096, Disk: 20}},
		Servers: []synnefosim.VM{{ID: 4242, Name: "shared-vm", Owner: alice, Flavor: 1, Status: "ACTIVE", Shared: true}},
	}
}

const vmRule = `
  - name: vm-rebalance
    resource: cyclades.cpu
    when: ratio >= 1
    clear: ratio < 0.8
    action:
      reassign:
        kind: server
        to: ["project-*"]
%s`

func server(t *testing.T, h *harness, id int) synnefosim.VM {
	t.Helper()
	for _, s := range h.cloud.Cloud.State().Servers {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("server %d not found", id)
	return synnefosim.VM{}
}

func TestSharedVMStaysShared(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		shared      bool
	}{
		{"kept by default", "", true},
		{"unshared on purpose", "        keep_shared: false\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessFrom(t, cpuProjects(), fmt.Sprintf(vmRule, tc.extra))
			rep := h.cycle()
			require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
			require.Equal(t, quota.ActionVerified, rep.Plan[0].State, "%+v", rep.Plan[0])
			vm := server(t, h, 4242)
			require.Equal(t, projA, vm.Project)
			require.Equal(t, tc.shared, vm.Shared)
			for _, v := range h.cloud.Cloud.State().Volumes {
				if v.Server == 4242 && v.Index == 0 {
					require.Equal(t, tc.shared, v.Shared, "the system volume follows its VM")
				}
			}
		})
	}
}

// releaseHook is the real client (memberships included) with a hook run
// before every reassign.
type releaseHook struct {
	*client.Client
	before func()
}

func (c *releaseHook) Reassign(ctx context.Context, it quota.Item, project string) error {
	if c.before != nil {
		c.before()
	}
	return c.Client.Reassign(ctx, it, project)
}

func (h *harness) startWith(wrap func(*client.Client) watcher.Cloud) {
	h.t.Helper()
	require.NoError(h.t, h.w.Close())
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := watcher.New(context.Background(), watcher.Options{
		Config: h.cfg, Now: h.clock.Now, NotifyRate: 1000, Logger: log,
		NewCloud: func(a config.Account) (watcher.Cloud, error) {
			c, err := client.New(client.Config{AuthURL: h.cfg.Cloud.AuthURL, Token: a.Token.Reveal()})
			return wrap(c), err
		},
	})
	require.NoError(h.t, err)
	h.w = w
	h.t.Cleanup(func() { _ = w.Close() })
}

func TestDestinationsAreActiveProjectsWithAcceptedMembership(t *testing.T) {
	sc := cpuProjects()
	const projC = "cccc0000-0000-4000-8000-00000000000c"
	sc.Projects = append(sc.Projects, synnefosim.Project{ID: projC, Name: "project-c", Owner: alice,
		Members: []string{alice}, Limits: sc.Projects[1].Limits})
	h := newHarnessFrom(t, sc, fmt.Sprintf(vmRule, ""))
	require.NoError(t, h.cloud.Cloud.SetMembership(projA, alice, "leave_requested"))
	require.NoError(t, h.cloud.Cloud.SetProjectState(projB, "suspended"))
	require.NoError(t, h.cloud.Cloud.SetMembership(projC, alice, "removed"))
	rep := h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	r := rep.Plan[0]
	require.True(t, r.Skipped, "%+v", r)
	require.Contains(t, r.Reason, "alice@example.org's membership in project-a is leave_requested")
	require.Contains(t, r.Reason, "project-b is suspended")
	// A former member's holding is not listed as one to move into, nor
	// called full.
	require.NotContains(t, r.Reason, "project-c")
	require.NotContains(t, r.Reason, "free")
	require.Equal(t, alice, server(t, h, 4242).Project)

	// Accepted again: the VM moves there.
	require.NoError(t, h.cloud.Cloud.SetMembership(projA, alice, "accepted"))
	h.clock.Advance(2 * time.Hour) // the listing is refreshed hourly
	rep = h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.Equal(t, projA, rep.Plan[0].To, "%+v", rep.Plan[0])
	require.Equal(t, projA, server(t, h, 4242).Project)
}

func TestDriftingSourceIsNotFull(t *testing.T) {
	t.Run("seen in the numbers", func(t *testing.T) {
		sc := cpuProjects()
		sc.Drift = []synnefosim.Drift{{User: alice, Project: alice, Resource: quota.RAM, Amount: 1}}
		h := newHarnessFrom(t, sc, fmt.Sprintf(vmRule, ""))
		rep := h.cycle()
		require.NotEmpty(t, rep.Plan)
		require.True(t, rep.Plan[0].Skipped, "%+v", rep.Plan)
		require.Contains(t, rep.Plan[0].Reason, "the cloud's accounting for alice@example.org (personal) is inconsistent (it records less cyclades.ram than shared-vm holds)")
		require.Equal(t, alice, server(t, h, 4242).Project)
	})
	t.Run("refused by the cloud", func(t *testing.T) {
		h := newHarnessFrom(t, cpuProjects(), fmt.Sprintf(vmRule, "        max_items: 1\n"))
		hook := &releaseHook{}
		h.startWith(func(c *client.Client) watcher.Cloud { hook.Client = c; return hook })
		hook.before = func() {
			// The quotaholder loses count between the poll and the call.
			require.NoError(t, h.cloud.Cloud.SetDrift(alice, alice, quota.RAM, 1))
			hook.before = nil
		}
		rep := h.cycle()
		require.Len(t, rep.Plan, 1, "%+v %+v", rep.Plan, rep.Polls)
		require.Equal(t, quota.ActionFailed, rep.Plan[0].State, "%+v", rep.Plan[0])
		want := "the cloud's accounting for alice@example.org (personal) is inconsistent (it records less cyclades.ram than shared-vm holds)"
		require.Equal(t, want, rep.Plan[0].Error)
		require.Contains(t, strings.Join(h.slackTexts(), "\n"), "inconsistent")

		// The drift, now in the numbers, keeps the source from being tried
		// again while they stay the same: not a single reassign.
		h.clock.Advance(time.Hour) // past the cooldown
		h.cloud.Cloud.ResetRequests()
		rep = h.cycle()
		require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
		require.True(t, rep.Plan[0].Skipped)
		require.Contains(t, rep.Plan[0].Reason, "inconsistent")
		require.Contains(t, rep.Plan[0].Reason, "until its numbers change")
		for _, rq := range h.cloud.Cloud.Requests() {
			require.False(t, rq.Method == "POST" && strings.HasSuffix(rq.Path, "/action"), "no reassign: %+v", rq)
		}

		// Reconciled (the numbers change): the VM moves.
		require.NoError(t, h.cloud.Cloud.SetDrift(alice, alice, quota.RAM, 0))
		h.clock.Advance(time.Hour)
		rep = h.cycle()
		require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
		require.Equal(t, quota.ActionVerified, rep.Plan[0].State, "%+v", rep.Plan[0])
	})
}

func TestTokenExpiryIsWarnedAndARenewedTokenNeedsNoRestart(t *testing.T) {
	sc := twoProjects(20*gib, 20*gib)
	sc.Users[0].TokenDuration = synnefosim.Duration(72 * time.Hour)
	h := newHarnessFrom(t, sc, rulesSeed)
	h.cloud.Cloud.Now = h.clock.Now // one clock for the cloud and the watcher
	rep := h.cycle()
	require.Equal(t, 1, countEvents(rep, quota.EventTokenExpiring, ""), "%+v", rep.Events)
	_, body := serve(t, h.w.Handler(nil), "/metrics")
	require.Contains(t, body, `quotawatch_token_expiry_timestamp_seconds{account="alice"}`)
	require.Contains(t, strings.Join(h.slackTexts(), "\n"), "The token of account alice expires")

	rep = h.cycle()
	require.Zero(t, countEvents(rep, quota.EventTokenExpiring, ""), "told once per token")
	h.restart()
	rep = h.cycle()
	require.Zero(t, countEvents(rep, quota.EventTokenExpiring, ""), "a restart does not repeat it")

	// Expired: polls fail until an operator renews the token and puts it
	// in the token file; the next poll succeeds with it, no restart.
	h.clock.Advance(73 * time.Hour)
	rep = h.cycle()
	require.False(t, rep.Polls[0].OK, "%+v", rep.Polls)
	tok, exp, err := h.cloud.Cloud.RenewToken(alice, "")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "alice.token"), []byte(tok+"\n"), 0o600))
	rep = h.cycle()
	require.True(t, rep.Polls[0].OK, "%+v", rep.Polls)
	// The renewed token expires within the warning too: it is a new token,
	// told once.
	require.Equal(t, 1, countEvents(rep, quota.EventTokenExpiring, ""), "%+v", rep.Events)
	_, body = serve(t, h.w.Handler(nil), "/metrics")
	require.Contains(t, body, fmt.Sprintf(`quotawatch_token_expiry_timestamp_seconds{account="alice"} %g`, float64(exp.Unix())))
}

func TestComponentTokensServiceViewIsTheUnion(t *testing.T) {
	sc := cpuProjects()
	sc.Containers = []synnefosim.Container{{Account: alice, Name: "data", Project: projA, Bytes: gib}}
	sc.Projects[1].Limits[quota.DiskSpace] = synnefosim.Limit{Member: 10 * gib, Project: 10 * gib}
	sc.ComponentTokens = map[string]string{"cyclades": "cyclades-token", "pithos": "pithos-token"}
	h := newHarnessFrom(t, sc, `
  - name: nearly-full
    resource: "*"
    when: project_ratio > 2
`)
	h.cfg.Cloud.ServiceTokens = []config.ServiceToken{
		{Component: "cyclades", Token: "cyclades-token"},
		{Component: "pithos", Token: "pithos-token"},
	}
	h.cfg.Cloud.Accounts = nil
	h.restart()
	rep := h.cycle()
	require.False(t, rep.Failed(), "%+v", rep.Polls)
	require.Equal(t, watcher.ServiceAccount, rep.Polls[0].Account)
	seen := map[string]bool{}
	for _, k := range mustKeys(t, h) {
		if k.Account == watcher.ServiceAccount && k.Project == projA {
			seen[k.Resource] = true
		}
	}
	require.True(t, seen[quota.CPU], "cyclades' token sees cyclades.cpu: %v", seen)
	require.True(t, seen[quota.DiskSpace], "pithos' token sees pithos.diskspace: %v", seen)
}

func mustKeys(t *testing.T, h *harness) []quota.Key {
	t.Helper()
	ks, err := h.w.Store().Keys()
	require.NoError(t, err)
	return ks
}

const adminUUID = "ad000000-0000-4000-8000-0000000000ad"

// raiseHarness is cpuProjects with the shared VM in project-a, whose CPU
// limit is full, a project admin, and the rule given, with the admin token
// configured.
func raiseHarness(t *testing.T, rule string) *harness {
	t.Helper()
	sc := cpuProjects()
	sc.Users = append(sc.Users, synnefosim.User{UUID: adminUUID, Name: "admin@example.org", Token: "admin-token"})
	sc.ProjectAdmins = []string{adminUUID}
	sc.ServiceToken = "svc-token"
	sc.Servers[0].Project = projA
	sc.Projects[1].Limits[quota.CPU] = synnefosim.Limit{Member: 4, Project: 4}
	h := newHarnessFrom(t, sc, "")
	rs, err := rules.ParseBytes([]byte("rules:\n"+rule), rules.ParseOptions{Notifiers: []string{"ops"}})
	require.NoError(t, err)
	h.cfg.Rules = rs
	h.cfg.Cloud.AdminToken = "admin-token"
	h.restart()
	return h
}

const raiseRule = `
  - name: raise-cpu
    resource: cyclades.cpu
    projects: [project-a]
    when: project_ratio >= 0.5
    cooldown: 1h
    action:
      raise_limit:
        level: both
        by: 50%
        max: 8
        self_approve: true
`

func TestRaiseLimitAsTheOperator(t *testing.T) {
	h := raiseHarness(t, raiseRule)
	rep := h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	row := rep.Plan[0]
	require.Equal(t, quota.KindLimit, row.Kind)
	require.Equal(t, quota.ActionVerified, row.State, "%+v", row)
	require.NotNil(t, row.Raise)
	require.True(t, row.Raise.Approved)
	q := h.cloud.Cloud.Quota(alice, projA, quota.CPU)
	require.Equal(t, int64(6), q.Limit)
	require.Equal(t, int64(6), q.ProjectLimit)
	text := strings.Join(h.slackTexts(), "\n")
	require.Contains(t, text, fmt.Sprintf("raise-cpu: raised the project limit of project-a from 4 to 6 and the member limit of project-a from 4 to 6 (cyclades.cpu, application %d, approved)", row.Raise.Application))

	// Journaled: the actions show it.
	j := h.journal()
	require.Len(t, j, 1)
	require.Equal(t, quota.KindLimit, j[0].Kind)
	require.Equal(t, "cyclades.cpu project limit 4 → 6, member limit 4 → 6", j[0].ItemName)

	// Still firing within the cooldown: nothing is raised, and plan says why.
	rep = h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.True(t, rep.Plan[0].Skipped)
	require.Contains(t, rep.Plan[0].Reason, "cooldown: last move out of project-a")
	require.Equal(t, int64(6), h.cloud.Cloud.Quota(alice, projA, quota.CPU).ProjectLimit)

	// After it, raised again, clamped to the max (6 + 50% is 9).
	h.clock.Advance(time.Hour)
	rep = h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.Equal(t, int64(8), rep.Plan[0].Raise.ProjectTo, "%+v", rep.Plan[0])
	require.Equal(t, int64(8), h.cloud.Cloud.Quota(alice, projA, quota.CPU).ProjectLimit)

	// At the max: refused with the reason.
	h.clock.Advance(time.Hour)
	rep = h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.True(t, rep.Plan[0].Skipped, "%+v", rep.Plan[0])
	require.Equal(t, "the project limit and member limit of project-a is already at its max of 8", rep.Plan[0].Reason)
	require.Equal(t, int64(8), h.cloud.Cloud.Quota(alice, projA, quota.CPU).ProjectLimit)
}

// A raise reaches projects whose members' tokens the operator does not
// hold: from the service view. It never touches a suspended project, whose
// approval would reactivate it.
func TestRaiseLimitNeverOnASuspendedProject(t *testing.T) {
	h := raiseHarness(t, strings.ReplaceAll(strings.ReplaceAll(raiseRule, "[project-a]", `["`+projA+`"]`),
		"project_ratio >= 0.5", "project_ratio >= 1"))
	require.NoError(t, h.cloud.Cloud.SetProjectState(projA, "suspended"))
	h.cfg.Cloud.Accounts = nil
	h.cfg.Cloud.ServiceToken = "svc-token"
	h.restart()
	rep := h.cycle()
	require.Len(t, rep.Plan, 1, "%+v %+v", rep.Plan, rep.Polls)
	require.True(t, rep.Plan[0].Skipped, "%+v", rep.Plan[0])
	require.Contains(t, rep.Plan[0].Reason, "is suspended: approving a raise would reactivate it")
	require.Empty(t, h.cloud.Cloud.Applications(), "no application submitted")
	require.Contains(t, strings.Join(h.slackTexts(), "\n"), "no raise of the limit of")

	require.NoError(t, h.cloud.Cloud.SetProjectState(projA, "active"))
	rep = h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.Equal(t, quota.ActionVerified, rep.Plan[0].State, "%+v", rep.Plan[0])
	require.Equal(t, int64(6), h.cloud.Cloud.Quota(alice, projA, quota.CPU).ProjectLimit)
}

func TestSystemProjectsAreShownByTheirUsersEmail(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	h.cycle()
	const shown = "alice@example.org (personal)"
	require.Contains(t, strings.Join(h.slackTexts(), "\n"), shown, "messages")
	ps, err := h.w.Store().Projects()
	require.NoError(t, err)
	require.Equal(t, shown, ps[alice].Display, "kept with the names")
	require.Equal(t, "system:"+alice, ps[alice].Name, "globs still match the cloud's name")
	_, page := serve(t, h.w.Handler(nil), "/")
	require.Contains(t, page, shown, "the status page")
	_, api := serve(t, h.w.Handler(nil), "/api/v1/status")
	require.Contains(t, api, shown, "the tables' rows")
}
