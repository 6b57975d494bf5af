package watcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// A rule with require_approval plans its moves as proposals: each is
// journaled as proposed and announced, and waits, at most approval_ttl,
// for a person to approve or reject it (`quotawatch approve|reject`, or a
// button in Slack). An approved proposal is planned again on a fresh poll
// of its account and applied only if it still holds; otherwise it expires
// with the reason. While a proposal waits, its incident plans nothing else.

// Decision operations.
const (
	OpApprove = "approve"
	OpReject  = "reject"
	OpUndo    = "undo"
)

// Decision is a person's decision on a journal entry: approve or reject a
// proposal, or undo a move.
type Decision struct {
	Op      string
	ID      uint64
	By      string
	Comment string
	// Approvers, when not nil, are who may decide (the Slack approvers of
	// the notifier whose button was pressed); nil means anyone who can
	// reach the daemon (the control socket's owner).
	Approvers []string
}

// ErrNotAllowed is returned when someone not listed as an approver
// decides.
var ErrNotAllowed = errors.New("not allowed")

// needsApproval reports whether m must wait for approval.
func needsApproval(e *env, m rules.Move) bool {
	if m.DryRun {
		return false
	}
	for _, r := range e.engine.Rules() {
		if r.Name == m.Rule {
			return r.RequireApproval || e.cfg.RequireApproval
		}
	}
	return false
}

// ReasonApproval is the reason of a plan row whose move waits for approval
// (in a dry run: would).
const ReasonApproval = "needs approval"

// approvalReason is the plan row's reason for a move of rule r: whether it
// waits for approval, unless the move is only reported anyway.
func approvalReason(e *env, r *rules.Rule) string {
	if (r.RequireApproval || e.cfg.RequireApproval) && !r.DryRun && !e.cfg.DryRun {
		return ReasonApproval
	}
	return ""
}

// propose journals m as a proposal, with its announcement.
func (w *Watcher) propose(e *env, now time.Time, m rules.Move, row *PlanRow) error {
	a := quota.Action{Time: now, Updated: now, Expires: now.Add(e.cfg.ProposalTTL()), Move: m.Move}
	a, err := w.store.Propose(a, func(a quota.Action) []store.Outgoing {
		return w.fanout(e, []quota.Event{e.engine.Decision(a, quota.ResultProposed, "", now)})
	})
	if err != nil {
		return fmt.Errorf("journal proposal for %s %s: %w", m.Kind, m.ItemName, err)
	}
	row.ActionID, row.State = a.ID, quota.ActionProposed
	w.log.Info("move proposed", "proposal", a.ID, "rule", m.Rule, "item", m.ItemName, "from", m.FromName, "to", m.ToName,
		"expires", a.Expires.Format(time.RFC3339))
	return nil
}

// waitingProposals maps each incident to its proposal waiting for a
// decision.
func (w *Watcher) waitingProposals() map[quota.InstanceKey]quota.Action {
	list, err := w.store.Proposals()
	if err != nil {
		w.log.Warn("reading proposals failed", "err", err)
		return nil
	}
	out := make(map[quota.InstanceKey]quota.Action, len(list))
	for _, a := range list {
		out[proposalKey(a)] = a
	}
	return out
}

func proposalKey(a quota.Action) quota.InstanceKey {
	return quota.InstanceKey{Rule: a.Rule, Account: a.Account, Project: a.From, Resource: a.Resource}
}

// awaitingRow is the plan's row of an incident whose proposal waits.
func awaitingRow(f rules.Firing, a quota.Action) PlanRow {
	k := f.Instance.Key
	return PlanRow{
		Move: quota.Move{
			Rule: k.Rule, Account: k.Account, Kind: a.Kind, ItemID: a.ItemID, ItemName: a.ItemName,
			From: k.Project, FromName: f.ProjectName, To: a.To, ToName: a.ToName, Resource: k.Resource, SourceBefore: f.Quota,
		},
		ActionID: a.ID, Skipped: true,
		Reason: fmt.Sprintf("awaiting approval: proposal %d, until %s", a.ID, a.Expires.UTC().Format("2006-01-02 15:04 MST")),
	}
}

