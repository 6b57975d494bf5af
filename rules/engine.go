package rules

import (
	"errors"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/quotawatch/quotawatch/quota"
)

// PollFailuresBeforeAlert is how many failed polls in a row make a
// poll_failed event.
const PollFailuresBeforeAlert = 3

// HistoryFunc returns the observed samples of a series over about the last
// 24h, oldest first; nil when there are none.
type HistoryFunc func(k quota.Key) []quota.Sample

// TrendFunc returns the Trend of a series' usage over about the last 24h,
// its samples as a HistoryFunc would return them; nil when there are none.
type TrendFunc func(k quota.Key) *Trend

// Input is what one evaluation cycle sees.
type Input struct {
	Now time.Time
	// Snapshots are the successful polls of this cycle.
	Snapshots []quota.Snapshot
	// Failed maps an account to its poll error text when its poll failed or
	// was partial; its snapshot, if any, is ignored and its instances kept.
	Failed map[string]string
	// Projects maps a project id to what is known of it (name, system).
	Projects map[string]quota.Project
	// Instances are the previous rule instance states. Every account with
	// instances is expected in Snapshots or Failed: instances of other
	// accounts are deleted.
	Instances map[quota.InstanceKey]quota.Instance
	// Accounts are the previous account poll states.
	Accounts map[string]quota.AccountState
	History  HistoryFunc
	// Trend, if set, feeds the forecast instead of History: a caller that
	// keeps each series' window up to date saves summing it at every call.
	Trend TrendFunc
	// DryRun is the global dry_run.
	DryRun bool
	// Silenced, if set, says whether an incident is silenced and by what
	// (see [Silenced]).
	Silenced SilenceFunc
}

// Output is what changed in one cycle.
type Output struct {
	// Instances are changed or new states to persist.
	Instances []quota.Instance
	// Deleted are states to drop: rule removed, series gone, back to ok.
	Deleted []quota.InstanceKey
	// Accounts are changed account poll states.
	Accounts []quota.AccountState
	// Events are firing (and repeats), resolved, poll_failed and
	// poll_recovered events, in a stable order.
	Events []quota.Event
	// Firing are the firing instances whose rule has an action, whose
	// account was polled fully and whose cooldown is over: the input of the
	// cycle's Planner.
	Firing []Firing
	// Errors are runtime errors of expressions (each *Error), told once per
	// rule and expression for the life of the Engine. Such an evaluation
	// counts as false.
	Errors []error
	// Silenced are the firing instances that would be in Firing but for a
	// silence, with its reason: they plan nothing.
	Silenced []SilencedFiring
	// CoolingDown are the firing instances that would be in Firing but for
	// their own cooldown, with the reason: they plan nothing, and `plan`
	// lists them as refused.
	CoolingDown []SilencedFiring
}

// Firing is one firing instance that may act.
type Firing struct {
	Rule        *Rule
	Instance    quota.Instance
	Quota       quota.Quota
	ProjectName string
	// User is the account's user UUID: the owner of movable items.
	User string
}

// Engine evaluates a fixed set of rules cycle after cycle. It reuses one
// expression machine and environment, so it is not safe for concurrent use.
type Engine struct {
	rules    []*Rule
	byName   map[string]*Rule
	byRes    map[string]resRules // resource → rules that select it
	machine  vm.VM
	env      env
	reported map[string]bool // rule/field of runtime errors already told
}

// NewEngine returns an engine for rules (as returned by Parse).
func NewEngine(rules []*Rule) *Engine {
	e := &Engine{
		rules:    rules,
		byName:   make(map[string]*Rule, len(rules)),
		byRes:    map[string]resRules{},
		reported: map[string]bool{},
	}
	for _, r := range rules {
		e.byName[r.Name] = r
	}
	return e
}

// Rules returns the engine's rules.
func (e *Engine) Rules() []*Rule { return e.rules }

// resRules are the rules that select one resource, and its unit.
type resRules struct {
	rules []*Rule
	unit  string
}

