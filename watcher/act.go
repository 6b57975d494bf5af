package watcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
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

// plan asks the planner for the moves of every firing instance, listing
// items only for the projects concerned, one ledger per account so that the
// moves of one cycle see each other.
func (w *Watcher) plan(ctx context.Context, e *env, now time.Time, snaps []quota.Snapshot,
	projects map[string]quota.Project, firing []rules.Firing, changed map[quota.InstanceKey]quota.Instance,
	rep *Report, events []quota.Event) ([]planned, []quota.Event) {
	budget := e.cfg.MaxActionsPerCycle
	ledgers := map[string]*quota.Ledger{}
	for i := range snaps {
		if !snaps[i].Service {
			ledgers[snaps[i].Account] = quota.NewLedger(snaps[i].Entries)
		}
	}
	lookback := journalLookback
	for _, f := range firing {
		lookback = max(lookback, f.Rule.Cooldown)
	}
	journal := map[string][]quota.Action{}
	recent, err := w.store.Actions(now.Add(-lookback), now)
	if err != nil {
		// Without the journal the planner cannot honour cooldowns: fail
		// closed and move nothing this cycle.
		w.log.Error("reading the action journal failed; no moves this cycle", "err", err)
		budget = 0
	}
	for _, a := range recent {
		if !a.DryRun {
			journal[a.Account] = append(journal[a.Account], a)
		}
	}
	w.letGo()

	items := map[itemsKey][]quota.Item{}
	var moves []planned
	for i := range firing {
		f := &firing[i]
		k := f.Instance.Key
		acc := e.account(k.Account)
		ledger := ledgers[k.Account]
		if acc == nil || ledger == nil || f.Rule.Action == nil {
			continue
		}
		dry := f.Rule.DryRun || rep.DryRun
		ik := itemsKey{k.Account, k.Project, f.Rule.Action.Kind}
		list, ok := items[ik]
		var p rules.Plan
		if !ok {
			l, lerr := acc.cloud.Items(ctx, ik.kind, ik.project)
			if lerr != nil {
				w.log.Warn("listing items failed", "account", k.Account, "project", k.Project, "kind", ik.kind, "err", lerr)
				p.Skips = []rules.Skip{{Reason: fmt.Sprintf("listing %ss of the project failed: %v", ik.kind, lerr)}}
			} else {
				items[ik], list, ok = l, l, true
			}
		}
		if ok {
			p = e.engine.Plan(rules.PlanInput{
				Now:      now,
				Firing:   *f,
				Items:    list,
				Ledger:   ledger,
				Projects: projects,
				Journal:  journal[k.Account],
				History:  w.history,
				Budget:   &budget,
				// The global flag: the planner handles a rule's own
				// dry_run itself, so a dry-run rule takes no ledger room
				// or budget from live ones.
				DryRun: rep.DryRun,
			})
		}
		byID := make(map[string]quota.Item, len(list))
		for _, it := range list {
			byID[it.ID] = it
		}
		for _, m := range p.Moves {
			rep.Plan = append(rep.Plan, PlanRow{Move: m, DryRun: dry})
			moves = append(moves, planned{row: len(rep.Plan) - 1, firing: f, item: byID[m.ItemID], dry: dry})
		}
		if len(p.Moves) > 0 && ok && !dry {
			// Another rule on the same project plans after this one: an
			// item already on its way out is no longer there to move. The
			// moves also join the journal the later plans read, for the
			// cooldowns; other accounts in the same projects see the
			// project-level usage move.
			items[ik] = slices.DeleteFunc(slices.Clone(list), func(it quota.Item) bool {
				return slices.ContainsFunc(p.Moves, func(m quota.Move) bool { return m.ItemID == it.ID })
			})
			for _, m := range p.Moves {
				journal[k.Account] = append(journal[k.Account], quota.Action{Time: now, State: quota.ActionIntent, Move: m})
				for acct, l := range ledgers {
					if acct != k.Account {
						l.MoveProject(m.From, m.To, m.Quantities)
					}
				}
			}
		}
		for _, s := range p.Skips {
			rep.Plan = append(rep.Plan, PlanRow{
				Move: quota.Move{
					Rule: f.Rule.Name, Account: k.Account, Kind: f.Rule.Action.Kind,
					ItemID: s.ItemID, ItemName: s.ItemName,
					From: k.Project, FromName: f.ProjectName, Resource: k.Resource,
					SourceBefore: f.Quota,
				},
				DryRun: dry, Skipped: true, Reason: s.Reason,
			})
		}
		if len(p.Skips) > 0 {
			events = append(events, rules.SkipEvents(f, p.Skips, dry, now)...)
			changed[k] = f.Instance
		}
	}
	return moves, events
}

