package notify

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/quotawatch/quotawatch/quota"
)

// Block Kit limits (Slack's Block Kit reference).
const (
	maxBlocks      = 50
	maxSectionText = 3000
	maxHeaderText  = 150
	maxFieldText   = 2000
	maxFields      = 10
	maxContextText = 3000
	// maxMessageText bounds the fallback text of a message, and the text
	// of its blocks together: Slack takes up to 40,000 characters, but a
	// message longer than a few screens is not read.
	maxMessageText = 12000
)

// Message is one Slack message: Text is the plain fallback shown in
// notifications and by clients without Block Kit.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// rendered is an event laid out once, for a message of its own or as a
// line of a batch.
type rendered struct {
	summary string // one line, plain: the fallback text
	line    string // one line, mrkdwn: what the blocks show
}

// Render lays out one event as a message of its own: its line and where
// it comes from. Bot replies and poll events are such messages.
func Render(ev quota.Event) Message {
	r := layout(ev)
	return Message{Text: r.summary, Blocks: []slack.Block{section(r.line), contextBlock(contextLine(ev))}}
}

// renderParent lays out the parent message of a bot incident thread. Its
// first line is the incident (rule, project, resource) whatever the latest
// event, the second the latest event, and the context its status.
func renderParent(ev quota.Event) Message {
	r := layout(ev)
	status := fmt.Sprintf("Incident status: *%s* · updated %s · account %s · history in the thread",
		incidentStatus(ev), slackDate(ev.Time), esc(ev.Key.Account))
	text := r.summary
	if !strings.Contains(text, ev.Key.Resource) || !strings.Contains(text, project(ev)) {
		text = incidentText(ev) + " — " + text
	}
	return Message{
		Text:   text,
		Blocks: []slack.Block{section(incidentLine(ev) + describe(ev) + "\n" + r.line), contextBlock(status)},
	}
}

// incidentLine names the incident in mrkdwn: severity, rule, project
// (name and id) and resource.
func incidentLine(ev quota.Event) string {
	id := ""
	if ev.ProjectName != "" && ev.ProjectName != ev.Key.Project {
		id = " `" + esc(ev.Key.Project) + "`"
	}
	sev := ""
	if ev.Severity != "" {
		sev = " (" + string(ev.Severity) + ")"
	}
	return fmt.Sprintf("%s *%s*%s · *%s*%s · %s", severityEmoji(ev.Severity), esc(ev.Key.Rule), sev,
		esc(project(ev)), id, esc(ev.Key.Resource))
}

// incidentText names the incident in plain text.
func incidentText(ev quota.Event) string {
	return fmt.Sprintf("%s: %s of %s", ev.Key.Rule, ev.Key.Resource, project(ev))
}

func incidentStatus(ev quota.Event) string {
	switch ev.Kind {
	case quota.EventFiring:
		if ev.Repeat {
			return "still firing"
		}
		return "firing"
	case quota.EventResolved:
		return "resolved"
	case quota.EventAction:
		if t, ok := decisionTitle(ev); ok {
			return t
		}
		prefix := ""
		if ev.DryRun {
			prefix = "dry run, "
		}
		switch ev.Result {
		case quota.ResultApplied:
			if ev.DryRun {
				return "dry run, would move"
			}
			return "moved"
		case quota.ResultFailed:
			return prefix + "move failed"
		default:
			return prefix + "move skipped"
		}
	}
	return string(ev.Kind)
}

// severityEmoji is the colour of a severity: red, orange, blue.
func severityEmoji(s quota.Severity) string {
	switch s {
	case quota.Critical:
		return ":red_circle:"
	case quota.Info:
		return ":large_blue_circle:"
	}
	return ":large_orange_circle:"
}

