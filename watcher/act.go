package watcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

func (e *env) account(name string) *account {
	for _, a := range e.accounts {
		if a.name == name {
			return a
		}
	}
	return nil
}

type itemsKey struct {
	account, project string
	kind             quota.Kind
}

// plan asks the cycle's planner for the moves of every firing instance,
// listing items only for the projects concerned, once per (account,
// project, kind).
func (w *Watcher) plan(ctx context.Context, e *env, now time.Time, snaps []quota.Snapshot,
	projects map[string]quota.Project, firing []rules.Firing, rep *Report) cyclePlan {
	maxMoves := e.cfg.MaxActionsPerCycle
	// Open moves are waited for as long as the settle window: the journal
	// reaches back that far too, so the planner counts them.
	journal, err := w.store.Actions(now.Add(-max(rules.JournalWindow(firing), w.settleWindow(e))), now)
	if err != nil {
		// Without the journal the planner cannot honour cooldowns: fail
		// closed and move nothing this cycle.
		w.log.Error("reading the action journal failed; no moves this cycle", "err", err)
		journal, maxMoves = nil, 0
	}
	w.letGo()
	cp := cyclePlan{planner: e.engine.NewPlanner(rules.PlannerInput{
		Now:       now,
		Snapshots: snaps,
		Projects:  projects,
		Journal:   journal,
		Cap:       maxMoves,
		DryRun:    rep.DryRun,
		History:   w.history,

		Memberships: w.names.memberships(),
		Drift:       w.drift.current(snaps),
		UserNames:   w.names.users(),
	})}

	items := map[itemsKey][]quota.Item{}
	waiting := w.waitingProposals()
	var listed []store.Listing // kept for the backtest: the items known at the time
	for _, f := range firing {
		k := f.Instance.Key
		if a, ok := waiting[k]; ok {
			// Its proposal is decided first; nothing else is planned.
			rep.Plan = append(rep.Plan, awaitingRow(f, a))
			continue
		}
		var p rules.Plan
		kind := quota.KindLimit
		if f.Rule.Raise != nil {
			p = cp.planner.Raise(f, w.raiseTarget(ctx, e, k.Project, k.Resource))
		} else {
			acc := e.account(k.Account)
			if acc == nil || f.Rule.Action == nil {
				continue
			}
			kind = f.Rule.Action.Kind
			ik := itemsKey{k.Account, k.Project, f.Rule.Action.Kind}
			list, ok := items[ik]
			if !ok {
				l, lerr := acc.cloud.Items(ctx, ik.kind, ik.project)
				if lerr != nil {
					w.log.Warn("listing items failed", "account", k.Account, "project", k.Project, "kind", ik.kind, "err", lerr)
					p = cp.planner.ListFailed(f, lerr)
				} else {
					items[ik], list, ok = l, l, true
					listed = append(listed, store.Listing{Time: now, Account: k.Account, Project: k.Project, Kind: ik.kind, Items: l})
				}
			}
			if ok {
				p = cp.planner.Plan(f, list)
			}
		}
		for _, m := range p.Moves {
			rep.Plan = append(rep.Plan, PlanRow{Move: m.Move, DryRun: m.DryRun, Reason: approvalReason(e, f.Rule)})
			cp.moves = append(cp.moves, plannedMove{row: len(rep.Plan) - 1, move: m})
		}
		for _, s := range p.Skips {
			rep.Plan = append(rep.Plan, PlanRow{
				Move: quota.Move{
					Rule: f.Rule.Name, Account: k.Account, Kind: kind,
					ItemID: s.ItemID, ItemName: s.ItemName,
					From: k.Project, FromName: f.ProjectName, Resource: k.Resource,
					SourceBefore: f.Quota,
				},
				DryRun: p.DryRun, Skipped: true, Reason: s.Reason,
			})
		}
		cp.events = append(cp.events, p.Events...)
		if p.Changed {
			cp.instances = append(cp.instances, p.Instance)
		}
	}
	w.names.shownRows(rep.Plan)
	if len(listed) > 0 && !w.readOnly {
		if err := w.store.RecordListings(listed, e.cfg.Store.Retention); err != nil {
			w.log.Warn("keeping the item listings failed", "err", err)
		}
	}
	return cp
}

// moveStopGrace is how long a reassign already sent may still take once
// stopping began: cancelling it would leave its outcome unknown, so it is
// let finish, with its read-back, within the stop timeout.
const moveStopGrace = shutdownTimeout - 2*time.Second