// act applies the planned moves: each is journaled as intent before the
// API call, then marked applied or failed, then verified by reading the
// item back. The resulting events and instance states are recorded together.
func (w *Watcher) act(ctx context.Context, e *env, now time.Time, moves []planned, rep *Report) error {
	// record commits one move's outcome with the event that tells of it and
	// the instance's new cooldown, in one transaction.
	record := func(f *rules.Firing, u *store.ActionUpdate, ev *quota.Event) error {
		b := &store.Batch{Time: now, Instances: []quota.Instance{f.Instance}}
		if u != nil {
			b.Actions = []store.ActionUpdate{*u}
		}
		if ev != nil {
			b.Outbox = w.fanout(e, []quota.Event{*ev})
		}
		if err := w.store.Commit(b); err != nil {
			return err
		}
		w.states[f.Instance.Key] = f.Instance
		if ev != nil {
			rep.Events = append(rep.Events, *ev)
		}
		return nil
	}
	for _, pm := range moves {
		if ctx.Err() != nil {
			break // stopping: what was not begun is not journaled
		}
		row := &rep.Plan[pm.row]
		f := pm.firing
		a := quota.Action{Time: now, State: quota.ActionIntent, DryRun: pm.dry, Move: row.Move}
		id, err := w.store.Intent(a)
		if err != nil {
			// An intent that is not durable must not be acted upon.
			return fmt.Errorf("journal intent for %s %s: %w", row.Kind, row.ItemName, err)
		}
		row.ActionID = id
		f.Instance.LastAction = now
		if pm.dry {
			// Dry-run moves are journaled as what would have been applied;
			// the cooldown applies to them too so reports do not repeat.
			row.State = quota.ActionApplied
			ev := rules.ActionEvent(*f, row.Move, quota.ResultApplied, "", true, now)
			if err := record(f, &store.ActionUpdate{ID: id, State: quota.ActionApplied, Time: now}, &ev); err != nil {
				return fmt.Errorf("record dry-run move %d: %w", id, err)
			}
			w.metrics.action(row.Rule, row.Kind, "dry_run")
			continue
		}
		acc := e.account(row.Account)
		state, errText := w.apply(ctx, acc, pm.item, row.Move)
		row.State, row.Error = state, errText
		switch state {
		case quota.ActionIntent:
			// Outcome unknown: the next cycle (or start) reconciles. The
			// cooldown holds meanwhile.
			w.log.Warn("move outcome unknown; will reconcile", "action", id, "item", row.ItemName)
			w.unsettled = true
			if err := record(f, nil, nil); err != nil {
				return fmt.Errorf("record move %d: %w", id, err)
			}
			continue
		case quota.ActionFailed:
			w.log.Warn("move failed", "rule", row.Rule, "item", row.ItemName, "to", row.ToName, "err", errText)
			ev := rules.ActionEvent(*f, row.Move, quota.ResultFailed, errText, false, now)
			if err := record(f, &store.ActionUpdate{ID: id, State: quota.ActionFailed, Error: errText, Time: now}, &ev); err != nil {
				return fmt.Errorf("record failed move %d: %w", id, err)
			}
			w.metrics.action(row.Rule, row.Kind, "failed")
			continue
		}
		w.log.Info("moved", "rule", row.Rule, "kind", row.Kind, "item", row.ItemName, "from", row.FromName, "to", row.ToName)
		ev := rules.ActionEvent(*f, row.Move, quota.ResultApplied, "", false, now)
		if err := record(f, &store.ActionUpdate{ID: id, State: quota.ActionApplied, Time: now}, &ev); err != nil {
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
		res := quota.ResultApplied
		if state == quota.ActionFailed {
			res = quota.ResultFailed
		}
		ev := quota.Event{
			Kind: quota.EventAction, Time: now,
			Key:         quota.InstanceKey{Rule: a.Rule, Account: a.Account, Project: a.From, Resource: a.Resource},
			ProjectName: a.FromName, Quota: a.SourceBefore, Result: res,
			Move: &a.Move, Reason: reason, DaysToFull: quota.Never,
		}
		for _, r := range e.cfg.Rules {
			if r.Name == a.Rule {
				ev.Severity, ev.Description, ev.Notify = r.Severity, r.Description, slices.Clone(r.Notify)
			}
		}
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
