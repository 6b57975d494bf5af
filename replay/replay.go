// Package replay runs rules cycle after cycle on given polls as the daemon
// runs them: evaluate the rules, plan the firing instances' moves on the
// cycle's ledgers, take every planned move as applied, and carry the rule
// and account states and the journal to the next cycle. It touches no
// cloud and no store: the rule tests and the backtest feed it their polls.
package replay

import (
	"container/heap"
	"slices"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
)

// Sim is the state a run carries from one cycle to the next.
type Sim struct {
	engine *rules.Engine
	// Cap is max_actions_per_cycle (negative: no cap); DryRun the global
	// dry_run.
	cap    int
	dryRun bool

	states  map[quota.InstanceKey]quota.Instance
	accts   map[string]quota.AccountState
	journal []quota.Action
	nextID  uint64

	// byProject indexes the states by project (a snapshot lists a
	// project's series together, so a partial cycle looks each project up
	// once), and perAcct counts them by account; due schedules their
	// evaluations once Due is first asked.
	byProject map[string][]quota.InstanceKey
	perAcct   map[string]int
	due       dueHeap
	gen       map[quota.InstanceKey]uint64
	tracked   bool
	// sub and seen are reused from cycle to cycle: an evaluation keeps
	// neither.
	sub  map[quota.InstanceKey]quota.Instance
	seen map[quota.Key]bool
}

// New returns a simulation of engine's rules with the given
// max_actions_per_cycle and global dry_run, starting with no state.
func New(engine *rules.Engine, maxActions int, dryRun bool) *Sim {
	return &Sim{
		engine: engine, cap: maxActions, dryRun: dryRun,
		states:    map[quota.InstanceKey]quota.Instance{},
		accts:     map[string]quota.AccountState{},
		byProject: map[string][]quota.InstanceKey{},
		perAcct:   map[string]int{},
		gen:       map[quota.InstanceKey]uint64{},
	}
}

// Engine returns the simulation's rule engine.
func (s *Sim) Engine() *rules.Engine { return s.engine }

// Instances returns the rule instance states after the last cycle. The
// map is the simulation's own: callers must not change it.
func (s *Sim) Instances() map[quota.InstanceKey]quota.Instance { return s.states }

// Cycle is what one cycle's polls returned.
type Cycle struct {
	Now       time.Time
	Snapshots []quota.Snapshot
	// Failed maps an account to its poll error, as rules.Input has it.
	Failed map[string]string
	// Ledgers, if set, returns the polls the planner plans on, when
	// Snapshots hold only the series worth evaluating: every entry of the
	// given resources, and the entries of the given series. The planner
	// reads only those: the rules' resources and what the listed items
	// carry, or with no item to move, the firing series themselves.
	Ledgers  func(resources []string, series []quota.Key) []quota.Snapshot
	Projects map[string]quota.Project
	History  rules.HistoryFunc
	// Trend, if set, feeds the evaluation's forecast instead of History.
	Trend rules.TrendFunc
	// Partial says Snapshots hold only some series of each polled account:
	// those whose values or forecast changed, and those Due named. The
	// states of the others are neither read nor ended, but for the series
	// Gone lists: no longer polled, their states end as vanished.
	Partial bool
	Gone    []quota.Key
	// Items returns what listing the items of a kind in a project returns;
	// it is asked once per (account, project, kind) in a cycle.
	Items func(account, project string, kind quota.Kind) []quota.Item
}

// Refusal is one refusal of the planner, with the instance it was for.
type Refusal struct {
	Rule   string
	Key    quota.InstanceKey
	Kind   quota.Kind
	DryRun bool
	rules.Skip
}

// Result is what one cycle told and did.
type Result struct {
	// Events are the evaluation's events, then the planner's, then those of
	// each move's outcome.
	Events []quota.Event
	// Errors are runtime errors of expressions, counted as false.
	Errors []error
	// Moves are the planned moves, each taken as applied.
	Moves []rules.Move
	// Refusals are every refusal of the planner, told or not.
	Refusals []Refusal
}

type itemsKey struct {
	account, project string
	kind             quota.Kind
}

