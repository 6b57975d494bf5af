package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// The seed scenario's ids.
const (
	aliceUUID = "0f2c6a1e-4b7d-4e21-9c3a-5d8e7f6a1b2c"
	cs333     = "c5333a1b-2f4e-4d6a-8b9c-0e1f2a3b4c5d"
)

// approvalCLI is the seed scenario with its rule's moves needing approval.
func approvalCLI(t *testing.T, extra string) *cli {
	t.Helper()
	c := newCLI(t)
	raw, err := os.ReadFile(c.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(c.cfg, []byte("require_approval: true\n"+extra+string(raw)), 0o600))
	return c
}

// slackText is every message the fake Slack got, joined.
func slackText(c *cli) string {
	var b strings.Builder
	for _, m := range c.slack.Messages() {
		b.Write(m.Body)
		b.WriteByte('\n')
	}
	return b.String()
}

// containerProject is where the simulated cloud has course_container now.
func containerProject(c *cli) string {
	for _, ct := range c.cloud.Cloud.State().Containers {
		if ct.Name == "course_container" {
			return ct.Charged
		}
	}
	return ""
}

func proposals(t *testing.T, c *cli) []proposalRow {
	t.Helper()
	code, stdout, stderr := c.run("proposals", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var rows []proposalRow
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	return rows
}

func journalRows(t *testing.T, c *cli) []map[string]any {
	t.Helper()
	code, stdout, stderr := c.run("actions", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var acts []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &acts))
	return acts
}

// TestProposalApprovedIsAppliedOnce: a rule needing approval proposes its
// move and moves nothing; approved, the move is planned again and applied,
// once; a second decision is refused; while it waited, nothing else was
// proposed.
func TestProposalApprovedIsAppliedOnce(t *testing.T) {
	c := approvalCLI(t, "")
	code, stdout, stderr := c.run("plan")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "would propose (needs approval)")
	code, stdout, stderr = c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "proposed")
	require.Equal(t, aliceUUID, containerProject(c), "a proposal moves nothing")
	require.Contains(t, slackText(c), "Proposal 1")

	rows := proposals(t, c)
	require.Len(t, rows, 1)
	require.Equal(t, "course_container", rows[0].ItemName)
	require.Equal(t, cs333, rows[0].To)

	// A cycle while it waits proposes nothing more.
	code, stdout, stderr = c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "awaiting approval: proposal 1")
	require.Len(t, proposals(t, c), 1)

	code, stdout, stderr = c.run("approve", "1", "--comment", "fine with the lab")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "proposal 1 approved")
	require.Equal(t, cs333, containerProject(c))
	require.Empty(t, proposals(t, c))
	acts := journalRows(t, c)
	require.Len(t, acts, 1, "one journal entry: the proposal became the move")
	require.Equal(t, "verified", acts[0]["state"])
	require.Equal(t, "fine with the lab", acts[0]["comment"])
	require.NotEmpty(t, acts[0]["by"])
	require.Contains(t, slackText(c), "approved by")

	code, _, stderr = c.run("approve", "1")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "proposal 1 is already approved")
	posts := 0
	for _, r := range c.cloud.Cloud.Requests() {
		if r.Method == "POST" && !strings.HasPrefix(r.Path, "/identity") && !strings.HasSuffix(r.Path, "/user_catalogs") {
			posts++
		}
	}
	require.Equal(t, 1, posts, "one move sent: %+v", c.cloud.Cloud.Requests())
}

// TestProposalRejectedIsNeverApplied: a rejected proposal moves nothing,
// and the rule does not propose it again within its cooldown.
func TestProposalRejectedIsNeverApplied(t *testing.T) {
	c := approvalCLI(t, "")
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	code, stdout, stderr := c.run("reject", "1", "--comment", "the course needs it")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "proposal 1 rejected")
	require.Contains(t, slackText(c), "Proposal 1 rejected")
	code, _, stderr = c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, aliceUUID, containerProject(c))
	require.Empty(t, proposals(t, c))
	code, _, stderr = c.run("approve", "1")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "already rejected")
	require.Equal(t, aliceUUID, containerProject(c))
}