// expireProposals ends, announcing it, every proposal past its time.
func (w *Watcher) expireProposals(e *env, now time.Time) {
	list, err := w.store.Proposals()
	if err != nil {
		w.log.Warn("reading proposals failed", "err", err)
		return
	}
	for _, a := range list {
		if a.Expires.IsZero() || now.Before(a.Expires) {
			continue
		}
		reason := fmt.Sprintf("no decision within %s", rules.FormatDuration(a.Expires.Sub(a.Time)))
		if _, err := w.endProposal(e, a.ID, quota.ActionExpired, "", "", reason, now); err != nil {
			w.log.Warn("expiring proposal failed", "proposal", a.ID, "err", err)
			continue
		}
		w.log.Info("proposal expired", "proposal", a.ID, "reason", reason)
	}
}

// endProposal records a proposal as rejected or expired, with who and why,
// and announces it.
func (w *Watcher) endProposal(e *env, id uint64, state quota.ActionState, by, comment, reason string, now time.Time) (quota.Action, error) {
	res := quota.ResultExpired
	if state == quota.ActionRejected {
		res = quota.ResultRejected
	}
	return w.store.Decide(id, func(a *quota.Action) error {
		a.State, a.Updated, a.Error = state, now, reason
		if by != "" {
			a.By, a.Comment = by, comment
		}
		return nil
	}, func(a quota.Action) []store.Outgoing {
		return w.fanout(e, []quota.Event{e.engine.Decision(a, res, reason, now)})
	})
}

// Decide carries out a decision: it waits for a cycle in progress, and
// delivers the announcements before returning. The entry is returned as it
// ends up; an approval that could not be applied returns it expired (or
// failed) with the reason in its Error.
func (w *Watcher) Decide(ctx context.Context, d Decision) (quota.Action, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readOnly {
		return quota.Action{}, errors.New("read-only: no decision can be recorded")
	}
	if !w.leading() {
		return quota.Action{}, w.followerError()
	}
	defer func() {
		if err := w.store.Release(); err != nil {
			w.log.Warn("releasing the store failed", "err", err)
		}
	}()
	e := w.env.Load()
	a, err := w.decide(ctx, e, d)
	w.deliver(ctx, e, &Report{})
	return a, err
}

func (w *Watcher) decide(ctx context.Context, e *env, d Decision) (quota.Action, error) {
	now := w.now().UTC()
	a, err := w.store.Action(d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return quota.Action{}, fmt.Errorf("no action %d in the journal", d.ID)
	}
	if err != nil {
		return quota.Action{}, err
	}
	if d.Op == OpUndo {
		return w.undo(ctx, e, a, d, now)
	}
	if a.State != quota.ActionProposed {
		if !a.Proposal() && a.ProposalID == 0 {
			return a, fmt.Errorf("action %d is not a proposal", a.ID)
		}
		by := ""
		if a.By != "" {
			by = " by " + a.By
		}
		return a, fmt.Errorf("proposal %d is already %s%s", a.ID, decidedState(a.State), by)
	}
	if d.Approvers != nil && !slices.Contains(d.Approvers, d.By) {
		w.log.Warn("decision refused: not an approver", "proposal", a.ID, "op", d.Op, "by", d.By)
		reason := fmt.Sprintf("%s may not %s proposals", d.By, d.Op)
		ev := e.engine.Decision(a, quota.ResultRefused, reason, now)
		if err := w.store.Commit(&store.Batch{Time: now, Outbox: w.fanout(e, []quota.Event{ev})}); err != nil {
			w.log.Warn("announcing a refused decision failed", "err", err)
		}
		return a, fmt.Errorf("%w: %s", ErrNotAllowed, reason)
	}
	if !now.Before(a.Expires) && !a.Expires.IsZero() {
		w.expireProposals(e, now)
		return a, fmt.Errorf("proposal %d expired at %s", a.ID, a.Expires.UTC().Format(time.RFC3339))
	}
	switch d.Op {
	case OpReject:
		w.log.Info("proposal rejected", "proposal", a.ID, "by", d.By, "comment", d.Comment)
		return w.endProposal(e, a.ID, quota.ActionRejected, d.By, d.Comment, "", now)
	case OpApprove:
		return w.approve(ctx, e, a, d, now)
	}
	return a, fmt.Errorf("unknown decision %q", d.Op)
}

