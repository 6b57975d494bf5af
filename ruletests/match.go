package ruletests

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/quota"
)

// The event names of a test: a rule's firing (and repeats) and resolved, a
// move (action), a refusal told (skipped) and the poll alerts.
var eventNames = []string{"firing", "resolved", "action", "skipped", "poll_failed", "poll_recovered"}

// expectKeys are the keys an expected event may give.
var expectKeys = []string{"event", "rule", "account", "project", "resource", "item", "to", "reason"}

// expect is one expected event: it matches an event when every key given
// matches.
type expect struct {
	line int
	keys []field // in file order
}

type field struct{ key, val string }

// eventName is the name a test gives the event's kind.
func eventName(ev *quota.Event) string {
	if ev.Kind == quota.EventAction {
		switch ev.Result {
		case quota.ResultSkipped:
			return "skipped"
		case quota.ResultFailed:
			return "failed"
		}
		return "action"
	}
	return string(ev.Kind)
}

// matches reports whether every key of x matches ev: project and to by id
// or name, item by name or id, reason as a substring, the others exactly.
func (x *expect) matches(ev *quota.Event) bool {
	for _, f := range x.keys {
		ok := false
		switch f.key {
		case "event":
			ok = eventName(ev) == f.val
		case "rule":
			ok = ev.Key.Rule == f.val
		case "account":
			ok = ev.Key.Account == f.val
		case "project":
			ok = ev.Key.Project == f.val || (ev.ProjectName != "" && ev.ProjectName == f.val)
		case "resource":
			ok = ev.Key.Resource == f.val
		case "item":
			ok = ev.Move != nil && (ev.Move.ItemName == f.val || ev.Move.ItemID == f.val)
		case "to":
			ok = ev.Move != nil && ev.Move.To != "" && (ev.Move.To == f.val || ev.Move.ToName == f.val)
		case "reason":
			ok = strings.Contains(ev.Reason, f.val)
		}
		if !ok {
			return false
		}
	}
	return true
}

// String renders the expectation as written.
func (x *expect) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range x.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.key + ": " + yamlString(f.val, f.key == "reason"))
	}
	b.WriteByte('}')
	return b.String()
}

// describeEvent renders an event as an expectation that would match it,
// so that it can be pasted into a test: projects by name when they have
// one.
func describeEvent(ev *quota.Event) string {
	x := expect{keys: []field{{"event", eventName(ev)}}}
	add := func(k, v string) {
		if v != "" {
			x.keys = append(x.keys, field{k, v})
		}
	}
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	add("rule", ev.Key.Rule)
	add("account", ev.Key.Account)
	add("project", or(ev.ProjectName, ev.Key.Project))
	add("resource", ev.Key.Resource)
	if m := ev.Move; m != nil {
		add("item", or(m.ItemName, m.ItemID))
		add("to", or(m.ToName, m.To))
	}
	add("reason", ev.Reason)
	return x.String()
}

// yamlString renders s as a YAML flow scalar, quoted when it must be (or
// always, for reasons, which are prose).
func yamlString(s string, quote bool) string {
	if quote || s == "" || strings.ContainsAny(s, ":#,[]{}&*!|>'\"%@`") || strings.TrimSpace(s) != s {
		return strconv.Quote(s)
	}
	return s
}

// match pairs expected events with events, each used once, so that as
// many expectations as possible are met; it returns the expectations left
// unmet and the events left over. Order does not matter, and since keys
// may be partial, pairing is a bipartite matching rather than greedy.
func match(want []expect, got []quota.Event) (unmet []expect, extra []quota.Event) {
	owner := make([]int, len(got)) // event → expectation, -1 for none
	for j := range owner {
		owner[j] = -1
	}
	var try func(i int, seen []bool) bool
	try = func(i int, seen []bool) bool {
		for j := range got {
			if seen[j] || !want[i].matches(&got[j]) {
				continue
			}
			seen[j] = true
			if owner[j] < 0 || try(owner[j], seen) {
				owner[j] = i
				return true
			}
		}
		return false
	}
	met := make([]bool, len(want))
	for i := range want {
		met[i] = try(i, make([]bool, len(got)))
	}
	for i := range want {
		if !met[i] {
			unmet = append(unmet, want[i])
		}
	}
	for j := range got {
		if owner[j] < 0 {
			extra = append(extra, got[j])
		}
	}
	return unmet, extra
}

// check reads one entry of expected_events; polls is the number of
// evaluations of the test.
func (f *File) check(p *problems, path string, n *yaml.Node, polls int) (check, bool) {
	before := len(p.list)
	m := p.mapping(n, path, n.Line, "at", "events")
	c := check{line: n.Line}
	if m.bad {
		return c, false
	}
	if m.required("at") {
		if d, ok := duration(m, "at"); ok {
			last := time.Duration(max(polls-1, 0)) * f.Interval
			line := m.node("at").Line
			switch {
			case d < 0:
				m.errorf(line, "at", "must be 0 or more, got %s", m.node("at").Value)
			case f.Interval > 0 && d%f.Interval != 0:
				m.errorf(line, "at", "%s is not a poll: polls are every %s from 0", formatAt(d), formatAt(f.Interval))
			case polls > 0 && d > last:
				m.errorf(line, "at", "%s is after the last poll (at %s)", formatAt(d), formatAt(last))
			}
			c.at = d
		}
	}
	if !m.has("events") {
		m.required("events")
	}
	for i, en := range m.list("events") {
		em := p.mapping(en, fmt.Sprintf("%s.events[%d]", path, i), en.Line, expectKeys...)
		if em.bad {
			continue
		}
		x := expect{line: en.Line}
		for _, k := range expectKeys {
			v, ok := em.str(k)
			if !ok {
				if em.has(k) && em.node(k) == nil {
					em.errorf(em.keyLine(k), k, "has no value")
				}
				continue
			}
			if k == "event" && !slices.Contains(eventNames, v) {
				em.errorf(em.node(k).Line, k, "unknown event %q (want %s)", v, strings.Join(eventNames, ", "))
			}
			x.keys = append(x.keys, field{k, v})
		}
		// As written, for the report of an unmet expectation.
		slices.SortStableFunc(x.keys, func(a, b field) int {
			ka, kb := em.keys[a.key], em.keys[b.key]
			return cmp.Or(cmp.Compare(ka.Line, kb.Line), cmp.Compare(ka.Column, kb.Column))
		})
		c.events = append(c.events, x)
	}
	return c, len(p.list) == before
}

// formatAt renders a time offset the way tests write it: 15m, 1h, 1h30m.
func formatAt(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