// detached returns a context for a call already begun that a stop must not
// cut off: it carries ctx's values and ends moveStopGrace after ctx does
// (the call's own timeouts still apply).
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	d, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(moveStopGrace, cancel) })
	return d, func() { stop(); cancel() }
}

// settleWindow is how long a move whose answer was lost may still land.
func (w *Watcher) settleWindow(e *env) time.Duration {
	switch {
	case w.patience > 0:
		return w.patience
	case e.cfg.SettleWindow > 0:
		return e.cfg.SettleWindow
	default:
		return config.DefaultSettleWindow
	}
}

// act applies the planned moves: each is journaled as intent before the
// API call, then marked applied, failed or unknown, then verified by
// reading the item back. The planner tells each outcome's events and the
// instance's new cooldown, which are recorded together. From the moment an
// intent is journaled the watcher counts the journal as unsettled, so
// whatever happens next (a failed commit, a panic) the next cycle
// reconciles it.
func (w *Watcher) act(ctx context.Context, e *env, now time.Time, cp cyclePlan, rep *Report) error {
	// record commits one move's outcome with the events that tell of it and
	// the instance's new cooldown, in one transaction.
	record := func(out rules.Outcome, u *store.ActionUpdate) error {
		b := &store.Batch{Time: now, Instances: []quota.Instance{out.Instance}, Outbox: w.fanout(e, out.Events)}
		if u != nil {
			b.Actions = []store.ActionUpdate{*u}
		}
		if err := w.store.Commit(b); err != nil {
			return err
		}
		w.states[out.Instance.Key] = out.Instance
		rep.Events = append(rep.Events, out.Events...)
		return nil
	}
	p := cp.planner
	for i, pm := range cp.moves {
		w.progress("moving", i, len(cp.moves))
		if ctx.Err() != nil {
			break // stopping: no move is begun, and what was not begun is not journaled
		}
		if !w.leading() {
			w.log.Warn("no longer leading: the moves left are the next leader's to plan", "moves", len(cp.moves)-i)
			break
		}
		row := &rep.Plan[pm.row]
		m := pm.move
		if needsApproval(e, m) {
			if err := w.propose(e, now, m, row); err != nil {
				return err
			}
			continue
		}
		// Time is the cycle's, for cooldowns; Updated says when the call
		// is about to go, which the settle window counts from.
		a := quota.Action{Time: now, Updated: w.now().UTC(), State: quota.ActionIntent, DryRun: m.DryRun, Move: m.Move}
		id, err := w.store.Intent(a)
		if err != nil {
			// An intent that is not durable must not be acted upon.
			return fmt.Errorf("journal intent for %s %s: %w", row.Kind, row.ItemName, err)
		}
		w.unsettled = true
		row.ActionID = id
		if m.DryRun {
			// Dry-run moves are journaled as what would have been applied;
			// the cooldown applies to them too so reports do not repeat.
			row.State = quota.ActionApplied
			if err := record(p.Applied(m), &store.ActionUpdate{ID: id, State: quota.ActionApplied, Time: now}); err != nil {
				return fmt.Errorf("record dry-run move %d: %w", id, err)
			}
			w.metrics.action(row.Rule, row.Kind, "dry_run")
			continue
		}
		if !w.leading() {
			// Journaled (and shared) but not sent: the next leader reads
			// the item back and settles it.
			return fmt.Errorf("move %d not sent: this instance no longer leads", id)
		}
		acc := e.account(row.Account)
		// The call and its read-back outlive a stop, within the grace.
		dctx, cancel := detached(ctx)
		var state quota.ActionState
		var errText string
		if m.Raise != nil {
			state, errText = w.applyRaise(dctx, e, &m.Move)
			row.Raise = m.Raise
		} else {
			state, errText = w.apply(dctx, acc, m.Item, m.Move)
		}
		row.State, row.Error = state, errText
		switch state {
		case quota.ActionUnknown:
			// The answer was lost: reconcile reads the item back at every
			// cycle. Meanwhile the move counts as on its way.
			cancel()
			w.log.Warn("move outcome unknown; will reconcile", "action", id, "item", row.ItemName)
			if err := record(p.Unknown(m), &store.ActionUpdate{ID: id, State: quota.ActionUnknown, Time: w.now().UTC()}); err != nil {
				return fmt.Errorf("record move %d: %w", id, err)
			}
			continue
		case quota.ActionFailed:
			cancel()
			w.log.Warn("move failed", "rule", row.Rule, "item", row.ItemName, "to", row.ToName, "err", errText)
			if err := record(p.Failed(m, errText), &store.ActionUpdate{ID: id, State: quota.ActionFailed, Error: errText, Time: now}); err != nil {
				return fmt.Errorf("record failed move %d: %w", id, err)
			}
			w.metrics.action(row.Rule, row.Kind, "failed")
			continue
		}
		w.log.Info("moved", "rule", row.Rule, "kind", row.Kind, "item", row.ItemName, "from", row.FromName, "to", row.ToName)
		if err := record(p.Applied(m), &store.ActionUpdate{ID: id, State: quota.ActionApplied, Time: now}); err != nil {
			cancel()
			return fmt.Errorf("record move %d: %w", id, err)
		}
		w.metrics.action(row.Rule, row.Kind, "applied")
		var verified bool
		if m.Raise != nil {
			// Only an approved application changes the limits.
			verified, _ = w.raised(dctx, e, row.Move)
		} else {
			verified = w.verify(dctx, acc, row.Move)
		}
		cancel()
		if verified {
			row.State = quota.ActionVerified
			if err := w.store.SetActionState(id, quota.ActionVerified, "", w.now().UTC()); err != nil {
				return fmt.Errorf("journal verification of move %d: %w", id, err)
			}
		}
	}
	return nil
}

