package rules

import (
	"fmt"
	"maps"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// BackMoveWindow is how long an item may not go back to a project it left.
const BackMoveWindow = 24 * time.Hour

// ReasonBudget is the skip reason once max_actions_per_cycle moves are planned.
const ReasonBudget = "the cap of moves per cycle (max_actions_per_cycle) is reached"

// planInput is what planning one firing instance reads; the Planner fills
// it from what the cycle shares.
type planInput struct {
	Now    time.Time
	Firing Firing
	// Items are the items of the rule's kind charged to the source project
	// and owned by the account's user.
	Items []quota.Item
	// Ledger holds the account's quotas; plan applies its moves to it so
	// that later plans of the cycle see them.
	Ledger *quota.Ledger
	// Projects resolves `to` globs on names, and FromName/ToName.
	Projects map[string]quota.Project
	// Journal holds the account's recent real actions.
	Journal []quota.Action
	History HistoryFunc
	// Budget is the number of moves left this cycle; plan decrements it.
	// nil means no cap.
	Budget *int
	// Undo, when set, records every quota the moves change in Ledger, so
	// that they can be taken back.
	Undo *undoLog
	// Memberships are the owner's membership states by project id, and
	// OwnerName names the owner in refusals.
	Memberships map[string]string
	OwnerName   string
	// Drift is why the source may not be tried ("" when it may).
	Drift string
}

// plan picks the moves that relieve one firing instance, simulating them
// on the ledger, and the refusals met on the way.
func (e *Engine) plan(in planInput) ([]Move, []Skip) {
	var moves []Move
	var skips []Skip
	f := in.Firing
	r := f.Rule
	if r == nil || r.Action == nil || r.when == nil || in.Ledger == nil {
		return nil, nil
	}
	a := r.Action
	key := f.Instance.Key
	src, res := key.Project, key.Resource
	skip := func(it *quota.Item, reason string) {
		s := Skip{Reason: reason}
		if it != nil {
			s.ItemID, s.ItemName = it.ID, it.Name
		}
		skips = append(skips, s)
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
		skip(nil, cooldownReason(in.Projects, src, last, r.Cooldown))
		return moves, skips
	}
	if in.Drift != "" {
		skip(nil, in.Drift+"; nothing moves out of it until its numbers change")
		return moves, skips
	}
	srcQ, ok := in.Ledger.Get(src, res)
	if !ok {
		skip(nil, fmt.Sprintf("no %s quota of %s in the account's view", res, label(in.Projects, src)))
		return moves, skips
	}
	if srcQ.HasPending() {
		skip(nil, fmt.Sprintf("%s has pending allocations of %s; nothing moves until they settle",
			label(in.Projects, src), res))
		return moves, skips
	}
	if e.holds(in, r, r.clear, true, src, res, srcQ) {
		return moves, skips // already relieved by an earlier plan of this cycle
	}
	if !budgetLeft() {
		skip(nil, ReasonBudget)
		return moves, skips
	}

	items := movable(in.Items, a, src, res, f.User)
	if len(items) == 0 {
		what := string(a.Kind)
		if a.Match != "" {
			what += " matching " + a.Match
		}
		skip(nil, fmt.Sprintf("no %s with %s to move in %s", what, res, label(in.Projects, src)))
		return moves, skips
	}
	dests := destinations(in, a, src, res)

	for i := range items {
		it := &items[i]
		if len(moves) >= a.MaxItems {
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
		if j, ok := inFlight(in.Journal, it); ok {
			// Sending it again could move it twice; the ledger already
			// counts it as gone.
			skip(it, fmt.Sprintf("%s: its move to %s at %s is not settled yet",
				it.Name, label(in.Projects, j.To), clock(j.Time)))
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
		if r2, ok := drifted(in.Ledger, src, it); ok {
			skip(it, DriftReason(label(in.Projects, src), r2, it.Name))
			continue
		}
		dest, reason := e.pickDest(in, r, it, dests)
		if dest == "" {
			skip(it, reason)
			continue
		}
		m := quota.Move{
			Rule: r.Name, Account: key.Account, Kind: it.Kind, ItemID: it.ID, ItemName: it.Name, Owner: it.Owner,
			From: src, FromName: in.Projects[src].Name, To: dest, ToName: in.Projects[dest].Name,
			Quantities: maps.Clone(it.Quantities), Resource: res,
		}
		m.SourceBefore, _ = in.Ledger.Get(src, res)
		m.DestBefore, _ = in.Ledger.Get(dest, res)
		if in.Undo != nil {
			in.Undo.save(in.Ledger, it.Quantities, src, dest)
		}
		in.Ledger.Move(src, dest, it.Quantities)
		m.SourceAfter, _ = in.Ledger.Get(src, res)
		m.DestAfter, _ = in.Ledger.Get(dest, res)
		item := *it
		if !a.KeepShared {
			item.Shared = false // the reassign unshares it
		}
		m.Shared = item.Shared
		moves = append(moves, Move{Move: m, Item: item})
		if in.Budget != nil {
			*in.Budget--
		}
		if e.holds(in, r, r.clear, true, src, res, m.SourceAfter) {
			break
		}
	}
	return moves, skips
}

// label names a project for people: the name they know it by, else its
// id.
func label(projects map[string]quota.Project, id string) string {
	if p, ok := projects[id]; ok {
		return p.Shown()
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
func destinations(in planInput, a *Reassign, src, res string) []string {
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

// inFlight returns the open move of the item, if the journal has one: sent,
// or about to be, with no outcome known yet.
func inFlight(journal []quota.Action, it *quota.Item) (*quota.Action, bool) {
	for i := range journal {
		j := &journal[i]
		if !j.DryRun && j.ItemID == it.ID && j.Kind == it.Kind && j.Open() {
			return j, true
		}
	}
	return nil, false
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
// back-move window, per the journal. Only a refusal the cloud answered
// proves the item never left: an open or interrupted move may have landed.
func leftRecently(journal []quota.Action, it *quota.Item, dest string, now time.Time) (time.Time, bool) {
	for i := range journal {
		j := &journal[i]
		if j.DryRun || j.ItemID != it.ID || j.Kind != it.Kind || j.From != dest || j.Refused() {
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
func (e *Engine) pickDest(in planInput, r *Rule, it *quota.Item, dests []string) (string, string) {
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
		if no := destRefusal(in, d); no != "" {
			why = append(why, no)
			onlyRuleRes = false
			continue
		}
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
func (e *Engine) holds(in planInput, r *Rule, prog *program, isClear bool, project, res string, q quota.Quota) bool {
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
