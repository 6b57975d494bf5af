package rules

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// Every action event (applied, failed, skipped, settled) is built here, so
// they all carry the rule's severity, description, notifiers and dry-run
// flag the same way.

// actionEvent is an action event of rule r (nil when no longer
// configured) about the series of key.
func actionEvent(r *Rule, key quota.InstanceKey, projectName string, q quota.Quota, dryRun bool, now time.Time) quota.Event {
	ev := quota.Event{
		Kind:        quota.EventAction,
		Time:        now,
		Key:         key,
		ProjectName: projectName,
		Quota:       q,
		DaysToFull:  quota.Never,
		DryRun:      dryRun,
	}
	if r != nil {
		ev.Severity, ev.Description, ev.Notify = r.Severity, r.Description, slices.Clone(r.Notify)
	}
	return ev
}

// firingEvent is an action event of a firing instance; a rule in dry run
// makes every event of it a dry-run one.
func firingEvent(f *Firing, dryRun bool, now time.Time) quota.Event {
	ev := actionEvent(f.Rule, f.Instance.Key, f.ProjectName, f.Quota, dryRun || f.Rule.DryRun, now)
	ev.Since = f.Instance.Since
	return ev
}

// Settled is the event of a journaled move whose outcome is learnt after
// its cycle (a lost answer, an interrupted run): state is applied or
// failed, and reason says why it failed (a move given up on after the
// settle window is failed, reason "interrupted: ..."). It needs no planner:
// the move's rule is looked up by name, and the event tells the quota the
// move saw. A dry-run entry's event is a dry-run one.
func (e *Engine) Settled(a quota.Action, state quota.ActionState, reason string, now time.Time) quota.Event {
	key := quota.InstanceKey{Rule: a.Rule, Account: a.Account, Project: a.From, Resource: a.Resource}
	ev := actionEvent(e.byName[a.Rule], key, a.FromName, a.SourceBefore, a.DryRun, now)
	ev.Result = quota.ResultApplied
	if state == quota.ActionFailed {
		ev.Result = quota.ResultFailed
	}
	m := a.Move
	ev.Move = &m
	ev.Reason = reason
	return ev
}

// skipEvents turns skips into "action skipped" events, each reason once per
// incident and again only after the rule's repeat (never when repeat is 0).
// It records what it reports in f.Instance.Skipped (a fresh map, so the
// input's map is not shared) and reports whether that changed.
func skipEvents(f *Firing, skips []Skip, dryRun bool, now time.Time) ([]quota.Event, bool) {
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
		ev := firingEvent(f, dryRun, now)
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
	return evs, cloned
}

// skipKey is what makes two refusals "the same reason": the item and the
// reason's words, not its figures, which move as usage does ("no project
// with 12.0 GiB headroom" and, a poll later, "12.1 GiB" are one reason).
func skipKey(s Skip) string {
	return s.ItemID + "\x00" + hideFigures(s.Reason)
}

// hideFigures replaces each figure of a reason (sizes, counts, times: what
// the regexp [0-9]+([.:][0-9]+)* matches) with "#". Written out, as a
// planner asks it of every refusal of every cycle.
func hideFigures(s string) string {
	digit := func(i int) bool { return i < len(s) && s[i] >= '0' && s[i] <= '9' }
	i := 0
	for i < len(s) && !digit(i) {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		if !digit(i) {
			b.WriteByte(s[i])
			i++
			continue
		}
		for digit(i) {
			i++
		}
		for i+1 < len(s) && (s[i] == '.' || s[i] == ':') && digit(i+1) {
			for i++; digit(i); i++ {
			}
		}
		b.WriteByte('#')
	}
	return b.String()
}
