package rules

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// BackMoveWindow is how long an item may not go back to a project it left.
const BackMoveWindow = 24 * time.Hour

// ReasonBudget is the skip reason once max_actions_per_cycle moves are planned.
const ReasonBudget = "the cap of moves per cycle (max_actions_per_cycle) is reached"

// PlanInput is what planning one firing instance needs.
type PlanInput struct {
	Now    time.Time
	Firing Firing
	// Items are the items of the rule's kind charged to the source project
	// and owned by the account's user.
	Items []quota.Item
	// Ledger holds the account's quotas; Plan applies its moves to it so
	// that later plans of the cycle see them.
	Ledger *quota.Ledger
	// Projects resolves `to` globs on names, and FromName/ToName.
	Projects map[string]quota.Project
	// Journal holds the account's recent actions (the last 24h or more).
	Journal []quota.Action
	History HistoryFunc
	// Budget is the number of moves left this cycle; Plan decrements it.
	// nil means no cap.
	Budget *int
	// DryRun is the global dry_run, as in Input (not the rule's own: Plan
	// reads that from the rule).
	DryRun bool
}

// Plan is the outcome of planning one firing instance.
type Plan struct {
	Moves []quota.Move
	Skips []Skip
}

// Skip is a refused or impossible move, with a reason for people.
type Skip struct {
	ItemID   string // "" when the refusal is about the instance as a whole
	ItemName string
	Reason   string
}

// Plan picks the moves that relieve one firing instance (DESIGN.md §5). It
// is called once per Firing, in order, with a shared ledger and budget; a
// dry run plans exactly the same moves. The caller records LastAction on the
// instance once a move is applied.
func (e *Engine) Plan(in PlanInput) Plan {
	var plan Plan
	f := in.Firing
	r := f.Rule
	if r == nil || r.Action == nil || r.when == nil || in.Ledger == nil {
		return plan
	}
	a := r.Action
	key := f.Instance.Key
	src, res := key.Project, key.Resource
	skip := func(it *quota.Item, reason string) {
		s := Skip{Reason: reason}
		if it != nil {
			s.ItemID, s.ItemName = it.ID, it.Name
		}
		plan.Skips = append(plan.Skips, s)
	}
	budgetLeft := func() bool { return in.Budget == nil || *in.Budget > 0 }

	// The cooldown is per (rule, project): a rule on a resource glob has one
	// instance per resource, and any of them moving starts it for all. The
	// journal has every move, the instance its own and dry-run reports.
	last := f.Instance.LastAction
	if t, ok := lastRuleMove(in.Journal, r.Name, key.Account, src); ok && t.After(last) {
		last = t
	}
	if !last.IsZero() && in.Now.Sub(last) < r.Cooldown {
		skip(nil, fmt.Sprintf("cooldown: last move out of %s at %s; the next is allowed after %s",
			label(in.Projects, src), clock(last), clock(last.Add(r.Cooldown))))
		return plan
	}
	srcQ, ok := in.Ledger.Get(src, res)
	if !ok {
		skip(nil, fmt.Sprintf("no %s quota of %s in the account's view", res, label(in.Projects, src)))
		return plan
	}
	if srcQ.HasPending() {
		skip(nil, fmt.Sprintf("%s has pending allocations of %s; nothing moves until they settle",
			label(in.Projects, src), res))
		return plan
	}
	if e.holds(in, r, r.clear, true, src, res, srcQ) {
		return plan // already relieved by an earlier plan of this cycle
	}
	if !budgetLeft() {
		skip(nil, ReasonBudget)
		return plan
	}

	items := movable(in.Items, a, src, res, f.User)
	if len(items) == 0 {
		what := string(a.Kind)
		if a.Match != "" {
			what += " matching " + a.Match
		}
		skip(nil, fmt.Sprintf("no %s with %s to move in %s", what, res, label(in.Projects, src)))
		return plan
	}
	dests := destinations(in, a, src, res)
	// When only this rule is in dry run, its moves must not take room or
	// budget from live rules planned later in the cycle: they are simulated
	// and then taken back.
	type saved struct {
		project, resource string
		q                 quota.Quota
		ok                bool
	}
	var undo []saved
	ruleDry := r.DryRun && !in.DryRun
	if ruleDry {
		if in.Budget != nil {
			b := *in.Budget
			in.Budget = &b
		}
		defer func() {
			for i := len(undo) - 1; i >= 0; i-- {
				if u := undo[i]; u.ok {
					in.Ledger.Set(u.project, u.resource, u.q)
				}
			}
		}()
	}

	moved := 0
	for i := range items {
		it := &items[i]
		if moved >= a.MaxItems {
			break
		}
		if !budgetLeft() {
			skip(nil, ReasonBudget)
			break
		}
		if it.Busy != "" {
			skip(it, fmt.Sprintf("%s is busy: %s", it.Name, it.Busy))
			continue
		}
		if last, ok := lastMoved(in.Journal, it); ok && in.Now.Sub(last) < r.Cooldown {
			skip(it, fmt.Sprintf("%s: last move at %s is within the cooldown of %s",
				it.Name, clock(last), formatDuration(r.Cooldown)))
			continue
		}
		if res2, ok := pendingOn(in.Ledger, src, it.Quantities); ok {
			skip(it, fmt.Sprintf("%s has pending allocations of %s; %s stays until they settle",
				label(in.Projects, src), res2, it.Name))
			continue
		}
		dest, reason := e.pickDest(in, r, it, dests)
		if dest == "" {
			skip(it, reason)
			continue
		}
		m := quota.Move{
			Rule: r.Name, Account: key.Account, Kind: it.Kind, ItemID: it.ID, ItemName: it.Name,
			From: src, FromName: in.Projects[src].Name, To: dest, ToName: in.Projects[dest].Name,
			Quantities: maps.Clone(it.Quantities), Resource: res,
		}
		m.SourceBefore, _ = in.Ledger.Get(src, res)
		m.DestBefore, _ = in.Ledger.Get(dest, res)
		if ruleDry {
			for _, rr := range it.Quantities.Resources() {
				for _, p := range []string{src, dest} {
					q, ok := in.Ledger.Get(p, rr)
					undo = append(undo, saved{project: p, resource: rr, q: q, ok: ok})
				}
			}
		}
		in.Ledger.Move(src, dest, it.Quantities)
		m.SourceAfter, _ = in.Ledger.Get(src, res)
		m.DestAfter, _ = in.Ledger.Get(dest, res)
		plan.Moves = append(plan.Moves, m)
		moved++
		if in.Budget != nil {
			*in.Budget--
		}
		if e.holds(in, r, r.clear, true, src, res, m.SourceAfter) {
			break
		}
	}
	return plan
}