// apply calls the cloud. A refusal the cloud answered is a failure; an
// error answer from the cloud (5xx) is read back: in the destination it is
// applied, else failed. An answer that never came (timeout, connection
// lost, the grace of a stop over) is read back too, but an item still in
// its source then says nothing: the cloud may still be processing the
// call, so the outcome is unknown. A POST is never retried.
func (w *Watcher) apply(ctx context.Context, acc *account, it quota.Item, m quota.Move) (quota.ActionState, string) {
	if acc == nil {
		return quota.ActionFailed, "account no longer configured"
	}
	if it.ID == "" {
		return quota.ActionFailed, "item no longer listed"
	}
	err := acc.cloud.Reassign(ctx, it, m.To)
	if err == nil {
		return quota.ActionApplied, ""
	}
	if client.IsReleaseFailure(err) {
		// Not a full destination: the source's accounting is short, and
		// it stays so until an operator reconciles it.
		m.FromName = w.names.shown(m.From, m.FromName)
		return quota.ActionFailed, w.drift.note(m, err)
	}
	var ce *client.Error
	answered := errors.As(err, &ce)
	if answered && ce.Status < 500 && ce.Status != http.StatusRequestTimeout {
		// The cloud refused: nothing moved.
		return quota.ActionFailed, err.Error()
	}
	if ctx.Err() != nil {
		return quota.ActionUnknown, ""
	}
	got, gerr := acc.cloud.Item(ctx, m.Kind, m.ItemID)
	switch {
	case gerr != nil:
		return quota.ActionUnknown, ""
	case got.Project == m.To:
		return quota.ActionApplied, ""
	case answered:
		return quota.ActionFailed, err.Error()
	default:
		return quota.ActionUnknown, ""
	}
}

// verify reads the item back and reports whether it is in the destination.
func (w *Watcher) verify(ctx context.Context, acc *account, m quota.Move) bool {
	got, err := acc.cloud.Item(ctx, m.Kind, m.ItemID)
	if err != nil {
		w.log.Warn("verifying move failed", "item", m.ItemName, "err", err)
		return false
	}
	if got.Project != m.To {
		w.log.Warn("moved item is not in its destination", "item", m.ItemName, "want", m.To, "have", got.Project)
		return false
	}
	return true
}

// Reconcile settles the moves left open (intent or unknown), as at
// start-up; see reconcile.
func (w *Watcher) Reconcile(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readOnly || !w.leading() {
		return nil
	}
	defer w.store.Release()
	return w.reconcile(ctx, w.env.Load())
}

// sentAt is when an open move was last known to be in flight: when its
// intent was journaled or its answer was lost, not its cycle's time, since
// a cycle's later moves are sent well after it began.
func sentAt(a quota.Action) time.Time {
	if a.Updated.After(a.Time) {
		return a.Updated
	}
	return a.Time
}