func layout(ev quota.Event) rendered {
	switch ev.Kind {
	case quota.EventFiring:
		return layoutFiring(ev)
	case quota.EventResolved:
		return layoutResolved(ev)
	case quota.EventAction:
		return layoutAction(ev)
	case quota.EventPollFailed:
		return layoutPollFailed(ev)
	case quota.EventPollRecovered:
		return layoutPollRecovered(ev)
	case quota.EventTokenExpiring:
		return layoutTokenExpiring(ev)
	case quota.EventTakeover:
		return layoutTakeover(ev)
	}
	s := fmt.Sprintf("quotawatch: %s %s", ev.Kind, ev.Key)
	return rendered{summary: s, line: esc(s)}
}

// contextLine says where a message comes from and when.
func contextLine(ev quota.Event) string {
	return "quotawatch · account " + esc(ev.Key.Account) + " · " + slackDate(ev.Time)
}

func project(ev quota.Event) string { return projectName(ev.ProjectName, ev.Key.Project) }

// ruleTag closes a line with the rule's name.
func ruleTag(ev quota.Event) string { return " · _" + esc(ev.Key.Rule) + "_" }

// usageLine renders "at *98.0%*: 19.6 GiB of 20.0 GiB" for mrkdwn.
func usageLine(res string, q quota.Quota) string {
	if q.IsUnlimited() {
		return "at " + formatUsage(res, q)
	}
	if noQuota(q) {
		return fmt.Sprintf("uses *%s* with no quota (limit %s)", quota.FormatAmount(res, q.Usage),
			quota.FormatAmount(res, q.EffectiveLimit()))
	}
	return fmt.Sprintf("at *%s*: %s of %s", quota.FormatPercent(q.Ratio()),
		quota.FormatAmount(res, q.Usage), quota.FormatAmount(res, q.EffectiveLimit()))
}

// atPercent renders " at 98.0%", or "" for an unlimited quota.
func atPercent(q quota.Quota) string {
	if q.IsUnlimited() {
		return ""
	}
	if noQuota(q) {
		return " with no quota"
	}
	return " at " + quota.FormatPercent(q.Ratio())
}

func describe(ev quota.Event) string {
	if ev.Description == "" {
		return ""
	}
	return " — _" + esc(ev.Description) + "_"
}

func layoutFiring(ev quota.Event) rendered {
	res := ev.Key.Resource
	sev := strings.ToUpper(string(ev.Severity))
	if sev == "" {
		sev = "ALERT"
	}
	verb, title := "is at", "Firing"
	if ev.Repeat {
		verb, title = "is still at", "Still firing"
	}
	if noQuota(ev.Quota) {
		verb = map[bool]string{false: "uses", true: "still uses"}[ev.Repeat]
	}
	usage := formatUsage(res, ev.Quota)
	trend := formatTrend(res, ev.GrowthPerDay, ev.DaysToFull)
	summary := fmt.Sprintf("[%s] %s: %s of %s %s %s", sev, ev.Key.Rule, res, project(ev), verb, usage)
	line := fmt.Sprintf("%s *%s* · *%s* · %s %s", severityEmoji(ev.Severity), title, esc(project(ev)), esc(res), usageLine(res, ev.Quota))
	if trend != "" {
		summary += ", " + trend
		line += " · " + trend
	}
	if ev.Repeat && !ev.Since.IsZero() {
		d := formatDuration(ev.Time.Sub(ev.Since))
		summary += ", firing for " + d
		line += " · firing for " + d + " (since " + slackDate(ev.Since) + ")"
	}
	return rendered{summary: summary, line: line + ruleTag(ev)}
}

func layoutResolved(ev quota.Event) rendered {
	res := ev.Key.Resource
	after := ""
	if !ev.Since.IsZero() {
		after = " after " + formatDuration(ev.Time.Sub(ev.Since))
	}
	usage := formatUsage(res, ev.Quota)
	summary := fmt.Sprintf("[RESOLVED] %s: %s of %s is back to %s%s", ev.Key.Rule, res, project(ev), usage, after)
	line := fmt.Sprintf(":white_check_mark: *Resolved* · *%s* · %s back to %s%s", esc(project(ev)), esc(res), usage, after)
	if ev.Reason != "" {
		summary += ": " + ev.Reason
		line += ": " + esc(ev.Reason)
	}
	return rendered{summary: summary, line: line + ruleTag(ev)}
}

