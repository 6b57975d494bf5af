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
	// maxMessageText bounds the fallback text of a batch; Slack accepts
	// more but cuts long texts in notifications anyway.
	maxMessageText = 3000
)

// Message is one Slack message: Text is the plain fallback shown in
// notifications and by clients without Block Kit.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// rendered is an event laid out once, for a message of its own or as a
// part of a batch.
type rendered struct {
	title   string   // header: plain text
	summary string   // one line: the fallback text
	body    string   // mrkdwn
	fields  []string // mrkdwn
	context string   // mrkdwn
}

// Render lays out one event as a message of its own.
func Render(ev quota.Event) Message {
	r := layout(ev)
	blocks := []slack.Block{header(r.title), section(r.body, r.fields)}
	blocks = append(blocks, contextBlock(r.context))
	return Message{Text: r.summary, Blocks: blocks}
}

// renderParent lays out the parent message of a bot incident thread: the
// latest event plus the incident's current status.
func renderParent(ev quota.Event) Message {
	m := Render(ev)
	status := fmt.Sprintf("Incident status: *%s* · updated %s · history in the thread", incidentStatus(ev), formatTime(ev.Time))
	m.Blocks = append(m.Blocks, contextBlock(status))
	return m
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

var severityEmoji = map[quota.Severity]string{
	quota.Info:     ":information_source:",
	quota.Warning:  ":warning:",
	quota.Critical: ":rotating_light:",
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
	}
	return rendered{
		title:   "quotawatch: " + string(ev.Kind),
		summary: fmt.Sprintf("quotawatch: %s %s", ev.Kind, ev.Key),
		body:    esc(fmt.Sprintf("%s %s", ev.Kind, ev.Key)),
		context: esc(contextLine(ev)),
	}
}

func contextLine(ev quota.Event) string {
	return "quotawatch · account " + ev.Key.Account + " · " + formatTime(ev.Time)
}

func project(ev quota.Event) string { return projectName(ev.ProjectName, ev.Key.Project) }

func ruleField(ev quota.Event) string {
	s := "*Rule*\n" + esc(ev.Key.Rule)
	if ev.Severity != "" {
		s += " (" + string(ev.Severity) + ")"
	}
	return s
}

func projectField(ev quota.Event) string {
	return fmt.Sprintf("*Project*\n%s\n`%s`", esc(project(ev)), esc(ev.Key.Project))
}

// quotaFields describes the series' quota.
func quotaFields(ev quota.Event) []string {
	res := ev.Key.Resource
	fs := []string{
		ruleField(ev),
		projectField(ev),
		"*Resource*\n" + esc(res),
		"*Account*\n" + esc(ev.Key.Account),
		"*Usage*\n" + formatUsage(res, ev.Quota),
	}
	if !ev.Quota.IsUnlimited() {
		fs = append(fs, "*Headroom*\n"+quota.FormatAmount(res, ev.Quota.Headroom()))
	}
	if p := formatProjectUsage(res, ev.Quota); p != "" {
		fs = append(fs, "*Project total*\n"+p)
	}
	return fs
}

