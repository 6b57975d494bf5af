package watcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quotawatch/quotawatch/client"
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
	journal, err := w.store.Actions(now.Add(-rules.JournalWindow(firing)), now)
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
	})}

	items := map[itemsKey][]quota.Item{}
	var listed []store.Listing // kept for the backtest: the items known at the time
	for _, f := range firing {
		k := f.Instance.Key
		acc := e.account(k.Account)
		if acc == nil || f.Rule.Action == nil {
			continue
		}
		ik := itemsKey{k.Account, k.Project, f.Rule.Action.Kind}
		list, ok := items[ik]
		var p rules.Plan
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
		for _, m := range p.Moves {
			rep.Plan = append(rep.Plan, PlanRow{Move: m.Move, DryRun: m.DryRun})
			cp.moves = append(cp.moves, plannedMove{row: len(rep.Plan) - 1, move: m})
		}
		for _, s := range p.Skips {
			rep.Plan = append(rep.Plan, PlanRow{
				Move: quota.Move{
					Rule: f.Rule.Name, Account: k.Account, Kind: f.Rule.Action.Kind,
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
	if len(listed) > 0 && !w.readOnly {
		if err := w.store.RecordListings(listed, e.cfg.Store.Retention); err != nil {
			w.log.Warn("keeping the item listings failed", "err", err)
		}
	}
	return cp
}

// act applies the planned moves: each is journaled as intent before the
// API call, then marked applied or failed, then verified by reading the
// item back. The planner tells each outcome's events and the instance's new
// cooldown, which are recorded together.
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
	for _, pm := range cp.moves {
		if ctx.Err() != nil {
			break // stopping: what was not begun is not journaled
		}
		row := &rep.Plan[pm.row]
		m := pm.move
		a := quota.Action{Time: now, State: quota.ActionIntent, DryRun: m.DryRun, Move: m.Move}
		id, err := w.store.Intent(a)
		if err != nil {
			// An intent that is not durable must not be acted upon.
			return fmt.Errorf("journal intent for %s %s: %w", row.Kind, row.ItemName, err)
		}
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
		acc := e.account(row.Account)
		state, errText := w.apply(ctx, acc, m.Item, m.Move)
		row.State, row.Error = state, errText
		switch state {
		case quota.ActionIntent:
			// Outcome unknown: the next cycle (or start) reconciles. The
			// cooldown holds meanwhile.
			w.log.Warn("move outcome unknown; will reconcile", "action", id, "item", row.ItemName)
			w.unsettled = true
			if err := record(p.Unknown(m), nil); err != nil {
				return fmt.Errorf("record move %d: %w", id, err)
			}
			continue
		case quota.ActionFailed:
			w.log.Warn("move failed", "rule", row.Rule, "item", row.ItemName, "to", row.ToName, "err", errText)
			if err := record(p.Failed(m, errText), &store.ActionUpdate{ID: id, State: quota.ActionFailed, Error: errText, Time: now}); err != nil {
				return fmt.Errorf("record failed move %d: %w", id, err)
			}
			w.metrics.action(row.Rule, row.Kind, "failed")
			continue
		}
		w.log.Info("moved", "rule", row.Rule, "kind", row.Kind, "item", row.ItemName, "from", row.FromName, "to", row.ToName)
		if err := record(p.Applied(m), &store.ActionUpdate{ID: id, State: quota.ActionApplied, Time: now}); err != nil {
			return fmt.Errorf("record move %d: %w", id, err)
		}
		w.metrics.action(row.Rule, row.Kind, "applied")
		if w.verify(ctx, acc, row.Move) {
			row.State = quota.ActionVerified
			if err := w.store.SetActionState(id, quota.ActionVerified, "", w.now().UTC()); err != nil {
				return fmt.Errorf("journal verification of move %d: %w", id, err)
			}
		}
	}
	return nil
}

// apply calls the cloud. A refusal the cloud answered is a failure; an
// answer that never came (timeout, connection lost) leaves the outcome
// unknown, so the item is read back to learn it. A POST is never retried.
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
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status < 500 && ce.Status != http.StatusRequestTimeout {
		// The cloud refused: nothing moved.
		return quota.ActionFailed, err.Error()
	}
	if ctx.Err() != nil {
		return quota.ActionIntent, ""
	}
	got, gerr := acc.cloud.Item(ctx, m.Kind, m.ItemID)
	switch {
	case gerr != nil:
		return quota.ActionIntent, ""
	case got.Project == m.To:
		return quota.ActionApplied, ""
	default:
		return quota.ActionFailed, err.Error()
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

// Reconcile settles journal intents left without an outcome by an
// interrupted run: the item is read back; already in the destination means
// applied, still in the source means failed (interrupted). Nothing is ever
// re-sent.
func (w *Watcher) Reconcile(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readOnly {
		return nil
	}
	defer w.store.Release()
	return w.reconcile(ctx, w.env.Load())
}

// reconcile settles unfinished intents; every cycle runs it too, so a move
// whose answer was lost is settled at the next cycle, not the next start.
func (w *Watcher) reconcile(ctx context.Context, e *env) error {
	open, err := w.store.Unfinished()
	if err != nil {
		return fmt.Errorf("read unfinished moves: %w", err)
	}
	w.unsettled = false // set again below for any move that stays open
	now := w.now().UTC()
	for _, a := range open {
		acc := e.account(a.Account)
		if acc == nil {
			w.log.Warn("cannot reconcile move of an account no longer configured", "action", a.ID, "account", a.Account)
			w.unsettled = true
			continue
		}
		got, err := acc.cloud.Item(ctx, a.Kind, a.ItemID)
		var state quota.ActionState
		var reason string
		switch {
		case err == nil && got.Project == a.To:
			state = quota.ActionApplied
		case err == nil && got.Project == a.From:
			state, reason = quota.ActionFailed, "interrupted"
		case err == nil:
			state, reason = quota.ActionFailed, fmt.Sprintf("interrupted; the item is now in %s", w.names.name(got.Project))
		case client.IsNotFound(err):
			state, reason = quota.ActionFailed, "interrupted; the item no longer exists"
		default:
			w.log.Warn("reconciling move failed; will retry", "action", a.ID, "err", err)
			w.unsettled = true
			continue
		}
		w.log.Info("reconciled interrupted move", "action", a.ID, "item", a.ItemName, "state", state)
		ev := e.engine.Settled(a, state, reason, now)
		// The outcome and its announcement in one transaction; found in
		// the destination, the move is verified at once.
		ups := []store.ActionUpdate{{ID: a.ID, State: state, Error: reason, Time: now}}
		if state == quota.ActionApplied {
			ups = append(ups, store.ActionUpdate{ID: a.ID, State: quota.ActionVerified, Time: now})
		}
		if err := w.store.Commit(&store.Batch{Time: now, Actions: ups, Outbox: w.fanout(e, []quota.Event{ev})}); err != nil {
			w.unsettled = true
			return fmt.Errorf("record reconciled move %d: %w", a.ID, err)
		}
	}
	return nil
}
