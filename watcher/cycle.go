package watcher

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// Report is what one cycle saw and did.
type Report struct {
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end"`
	Polls  []PollResult  `json:"polls"`
	Events []quota.Event `json:"events"`
	// Plan lists every planned move and every refusal, in planning order.
	Plan []PlanRow `json:"plan"`
	// Delivered and Undelivered count outbox messages at the end.
	Delivered   int  `json:"delivered"`
	Undelivered int  `json:"undelivered"`
	DryRun      bool `json:"dry_run"`
	// Interrupted is set when the cycle was cut short by a stop.
	Interrupted bool `json:"interrupted,omitempty"`
}

// PlanRow is one planned move (with its outcome once applied) or one
// refusal.
type PlanRow struct {
	quota.Move
	ActionID uint64            `json:"action_id,omitempty"`
	DryRun   bool              `json:"dry_run"`
	State    quota.ActionState `json:"state,omitempty"`
	Error    string            `json:"error,omitempty"`
	Skipped  bool              `json:"skipped"`
	Reason   string            `json:"reason,omitempty"`
}

// Failed reports whether the cycle was cut short or any poll or move
// failed: `once` exits 1.
func (r *Report) Failed() bool {
	if r.Interrupted {
		return true
	}
	for _, p := range r.Polls {
		if !p.OK {
			return true
		}
	}
	for _, p := range r.Plan {
		if p.State == quota.ActionFailed {
			return true
		}
	}
	return false
}

// cyclePlan is what planning one cycle decided: the moves to act on, with
// the planner that tells their outcomes, the events to tell at once and the
// instances to persist with the cycle.
type cyclePlan struct {
	planner   *rules.Planner
	moves     []plannedMove
	events    []quota.Event
	instances []quota.Instance
}

// plannedMove is a planned move and its row in Report.Plan.
type plannedMove struct {
	row  int
	move rules.Move
}

// Cycle runs one cycle: poll, record, evaluate, plan, act, notify. It
// returns an error only when the cycle could not record its results (the
// store failed); poll and move failures are in the report.
func (w *Watcher) Cycle(ctx context.Context) (rep *Report, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.env.Load()
	now := w.now().UTC()
	rep = &Report{Start: now, DryRun: e.cfg.DryRun || w.readOnly}
	start := time.Now()
	defer func() {
		// Also while a panic unwinds: the store is let go and the status
		// page shows the cycle.
		rep.End = w.now().UTC()
		if rerr := w.store.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("release store: %w", rerr)
		}
		w.setLast(rep)
	}()
	err = w.cycle(ctx, e, now, rep)
	w.names.shownEvents(rep.Events)
	if ctx.Err() != nil {
		rep.Interrupted = true
	}
	w.metrics.cycleDone(time.Since(start), err == nil) // not reached by a panic
	return rep, err
}