func describe(ev quota.Event) string {
	if ev.Description == "" {
		return ""
	}
	return "\n_" + esc(ev.Description) + "_"
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
	emoji := severityEmoji[ev.Severity]
	if emoji == "" {
		emoji = ":warning:"
	}
	usage := formatUsage(res, ev.Quota)
	trend := formatTrend(res, ev.GrowthPerDay, ev.DaysToFull)
	summary := fmt.Sprintf("[%s] %s: %s of %s %s %s", sev, ev.Key.Rule, res, project(ev), verb, usage)
	body := fmt.Sprintf("*%s* of *%s* %s *%s*: %s of %s", esc(res), esc(project(ev)), verb, quota.FormatPercent(ev.Quota.Ratio()),
		quota.FormatAmount(res, ev.Quota.Usage), quota.FormatAmount(res, ev.Quota.EffectiveLimit()))
	if ev.Quota.IsUnlimited() {
		body = fmt.Sprintf("*%s* of *%s* %s %s", esc(res), esc(project(ev)), verb, usage)
	}
	if trend != "" {
		summary += ", " + trend
		body += "\nTrend: " + trend
	}
	if ev.Repeat && !ev.Since.IsZero() {
		d := formatDuration(ev.Time.Sub(ev.Since))
		summary += ", firing for " + d
		body += "\nFiring for " + d + " (since " + formatTime(ev.Since) + ")"
	}
	body += describe(ev)
	fields := quotaFields(ev)
	if trend != "" {
		fields = append(fields, "*Trend*\n"+trend)
	}
	return rendered{
		title:   fmt.Sprintf("%s %s: %s · %s", emoji, title, ev.Key.Rule, project(ev)),
		summary: summary,
		body:    body,
		fields:  fields,
		context: esc(contextLine(ev)),
	}
}