// decidedState names the state of a decided proposal.
func decidedState(s quota.ActionState) string {
	switch s {
	case quota.ActionIntent, quota.ActionUnknown, quota.ActionApplied, quota.ActionVerified, quota.ActionFailed:
		return "approved (" + string(s) + ")"
	}
	return string(s)
}

// approve plans the proposal again on a fresh poll of its account and
// applies it if it still holds, else expires it with the reason.
func (w *Watcher) approve(ctx context.Context, e *env, a quota.Action, d Decision, now time.Time) (quota.Action, error) {
	expire := func(reason string) (quota.Action, error) {
		reason = fmt.Sprintf("approved by %s, but %s", d.By, reason)
		w.log.Info("approved proposal expired", "proposal", a.ID, "by", d.By, "reason", reason)
		return w.endProposal(e, a.ID, quota.ActionExpired, d.By, d.Comment, reason, now)
	}
	acc := e.account(a.Account)
	if acc == nil {
		return expire(fmt.Sprintf("account %s is no longer configured", a.Account))
	}
	snap, it, err := w.freshPoll(ctx, acc, a, now)
	if client.IsNotFound(err) {
		return expire(fmt.Sprintf("%s no longer exists", a.ItemName))
	}
	if err != nil {
		return a, fmt.Errorf("fresh poll of %s: %w (nothing decided; try again)", a.Account, err)
	}
	journal, err := w.store.Actions(now.Add(-rules.BackMoveWindow-maxCooldown(e)), now)
	if err != nil {
		return a, fmt.Errorf("read the journal: %w", err)
	}
	journal = slices.DeleteFunc(journal, func(j quota.Action) bool { return j.ID == a.ID || j.Account != a.Account })
	mv, reason := e.engine.Recheck(rules.RecheckInput{
		Now: now, Snapshot: snap, Projects: w.names.view(), Journal: journal, History: w.history, Move: a.Move, Item: it,
	})
	if reason != "" {
		return expire(reason)
	}
	m := mv.Move
	m.ProposalID, m.By, m.Comment = a.ID, d.By, d.Comment
	a, err = w.store.Decide(a.ID, func(x *quota.Action) error {
		x.State, x.Time, x.Updated, x.Move = quota.ActionIntent, now, now, m
		return nil
	}, func(quota.Action) []store.Outgoing { return nil })
	if err != nil {
		return a, err
	}
	w.unsettled = true
	w.log.Info("proposal approved", "proposal", a.ID, "by", d.By, "comment", d.Comment)
	return w.applyDecided(ctx, e, acc, a, mv.Item, now)
}

// freshPoll polls the account of a and reads its item back.
func (w *Watcher) freshPoll(ctx context.Context, acc *account, a quota.Action, now time.Time) (quota.Snapshot, quota.Item, error) {
	snap, err := w.pollAccount(ctx, acc, now)
	if err != nil {
		return snap, quota.Item{}, err
	}
	it, err := acc.cloud.Item(ctx, a.Kind, a.ItemID)
	return snap, it, err
}

// maxCooldown is the longest cooldown of the rules.
func maxCooldown(e *env) time.Duration {
	var d time.Duration
	for _, r := range e.engine.Rules() {
		d = max(d, r.Cooldown)
	}
	return d
}