// moveSentence renders "container course_container (19.2 GiB) from A to B".
func moveSentence(m *quota.Move, mrkdwn bool) string {
	e := func(s string) string { return s }
	bold := e
	if mrkdwn {
		e = esc
		bold = func(s string) string { return "*" + esc(s) + "*" }
	}
	return fmt.Sprintf("%s %s (%s) from %s to %s", kindName(m.Kind), bold(m.ItemName),
		formatQuantities(m.Quantities), bold(projectName(m.FromName, m.From)), bold(projectName(m.ToName, m.To)))
}

func kindName(k quota.Kind) string { return strings.ReplaceAll(string(k), "_", " ") }

// beforeAfter renders "98.0% → 2.0%", or amounts for an unlimited quota.
func beforeAfter(resource string, before, after quota.Quota) string {
	if after.IsUnlimited() {
		return fmt.Sprintf("%s → %s (unlimited)", quota.FormatAmount(resource, before.Usage), quota.FormatAmount(resource, after.Usage))
	}
	return quota.FormatPercent(before.Ratio()) + " → " + quota.FormatPercent(after.Ratio())
}

func layoutAction(ev quota.Event) rendered {
	if r, ok := layoutDecision(ev); ok {
		return r
	}
	m := ev.Move
	if m != nil && m.Kind == quota.KindLimit && m.Raise != nil {
		return layoutRaise(ev)
	}
	dry := ""
	if ev.DryRun {
		dry = "DRY RUN: "
	}
	what := "item"
	if m != nil {
		what = kindName(m.Kind) + " *" + esc(m.ItemName) + "*"
	}
	var r rendered
	switch ev.Result {
	case quota.ResultApplied:
		verb := "Moved"
		if ev.DryRun {
			verb = "would move"
		}
		r.line = fmt.Sprintf(":truck: *%s%s* %s", dry, verb, what)
		if m != nil {
			res := m.Resource
			if res == "" {
				res = ev.Key.Resource
			}
			r.summary = fmt.Sprintf("%s%s: %s %s", dry, ev.Key.Rule, strings.ToLower(verb), moveSentence(m, false))
			r.line = fmt.Sprintf(":truck: *%s%s* %s *%s* (%s) · from *%s* %s · to *%s* %s", dry, verb, kindName(m.Kind), esc(m.ItemName),
				formatQuantities(m.Quantities), esc(projectName(m.FromName, m.From)), beforeAfter(res, m.SourceBefore, m.SourceAfter),
				esc(projectName(m.ToName, m.To)), beforeAfter(res, m.DestBefore, m.DestAfter))
		}
	case quota.ResultFailed:
		r.line = fmt.Sprintf(":x: *%sMove failed* · %s", dry, what)
		if m != nil {
			r.summary = fmt.Sprintf("%s%s: failed to move %s: %s", dry, ev.Key.Rule, moveSentence(m, false), ev.Reason)
			r.line = fmt.Sprintf(":x: *%sMove failed* · %s: %s", dry, moveSentence(m, true), esc(ev.Reason))
		}
	default:
		// A skip names the item it concerns, so that it does not read as
		// contradicting a move of another item out of the same project.
		if m != nil && m.ItemName != "" {
			r = layoutSkip(ev, dry, "no move", "Move skipped")
			r.summary = fmt.Sprintf("%s%s: no move of %s %s out of %s: %s", dry, ev.Key.Rule, kindName(m.Kind), m.ItemName, project(ev), ev.Reason)
			if !strings.Contains(ev.Reason, m.ItemName) {
				// The line names the item unless the reason does already.
				r.line = fmt.Sprintf(":no_entry_sign: *%sMove skipped* · %s *%s* · *%s*%s: %s", dry, kindName(m.Kind), esc(m.ItemName),
					esc(project(ev)), atPercent(ev.Quota), esc(ev.Reason))
			}
		} else {
			r = layoutSkip(ev, dry, "no move", "Move skipped")
		}
		if m != nil && m.To != "" {
			r.line += " (considered: " + moveSentence(m, true) + ")"
		}
	}
	if m == nil && r.summary == "" {
		r.summary = fmt.Sprintf("%s%s: %s %s: %s", dry, ev.Key.Rule, ev.Result, project(ev), ev.Reason)
		r.line += ": " + esc(ev.Reason)
	}
	r.line += ruleTag(ev)
	return r
}

