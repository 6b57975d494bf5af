package notify

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// maxSubject bounds a subject line; mail clients show about this much.
const maxSubject = 150

// emailSubject is the subject line of ev's messages.
func emailSubject(ev quota.Event) string {
	if toOwners(ev) {
		m := ev.Move
		return truncate(fmt.Sprintf("quotawatch moved %s %s to %s", kindName(m.Kind), m.ItemName, projectName(m.ToName, m.To)), maxSubject)
	}
	// The Slack fallback text is plain text already and says it all in
	// one line.
	return truncate(strings.ReplaceAll(layout(ev).summary, "\n", " "), maxSubject)
}

// emailBody is the plain-text body of ev for r. notifier names the
// notifier, replyTo where replies go; actionID is the move's journal
// entry, when haveID.
func emailBody(ev quota.Event, r recipient, notifier, replyTo string, actionID uint64, haveID bool) string {
	var b strings.Builder
	if m := ev.Move; ev.Kind == quota.EventAction && ev.Result == quota.ResultApplied && m != nil && m.To != "" {
		writeMoveBody(&b, ev, r, replyTo, actionID, haveID)
	} else {
		writeEventBody(&b, ev)
	}
	b.WriteString("\n-- \n")
	fmt.Fprintf(&b, "quotawatch · account %s · notifier %s\n", ev.Key.Account, notifier)
	if len(r.roles) == 0 {
		fmt.Fprintf(&b, "You get this message because this address is listed in the notifier %q.\n", notifier)
	}
	return b.String()
}

// writeMoveBody tells what was moved, why, what it did to both projects and
// how to have it moved back.
func writeMoveBody(b *strings.Builder, ev quota.Event, r recipient, replyTo string, actionID uint64, haveID bool) {
	m := ev.Move
	kind := kindName(m.Kind)
	from, to := projectName(m.FromName, m.From), projectName(m.ToName, m.To)
	res := m.Resource
	if res == "" {
		res = ev.Key.Resource
	}
	if ev.DryRun {
		b.WriteString("DRY RUN: nothing was changed; this is what quotawatch would have done.\n\n")
	}
	b.WriteString("Hello,\n\n")
	verb := "moved"
	if ev.DryRun {
		verb = "would have moved"
	}
	fmt.Fprintf(b, "quotawatch %s the %s %q out of the project %q into the project %q on %s.\n",
		verb, kind, m.ItemName, from, to, formatTime(ev.Time))
	fmt.Fprintf(b, "Nothing in the %s was changed or deleted: only the project its quota is charged to.\n", kind)
	if len(r.roles) > 0 {
		fmt.Fprintf(b, "You get this message because you own %s.\n", joinAnd(r.roles))
	}

	b.WriteString("\nWhat was moved\n")
	rows := [][2]string{
		{strings.ToUpper(kind[:1]) + kind[1:], itemLabel(m)},
		{"It carries", formatQuantities(m.Quantities)},
		{"From project", fmt.Sprintf("%s (%s)", from, m.From)},
		{"To project", fmt.Sprintf("%s (%s)", to, m.To)},
		{"Account", ev.Key.Account},
	}
	if haveID {
		rows = append(rows, [2]string{"Action", strconv.FormatUint(actionID, 10)})
	}
	writeRows(b, rows)

	b.WriteString("\nWhy\n")
	rule := fmt.Sprintf("The rule %q", ev.Key.Rule)
	if ev.Description != "" {
		rule += fmt.Sprintf(" (%s)", ev.Description)
	}
	fmt.Fprintf(b, "%s fired for %s of the project %q: it was at %s.\n", rule, res, from, formatUsage(res, ev.Quota))
	if t := formatTrend(res, ev.GrowthPerDay, ev.DaysToFull); t != "" {
		fmt.Fprintf(b, "Trend: %s.\n", t)
	}

	fmt.Fprintf(b, "\n%s before and after the move\n", res)
	writeRows(b, [][2]string{
		{from, formatUsage(res, m.SourceBefore) + " → " + formatUsage(res, m.SourceAfter)},
		{to, formatUsage(res, m.DestBefore) + " → " + formatUsage(res, m.DestAfter)},
	})

	if ev.DryRun {
		return
	}
	b.WriteString("\nTo have it moved back\n")
	ask := fmt.Sprintf("Reply to this message (replies go to %s)", replyTo)
	if haveID {
		fmt.Fprintf(b, "%s and quote action %d: an operator can undo the move with \"quotawatch undo %d\".\n", ask, actionID, actionID)
	} else {
		fmt.Fprintf(b, "%s and name the %s and the time above: an operator can move it back.\n", ask, kind)
	}
	b.WriteString("If it is moved back by hand, the same rule may move it again: please ask first.\n")
}

// itemLabel names an item, with its id when the name does not say it.
func itemLabel(m *quota.Move) string {
	if m.ItemID == "" || m.ItemID == m.ItemName {
		return m.ItemName
	}
	return fmt.Sprintf("%s (id %s)", m.ItemName, m.ItemID)
}

// writeEventBody renders any other event in plain text, for the listed
// addresses.
func writeEventBody(b *strings.Builder, ev quota.Event) {
	r := layout(ev)
	b.WriteString(r.summary)
	b.WriteString("\n")
	if ev.Description != "" {
		fmt.Fprintf(b, "\n%s\n", ev.Description)
	}
	var rows [][2]string
	if ev.Key.Rule != "" {
		rule := ev.Key.Rule
		if ev.Severity != "" {
			rule += " (" + string(ev.Severity) + ")"
		}
		rows = append(rows, [2]string{"Rule", rule})
	}
	rows = append(rows, [2]string{"Account", ev.Key.Account})
	if ev.Key.Project != "" {
		rows = append(rows,
			[2]string{"Project", fmt.Sprintf("%s (%s)", project(ev), ev.Key.Project)},
			[2]string{"Resource", ev.Key.Resource},
			[2]string{"Usage", formatUsage(ev.Key.Resource, ev.Quota)})
		if t := formatTrend(ev.Key.Resource, ev.GrowthPerDay, ev.DaysToFull); t != "" {
			rows = append(rows, [2]string{"Trend", t})
		}
	}
	if m := ev.Move; m != nil {
		rows = append(rows, [2]string{"Item", kindName(m.Kind) + " " + itemLabel(m)})
		if m.To != "" {
			rows = append(rows, [2]string{"Destination", fmt.Sprintf("%s (%s)", projectName(m.ToName, m.To), m.To)})
		}
	}
	if ev.Reason != "" {
		rows = append(rows, [2]string{"Reason", ev.Reason})
	}
	if ev.DryRun {
		rows = append(rows, [2]string{"Dry run", "yes: nothing was changed"})
	}
	rows = append(rows, [2]string{"Time", formatTime(ev.Time)})
	b.WriteString("\n")
	writeRows(b, rows)
}

// writeRows writes "  Label:  value" lines with the values aligned.
func writeRows(b *strings.Builder, rows [][2]string) {
	w := 0
	for _, r := range rows {
		w = max(w, len([]rune(r[0])))
	}
	for _, r := range rows {
		fmt.Fprintf(b, "  %s:%s %s\n", r[0], strings.Repeat(" ", w-len([]rune(r[0]))), r[1])
	}
}

// joinAnd renders "a", "a and b", "a, b and c".
func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