// cycle is the body of Cycle.
func (w *Watcher) cycle(ctx context.Context, e *env, now time.Time, rep *Report) error {
	cfg := e.cfg
	// Open moves (an answer lost, an outcome not recorded) are read back
	// first, so the journal the planner reads is as settled as it can be.
	// Only this process leaves such moves, so the journal is read only
	// while it has any (and at the first cycle).
	if !w.readOnly && w.unsettled && w.leading() {
		if err := w.reconcile(ctx, e); err != nil {
			w.log.Error("reconciling unfinished moves failed", "err", err)
		}
	}

	if !w.readOnly && w.leading() {
		w.expireProposals(e, now)
	}

	// 1. Poll.
	snaps, failed, polls := w.pollAll(ctx, e, now)
	rep.Polls = polls
	if ctx.Err() != nil {
		// Stopping: a poll cut short says nothing about the cloud, so
		// nothing is evaluated or recorded.
		return nil
	}

	// The forecast window keeps, in memory, the series that forecasting
	// rules watch.
	projects := w.names.view()
	// Most resources have no forecasting rule at all: decide those once per
	// resource, not once per series.
	// A project's entries come together: its name is looked up once for
	// them all, not once per series.
	byResource := map[string]bool{}
	lastProject, lastName := "", ""
	keep := func(project, resource string) bool {
		has, ok := byResource[resource]
		if !ok {
			has = e.engine.UsesHistoryOf(resource)
			byResource[resource] = has
		}
		if !has {
			return false
		}
		if project != lastProject || lastProject == "" {
			lastProject, lastName = project, projects[project].Name
		}
		return e.engine.UsesHistory(resource, project, lastName)
	}
	w.histMu.Lock()
	for i := range snaps {
		w.hist.add(&snaps[i], keep)
	}
	w.hist.trim(now, func(k quota.Key) bool { return keep(k.Project, k.Resource) })
	w.histNow = now
	w.histMu.Unlock()
	w.letGo()

	// With ha, only the leader decides; a follower records what it polled,
	// so that its history is whole when it takes over.
	if !w.readOnly && !w.leading() {
		return w.followCycle(now, snaps)
	}

	// 2. Evaluate.
	out := e.engine.Evaluate(rules.Input{
		Now:       now,
		Snapshots: snaps,
		Failed:    failed,
		Projects:  projects,
		Instances: w.states,
		Accounts:  w.accts,
		History:   w.history,
		DryRun:    rep.DryRun,
		Silenced:  w.silenceFunc(now),
	})
	rep.Plan = append(rep.Plan, silencedRows(out.Silenced, rep.DryRun)...)
	rep.Plan = append(rep.Plan, silencedRows(out.CoolingDown, rep.DryRun)...)
	for _, e := range out.Errors {
		w.log.Warn("rule expression failed; counted as false", "err", e)
	}
	events := out.Events
	polledOK := map[string]bool{}
	for _, s := range snaps {
		polledOK[s.Account] = true
	}
	var tokEvents []quota.Event
	tokEvents, out.Accounts = w.tokenEvents(e, now, polledOK, out.Accounts)
	events = append(events, tokEvents...)
	changed := indexInstances(out.Instances)

	// 3. Plan.
	w.progress("planning", 0, 0)
	var cp cyclePlan
	if len(out.Firing) > 0 {
		cp = w.plan(ctx, e, now, snaps, projects, out.Firing, rep)
		events = append(events, cp.events...)
		for _, in := range cp.instances {
			changed[in.Key] = in
		}
	}
	rep.Events = events
	if ctx.Err() != nil {
		return nil // stopping mid-plan: item listings were cut short
	}
	w.metrics.setQuotas(snaps)
	w.metrics.setRuleStates(w.states, out.Instances, out.Deleted)

	if w.readOnly {
		return nil
	}

	// 4. Record: samples, states and the events they caused, in one
	// transaction.
	instances := make([]quota.Instance, 0, len(changed))
	for _, in := range changed {
		instances = append(instances, in)
	}
	sortInstances(instances)
	batch := &store.Batch{
		Time:      now,
		Snapshots: snaps,
		Projects:  w.names.drain(),
		Instances: instances,
		Deleted:   out.Deleted,
		Accounts:  out.Accounts,
		Outbox:    w.fanout(e, events),
	}
	w.beforeRecord(snaps)
	if err := w.store.Commit(batch); err != nil {
		w.names.redo(batch.Projects) // to be written with the next cycle
		if errors.Is(err, store.ErrShare) {
			// The lead was lost during the cycle, or etcd would not take
			// its decisions: nothing it decided is kept, but what it
			// polled is.
			w.log.Warn("the cycle's decisions could not be shared; recording its polls only", "err", err)
			return w.followCycle(now, snaps)
		}
		return fmt.Errorf("record cycle: %w", err)
	}
	w.log.Debug("cycle recorded", "at", now.Format(time.RFC3339Nano), "snapshots", len(snaps))
	for _, in := range instances {
		w.states[in.Key] = in
	}
	for _, k := range out.Deleted {
		delete(w.states, k)
	}
	for _, a := range out.Accounts {
		w.accts[a.Account] = a
	}

	// 5. Act.
	if len(cp.moves) > 0 {
		if err := w.act(ctx, e, now, cp, rep); err != nil {
			return err
		}
	}

	// Retention runs hourly, after the cycle's own work, in bounded
	// transactions, and before delivery, which then counts what is left.
	if now.Sub(w.retained) >= time.Hour && cfg.Store.Retention > 0 {
		w.retained = now
		if err := w.store.Retain(ctx, now.Add(-cfg.Store.Retention)); err != nil {
			w.log.Warn("deleting old history failed", "err", err)
		}
		// Messages of a notifier no longer configured can never go; set
		// them aside (logged, counted as dead) and forget dead messages as
		// old as the history retention.
		if n, err := w.store.SetAsideOrphans(e.notifier, "notifier no longer configured"); err != nil {
			w.log.Warn("setting aside messages of removed notifiers failed", "err", err)
		} else if n > 0 {
			w.log.Warn("set aside messages of notifiers no longer configured", "messages", n)
		}
		if _, err := w.store.PruneDead(now.Add(-cfg.Store.Retention)); err != nil {
			w.log.Warn("deleting old dead messages failed", "err", err)
		}
	}

	// 6. Notify.
	w.deliver(ctx, e, rep)

	return nil
}