// layoutSkip renders a skip that names no item: no move out of the project.
func layoutSkip(ev quota.Event, dry, what, title string) rendered {
	return rendered{summary: fmt.Sprintf("%s%s: %s out of %s: %s", dry, ev.Key.Rule, what, project(ev), ev.Reason),
		line: fmt.Sprintf(":no_entry_sign: *%s%s* · *%s*%s: %s", dry, title, esc(project(ev)), atPercent(ev.Quota), esc(ev.Reason))}
}

// furtherSkips finds the skips that name no item in events that also move
// something out of the same project: those are told as no further move,
// since a plain "no move out of" would contradict the move next to it.
func furtherSkips(events []quota.Event) map[int]bool {
	type from struct{ account, project string }
	moved := map[from]bool{}
	for _, ev := range events {
		if ev.Kind == quota.EventAction && ev.Result == quota.ResultApplied && ev.Move != nil && ev.Move.Raise == nil {
			moved[from{ev.Key.Account, ev.Move.From}] = true
		}
	}
	out := map[int]bool{}
	for i, ev := range events {
		if ev.Kind == quota.EventAction && ev.Result == quota.ResultSkipped && (ev.Move == nil || ev.Move.ItemName == "") &&
			moved[from{ev.Key.Account, ev.Key.Project}] {
			out[i] = true
		}
	}
	return out
}

// layoutFurtherSkip renders a skip of furtherSkips.
func layoutFurtherSkip(ev quota.Event) rendered {
	dry := ""
	if ev.DryRun {
		dry = "DRY RUN: "
	}
	r := layoutSkip(ev, dry, "no further move", "No further move")
	r.line += ruleTag(ev)
	return r
}

func layoutPollFailed(ev quota.Event) rendered {
	since, sinceDate := "", ""
	if !ev.Since.IsZero() {
		since, sinceDate = " since "+formatTime(ev.Since), " since "+slackDate(ev.Since)
	}
	return rendered{
		summary: fmt.Sprintf("Polling account %s has failed%s: %s", ev.Key.Account, since, ev.Reason),
		line: fmt.Sprintf(":rotating_light: *Polling account %s has failed*%s: %s — its quotas are not watched and nothing is moved for it",
			esc(ev.Key.Account), sinceDate, esc(ev.Reason)),
	}
}

func layoutPollRecovered(ev quota.Event) rendered {
	after := ""
	if !ev.Since.IsZero() {
		after = " after " + formatDuration(ev.Time.Sub(ev.Since))
	}
	line := fmt.Sprintf(":large_green_circle: *Polling account %s recovered*%s", esc(ev.Key.Account), after)
	if ev.Reason != "" {
		line += "; last error: " + esc(ev.Reason)
	}
	return rendered{summary: fmt.Sprintf("Polling account %s recovered%s", ev.Key.Account, after), line: line}
}

func header(title string) slack.Block {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(title, maxHeaderText), true, false))
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(text, maxSectionText), false, false), nil, nil)
}

func contextBlock(text string) slack.Block {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, truncate(text, maxContextText), false, false))
}
