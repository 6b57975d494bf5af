package notify

import (
	"fmt"

	"github.com/quotawatch/quotawatch/quota"
)

// decisionTitle is the short status of a proposal event, and of a move a
// person decided (an approved proposal, an undo).
func decisionTitle(ev quota.Event) (string, bool) {
	switch ev.Result {
	case quota.ResultProposed:
		return "move proposed", true
	case quota.ResultRejected:
		return "proposal rejected", true
	case quota.ResultExpired:
		return "proposal expired", true
	case quota.ResultRefused:
		return "decision refused", true
	}
	return "", false
}

// layoutDecision renders the proposal events, and adds who decided to a
// move a person decided.
func layoutDecision(ev quota.Event) (rendered, bool) {
	m := ev.Move
	if m == nil {
		return rendered{}, false
	}
	id := m.ProposalID
	var r rendered
	switch ev.Result {
	case quota.ResultProposed:
		r.summary = fmt.Sprintf("%s: proposal %d: move %s; quotawatch approve %d, or reject %d", ev.Key.Rule, id, moveSentence(m, false), id, id)
		r.line = fmt.Sprintf(":raised_hand: *Proposal %d* · move %s · awaiting approval: `quotawatch approve %d` or `reject %d`",
			id, moveSentence(m, true), id, id)
	case quota.ResultRejected:
		r.summary = fmt.Sprintf("%s: proposal %d rejected by %s%s: %s stays", ev.Key.Rule, id, m.By, comment(m), m.ItemName)
		r.line = fmt.Sprintf(":no_entry: *Proposal %d rejected* by %s%s · %s stays", id, esc(m.By), esc(comment(m)), esc(m.ItemName))
	case quota.ResultExpired:
		r.summary = fmt.Sprintf("%s: proposal %d expired: %s", ev.Key.Rule, id, ev.Reason)
		r.line = fmt.Sprintf(":hourglass: *Proposal %d expired* · %s", id, esc(ev.Reason))
	case quota.ResultRefused:
		r.summary = fmt.Sprintf("%s: proposal %d: %s", ev.Key.Rule, id, ev.Reason)
		r.line = fmt.Sprintf(":warning: *Proposal %d* · refused: %s", id, esc(ev.Reason))
	case quota.ResultApplied, quota.ResultFailed:
		if m.By == "" {
			return rendered{}, false
		}
		r = layoutAction(stripDecision(ev))
		who := fmt.Sprintf(" · approved by %s%s", m.By, comment(m))
		if m.UndoOf != 0 {
			who = fmt.Sprintf(" · undo of action %d by %s%s", m.UndoOf, m.By, comment(m))
		}
		r.summary += who
		r.line += esc(who)
		return r, true
	default:
		return rendered{}, false
	}
	r.line += ruleTag(ev)
	return r, true
}

// stripDecision is ev without who decided, to render the move itself.
func stripDecision(ev quota.Event) quota.Event {
	m := *ev.Move
	m.By = ""
	ev.Move = &m
	return ev
}

func comment(m *quota.Move) string {
	if m.Comment == "" {
		return ""
	}
	return ` ("` + m.Comment + `")`
}

// decisionCount is the word that counts a proposal event in a summary.
func decisionCount(ev quota.Event) (string, bool) {
	switch ev.Result {
	case quota.ResultProposed:
		return "proposed", true
	case quota.ResultRejected:
		return "rejected", true
	case quota.ResultExpired:
		return "expired", true
	case quota.ResultRefused:
		return "refused", true
	}
	return "", false
}