func layoutResolved(ev quota.Event) rendered {
	res := ev.Key.Resource
	after := ""
	if !ev.Since.IsZero() {
		after = " after " + formatDuration(ev.Time.Sub(ev.Since))
	}
	usage := formatUsage(res, ev.Quota)
	return rendered{
		title:   fmt.Sprintf(":white_check_mark: Resolved: %s · %s", ev.Key.Rule, project(ev)),
		summary: fmt.Sprintf("[RESOLVED] %s: %s of %s is back to %s%s", ev.Key.Rule, res, project(ev), usage, after),
		body:    fmt.Sprintf("*%s* of *%s* is back to %s. Resolved%s.%s", esc(res), esc(project(ev)), usage, after, describe(ev)),
		fields:  quotaFields(ev),
		context: esc(contextLine(ev)),
	}
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

// beforeAfter renders "97.5% → 1.5%\n19.5 GiB → 300.0 MiB of 20.0 GiB".
func beforeAfter(resource string, before, after quota.Quota) string {
	lim := quota.FormatAmount(resource, after.EffectiveLimit())
	if after.IsUnlimited() {
		return fmt.Sprintf("%s → %s (unlimited)", quota.FormatAmount(resource, before.Usage), quota.FormatAmount(resource, after.Usage))
	}
	return fmt.Sprintf("%s → %s\n%s → %s of %s", quota.FormatPercent(before.Ratio()), quota.FormatPercent(after.Ratio()),
		quota.FormatAmount(resource, before.Usage), quota.FormatAmount(resource, after.Usage), lim)
}

func layoutAction(ev quota.Event) rendered {
	m := ev.Move
	dry := ""
	if ev.DryRun {
		dry = "DRY RUN: "
	}
	r := rendered{context: esc(contextLine(ev))}
	if ev.DryRun {
		r.context = "*DRY RUN*: nothing was changed · " + r.context
	}
	what := "item"
	if m != nil {
		what = kindName(m.Kind) + " " + m.ItemName
	}
	switch ev.Result {
	case quota.ResultApplied:
		verb := "Moved"
		if ev.DryRun {
			verb = "would move"
		}
		r.title = fmt.Sprintf(":truck: %s%s %s", dry, verb, what)
		if m != nil {
			r.summary = fmt.Sprintf("%s%s: %s %s", dry, ev.Key.Rule, strings.ToLower(verb), moveSentence(m, false))
			r.body = fmt.Sprintf("%s%s %s.", dry, verb, moveSentence(m, true))
		}
	case quota.ResultFailed:
		r.title = fmt.Sprintf(":x: %sMove failed: %s", dry, what)
		if m != nil {
			r.summary = fmt.Sprintf("%s%s: failed to move %s: %s", dry, ev.Key.Rule, moveSentence(m, false), ev.Reason)
			r.body = fmt.Sprintf("%sFailed to move %s.\nError: %s", dry, moveSentence(m, true), esc(ev.Reason))
		}
	default:
		r.title = fmt.Sprintf(":no_entry_sign: %sMove skipped: %s · %s", dry, ev.Key.Rule, project(ev))
		r.summary = fmt.Sprintf("%s%s: no move out of %s: %s", dry, ev.Key.Rule, project(ev), ev.Reason)
		r.body = fmt.Sprintf("%sNo move out of *%s*: %s", dry, esc(project(ev)), esc(ev.Reason))
		if m != nil && m.To != "" {
			r.body += "\nConsidered: " + moveSentence(m, true)
		}
	}
	if m == nil && r.summary == "" {
		r.summary = fmt.Sprintf("%s%s: %s %s: %s", dry, ev.Key.Rule, ev.Result, project(ev), ev.Reason)
		r.body = esc(r.summary)
	}
	r.body += describe(ev)
	r.fields = []string{ruleField(ev), "*Account*\n" + esc(ev.Key.Account)}
	switch {
	case m != nil && m.To == "":
		// A refusal with no destination to show: the item and where it is.
		r.fields = append(r.fields, projectField(ev), "*Usage*\n"+formatUsage(ev.Key.Resource, ev.Quota),
			"*Item*\n"+kindName(m.Kind)+" "+esc(m.ItemName))
	case m != nil:
		res := m.Resource
		if res == "" {
			res = ev.Key.Resource
		}
		r.fields = append(r.fields,
			fmt.Sprintf("*Source: %s*\n%s", esc(projectName(m.FromName, m.From)), beforeAfter(res, m.SourceBefore, m.SourceAfter)),
			fmt.Sprintf("*Destination: %s*\n%s", esc(projectName(m.ToName, m.To)), beforeAfter(res, m.DestBefore, m.DestAfter)),
			"*Moves*\n"+formatQuantities(m.Quantities),
			fmt.Sprintf("*Project ids*\n`%s` → `%s`", esc(m.From), esc(m.To)),
		)
	default:
		r.fields = append(r.fields, projectField(ev), "*Usage*\n"+formatUsage(ev.Key.Resource, ev.Quota))
	}
	return r
}

func layoutPollFailed(ev quota.Event) rendered {
	since := ""
	if !ev.Since.IsZero() {
		since = " since " + formatTime(ev.Since)
	}
	return rendered{
		title:   fmt.Sprintf(":rotating_light: Polling account %s is failing", ev.Key.Account),
		summary: fmt.Sprintf("Polling account %s has failed%s: %s", ev.Key.Account, since, ev.Reason),
		body: fmt.Sprintf("Polling account *%s* has failed%s; its quotas are not watched and no moves are made for it.\nError: %s",
			esc(ev.Key.Account), since, esc(ev.Reason)),
		context: esc(contextLine(ev)),
	}
}

func layoutPollRecovered(ev quota.Event) rendered {
	after := ""
	if !ev.Since.IsZero() {
		after = " after " + formatDuration(ev.Time.Sub(ev.Since))
	}
	body := fmt.Sprintf("Polling account *%s* works again%s.", esc(ev.Key.Account), after)
	if ev.Reason != "" {
		body += "\nLast error: " + esc(ev.Reason)
	}
	return rendered{
		title:   fmt.Sprintf(":large_green_circle: Polling account %s recovered", ev.Key.Account),
		summary: fmt.Sprintf("Polling account %s recovered%s", ev.Key.Account, after),
		body:    body,
		context: esc(contextLine(ev)),
	}
}

func header(title string) slack.Block {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(title, maxHeaderText), true, false))
}

func section(text string, fields []string) slack.Block {
	var fs []*slack.TextBlockObject
	for i, f := range fields {
		if i == maxFields {
			break
		}
		fs = append(fs, slack.NewTextBlockObject(slack.MarkdownType, truncate(f, maxFieldText), false, false))
	}
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(text, maxSectionText), false, false), fs, nil)
}

func contextBlock(text string) slack.Block {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, truncate(text, maxContextText), false, false))
}