// letGo releases the store between reads when the watcher only reads
// (plan), so it never holds the file across slow calls to the cloud while
// the daemon may want it.
func (w *Watcher) letGo() {
	if w.readOnly {
		if err := w.store.Release(); err != nil {
			w.log.Warn("releasing the store failed", "err", err)
		}
	}
}

// history feeds the forecast variables: from the window for the series
// forecasting rules watch, from the store for the few others an event
// wants a trend for.
func (w *Watcher) history(k quota.Key) []quota.Sample {
	w.histMu.Lock()
	ss, ok := w.hist.samples(k, w.histNow)
	now := w.histNow
	w.histMu.Unlock()
	if ok {
		return ss
	}
	return w.stored(k, now.Add(-forecastWindow), now)
}

// stored reads a series' samples from the store; a failure costs only the
// trend, so it is logged, not returned.
func (w *Watcher) stored(k quota.Key, from, to time.Time) []quota.Sample {
	ss, err := w.store.Series(k, from, to)
	if err != nil {
		w.log.Warn("reading history failed", "series", k.String(), "err", err)
		return nil
	}
	return ss
}

func indexInstances(ins []quota.Instance) map[quota.InstanceKey]quota.Instance {
	m := make(map[quota.InstanceKey]quota.Instance, len(ins))
	for _, in := range ins {
		m[in.Key] = in
	}
	return m
}

func sortInstances(ins []quota.Instance) {
	sort.Slice(ins, func(i, j int) bool { return ins[i].Key.String() < ins[j].Key.String() })
}

// fanout turns events into outbox messages, one per notifier that should
// get each event, in event order.
func (w *Watcher) fanout(e *env, events []quota.Event) []store.Outgoing {
	var out []store.Outgoing
	for _, ev := range events {
		targets := ev.Notify
		if len(targets) == 0 {
			targets = e.notifier
		}
		for _, n := range targets {
			if _, ok := e.notifiers[n]; !ok {
				continue
			}
			out = append(out, store.Outgoing{Notifier: n, Event: w.names.shownEvent(ev)})
		}
	}
	return out
}

// beforeRecord runs the BeforeBulkRecord hook before recording snaps, if
// they bring more new series than the store holds, and at least
// bulkSeries: the entries polled are more than twice the series known plus
// bulkSeries. Every series is then written at once, with the cycle's data
// all live.
func (w *Watcher) beforeRecord(snaps []quota.Snapshot) {
	if w.beforeBulk == nil {
		return
	}
	n := 0
	for _, sn := range snaps {
		n += len(sn.Entries)
	}
	if known, err := w.store.SeriesCount(); err == nil && n > 2*known+bulkSeries {
		w.beforeBulk()
	}
}

// bulkSeries is the least a cycle must bring to count as bulk: below it,
// a collection costs more than the memory it spares.
const bulkSeries = 10_000
