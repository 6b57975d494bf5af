package notify

import (
	"fmt"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// RaiseSentence tells what a raise changes, e.g. "raised the project limit
// of lab from 40 to 48 (application 42, approved)"; verb is "raised" or
// "would raise".
func RaiseSentence(m *quota.Move, verb string) string {
	r := m.Raise
	var parts []string
	if r.ProjectTo != r.ProjectFrom {
		parts = append(parts, fmt.Sprintf("the project limit of %s from %s to %s", projectName(m.FromName, m.From),
			quota.FormatAmount(m.Resource, r.ProjectFrom), quota.FormatAmount(m.Resource, r.ProjectTo)))
	}
	if r.MemberTo != r.MemberFrom {
		parts = append(parts, fmt.Sprintf("the member limit of %s from %s to %s", projectName(m.FromName, m.From),
			quota.FormatAmount(m.Resource, r.MemberFrom), quota.FormatAmount(m.Resource, r.MemberTo)))
	}
	s := verb + " " + strings.Join(parts, " and ")
	if m.Resource != "" {
		s += " (" + m.Resource
		switch {
		case r.Application > 0 && r.Approved:
			s += fmt.Sprintf(", application %d, approved", r.Application)
		case r.Application > 0:
			s += fmt.Sprintf(", application %d, waiting for a project admin's approval", r.Application)
		}
		s += ")"
	}
	return s
}

// layoutRaise renders the action event of a raise_limit rule.
func layoutRaise(ev quota.Event) rendered {
	m := ev.Move
	dry := ""
	if ev.DryRun {
		dry = "DRY RUN: "
	}
	var r rendered
	switch {
	case ev.Result == quota.ResultApplied:
		verb := "raised"
		if ev.DryRun {
			verb = "would raise"
		}
		s := RaiseSentence(m, verb)
		r.summary = fmt.Sprintf("%s%s: %s", dry, ev.Key.Rule, s)
		r.line = fmt.Sprintf(":arrow_up: *%s%s*", dry, esc(strings.ToUpper(s[:1])+s[1:]))
	case ev.Result == quota.ResultFailed:
		s := RaiseSentence(m, "raise")
		r.summary = fmt.Sprintf("%s%s: failed to %s: %s", dry, ev.Key.Rule, s, ev.Reason)
		r.line = fmt.Sprintf(":x: *%sRaise failed* · %s: %s", dry, esc(s), esc(ev.Reason))
	default:
		r.summary = fmt.Sprintf("%s%s: no raise of the limit of %s: %s", dry, ev.Key.Rule, project(ev), ev.Reason)
		r.line = fmt.Sprintf(":no_entry_sign: *%sRaise skipped* · *%s*%s: %s", dry, esc(project(ev)), atPercent(ev.Quota), esc(ev.Reason))
	}
	r.line += ruleTag(ev)
	return r
}

// raiseWord counts a raise's action event in a digest.
func raiseWord(ev quota.Event) string {
	switch {
	case ev.Result == quota.ResultApplied && ev.DryRun:
		return "would raise"
	case ev.Result == quota.ResultApplied:
		return "raised"
	case ev.Result == quota.ResultFailed:
		return "raise failed"
	}
	return "raise skipped"
}