// Step runs one cycle. A move's effect on the items (the item is in its
// destination from then on) is the caller's to apply to what Items later
// returns.
func (s *Sim) Step(c Cycle) Result {
	now := c.Now
	instances := s.states
	if c.Partial {
		instances = s.partial(&c)
	}
	out := s.engine.Evaluate(rules.Input{
		Now: now, Snapshots: c.Snapshots, Failed: c.Failed, Projects: c.Projects,
		Instances: instances, Accounts: s.accts, History: c.History, Trend: c.Trend, DryRun: s.dryRun,
	})
	res := Result{Errors: out.Errors, Events: out.Events}
	changed := make(map[quota.InstanceKey]quota.Instance, len(out.Instances))
	for _, in := range out.Instances {
		changed[in.Key] = in
	}

	var planner *rules.Planner
	if len(out.Firing) > 0 {
		from := now.Add(-rules.JournalWindow(out.Firing))
		var window []quota.Action
		for _, a := range s.journal {
			if !a.Time.Before(from) {
				window = append(window, a)
			}
		}
		// Items are listed once per (account, project, kind), before
		// planning, so the ledger can hold just what the plans read.
		listed := map[itemsKey][]quota.Item{}
		var order []itemsKey
		for _, fi := range out.Firing {
			if fi.Rule.Action == nil {
				continue
			}
			k := fi.Instance.Key
			ik := itemsKey{k.Account, k.Project, fi.Rule.Action.Kind}
			if _, ok := listed[ik]; !ok {
				var list []quota.Item
				if c.Items != nil {
					list = c.Items(ik.account, ik.project, ik.kind)
				}
				listed[ik] = list
				order = append(order, ik)
			}
		}
		ledgers := c.Snapshots
		if c.Ledgers != nil {
			ledgers = c.Ledgers(planned(out.Firing, listed, order))
		}
		planner = s.engine.NewPlanner(rules.PlannerInput{
			Now: now, Snapshots: ledgers, Projects: c.Projects, Journal: window,
			Cap: s.cap, DryRun: s.dryRun, History: c.History,
		})
		for _, fi := range out.Firing {
			if fi.Rule.Action == nil {
				continue
			}
			k := fi.Instance.Key
			ik := itemsKey{k.Account, k.Project, fi.Rule.Action.Kind}
			p := planner.Plan(fi, listed[ik])
			res.Moves = append(res.Moves, p.Moves...)
			res.Events = append(res.Events, p.Events...)
			for _, sk := range p.Skips {
				res.Refusals = append(res.Refusals, Refusal{Rule: fi.Rule.Name, Key: k, Kind: ik.kind, DryRun: p.DryRun, Skip: sk})
			}
			if p.Changed {
				changed[p.Instance.Key] = p.Instance
			}
		}
	}

	// Recorded as a cycle records them: changed states, then those
	// dropped, then each move's outcome.
	for _, in := range changed {
		s.set(now, in)
	}
	for _, k := range out.Deleted {
		s.drop(k)
	}
	for _, a := range out.Accounts {
		s.accts[a.Account] = a
	}
	for _, m := range res.Moves {
		s.nextID++
		s.journal = append(s.journal, quota.Action{
			ID: s.nextID, Time: now, Updated: now,
			State: quota.ActionApplied, DryRun: m.DryRun, Move: m.Move,
		})
		o := planner.Applied(m)
		s.set(now, o.Instance)
		res.Events = append(res.Events, o.Events...)
	}
	s.trimJournal(now)
	return res
}

// trimJournal forgets the moves too old to matter to planning: older than
// the no-return window and every rule's cooldown.
func (s *Sim) trimJournal(now time.Time) {
	keep := rules.BackMoveWindow
	for _, r := range s.engine.Rules() {
		keep = max(keep, r.Cooldown)
	}
	i := 0
	for i < len(s.journal) && s.journal[i].Time.Before(now.Add(-keep)) {
		i++
	}
	if i > 0 {
		s.journal = append(s.journal[:0:0], s.journal[i:]...)
	}
}

// planned returns what the plans of a cycle read of the ledgers: with an
// item to move, every project's quotas of the rules' resources and of what
// the items carry (the destinations are any of them); with none, only the
// firing series.
func planned(firing []rules.Firing, listed map[itemsKey][]quota.Item, order []itemsKey) ([]string, []quota.Key) {
	var series []quota.Key
	res := map[string]bool{}
	anyItem := false
	for _, ik := range order {
		for _, it := range listed[ik] {
			anyItem = true
			for r := range it.Quantities {
				res[r] = true
			}
		}
	}
	for _, fi := range firing {
		if fi.Rule.Action == nil {
			continue
		}
		k := fi.Instance.Key
		series = append(series, quota.Key{Account: k.Account, Project: k.Project, Resource: k.Resource})
		if anyItem {
			res[k.Resource] = true
		}
	}
	resources := make([]string, 0, len(res))
	for r := range res {
		resources = append(resources, r)
	}
	slices.Sort(resources)
	return resources, series
}