// label names a project for people: its name, else its id.
func label(projects map[string]quota.Project, id string) string {
	if p, ok := projects[id]; ok && p.Name != "" {
		return p.Name
	}
	return id
}

// movable returns the items that can relieve the rule's resource, in the
// rule's select order (ties by name, then id, so plans are reproducible).
func movable(all []quota.Item, a *Reassign, src, res, owner string) []quota.Item {
	var items []quota.Item
	for _, it := range all {
		if it.Kind != a.Kind || (it.Project != "" && it.Project != src) ||
			(owner != "" && it.Owner != "" && it.Owner != owner) || it.Quantities[res] <= 0 {
			continue
		}
		if a.Match != "" {
			if ok, _ := path.Match(a.Match, it.Name); !ok {
				continue
			}
		}
		items = append(items, it)
	}
	sort.SliceStable(items, func(i, j int) bool {
		qi, qj := items[i].Quantities[res], items[j].Quantities[res]
		if qi != qj {
			if a.Select == SelectSmallest {
				return qi < qj
			}
			return qi > qj
		}
		if items[i].Name != items[j].Name {
			return items[i].Name < items[j].Name
		}
		return items[i].ID < items[j].ID
	})
	return items
}

// destinations lists the candidate projects in `to` order: every project of
// the account's ledger holding the resource, matched by id or name, never
// the source. Within one glob, projects go by name then id.
func destinations(in PlanInput, a *Reassign, src, res string) []string {
	projs := in.Ledger.Projects(res)
	sort.Slice(projs, func(i, j int) bool {
		ni, nj := in.Projects[projs[i]].Name, in.Projects[projs[j]].Name
		if ni != nj {
			return ni < nj
		}
		return projs[i] < projs[j]
	})
	var out []string
	seen := map[string]bool{}
	for _, g := range a.To {
		for _, p := range projs {
			if p == src || seen[p] {
				continue
			}
			ok, _ := path.Match(g, p)
			if !ok {
				if name := in.Projects[p].Name; name != "" {
					ok, _ = path.Match(g, name)
				}
			}
			if ok {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// lastMoved returns when the journal last shows the item being moved (or
// tried) for real.
func lastMoved(journal []quota.Action, it *quota.Item) (time.Time, bool) {
	var last time.Time
	found := false
	for i := range journal {
		j := &journal[i]
		if j.DryRun || j.ItemID != it.ID || j.Kind != it.Kind {
			continue
		}
		if !found || j.Time.After(last) {
			last, found = j.Time, true
		}
	}
	return last, found
}

// lastRuleMove returns when the rule last moved (or tried to move) an item
// out of project for account, per the journal.
func lastRuleMove(journal []quota.Action, rule, account, project string) (time.Time, bool) {
	var last time.Time
	found := false
	for i := range journal {
		j := &journal[i]
		if j.DryRun || j.Rule != rule || j.Account != account || j.From != project {
			continue
		}
		if !found || j.Time.After(last) {
			last, found = j.Time, true
		}
	}
	return last, found
}

// leftRecently reports when the item left project dest for src within the
// back-move window, per the journal.
func leftRecently(journal []quota.Action, it *quota.Item, dest string, now time.Time) (time.Time, bool) {
	for i := range journal {
		j := &journal[i]
		if j.DryRun || j.ItemID != it.ID || j.Kind != it.Kind || j.From != dest || j.State == quota.ActionFailed {
			continue
		}
		if now.Sub(j.Time) < BackMoveWindow {
			return j.Time, true
		}
	}
	return time.Time{}, false
}

// pendingOn returns the first resource of qs with allocations in flight in
// project.
func pendingOn(l *quota.Ledger, project string, qs quota.Quantities) (string, bool) {
	for _, r := range qs.Resources() {
		if q, ok := l.Get(project, r); ok && q.HasPending() {
			return r, true
		}
	}
	return "", false
}

// pickDest chooses the destination of one item, or explains why none fits.
func (e *Engine) pickDest(in PlanInput, r *Rule, it *quota.Item, dests []string) (string, string) {
	a := r.Action
	res := in.Firing.Instance.Key.Resource
	src := in.Firing.Instance.Key.Project
	if len(dests) == 0 {
		return "", fmt.Sprintf("no destination project for %s matches to: %s (besides %s)",
			it.Name, strings.Join(a.To, ", "), label(in.Projects, src))
	}
	best, bestScore := "", 0.0
	var why []string
	onlyRuleRes := true // every refusal is a shortfall on the rule's resource
	for _, d := range dests {
		name := label(in.Projects, d)
		if t, ok := leftRecently(in.Journal, it, d, in.Now); ok {
			why = append(why, fmt.Sprintf("%s: %s left it at %s, less than 24h ago", name, it.Name, clock(t)))
			onlyRuleRes = false
			continue
		}
		if pr, ok := pendingOn(in.Ledger, d, it.Quantities); ok {
			why = append(why, fmt.Sprintf("%s: pending allocations of %s", name, pr))
			onlyRuleRes = false
			continue
		}
		if ok, sf := in.Ledger.Fits(d, it.Quantities); !ok {
			if sf.Missing {
				why = append(why, fmt.Sprintf("%s: no %s quota", name, sf.Resource))
			} else {
				why = append(why, fmt.Sprintf("%s: %s needs %s, %s free", name, sf.Resource,
					quota.FormatAmount(sf.Resource, sf.Need), quota.FormatAmount(sf.Resource, max(sf.Headroom, 0))))
			}
			if sf.Resource != res {
				onlyRuleRes = false
			}
			continue
		}
		dq, _ := in.Ledger.Get(d, res)
		after := dq.Add(it.Quantities[res])
		if e.holds(in, r, r.when, false, d, res, after) {
			why = append(why, fmt.Sprintf("%s: would itself satisfy when (%s) after the move", name, r.When))
			onlyRuleRes = false
			continue
		}
		if a.Strategy == StrategyFirstFit {
			return d, ""
		}
		score := headroomShare(after)
		if best == "" || score > bestScore {
			best, bestScore = d, score
		}
	}
	if best != "" {
		return best, ""
	}
	if onlyRuleRes {
		return "", fmt.Sprintf("no project with %s headroom for %s", quota.FormatAmount(res, it.Quantities[res]), it.Name)
	}
	const maxShown = 5
	more := ""
	if len(why) > maxShown {
		more = fmt.Sprintf("; and %d more", len(why)-maxShown)
		why = why[:maxShown]
	}
	return "", fmt.Sprintf("no project can take %s: %s%s", it.Name, strings.Join(why, "; "), more)
}

// headroomShare is the headroom left as a fraction of the effective limit.
func headroomShare(q quota.Quota) float64 {
	el := q.EffectiveLimit()
	if el <= 0 {
		return -1
	}
	return float64(q.Headroom()) / float64(el)
}

// holds evaluates a rule expression for a simulated quota of project.
// prog nil means "not when" (the default clear); isClear tells which. A
// runtime error counts as false, as in Evaluate.
func (e *Engine) holds(in PlanInput, r *Rule, prog *program, isClear bool, project, res string, q quota.Quota) bool {
	ev := &e.env
	key := in.Firing.Instance.Key
	ev.Account = key.Account
	ev.User = in.Firing.User
	p := in.Projects[project]
	ev.Project = project
	ev.ProjectName = p.Name
	ev.System = p.System
	ev.setQuota(res, string(quota.UnitOf(res)), q)
	neg := false
	if prog == nil {
		prog, neg = r.when, isClear
	}
	if prog.forecast && in.History != nil {
		// History only: the simulated quota is no observation.
		g := Growth(in.History(quota.Key{Account: key.Account, Project: project, Resource: res}), q, time.Time{}, in.Now)
		ev.GrowthPerDay = g
		ev.DaysToFull = DaysToFull(ev.Headroom, g)
	}
	ok, err := prog.run(&e.machine, ev)
	if err != nil {
		return false
	}
	return ok != neg
}

// baseEvent is an action event of a firing instance.
func baseEvent(f *Firing, dryRun bool, now time.Time) quota.Event {
	return quota.Event{
		Kind:        quota.EventAction,
		Time:        now,
		Key:         f.Instance.Key,
		Severity:    f.Rule.Severity,
		Description: f.Rule.Description,
		ProjectName: f.ProjectName,
		Quota:       f.Quota,
		DaysToFull:  quota.Never,
		Since:       f.Instance.Since,
		Notify:      slices.Clone(f.Rule.Notify),
		DryRun:      dryRun || f.Rule.DryRun,
	}
}

// ActionEvent is the event of a move's outcome (applied or failed; reason
// carries the error text of a failure).
func ActionEvent(f Firing, m quota.Move, res quota.ActionResult, reason string, dryRun bool, now time.Time) quota.Event {
	ev := baseEvent(&f, dryRun, now)
	ev.Result = res
	ev.Move = &m
	ev.Reason = reason
	return ev
}

// SkipEvents turns skips into "action skipped" events, each reason once per
// incident and again only after the rule's repeat (never when repeat is 0).
// It records what it reports in f.Instance.Skipped (a fresh map, so the
// input's map is not shared); the caller persists f.Instance.
func SkipEvents(f *Firing, skips []Skip, dryRun bool, now time.Time) []quota.Event {
	var evs []quota.Event
	cloned := false
	clone := func() {
		if !cloned {
			f.Instance.Skipped = maps.Clone(f.Instance.Skipped)
			if f.Instance.Skipped == nil {
				f.Instance.Skipped = map[string]time.Time{}
			}
			cloned = true
		}
	}
	// Reasons told long ago are forgotten, so the record stays small over
	// a long incident (with repeat 0 nothing is told twice anyway).
	if f.Rule.Repeat > 0 {
		for k, t := range f.Instance.Skipped {
			if now.Sub(t) >= f.Rule.Repeat {
				clone()
				delete(f.Instance.Skipped, k)
			}
		}
	}
	for _, s := range skips {
		key := skipKey(s)
		if last, ok := f.Instance.Skipped[key]; ok && (f.Rule.Repeat == 0 || now.Sub(last) < f.Rule.Repeat) {
			continue
		}
		clone()
		f.Instance.Skipped[key] = now
		ev := baseEvent(f, dryRun, now)
		ev.Result = quota.ResultSkipped
		ev.Reason = s.Reason
		if s.ItemID != "" && f.Rule.Action != nil {
			k := f.Instance.Key
			ev.Move = &quota.Move{
				Rule: k.Rule, Account: k.Account, Kind: f.Rule.Action.Kind, ItemID: s.ItemID, ItemName: s.ItemName,
				From: k.Project, FromName: f.ProjectName, Resource: k.Resource,
				SourceBefore: f.Quota, SourceAfter: f.Quota,
			}
		}
		evs = append(evs, ev)
	}
	return evs
}

// numbers matches the figures in a reason (sizes, counts, times).
var numbers = regexp.MustCompile(`[0-9]+([.:][0-9]+)*`)

// skipKey is what makes two refusals "the same reason": the item and the
// reason's words, not its figures, which move as usage does ("no project
// with 12.0 GiB headroom" and, a poll later, "12.1 GiB" are one reason).
func skipKey(s Skip) string {
	return s.ItemID + "\x00" + numbers.ReplaceAllString(s.Reason, "#")
}
