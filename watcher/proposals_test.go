package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/watcher"
)

func slackBodies(h *harness) string {
	var b strings.Builder
	for _, m := range h.slack.Messages() {
		b.Write(m.Body)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestDecisionsWhileRunning: approve and undo reach the running daemon,
// which holds the store and the clients, through its control socket, and
// take effect at once; who decided is the socket peer's user.
func TestDecisionsWhileRunning(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed, "require_approval: true")
	rep := h.cycle()
	require.Len(t, rep.Plan, 1)
	require.Equal(t, quota.ActionProposed, rep.Plan[0].State)
	id := rep.Plan[0].ActionID
	require.Equal(t, alice, h.container("course_container").Charged)

	d := h.runDaemon(t, watcher.RunOptions{Notify: func(string) error { return nil }})
	sock := watcher.ControlSocket(h.cfg.Store.Path)
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 10*time.Millisecond)

	ctx := context.Background()
	a, err := watcher.DecideOptions(ctx, h.cfg.Store.Path, watcher.Decision{Op: watcher.OpApprove, ID: id, By: "claimed", Comment: "ok"}, noLocal(t))
	require.NoError(t, err)
	require.Equal(t, quota.ActionVerified, a.State)
	require.NotEqual(t, "claimed", a.By, "who asked is what the kernel says")
	require.Equal(t, cs333, h.container("course_container").Charged)

	u, err := watcher.DecideOptions(ctx, h.cfg.Store.Path, watcher.Decision{Op: watcher.OpUndo, ID: id}, noLocal(t))
	require.NoError(t, err)
	require.Equal(t, id, u.UndoOf)
	require.Equal(t, alice, h.container("course_container").Charged)

	_, err = watcher.DecideOptions(ctx, h.cfg.Store.Path, watcher.Decision{Op: watcher.OpReject, ID: id}, noLocal(t))
	require.ErrorContains(t, err, "already approved")
	require.NoError(t, d.stop(t))
	require.Contains(t, slackBodies(h), "undo of action")
}

// TestDecisionByAStranger: someone not among the approvers is refused,
// logged and told in the proposal's thread; nothing moves until an
// approver approves.
func TestDecisionByAStranger(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed, "require_approval: true")
	rep := h.cycle()
	id := rep.Plan[0].ActionID
	ctx := context.Background()
	approvers := []string{"U0BOSS"}
	_, err := h.w.Decide(ctx, watcher.Decision{Op: watcher.OpApprove, ID: id, By: "U0STRANGER", Approvers: approvers})
	require.ErrorIs(t, err, watcher.ErrNotAllowed)
	require.Contains(t, h.logs.String(), "not an approver")
	require.Contains(t, slackBodies(h), "U0STRANGER may not approve proposals")
	require.Equal(t, alice, h.container("course_container").Charged)

	a, err := h.w.Decide(ctx, watcher.Decision{Op: watcher.OpApprove, ID: id, By: "U0BOSS", Approvers: approvers})
	require.NoError(t, err)
	require.Equal(t, "U0BOSS", a.By)
	require.Equal(t, cs333, h.container("course_container").Charged)
}

// noLocal fails the test if a decision does not go through the daemon.
func noLocal(t *testing.T) func() (watcher.Options, error) {
	return func() (watcher.Options, error) {
		t.Error("no daemon answered")
		return watcher.Options{}, errors.New("no daemon")
	}
}

// TestStatusPageListsProposals: the status page lists the proposals that
// wait for a decision and says which rules need approval.
func TestStatusPageListsProposals(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed, "require_approval: true")
	rep := h.cycle()
	require.Len(t, rep.Plan, 1)
	require.Equal(t, quota.ActionProposed, rep.Plan[0].State)
	page := httptest.NewRecorder()
	h.w.Handler(nil).ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/", nil))
	body := page.Body.String()
	require.Contains(t, body, `<h2>Open proposals <span class="count">1</span></h2>`)
	require.Regexp(t, fmt.Sprintf(`<tr><td>%d</td><td>[^<]*</td><td>[^<]*</td><td>container-rebalance</td><td>alice</td><td>container course_container</td>`, rep.Plan[0].ActionID), body)
	require.Contains(t, body, `<dd id="approval">required for every rule</dd>`)
}

// TestStatusPageApprovalPerRule: approval set on some rules names them.
func TestStatusPageApprovalPerRule(t *testing.T) {
	rulesYAML := strings.Replace(rulesSeed, "    action:\n", "    require_approval: true\n    action:\n", 1) + `
  - name: vm-alert
    resource: cyclades.vm
    when: ratio > 0.99
`
	h := newHarness(t, "seed.yaml", rulesYAML)
	page := httptest.NewRecorder()
	h.w.Handler(nil).ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Contains(t, page.Body.String(), `<dd id="approval">required for rules container-rebalance</dd>`)
}
