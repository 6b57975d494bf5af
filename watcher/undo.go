package watcher

import (
	"context"
	"fmt"

	"time"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
)

// undo moves the item of applied move a back where it came from, after a
// fresh poll, if it still fits there and the item has not moved since. It
// is journaled as its own move (UndoOf), is exempt from the 24h no-return
// rule (no planner is asked), and, being in the journal, starts the
// item's cooldown.
func (w *Watcher) undo(ctx context.Context, e *env, a quota.Action, d Decision, now time.Time) (quota.Action, error) {
	what := fmt.Sprintf("action %d moved %s to %s", a.ID, a.ItemName, projectLabel(a.ToName, a.To))
	switch {
	case a.DryRun:
		return a, fmt.Errorf("action %d was a dry run: nothing moved", a.ID)
	case a.State != quota.ActionApplied && a.State != quota.ActionVerified:
		return a, fmt.Errorf("action %d was not applied (%s): nothing to undo", a.ID, a.State)
	}
	later, err := w.store.ActionsForItem(a.Kind, a.ItemID)
	if err != nil {
		return a, err
	}
	for _, j := range later {
		if j.ID > a.ID && !j.DryRun && !j.Proposal() && !j.Refused() {
			return a, fmt.Errorf("%s, but it has moved since (action %d)", what, j.ID)
		}
	}
	acc := e.account(a.Account)
	if acc == nil {
		return a, fmt.Errorf("%s, but account %s is no longer configured", what, a.Account)
	}
	snap, it, err := w.freshPoll(ctx, acc, a, now)
	switch {
	case client.IsNotFound(err):
		return a, fmt.Errorf("%s, but it no longer exists", what)
	case err != nil:
		return a, fmt.Errorf("fresh poll of %s: %w", a.Account, err)
	case it.Project != a.To:
		return a, fmt.Errorf("%s, but it is no longer there (now in %s)", what, w.names.name(it.Project))
	case it.Busy != "":
		return a, fmt.Errorf("%s, but it is busy: %s", what, it.Busy)
	}
	home := projectLabel(a.FromName, a.From)
	ledger := quota.NewLedger(snap.Entries)
	for _, r := range it.Quantities.Resources() {
		if q, ok := ledger.Get(a.From, r); ok && q.HasPending() {
			return a, fmt.Errorf("%s has pending allocations of %s; try again once they settle", home, r)
		}
	}
	if ok, sf := ledger.Fits(a.From, it.Quantities); !ok {
		if sf.Missing {
			return a, fmt.Errorf("%s has no %s quota", home, sf.Resource)
		}
		return a, fmt.Errorf("%s has no room: %s free, %s is %s", home,
			quota.FormatAmount(sf.Resource, max(sf.Headroom, 0)), a.ItemName, quota.FormatAmount(sf.Resource, sf.Need))
	}
	m := quota.Move{
		Rule: a.Rule, Account: a.Account, Kind: a.Kind, ItemID: a.ItemID, ItemName: it.Name, Owner: a.Owner,
		From: a.To, FromName: a.ToName, To: a.From, ToName: a.FromName,
		Quantities: it.Quantities, Resource: a.Resource,
		UndoOf: a.ID, By: d.By, Comment: d.Comment,
	}
	m.SourceBefore, _ = ledger.Get(m.From, m.Resource)
	m.DestBefore, _ = ledger.Get(m.To, m.Resource)
	ledger.Move(m.From, m.To, it.Quantities)
	m.SourceAfter, _ = ledger.Get(m.From, m.Resource)
	m.DestAfter, _ = ledger.Get(m.To, m.Resource)
	u := quota.Action{Time: now, Updated: w.now().UTC(), Move: m}
	id, err := w.store.Intent(u)
	if err != nil {
		return u, fmt.Errorf("journal undo of action %d: %w", a.ID, err)
	}
	w.unsettled = true
	u.ID, u.State = id, quota.ActionIntent
	w.log.Info("undoing move", "action", id, "undo_of", a.ID, "item", a.ItemName, "to", home, "by", d.By, "comment", d.Comment)
	return w.applyDecided(ctx, e, acc, u, it, now)
}

// name is a project's name, else its id.
func projectLabel(n, id string) string {
	if n != "" {
		return n
	}
	return id
}