// TestProposalApprovedAfterTheSourceEmptied: approval plans the move again
// on a fresh poll; the source no longer needing it, it expires, saying why.
func TestProposalApprovedAfterTheSourceEmptied(t *testing.T) {
	c := approvalCLI(t, "")
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.NoError(t, c.cloud.Cloud.GrowContainer(aliceUUID, "course_container", -20<<30))
	code, stdout, stderr := c.run("approve", "1")
	require.Equal(t, exitFailure, code, stderr)
	require.Contains(t, stdout, "proposal 1 expired: approved by")
	require.Contains(t, stdout, "no longer needs it")
	require.Equal(t, aliceUUID, containerProject(c))
	require.Contains(t, slackText(c), "Proposal 1 expired")
}

// TestProposalExpiresByTTL: a proposal left undecided for approval_ttl
// expires at the next cycle, announced; approving it then is refused.
func TestProposalExpiresByTTL(t *testing.T) {
	c := approvalCLI(t, "approval_ttl: 1s\n")
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	time.Sleep(1100 * time.Millisecond)
	code, _, stderr = c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, slackText(c), "Proposal 1 expired")
	require.Contains(t, slackText(c), "no decision within 1s")
	code, _, stderr = c.run("approve", "1")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "already expired")
	require.NotEqual(t, cs333, containerProject(c))
}

// TestUndo: an applied move is taken back after a fresh poll, journaled as
// its own action; undoing it again, or a move whose item moved since, or
// one whose source has no room, is refused with the reason.
func TestUndo(t *testing.T) {
	c := newCLI(t)
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, cs333, containerProject(c))

	// No room at home: refused, nothing moves.
	require.NoError(t, c.cloud.Cloud.SetLimit(aliceUUID, quota.DiskSpace, 1<<30, 1<<30))
	code, _, stderr = c.run("undo", "1")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "has no room: ")
	require.Contains(t, stderr, "course_container is 19.2 GiB")
	require.Equal(t, cs333, containerProject(c))
	require.NoError(t, c.cloud.Cloud.SetLimit(aliceUUID, quota.DiskSpace, 40<<30, 40<<30))

	code, stdout, stderr := c.run("undo", "1", "--comment", "moved by mistake")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "action 2 (undo of 1)")
	require.Equal(t, aliceUUID, containerProject(c))
	acts := journalRows(t, c)
	require.Len(t, acts, 2)
	require.EqualValues(t, 1, acts[1]["undo_of"])
	require.Equal(t, "verified", acts[1]["state"])
	require.Contains(t, slackText(c), "undo of action 1")

	code, _, stderr = c.run("undo", "1")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "action 1 moved course_container to CS333 lab assignments, but it has moved since (action 2)")

	code, _, stderr = c.run("undo", "9")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "no action 9")

	// The undo starts the item's cooldown: the rule does not move it
	// straight out again, though it moved back less than 24h ago.
	code, _, stderr = c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, aliceUUID, containerProject(c))
}

// TestProposalMessages: the webhook's message of a proposal says what
// would move and how to decide it, and its summary counts it as proposed.
func TestProposalMessages(t *testing.T) {
	c := approvalCLI(t, "")
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	text := slackText(c)
	require.Contains(t, text, "1 firing, 1 proposed")
	require.Contains(t, text, "`quotawatch approve 1` or `reject 1`")
	require.NotContains(t, text, "skipped")
}

// TestDecisionWithoutDaemonNeedsTheSecret: approve loads no secret to ask
// a daemon; with none running it polls itself, and says so when it cannot
// read the account's secret.
func TestDecisionWithoutDaemonNeedsTheSecret(t *testing.T) {
	c := approvalCLI(t, "")
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	env := c.env()
	delete(env, "ALICE_TOKEN")
	code, _, stderr = runCmd(t, env, "approve", "--config", c.cfg, "1")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "no daemon answers on")
	require.Contains(t, stderr, "and this command cannot act itself")
	require.Contains(t, stderr, "ALICE_TOKEN")
	require.Equal(t, aliceUUID, containerProject(c))
}