// rulesFor returns the rules whose resource pattern selects resource,
// computed once per resource name.
func (e *Engine) rulesFor(resource string) resRules {
	if rs, ok := e.byRes[resource]; ok {
		return rs
	}
	var rs []*Rule
	for _, r := range e.rules {
		if r.when == nil {
			continue // not compiled: not from Parse
		}
		if ok, _ := path.Match(r.Resource, resource); ok {
			rs = append(rs, r)
		}
	}
	e.byRes[resource] = resRules{rules: rs, unit: string(quota.UnitOf(resource))}
	return e.byRes[resource]
}

// selects reports whether the rule watches the project (by id or name).
func (r *Rule) selects(id, name string) bool {
	if r.allProjects {
		return true
	}
	for i := range r.projects {
		if r.projects[i].match(id) || (name != "" && r.projects[i].match(name)) {
			return true
		}
	}
	return false
}

// matcher is a compiled glob: plain names and "prefix*" patterns, the
// usual ones, skip path.Match.
type matcher struct {
	pattern string
	prefix  string
	mode    uint8 // 0 path.Match, 1 equal, 2 prefix
}

func newMatcher(g string) matcher {
	switch i := strings.IndexAny(g, `*?[\`); {
	case i < 0:
		return matcher{pattern: g, mode: 1}
	case i == len(g)-1 && g[i] == '*':
		return matcher{pattern: g, prefix: g[:i], mode: 2}
	}
	return matcher{pattern: g}
}

func (m *matcher) match(s string) bool {
	switch m.mode {
	case 1:
		return s == m.pattern
	case 2:
		// path.Match's * does not cross a slash.
		return strings.HasPrefix(s, m.prefix) && !strings.Contains(s[len(m.prefix):], "/")
	}
	ok, _ := path.Match(m.pattern, s)
	return ok
}

// prevInst is a previous instance, marked once its series is seen.
type prevInst struct {
	inst quota.Instance
	seen bool
}

// series is the per-series context shared by every rule that selects it.
type series struct {
	snap        *quota.Snapshot
	entry       *quota.Entry
	projectName string
	forecast    bool // env holds the forecast
}

// Evaluate runs one cycle of the state machine (docs/design.md#state-machine).
func (e *Engine) Evaluate(in Input) Output {
	var out Output
	e.accounts(in, &out)
	shadow := shadowed(in)

	// Previous instances, by account and project, so a series with no state
	// costs one map lookup.
	prev := map[string]map[string][]*prevInst{}
	var all []*prevInst
	for k, inst := range in.Instances {
		if _, ok := e.byName[k.Rule]; !ok {
			out.Deleted = append(out.Deleted, k)
			if inst.State == quota.StateFiring {
				inst.Key = k
				e.tell(in, &out, inst, e.vanished(in, inst))
			}
			continue
		}
		p := &prevInst{inst: inst}
		p.inst.Key = k
		all = append(all, p)
		byProj := prev[k.Account]
		if byProj == nil {
			byProj = map[string][]*prevInst{}
			prev[k.Account] = byProj
		}
		byProj[k.Project] = append(byProj[k.Project], p)
	}

	evaluated := map[string]bool{}
	for i := range in.Snapshots {
		s := &in.Snapshots[i]
		if _, failed := in.Failed[s.Account]; failed {
			continue
		}
		evaluated[s.Account] = true
		var skip map[projectResource]bool
		if s.Service {
			skip = shadow.series
		}
		e.snapshot(in, s, prev[s.Account], skip, &out)
	}

	for _, p := range all {
		k := p.inst.Key
		_, failed := in.Failed[k.Account]
		if !p.seen && !failed {
			// The series vanished, the rule no longer selects it, or the
			// account is gone. An open incident is closed, not dropped.
			out.Deleted = append(out.Deleted, k)
			if p.inst.State == quota.StateFiring {
				ev := e.vanished(in, p.inst)
				if shadow.has(in, k) {
					ev.Reason = "now reported through an account that sees the project"
				}
				e.tell(in, &out, p.inst, ev)
			}
		}
	}
	sort.Slice(out.Deleted, func(i, j int) bool { return keyLess(out.Deleted[i], out.Deleted[j]) })
	return out
}

func keyLess(a, b quota.InstanceKey) bool {
	return strings.Compare(a.String(), b.String()) < 0
}

// accounts updates the consecutive poll failures of every account.
func (e *Engine) accounts(in Input, out *Output) {
	failed := make([]string, 0, len(in.Failed))
	for a := range in.Failed {
		failed = append(failed, a)
	}
	sort.Strings(failed)
	for _, a := range failed {
		st := in.Accounts[a]
		st.Account = a
		st.Failures++
		if st.Failures == 1 {
			st.FailingSince = in.Now
		}
		st.LastError = in.Failed[a]
		if st.Failures >= PollFailuresBeforeAlert && !st.Alerted {
			st.Alerted = true
			out.Events = append(out.Events, quota.Event{
				Kind:     quota.EventPollFailed,
				Time:     in.Now,
				Key:      quota.InstanceKey{Account: a},
				Severity: quota.Critical,
				Since:    st.FailingSince,
				Reason:   st.LastError,
			})
		}
		out.Accounts = append(out.Accounts, st)
	}
	seen := map[string]bool{}
	for _, s := range in.Snapshots {
		if _, f := in.Failed[s.Account]; f || seen[s.Account] {
			continue
		}
		seen[s.Account] = true
		st, ok := in.Accounts[s.Account]
		if !ok || (st.Failures == 0 && !st.Alerted) {
			continue
		}
		if st.Alerted {
			out.Events = append(out.Events, quota.Event{
				Kind:     quota.EventPollRecovered,
				Time:     in.Now,
				Key:      quota.InstanceKey{Account: s.Account},
				Severity: quota.Info,
				Since:    st.FailingSince,
			})
		}
		out.Accounts = append(out.Accounts, quota.AccountState{Account: s.Account, TokenWarned: st.TokenWarned})
	}
}

// snapshot evaluates every series of one account's poll.
// Series in skip are left out: the service view does not watch what an
// account sees.
func (e *Engine) snapshot(in Input, s *quota.Snapshot, prev map[string][]*prevInst, skip map[projectResource]bool, out *Output) {
	ev := &e.env
	ev.Account = s.Account
	ev.User = s.User
	lastProject := "\x00"
	var ser series
	ser.snap = s
	lz := lazyForecast{e: e, in: &in, ser: &ser}
	ev.lazy = &lz
	defer func() { ev.lazy = nil }()
	for j := range s.Entries {
		ent := &s.Entries[j]
		rr := e.rulesFor(ent.Resource)
		rs := rr.rules
		if len(rs) == 0 || (skip != nil && skip[projectResource{ent.Project, ent.Resource}]) {
			continue
		}
		if ent.Project != lastProject {
			lastProject = ent.Project
			p := in.Projects[ent.Project]
			ev.Project = ent.Project
			ev.ProjectName = p.Name
			ev.System = p.System
		}
		ev.setQuota(ent.Resource, rr.unit, ent.Quota)
		ser.entry = ent
		ser.projectName = ev.ProjectName
		ser.forecast = false
		var prevs []*prevInst
		if prev != nil {
			prevs = prev[ent.Project]
		}
		for _, r := range rs {
			if !r.selects(ent.Project, ev.ProjectName) {
				continue
			}
			var p *prevInst
			for _, c := range prevs {
				if c.inst.Key.Rule == r.Name && c.inst.Key.Resource == ent.Resource {
					p = c
					c.seen = true
					break
				}
			}
			if r.usesForecast && !ser.forecast && (r.when.fast == nil || (r.clear != nil && r.clear.fast == nil)) {
				// The VM reads every variable as a field: the forecast
				// first. Native expressions ask for it when they read it.
				e.forecast(in, &ser)
			}
			e.step(in, r, &ser, p, out)
		}
	}
}

// forecast fills growth_per_day and days_to_full for the current series.
func (e *Engine) forecast(in Input, ser *series) {
	ser.forecast = true
	if in.History == nil && in.Trend == nil {
		return
	}
	ent := ser.entry
	k := quota.Key{Account: ser.snap.Account, Project: ent.Project, Resource: ent.Resource}
	var g float64
	if in.Trend != nil {
		if tr := in.Trend(k); tr != nil {
			g = tr.Growth(ent.Quota, ser.snap.Time, in.Now)
		} else {
			g = Growth(nil, ent.Quota, ser.snap.Time, in.Now)
		}
	} else {
		g = Growth(in.History(k), ent.Quota, ser.snap.Time, in.Now)
	}
	e.env.GrowthPerDay = g
	e.env.DaysToFull = DaysToFull(e.env.Headroom, g)
}

// run evaluates one expression of r; a runtime error counts as false and
// is reported once.
func (e *Engine) run(r *Rule, field string, p *program, out *Output) bool {
	ok, err := p.run(&e.machine, &e.env)
	if err != nil {
		tag := r.Name + "/" + field
		if !e.reported[tag] {
			line := r.whenLine
			if field == "clear" {
				line = r.clearLine
			}
			e.reported[tag] = true
			msg := err.Error()
			var fe *file.Error
			if errors.As(err, &fe) {
				msg = fe.Message
			}
			out.Errors = append(out.Errors, &Error{
				Line: line, Rule: r.Name, Field: field,
				Msg: msg + " (evaluated as false; first seen on " +
					e.env.Account + "/" + e.env.Project + "/" + e.env.Resource + ")",
			})
		}
		return false
	}
	return ok
}

// cleared evaluates the clear condition (by default: not when).
func (e *Engine) cleared(r *Rule, out *Output) bool {
	if r.clear == nil {
		// A failing when counts as false, so the default clear is true.
		return !e.run(r, "when", r.when, out)
	}
	return e.run(r, "clear", r.clear, out)
}

// step advances one instance.
func (e *Engine) step(in Input, r *Rule, ser *series, p *prevInst, out *Output) {
	now := in.Now
	state := quota.StateOK
	var inst quota.Instance
	if p != nil {
		inst = p.inst
		state = inst.State
	}
	switch state {
	case quota.StatePending, quota.StateFiring:
	default:
		state = quota.StateOK
	}
	key := func() quota.InstanceKey {
		return quota.InstanceKey{Rule: r.Name, Account: ser.snap.Account, Project: ser.entry.Project, Resource: ser.entry.Resource}
	}
	// silenced asks about the silences at most once, and only when
	// something would be told or planned.
	var (
		asked, muted bool
		reason       string
	)
	silenced := func() (string, bool) {
		if !asked && in.Silenced != nil {
			asked = true
			reason, muted = in.Silenced(key(), ser.projectName)
		}
		return reason, muted
	}

	switch state {
	case quota.StateOK, quota.StatePending:
		if !e.run(r, "when", r.when, out) {
			if p == nil {
				return
			}
			e.toOK(r, inst, now, out)
			return
		}
		if p == nil {
			inst = quota.Instance{Key: key()}
		}
		if state == quota.StateOK {
			inst.State = quota.StatePending
			inst.Since = now
		}
		if now.Sub(inst.Since) < r.For {
			if state == quota.StateOK {
				out.Instances = append(out.Instances, inst)
			}
			return
		}
		inst.State = quota.StateFiring
		inst.Since = now
		inst.LastNotified = now
		inst.Skipped = nil
		if _, muted := silenced(); muted {
			// Nothing is told: the incident is told once the silence
			// ends, and its resolution only if it was.
			inst.LastNotified = time.Time{}
		} else {
			out.Events = append(out.Events, e.event(in, quota.EventFiring, r, ser, inst, false))
		}
		out.Instances = append(out.Instances, inst)
	case quota.StateFiring:
		if e.cleared(r, out) {
			if _, muted := silenced(); !muted && !inst.LastNotified.IsZero() {
				ev := e.event(in, quota.EventResolved, r, ser, inst, false)
				ev.Since = inst.Since
				out.Events = append(out.Events, ev)
			}
			inst.Skipped = nil
			e.toOK(r, inst, now, out)
			return
		}
		// An incident that was never told (it opened silenced) is told as
		// soon as no silence holds it, whatever the rule's repeat.
		if (r.Repeat > 0 && now.Sub(inst.LastNotified) >= r.Repeat) || inst.LastNotified.IsZero() {
			if _, muted := silenced(); !muted {
				inst.LastNotified = now
				out.Instances = append(out.Instances, inst)
				out.Events = append(out.Events, e.event(in, quota.EventFiring, r, ser, inst, true))
			}
		}
	}

	// A raise may act on what the service view sees; a move needs an
	// account's items.
	if inst.State != quota.StateFiring || (r.Action == nil && r.Raise == nil) || (ser.snap.Service && r.Raise == nil) {
		return
	}
	if last := lastMove(inst, in.DryRun || r.DryRun); !last.IsZero() && now.Sub(last) < r.Cooldown {
		out.CoolingDown = append(out.CoolingDown, SilencedFiring{
			Firing: Firing{Rule: r, Instance: inst, Quota: ser.entry.Quota, ProjectName: ser.projectName, User: ser.snap.User},
			Reason: cooldownReason(in.Projects, inst.Key.Project, last, r.Cooldown),
		})
		return
	}
	f := Firing{
		Rule:        r,
		Instance:    inst,
		Quota:       ser.entry.Quota,
		ProjectName: ser.projectName,
		User:        ser.snap.User,
	}
	if reason, muted := silenced(); muted {
		out.Silenced = append(out.Silenced, SilencedFiring{Firing: f, Reason: reason})
		return
	}
	out.Firing = append(out.Firing, f)
}

// toOK stores an instance that is back to ok: kept only while its last
// action's cooldown runs, so a quick relapse does not act again at once.
func (e *Engine) toOK(r *Rule, inst quota.Instance, now time.Time, out *Output) {
	if last := lastMove(inst, true); !last.IsZero() && now.Sub(last) < r.Cooldown {
		if inst.State != quota.StateOK || inst.Skipped != nil {
			inst.State = quota.StateOK
			inst.Since = now
			inst.Skipped = nil
			out.Instances = append(out.Instances, inst)
		}
		return
	}
	out.Deleted = append(out.Deleted, inst.Key)
}

// event builds a rule event for the current series, with the forecast.
func (e *Engine) event(in Input, kind quota.EventKind, r *Rule, ser *series, inst quota.Instance, repeat bool) quota.Event {
	if !ser.forecast {
		e.forecast(in, ser)
	}
	return quota.Event{
		Kind:         kind,
		Time:         in.Now,
		Key:          inst.Key,
		Severity:     r.Severity,
		Description:  r.Description,
		ProjectName:  ser.projectName,
		Quota:        ser.entry.Quota,
		GrowthPerDay: e.env.GrowthPerDay,
		DaysToFull:   quota.Days(e.env.DaysToFull),
		Since:        inst.Since,
		Notify:       slices.Clone(r.Notify),
		DryRun:       in.DryRun || r.DryRun,
		Repeat:       repeat,
	}
}

// UsesHistory reports whether any rule that watches this series uses the
// forecast variables, so a caller can keep history only where it is read.
// Like Evaluate, it must not be called concurrently.
func (e *Engine) UsesHistory(resource, projectID, projectName string) bool {
	for _, r := range e.rulesFor(resource).rules {
		if r.usesForecast && r.selects(projectID, projectName) {
			return true
		}
	}
	return false
}

// UsesHistoryOf reports whether any rule watching the resource (in any
// project) uses the forecast variables.
func (e *Engine) UsesHistoryOf(resource string) bool {
	for _, r := range e.rulesFor(resource).rules {
		if r.usesForecast {
			return true
		}
	}
	return false
}

// vanished is the resolved event of a firing instance whose series is no
// longer watched.
func (e *Engine) vanished(in Input, inst quota.Instance) quota.Event {
	k := inst.Key
	ev := quota.Event{
		Kind: quota.EventResolved, Time: in.Now, Key: k, Since: inst.Since,
		ProjectName: in.Projects[k.Project].Name, DaysToFull: quota.Never,
		Reason: "no longer watched: the project or resource is gone from the account's quotas, or the rule no longer selects it",
	}
	if r := e.byName[k.Rule]; r != nil {
		ev.Severity, ev.Description, ev.Notify = r.Severity, r.Description, slices.Clone(r.Notify)
	} else {
		ev.Reason = "no longer watched: the rule was removed"
	}
	return ev
}