// applyDecided applies a journaled intent decided by a person (an approved
// proposal, an undo), records its outcome with its announcement and the
// cooldown of its incident, and reads it back.
func (w *Watcher) applyDecided(ctx context.Context, e *env, acc *account, a quota.Action, it quota.Item, now time.Time) (quota.Action, error) {
	if !w.leading() {
		// Journaled (and shared) as intent, not sent: the next leader reads
		// the item back and settles it.
		return a, fmt.Errorf("move %d not sent: %w", a.ID, w.followerError())
	}
	dctx, cancel := detached(ctx)
	defer cancel()
	state, errText := w.apply(dctx, acc, it, a.Move)
	b := &store.Batch{Time: now}
	switch state {
	case quota.ActionUnknown:
		b.Actions = []store.ActionUpdate{{ID: a.ID, State: quota.ActionUnknown, Time: w.now().UTC()}}
	default:
		res := quota.ResultApplied
		if state == quota.ActionFailed {
			res = quota.ResultFailed
		}
		b.Actions = []store.ActionUpdate{{ID: a.ID, State: state, Error: errText, Time: now}}
		a.State, a.Error = state, errText
		b.Outbox = w.fanout(e, []quota.Event{e.engine.Decision(a, res, errText, now)})
	}
	// The move starts its incident's cooldown, as a planned one does.
	k := proposalKey(a)
	if inst, ok := w.states[k]; ok && a.UndoOf == 0 {
		inst.LastAction = now
		b.Instances = []quota.Instance{inst}
	}
	if err := w.store.Commit(b); err != nil {
		return a, fmt.Errorf("record move %d: %w", a.ID, err)
	}
	for _, in := range b.Instances {
		w.states[in.Key] = in
	}
	a.State, a.Error = state, errText
	w.metrics.action(a.Rule, a.Kind, string(state))
	if state != quota.ActionApplied {
		if state == quota.ActionFailed {
			return a, fmt.Errorf("move %d failed: %s", a.ID, errText)
		}
		return a, fmt.Errorf("move %d sent, outcome unknown: it is read back at the next cycle", a.ID)
	}
	w.log.Info("moved", "action", a.ID, "kind", a.Kind, "item", a.ItemName, "from", a.FromName, "to", a.ToName, "by", a.By)
	if w.verify(dctx, acc, a.Move) {
		if err := w.store.SetActionState(a.ID, quota.ActionVerified, "", w.now().UTC()); err != nil {
			return a, fmt.Errorf("journal verification of move %d: %w", a.ID, err)
		}
		a.State = quota.ActionVerified
	}
	return a, nil
}

// controlDecision carries out a decision asked on the control socket; who
// asked is the socket peer's user.
func (w *Watcher) controlDecision(ctx context.Context, req controlRequest) controlResponse {
	a, err := w.Decide(ctx, Decision{Op: req.Op, ID: req.ID, By: req.By, Comment: req.Comment})
	resp := controlResponse{OK: err == nil, Action: &a}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

// DecideOptions is how a command reaches a decision: through the running
// daemon's control socket, beside the store at storePath, when one answers
// (it holds the clients and the store, so the command needs no secret);
// else with a watcher of its own, built from the Options local returns
// (with the configuration's secrets: the fresh poll needs the account's).
func DecideOptions(ctx context.Context, storePath string, d Decision, local func() (Options, error)) (quota.Action, error) {
	var resp controlResponse
	ok, err := callControl(ctx, storePath, controlRequest{Op: d.Op, ID: d.ID, Comment: d.Comment, By: d.By}, &resp)
	if ok {
		var a quota.Action
		if resp.Action != nil {
			a = *resp.Action
		}
		return a, err
	}
	o, err := local()
	if err != nil {
		return quota.Action{}, fmt.Errorf("no daemon answers on %s, and this command cannot act itself: %w", ControlSocket(storePath), err)
	}
	if o.Config.HA != nil {
		return quota.Action{}, errNoLeaderHere(storePath)
	}
	w, err := New(ctx, o)
	if err != nil {
		return quota.Action{}, err
	}
	defer w.Close()
	if err := w.Reconcile(ctx); err != nil {
		w.log.Warn("reconciling unfinished moves failed", "err", err)
	}
	return w.Decide(ctx, d)
}
