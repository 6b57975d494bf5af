package rules

import (
	"fmt"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// PlannerInput is what planning one cycle needs.
type PlannerInput struct {
	Now time.Time
	// Snapshots are the cycle's polls. Each account with a snapshot that is
	// not the service view gets a ledger of its quotas; firing instances of
	// other accounts plan nothing.
	Snapshots []quota.Snapshot
	// Projects resolves `to` globs on names, and names projects in moves
	// and reasons.
	Projects map[string]quota.Project
	// Journal holds the recent actions of every account, as far back as
	// JournalWindow of the cycle's firing instances, and every move still
	// open (intent or unknown) however old. Dry-run entries are ignored: a
	// report never starts a cooldown for real moves. Every entry but a
	// refusal the cloud answered counts for cooldowns and the 24h
	// no-return rule; an open move also counts as on its way: its item is
	// not planned again and the ledgers see it as moved, since it may
	// still land.
	Journal []quota.Action
	// Cap is the most moves the cycle may plan (max_actions_per_cycle); a
	// negative Cap means no cap.
	Cap int
	// DryRun is the global dry_run: every move is only reported.
	DryRun bool
	// History feeds the forecast variables when a rule's expressions are
	// evaluated on simulated quotas.
	History HistoryFunc
	// Memberships are each account's user's membership states by project
	// id: a destination must be one where it is accepted.
	Memberships map[string]map[string]string
	// Drift holds the sources whose releases the cloud refused, with the
	// reason, while their numbers are unchanged: nothing moves out of them.
	Drift map[DriftKey]string
	// UserNames names users (by UUID) in refusals; the account's name is
	// used for one it does not know.
	UserNames map[string]string
}

// Planner plans the moves of one cycle, firing instance after firing
// instance, and tells what came of them. It owns everything the moves of
// one cycle share: every account's ledger, the journal window that
// cooldowns are read from, the cap, and the items already on their way
// out. It is pure, like the Engine whose rules it plans, and not safe for
// concurrent use (nor concurrently with the Engine's Evaluate).
type Planner struct {
	e        *Engine
	now      time.Time
	projects map[string]quota.Project
	history  HistoryFunc
	members  map[string]map[string]string
	drift    map[DriftKey]string
	users    map[string]string
	dryRun   bool
	capped   bool
	left     int // moves left under the cap, when capped
	ledgers  map[string]*quota.Ledger
	journal  map[string][]quota.Action // per account, real moves only
	leaving  map[itemKey]bool          // items planned out this cycle
	raised   map[raiseKey]bool         // limits planned raised this cycle
	firing   map[quota.InstanceKey]*Firing
}

type itemKey struct {
	account string
	kind    quota.Kind
	id      string
}

// NewPlanner starts the planning of one cycle. The input's snapshots and
// journal are not modified.
func (e *Engine) NewPlanner(in PlannerInput) *Planner {
	p := &Planner{
		e:        e,
		now:      in.Now,
		projects: in.Projects,
		history:  in.History,
		members:  in.Memberships,
		drift:    in.Drift,
		users:    in.UserNames,
		dryRun:   in.DryRun,
		capped:   in.Cap >= 0,
		left:     max(in.Cap, 0),
		ledgers:  map[string]*quota.Ledger{},
		journal:  map[string][]quota.Action{},
		leaving:  map[itemKey]bool{},
		raised:   map[raiseKey]bool{},
		firing:   map[quota.InstanceKey]*Firing{},
	}
	for i := range in.Snapshots {
		if s := &in.Snapshots[i]; !s.Service {
			p.ledgers[s.Account] = quota.NewLedger(s.Entries)
		}
	}
	for _, a := range in.Journal {
		if a.DryRun {
			continue
		}
		p.journal[a.Account] = append(p.journal[a.Account], a)
		if a.Open() {
			p.onItsWay(a.Move)
		}
	}
	return p
}

// onItsWay counts a move that may still land on the ledgers: the polls
// show its item in the source, but planning as if it had stayed would send
// another item in its place.
func (p *Planner) onItsWay(m quota.Move) {
	if l := p.ledgers[m.Account]; l != nil {
		l.Move(m.From, m.To, m.Quantities)
	}
	for acct, l := range p.ledgers {
		if acct != m.Account {
			l.MoveProject(m.From, m.To, m.Quantities)
		}
	}
}

// JournalWindow is how far back the journal must reach for planning the
// firing instances: the 24h no-return window, or the longest cooldown.
func JournalWindow(firing []Firing) time.Duration {
	d := BackMoveWindow
	for i := range firing {
		if r := firing[i].Rule; r != nil {
			d = max(d, r.Cooldown)
		}
	}
	return d
}

// Plan is what planning one firing instance decided.
type Plan struct {
	// Moves are the moves to apply (in a dry run: to report), in order.
	Moves []Move
	// Skips are every refusal, told or not.
	Skips []Skip
	// Events are the "action skipped" events to tell now: each reason once
	// per incident, and again only after the rule's repeat.
	Events []quota.Event
	// Instance is the firing instance after planning: Skipped records what
	// Events told. Changed reports that it differs from the Firing's and
	// must be persisted.
	Instance quota.Instance
	Changed  bool
	// DryRun is set when the plan is only reported (global or rule dry run).
	DryRun bool
}

// Move is a move the planner chose.
type Move struct {
	quota.Move
	// DryRun moves are reported, never applied.
	DryRun bool
	// Item is the item as listed, for the call that moves it.
	Item quota.Item
}

// Skip is a refused or impossible move, with a reason for people.
type Skip struct {
	ItemID   string // "" when the refusal is about the instance as a whole
	ItemName string
	Reason   string
}

// Outcome is what an outcome of a move changes: the events to tell, and
// the instance to persist with them.
type Outcome struct {
	Events   []quota.Event
	Instance quota.Instance
}

// Plan picks the moves that relieve one firing instance. items are the
// items of the rule's kind charged to the source project; those another
// rule planned out earlier in the cycle are left out. The moves are
// simulated on the ledgers, so later plans of the cycle see them, and live
// ones join the journal window (for cooldowns) and the project-level usage
// of the other accounts' ledgers. A rule in dry run (global dry run off)
// plans the same moves but takes them back from the ledger and the cap, so
// live rules planned later are not starved by moves that never happen.
// Under the global dry run, plans see each other exactly as real ones
// would (ledgers, cap, journal window, items on their way out), so a plan
// shows what a live cycle would do.
func (p *Planner) Plan(f Firing, items []quota.Item) Plan {
	k := f.Instance.Key
	ledger := p.ledgers[k.Account]
	if f.Rule == nil || f.Rule.Action == nil || ledger == nil {
		return Plan{Instance: f.Instance}
	}
	dry := p.dryRun || f.Rule.DryRun
	in := planInput{
		Now: p.now, Firing: f, Items: p.present(k.Account, items), Ledger: ledger,
		Projects: p.projects, Journal: p.journal[k.Account], History: p.history,
		Memberships: p.members[k.Account], OwnerName: k.Account, Drift: p.drift[DriftKey{k.Account, k.Project}],
	}
	if n := p.users[f.User]; n != "" {
		in.OwnerName = n
	}
	in.Firing.Instance.LastAction = lastMove(f.Instance, dry)
	left := p.left
	if p.capped {
		in.Budget = &left
	}
	ruleDry := f.Rule.DryRun && !p.dryRun
	var undo undoLog
	if ruleDry {
		in.Undo = &undo
	}
	moves, skips := p.e.plan(in)
	if ruleDry {
		undo.restore(ledger)
	} else {
		p.left = left
	}
	if !ruleDry {
		for _, m := range moves {
			p.leaving[itemKey{k.Account, m.Kind, m.ItemID}] = true
			p.journal[k.Account] = append(p.journal[k.Account], quota.Action{Time: p.now, State: quota.ActionIntent, Move: m.Move})
			for acct, l := range p.ledgers {
				if acct != k.Account {
					l.MoveProject(m.From, m.To, m.Quantities)
				}
			}
		}
	}
	for i := range moves {
		moves[i].DryRun = dry
	}
	return p.finish(f, Plan{Moves: moves, Skips: skips, DryRun: dry})
}

// ListFailed is the plan of a firing instance whose items could not be
// listed: nothing moves, and the failure is told like a refusal.
func (p *Planner) ListFailed(f Firing, err error) Plan {
	if f.Rule == nil || f.Rule.Action == nil {
		return Plan{Instance: f.Instance}
	}
	reason := fmt.Sprintf("listing %ss of the project failed: %v", f.Rule.Action.Kind, err)
	return p.finish(f, Plan{Skips: []Skip{{Reason: reason}}, DryRun: p.dryRun || f.Rule.DryRun})
}

// finish keeps the firing instance for the outcomes of its moves and turns
// the plan's skips into the events to tell.
func (p *Planner) finish(f Firing, plan Plan) Plan {
	rec := &f
	p.firing[f.Instance.Key] = rec
	plan.Events, plan.Changed = skipEvents(rec, plan.Skips, plan.DryRun, p.now)
	plan.Instance = rec.Instance
	return plan
}

// present leaves out the items another rule planned out this cycle.
func (p *Planner) present(account string, items []quota.Item) []quota.Item {
	if len(p.leaving) == 0 {
		return items
	}
	var out []quota.Item
	for _, it := range items {
		if !p.leaving[itemKey{account, it.Kind, it.ID}] {
			out = append(out, it)
		}
	}
	return out
}

// Applied records that m was applied, or for a dry-run move reported, and
// returns its event. The instance's cooldown starts; a report's paces only
// later reports, so that they come at the pace of real moves without
// holding back the first real one.
func (p *Planner) Applied(m Move) Outcome {
	return p.outcome(m, quota.ResultApplied, "")
}

// Failed records that the cloud refused m (reason is its error text) and
// returns its event. The cooldown starts as for any move tried.
func (p *Planner) Failed(m Move, reason string) Outcome {
	return p.outcome(m, quota.ResultFailed, reason)
}

// Unknown records that m was sent but its outcome is not known: the
// cooldown starts, and nothing is told until the move is settled (see
// [Engine.Settled]). Until then the journal shows it open, and later
// cycles count it as on its way.
func (p *Planner) Unknown(m Move) Outcome {
	return p.outcome(m, "", "")
}

// outcome starts the cooldown of m's instance and builds the event of res
// ("" for none). m must come from this planner's Plan.
func (p *Planner) outcome(m Move, res quota.ActionResult, reason string) Outcome {
	f := p.firing[quota.InstanceKey{Rule: m.Rule, Account: m.Account, Project: m.From, Resource: m.Resource}]
	if f == nil {
		return Outcome{}
	}
	if m.DryRun {
		f.Instance.LastReport = p.now
	} else {
		f.Instance.LastAction = p.now
	}
	out := Outcome{Instance: f.Instance}
	if res != "" {
		ev := firingEvent(f, m.DryRun, p.now)
		ev.Result = res
		mv := m.Move
		ev.Move = &mv
		ev.Reason = reason
		out.Events = []quota.Event{ev}
	}
	return out
}

// undoLog records the quotas a dry-run rule's moves touch, to put them
// back afterwards.
type undoLog []savedQuota

type savedQuota struct {
	project, resource string
	q                 quota.Quota
	ok                bool
}

// save records the quotas of every resource of qs in the projects.
func (u *undoLog) save(l *quota.Ledger, qs quota.Quantities, projects ...string) {
	for _, r := range qs.Resources() {
		for _, p := range projects {
			q, ok := l.Get(p, r)
			*u = append(*u, savedQuota{project: p, resource: r, q: q, ok: ok})
		}
	}
}

// restore puts the saved quotas back, latest change first.
func (u undoLog) restore(l *quota.Ledger) {
	for i := len(u) - 1; i >= 0; i-- {
		if s := u[i]; s.ok {
			l.Set(s.project, s.resource, s.q)
		}
	}
}
