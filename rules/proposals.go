package rules

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/quota"
)

func (d *ruleDraft) readRequireApproval(v *yaml.Node) {
	if v.Kind != yaml.ScalarNode || v.Decode(&d.r.RequireApproval) != nil {
		d.errorf(v.Line, "require_approval", "must be true or false")
	}
}

// Decision is the event of a journaled move decided outside a cycle: a
// proposal made, rejected, expired or refused, or the outcome of an
// approved move or an undo. reason says why (for an expiry, a refusal, a
// failure). Like [Engine.Settled] it needs no planner.
func (e *Engine) Decision(a quota.Action, res quota.ActionResult, reason string, now time.Time) quota.Event {
	key := quota.InstanceKey{Rule: a.Rule, Account: a.Account, Project: a.From, Resource: a.Resource}
	ev := actionEvent(e.byName[a.Rule], key, a.FromName, a.SourceBefore, a.DryRun, now)
	ev.Result = res
	m := a.Move
	ev.Move = &m
	ev.Reason = reason
	return ev
}

// RecheckInput is what planning an approved proposal again needs.
type RecheckInput struct {
	Now time.Time
	// Snapshot is a fresh poll of the proposal's account.
	Snapshot quota.Snapshot
	Projects map[string]quota.Project
	// Journal holds the account's recent actions, the proposal left out.
	Journal []quota.Action
	History HistoryFunc
	// Move is the proposed move; Item the item as read back now.
	Move quota.Move
	Item quota.Item
}

// Recheck plans an approved proposal again on a fresh poll: it returns the
// move to apply, with the quotas of now, or why it no longer holds (the
// rule gone, the item gone from the source, the source no longer needing
// it, the destination no longer fitting, a cooldown). Only the proposed
// item and destination are considered: an approval is of that move.
func (e *Engine) Recheck(in RecheckInput) (Move, string) {
	m := in.Move
	r := e.byName[m.Rule]
	if r == nil || r.Action == nil {
		return Move{}, fmt.Sprintf("rule %s is no longer configured to move items", m.Rule)
	}
	if in.Item.Project != m.From {
		return Move{}, fmt.Sprintf("%s is no longer in %s", m.ItemName, label(in.Projects, m.From))
	}
	ledger := quota.NewLedger(in.Snapshot.Entries)
	srcQ, ok := ledger.Get(m.From, m.Resource)
	if !ok {
		return Move{}, fmt.Sprintf("no %s quota of %s in the account's view", m.Resource, label(in.Projects, m.From))
	}
	// The proposal's own destination, one item, as its rule would plan it.
	rc := *r
	act := *r.Action
	act.To, act.MaxItems = []string{m.To}, 1
	rc.Action = &act
	f := Firing{
		Rule:        &rc,
		Instance:    quota.Instance{Key: quota.InstanceKey{Rule: r.Name, Account: m.Account, Project: m.From, Resource: m.Resource}, State: quota.StateFiring},
		Quota:       srcQ,
		ProjectName: label(in.Projects, m.From),
		User:        in.Snapshot.User,
	}
	pin := planInput{Now: in.Now, Firing: f, Items: []quota.Item{in.Item}, Ledger: ledger,
		Projects: in.Projects, Journal: in.Journal, History: in.History}
	if !e.holds(pin, &rc, rc.when, false, m.From, m.Resource, srcQ) {
		return Move{}, fmt.Sprintf("%s no longer needs it: when (%s) does not hold at %s",
			label(in.Projects, m.From), r.When, quota.FormatPercent(srcQ.Ratio()))
	}
	moves, skips := e.plan(pin)
	if len(moves) == 1 {
		return moves[0], ""
	}
	var why []string
	for _, s := range skips {
		why = append(why, s.Reason)
	}
	if len(why) == 0 {
		return Move{}, fmt.Sprintf("%s no longer needs it", label(in.Projects, m.From))
	}
	return Move{}, strings.Join(why, "; ")
}

// FormatDuration renders d for people, in the units rules are written in
// ("24h", "1d2h").
func FormatDuration(d time.Duration) string { return formatDuration(d) }