// reconcile reads back every open move: in its destination it is applied
// (and verified); still in its source it stays open (unknown) until the
// settle window has passed since it was sent, and only then is it failed
// (interrupted); elsewhere or gone, it is failed (interrupted) at once.
// Each outcome is committed with its announcement. Nothing is ever
// re-sent. The unsettled flag is cleared only when no move is left open.
func (w *Watcher) reconcile(ctx context.Context, e *env) error {
	open, err := w.store.Unfinished()
	if err != nil {
		return fmt.Errorf("read unfinished moves: %w", err)
	}
	now := w.now().UTC()
	window := w.settleWindow(e)
	left := false
	for _, a := range open {
		if a.DryRun {
			// Nothing was sent: what was reported is what stands.
			ev := e.engine.Settled(a, quota.ActionApplied, "", now)
			up := store.ActionUpdate{ID: a.ID, State: quota.ActionApplied, Time: now}
			if err := w.store.Commit(&store.Batch{Time: now, Actions: []store.ActionUpdate{up}, Outbox: w.fanout(e, []quota.Event{ev})}); err != nil {
				w.unsettled = true
				return fmt.Errorf("record reconciled dry-run move %d: %w", a.ID, err)
			}
			continue
		}
		if a.Raise != nil {
			up, wait, err := w.reconcileRaise(ctx, e, a, now, window)
			if err != nil {
				w.log.Warn("reconciling raise failed; will retry", "action", a.ID, "err", err)
			}
			if wait {
				left = true
				continue
			}
			ev := e.engine.Settled(a, up.State, up.Error, now)
			if err := w.store.Commit(&store.Batch{Time: now, Actions: []store.ActionUpdate{up}, Outbox: w.fanout(e, []quota.Event{ev})}); err != nil {
				w.unsettled = true
				return fmt.Errorf("record reconciled raise %d: %w", a.ID, err)
			}
			continue
		}
		acc := e.account(a.Account)
		if acc == nil {
			w.log.Warn("cannot reconcile move of an account no longer configured", "action", a.ID, "account", a.Account)
			left = true
			continue
		}
		got, err := acc.cloud.Item(ctx, a.Kind, a.ItemID)
		up := store.ActionUpdate{ID: a.ID, Time: now}
		switch {
		case err == nil && got.Project == a.To:
			up.State = quota.ActionApplied
		case err == nil && got.Project == a.From && now.Sub(sentAt(a)) < window:
			// The cloud may still be processing it: wait, counting it as
			// on its way, and tell nothing yet.
			left = true
			if a.State == quota.ActionIntent {
				// Updated keeps saying when it was last known in flight.
				up.State, up.Time = quota.ActionUnknown, sentAt(a)
				if err := w.store.Commit(&store.Batch{Time: now, Actions: []store.ActionUpdate{up}}); err != nil {
					w.unsettled = true
					return fmt.Errorf("record move %d as unknown: %w", a.ID, err)
				}
			}
			continue
		case err == nil && got.Project == a.From:
			up.State, up.Interrupted = quota.ActionFailed, true
			up.Error = fmt.Sprintf("interrupted: still in %s %s after the call was sent", w.names.name(a.From), window)
		case err == nil:
			up.State, up.Interrupted = quota.ActionFailed, true
			up.Error = fmt.Sprintf("interrupted; the item is now in %s", w.names.name(got.Project))
		case client.IsNotFound(err):
			up.State, up.Interrupted = quota.ActionFailed, true
			up.Error = "interrupted; the item no longer exists"
		default:
			w.log.Warn("reconciling move failed; will retry", "action", a.ID, "err", err)
			left = true
			continue
		}
		w.log.Info("reconciled move", "action", a.ID, "item", a.ItemName, "state", up.State, "reason", up.Error)
		ev := e.engine.Settled(a, up.State, up.Error, now)
		// The outcome and its announcement in one transaction; found in
		// the destination, the move is verified at once.
		ups := []store.ActionUpdate{up}
		if up.State == quota.ActionApplied {
			ups = append(ups, store.ActionUpdate{ID: a.ID, State: quota.ActionVerified, Time: now})
		}
		if err := w.store.Commit(&store.Batch{Time: now, Actions: ups, Outbox: w.fanout(e, []quota.Event{ev})}); err != nil {
			w.unsettled = true
			return fmt.Errorf("record reconciled move %d: %w", a.ID, err)
		}
	}
	w.unsettled = left
	return nil
}