// partial returns the states a partial cycle evaluates: those of the
// series in its snapshots and of the series gone, and every state of an
// account neither polled nor failed, which ends.
func (s *Sim) partial(c *Cycle) map[quota.InstanceKey]quota.Instance {
	if s.sub == nil {
		s.sub = map[quota.InstanceKey]quota.Instance{}
	}
	out := s.sub
	clear(out)
	take := func(in []quota.InstanceKey, account, resource string) {
		for _, ik := range in {
			if ik.Account == account && ik.Resource == resource {
				out[ik] = s.states[ik]
			}
		}
	}
	polled := map[string]bool{}
	for i := range c.Snapshots {
		sn := &c.Snapshots[i]
		if _, failed := c.Failed[sn.Account]; failed {
			continue
		}
		polled[sn.Account] = true
		project := "\x00"
		var in []quota.InstanceKey
		for j := range sn.Entries {
			e := &sn.Entries[j]
			if e.Project != project {
				project, in = e.Project, s.byProject[e.Project]
			}
			take(in, sn.Account, e.Resource)
		}
	}
	for _, k := range c.Gone {
		take(s.byProject[k.Project], k.Account, k.Resource)
	}
	for a, n := range s.perAcct {
		if _, failed := c.Failed[a]; n == 0 || failed || polled[a] {
			continue
		}
		for k, in := range s.states {
			if k.Account == a {
				out[k] = in
			}
		}
	}
	return out
}

// set records a state changed at now; it is evaluated again at the next
// cycle, whatever its values, since the evaluation that changed it may
// not be the last to.
func (s *Sim) set(now time.Time, in quota.Instance) {
	k := in.Key
	if _, ok := s.states[k]; !ok {
		s.byProject[k.Project] = append(s.byProject[k.Project], k)
		s.perAcct[k.Account]++
	}
	s.states[k] = in
	s.gen[k]++
	if s.tracked {
		heap.Push(&s.due, dueAt{at: now.UnixNano() + 1, key: k, gen: s.gen[k]})
	}
}

func (s *Sim) drop(k quota.InstanceKey) {
	if _, ok := s.states[k]; !ok {
		return
	}
	delete(s.states, k)
	delete(s.gen, k)
	s.perAcct[k.Account]--
	ks := slices.DeleteFunc(s.byProject[k.Project], func(x quota.InstanceKey) bool { return x == k })
	if len(ks) == 0 {
		delete(s.byProject, k.Project)
	} else {
		s.byProject[k.Project] = ks
	}
}

// Due returns the series a partial cycle at now must evaluate though
// their values and forecast did not change: those with a state changed at
// the last cycle, or one rules.Engine.Due says may change, tell or plan at
// now. Each is named once.
func (s *Sim) Due(now time.Time) []quota.Key {
	var out []quota.Key
	if s.seen == nil {
		s.seen = map[quota.Key]bool{}
	}
	seen := s.seen
	clear(seen)
	t := now.UnixNano()
	if !s.tracked {
		// From now on; the states so far are due at once.
		s.tracked = true
		for k := range s.states {
			heap.Push(&s.due, dueAt{at: t, key: k, gen: s.gen[k]})
		}
	}
	for len(s.due) > 0 && s.due[0].at <= t {
		d := heap.Pop(&s.due).(dueAt)
		in, ok := s.states[d.key]
		if !ok || s.gen[d.key] != d.gen {
			continue // changed or dropped since
		}
		sk := quota.Key{Account: d.key.Account, Project: d.key.Project, Resource: d.key.Resource}
		if !seen[sk] {
			seen[sk] = true
			out = append(out, sk)
		}
		if at, ok := s.engine.Due(in); ok {
			heap.Push(&s.due, dueAt{at: max(at.UnixNano(), t+1), key: d.key, gen: d.gen})
		}
	}
	return out
}

// dueAt is when a state is next due (ns); gen tells a state changed since.
type dueAt struct {
	at  int64
	key quota.InstanceKey
	gen uint64
}

type dueHeap []dueAt

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueAt)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
