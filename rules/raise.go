package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/quota"
)

// Raise levels: which capacity of the firing project a raise_limit raises.
const (
	LevelProject = "project"
	LevelMember  = "member"
	LevelBoth    = "both"
)

// RaiseLimit is the action raise_limit: raise the firing project's limit
// of the rule's resource by a modification application that a project
// admin's token submits and, with SelfApprove, approves.
type RaiseLimit struct {
	// Level is LevelProject (the default), LevelMember or LevelBoth.
	Level string
	// ByPercent (of the current limit) or ByAmount is the step; one is set.
	ByPercent float64
	ByAmount  int64
	// Max caps the raised limit (0: no cap).
	Max int64
	// SelfApprove approves the application with the same token.
	SelfApprove bool
}

// raiseKeys reads each key of action.raise_limit.
var raiseKeys = map[string]func(p *ruleParser, a *RaiseLimit, v *yaml.Node, f string){
	"level":        (*ruleParser).raiseLevel,
	"by":           (*ruleParser).raiseBy,
	"max":          (*ruleParser).raiseMax,
	"self_approve": (*ruleParser).raiseSelfApprove,
}

func (p *ruleParser) raiseLimit(v *yaml.Node) *RaiseLimit {
	const pre = "action.raise_limit."
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "action.raise_limit", "must be a mapping")
		return nil
	}
	a := &RaiseLimit{Level: LevelProject}
	readKeys(p, v, pre, raiseKeys, a, "by")
	return a
}

func (p *ruleParser) raiseLevel(a *RaiseLimit, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	if s != LevelProject && s != LevelMember && s != LevelBoth {
		p.errorf(v.Line, f, "unknown level %q (want project, member or both)", s)
	}
	a.Level = s
}

func (p *ruleParser) raiseBy(a *RaiseLimit, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	if pct, isPct := strings.CutSuffix(strings.TrimSpace(s), "%"); isPct {
		n, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || n <= 0 || math.IsInf(n, 0) {
			p.errorf(v.Line, f, "must be a positive percentage such as 20%%, or an amount such as 50GiB, not %q", s)
			return
		}
		a.ByPercent = n
		return
	}
	n, err := quota.ParseAmount(s)
	if err != nil || n <= 0 || n == quota.Unlimited {
		p.errorf(v.Line, f, "must be a positive percentage such as 20%%, or an amount such as 50GiB, not %q", s)
		return
	}
	a.ByAmount = n
}

func (p *ruleParser) raiseMax(a *RaiseLimit, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	n, err := quota.ParseAmount(s)
	if err != nil || n <= 0 {
		p.errorf(v.Line, f, "must be a positive amount such as 2TiB, not %q", s)
		return
	}
	a.Max = n
}

func (p *ruleParser) raiseSelfApprove(a *RaiseLimit, v *yaml.Node, f string) {
	if v.Kind != yaml.ScalarNode || v.Decode(&a.SelfApprove) != nil {
		p.errorf(v.Line, f, "must be true or false")
	}
}

// RaiseTarget is what the cloud says of the project a raise would touch,
// read with the admin token just before planning.
type RaiseTarget struct {
	// State is the project's state; a raise is planned only when active.
	State string
	// Member and Project are the current capacities of the rule's resource.
	Member, Project int64
	// Err is why the project could not be read (then nothing is planned).
	Err error
}

type raiseKey struct{ rule, project, resource string }

