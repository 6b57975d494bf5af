package watcher_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/notify"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/watcher"
)

// withButtons adds a bot notifier whose proposals carry Approve and Reject
// buttons, answered through Socket Mode, and makes every move a proposal.
func withButtons(t *testing.T, h *harness) {
	t.Helper()
	path := filepath.Join(h.dir, "config.yaml")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	bot := `  - name: bot
    slack:
      token: ` + slacksink.DefaultToken + `
      channel: "#quota"
      api_url: ` + h.slack.APIURL() + `
      app_token: ` + slacksink.DefaultAppToken + `
      approvers: [U0BOSS]
require_approval: true
rules:
`
	text := strings.Replace(string(raw), "\nrules:\n", "\n"+bot, 1)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	h.cfg, err = config.Load(path, config.Options{})
	require.NoError(t, err)
	h.restart()
}

// proposalMessage finds the bot's message of a proposal with its buttons.
func proposalMessage(t *testing.T, h *harness) slacksink.Received {
	t.Helper()
	for _, m := range h.slack.Messages() {
		if m.Endpoint == slacksink.EndpointPostMessage && strings.Contains(string(m.Blocks), notify.ActionApprove) {
			return m
		}
	}
	t.Fatalf("no proposal message with buttons in %d messages", len(h.slack.Messages()))
	return slacksink.Received{}
}

// TestSlackButtons: the buttons of a proposal reach the running daemon
// through Socket Mode (no inbound port), each envelope acknowledged; a
// stranger's press is refused, logged and told in the thread; an
// approver's applies the move once, and the proposal's message is updated
// in place, its buttons gone.
func TestSlackButtons(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	withButtons(t, h)
	rep := h.cycle()
	require.Equal(t, quota.ActionProposed, rep.Plan[0].State)
	id := rep.Plan[0].ActionID
	msg := proposalMessage(t, h)

	d := h.runDaemon(t, watcher.RunOptions{Notify: func(string) error { return nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	value := "1"
	require.Equal(t, uint64(1), id)

	require.NoError(t, h.slack.Press(ctx, "U0STRANGER", msg.Channel, msg.TS, notify.ActionApprove, value), "acknowledged")
	require.Eventually(t, func() bool { return strings.Contains(slackBodies(h), "U0STRANGER may not approve proposals") },
		10*time.Second, 20*time.Millisecond, "the refusal is told in the thread")
	require.Contains(t, h.logs.String(), "not an approver")
	require.Equal(t, alice, h.container("course_container").Charged)

	require.NoError(t, h.slack.Press(ctx, "U0BOSS", msg.Channel, msg.TS, notify.ActionApprove, value))
	require.Eventually(t, func() bool { return h.container("course_container").Charged == cs333 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		cur, ok := h.slack.Message(msg.Channel, msg.TS)
		return ok && !strings.Contains(string(cur.Blocks), notify.ActionApprove) && strings.Contains(string(cur.Blocks), "approved by U0BOSS")
	}, 10*time.Second, 20*time.Millisecond, "the proposal's message shows the outcome, without buttons")

	// A second press changes nothing.
	require.NoError(t, h.slack.Press(ctx, "U0BOSS", msg.Channel, msg.TS, notify.ActionReject, value))
	require.Eventually(t, func() bool { return strings.Contains(h.logs.String(), "already approved") }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, d.stop(t))

	a, err := h.w.Store().Action(id)
	require.NoError(t, err)
	require.Equal(t, "U0BOSS", a.By)
	require.Equal(t, quota.ActionVerified, a.State)
}

// TestSlackRejectButton: a proposal rejected from Slack is never applied.
func TestSlackRejectButton(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	withButtons(t, h)
	rep := h.cycle()
	require.Equal(t, quota.ActionProposed, rep.Plan[0].State)
	msg := proposalMessage(t, h)
	d := h.runDaemon(t, watcher.RunOptions{Notify: func(string) error { return nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, h.slack.Press(ctx, "U0BOSS", msg.Channel, msg.TS, notify.ActionReject, "1"))
	require.Eventually(t, func() bool {
		cur, ok := h.slack.Message(msg.Channel, msg.TS)
		return ok && strings.Contains(string(cur.Blocks), "Proposal 1 rejected* by U0BOSS") && !strings.Contains(string(cur.Blocks), notify.ActionReject)
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, d.stop(t))
	require.Equal(t, alice, h.container("course_container").Charged)
	a, err := h.w.Store().Action(1)
	require.NoError(t, err)
	require.Equal(t, quota.ActionRejected, a.State)
}