// Raise plans the raise of one firing instance's limit. It is refused on
// a project that is not active (approving the application would
// reactivate a suspended or terminated one), at the rule's max, within the
// rule's cooldown for the project, and when the cap of actions is reached.
func (p *Planner) Raise(f Firing, t RaiseTarget) Plan {
	r := f.Rule
	if r == nil || r.Raise == nil {
		return Plan{Instance: f.Instance}
	}
	a := r.Raise
	k := f.Instance.Key
	dry := p.dryRun || r.DryRun
	name := label(p.projects, k.Project)
	if f.ProjectName != "" {
		name = f.ProjectName
	}
	refuse := func(format string, args ...any) Plan {
		pl := p.finish(f, Plan{Skips: []Skip{{Reason: fmt.Sprintf(format, args...)}}, DryRun: dry})
		for i := range pl.Events {
			// Tells notifiers it is a raise that was refused, not a move.
			pl.Events[i].Move = &quota.Move{Rule: r.Name, Account: k.Account, Kind: quota.KindLimit,
				From: k.Project, FromName: f.ProjectName, To: k.Project, ToName: f.ProjectName, Resource: k.Resource,
				SourceBefore: f.Quota, SourceAfter: f.Quota, Raise: &quota.Raise{Level: a.Level}}
		}
		return pl
	}
	last := f.Instance.LastAction
	for _, j := range p.journal {
		if t, ok := lastRuleMove(j, r.Name, "", k.Project); ok && t.After(last) {
			last = t
		}
	}
	if !last.IsZero() && p.now.Sub(last) < r.Cooldown {
		return refuse("cooldown: the limit of %s was last raised at %s; the next raise is allowed after %s",
			name, clock(last), clock(last.Add(r.Cooldown)))
	}
	rk := raiseKey{r.Name, k.Project, k.Resource}
	if p.raised[rk] {
		return refuse("the limit of %s is already being raised this cycle", name)
	}
	if t.Err != nil {
		return refuse("reading project %s with the admin token failed: %v", name, t.Err)
	}
	if t.State != "active" {
		return refuse("%s is %s: approving a raise would reactivate it, so its limit is left alone", name, cmpOr(t.State, "in an unknown state"))
	}
	if p.capped && p.left <= 0 {
		return refuse("%s", ReasonBudget)
	}
	res := k.Resource
	rz := &quota.Raise{Level: a.Level, MemberFrom: t.Member, MemberTo: t.Member,
		ProjectFrom: t.Project, ProjectTo: t.Project, SelfApprove: a.SelfApprove}
	var atMax []string
	raise := func(what string, from int64, to *int64) {
		n, capped := a.next(from)
		if n <= from {
			if capped {
				atMax = append(atMax, what)
			}
			return
		}
		*to = n
	}
	if a.Level != LevelMember {
		raise("project limit", t.Project, &rz.ProjectTo)
	}
	if a.Level != LevelProject {
		raise("member limit", t.Member, &rz.MemberTo)
	}
	if rz.ProjectTo == rz.ProjectFrom && rz.MemberTo == rz.MemberFrom {
		if len(atMax) > 0 {
			return refuse("the %s of %s is already at its max of %s", strings.Join(atMax, " and "), name, quota.FormatAmount(res, a.Max))
		}
		return refuse("the limit of %s cannot be raised (it is unlimited)", name)
	}
	m := quota.Move{
		Rule: r.Name, Account: k.Account, Kind: quota.KindLimit, ItemID: res, ItemName: raiseName(res, rz),
		From: k.Project, FromName: f.ProjectName, To: k.Project, ToName: f.ProjectName, Resource: res,
		Quantities:   quota.Quantities{res: max(rz.ProjectTo-rz.ProjectFrom, rz.MemberTo-rz.MemberFrom)},
		SourceBefore: f.Quota, DestBefore: f.Quota, Raise: rz,
	}
	after := f.Quota
	if a.Level != LevelMember {
		after.ProjectLimit = rz.ProjectTo
	}
	if a.Level != LevelProject {
		after.Limit = rz.MemberTo
	}
	if k.Account == "service" {
		// The service view's member fields are the project's.
		after.Limit = after.ProjectLimit
	}
	m.SourceAfter, m.DestAfter = after, after
	if !(r.DryRun && !p.dryRun) {
		p.raised[rk] = true
		if p.capped {
			p.left--
		}
		p.journal[k.Account] = append(p.journal[k.Account], quota.Action{Time: p.now, State: quota.ActionIntent, Move: m})
	}
	return p.finish(f, Plan{Moves: []Move{{Move: m, DryRun: dry}}, DryRun: dry})
}

// next is the raised value of a limit, and whether the max held it back.
func (a *RaiseLimit) next(from int64) (int64, bool) {
	if from >= quota.Unlimited || from < 0 {
		return from, false
	}
	var n int64
	if a.ByPercent > 0 {
		step := math.Ceil(float64(from) * a.ByPercent / 100)
		if step < 1 {
			step = 1
		}
		n = from + int64(step)
	} else {
		n = from + a.ByAmount
	}
	if n < from { // overflow
		n = quota.Unlimited
	}
	if a.Max > 0 && n > a.Max {
		return max(from, a.Max), true
	}
	return n, false
}

// raiseName names a raise for people, as the journal's item.
func raiseName(res string, r *quota.Raise) string {
	var parts []string
	if r.ProjectTo != r.ProjectFrom {
		parts = append(parts, fmt.Sprintf("project limit %s → %s", quota.FormatAmount(res, r.ProjectFrom), quota.FormatAmount(res, r.ProjectTo)))
	}
	if r.MemberTo != r.MemberFrom {
		parts = append(parts, fmt.Sprintf("member limit %s → %s", quota.FormatAmount(res, r.MemberFrom), quota.FormatAmount(res, r.MemberTo)))
	}
	return res + " " + strings.Join(parts, ", ")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
