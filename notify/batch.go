package notify

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/quotawatch/quotawatch/quota"
)

// DefaultDigestAfter is how many incidents of one rule may open (or fire
// on, or resolve) in one cycle and still be told one by one; more become
// one digest.
const DefaultDigestAfter = 5

// digestTop is how many incidents a digest names in full: the fullest.
const digestTop = 10

// batchMessage is one message of a batch and how many events it carries.
type batchMessage struct {
	msg    Message
	events int
}

// RenderBatch lays out events for a webhook as one line each, under a
// header that counts them by what happened: one message, or several when
// Block Kit's limits (50 blocks, 3000 characters a section) or the length
// a message is read at are reached.
func RenderBatch(events []quota.Event) []Message {
	bms := renderBatch(events)
	out := make([]Message, len(bms))
	for i, bm := range bms {
		out[i] = bm.msg
	}
	return out
}

func renderBatch(events []quota.Event) []batchMessage {
	title := "quotawatch: " + counts(events)
	return renderLines(events, func(part, parts, _, _ int) string {
		if parts > 1 {
			return fmt.Sprintf("%s (part %d of %d)", title, part, parts)
		}
		return title
	})
}

// renderLines packs one line per event into messages, in order. title
// names a message: its part number, of how many, and the events it
// carries (from, to: 1-based, inclusive).
func renderLines(events []quota.Event, title func(part, parts, from, to int) string) []batchMessage {
	if len(events) == 0 {
		return nil
	}
	type part struct {
		sections []string
		cur      strings.Builder
		text     []string // fallback lines
		chars    int      // of blocks and of the fallback, the larger
		first, n int
	}
	// Room for the header and context blocks and their text.
	const fixedBlocks, fixedChars = 2, 300
	var parts []*part
	p := &part{chars: fixedChars}
	flush := func() {
		if p.cur.Len() > 0 {
			p.sections = append(p.sections, p.cur.String())
			p.cur.Reset()
		}
	}
	further := furtherSkips(events)
	for i, ev := range events {
		r := layout(ev)
		if further[i] {
			r = layoutFurtherSkip(ev)
		}
		line := truncate(r.line, maxSectionText)
		summary := truncate(r.summary, maxMessageText/4)
		grow := max(len(line), len(summary)) + 1
		newSection := p.cur.Len() > 0 && utf8.RuneCountInString(p.cur.String())+1+utf8.RuneCountInString(line) > maxSectionText
		blocks := len(p.sections) + 1 // the open section
		if newSection {
			blocks++
		}
		if p.n > 0 && (p.chars+grow > maxMessageText || fixedBlocks+blocks > maxBlocks) {
			flush()
			parts = append(parts, p)
			p = &part{chars: fixedChars, first: i}
			newSection = false
		}
		if newSection {
			flush()
		}
		if p.cur.Len() > 0 {
			p.cur.WriteByte('\n')
		}
		p.cur.WriteString(line)
		p.text = append(p.text, summary)
		p.chars += grow
		p.n++
	}
	flush()
	parts = append(parts, p)

	out := make([]batchMessage, len(parts))
	for i, p := range parts {
		evs := events[p.first : p.first+p.n]
		t := title(i+1, len(parts), p.first+1, p.first+p.n)
		blocks := []slack.Block{header(t)}
		for _, s := range p.sections {
			blocks = append(blocks, section(s))
		}
		blocks = append(blocks, contextBlock(batchContext(evs)))
		out[i] = batchMessage{
			msg:    Message{Text: truncate(t+"\n"+strings.Join(p.text, "\n"), maxMessageText), Blocks: blocks},
			events: p.n,
		}
	}
	return out
}

// batchContext says where the events of a message come from and when.
func batchContext(evs []quota.Event) string {
	var accts []string
	last := evs[0].Time
	for _, ev := range evs {
		if !slices.Contains(accts, ev.Key.Account) {
			accts = append(accts, ev.Key.Account)
		}
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	sort.Strings(accts)
	word := "account"
	if len(accts) > 1 {
		word = "accounts"
	}
	return "quotawatch · " + word + " " + esc(strings.Join(accts, ", ")) + " · " + slackDate(last)
}

// countOrder is the order of the counts in a header: what needs people
// first.
var countOrder = []string{"firing", "still firing", "move failed", "moved", "would move", "move skipped",
	"resolved", "poll failing", "poll recovered"}

// counts renders "2 firing, 1 moved, 1 resolved".
func counts(events []quota.Event) string {
	n := map[string]int{}
	for _, ev := range events {
		n[countWord(ev)]++
	}
	var parts []string
	for _, w := range countOrder {
		if n[w] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[w], w))
			delete(n, w)
		}
	}
	rest := make([]string, 0, len(n))
	for w := range n {
		rest = append(rest, w)
	}
	sort.Strings(rest)
	for _, w := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", n[w], w))
	}
	return strings.Join(parts, ", ")
}

func countWord(ev quota.Event) string {
	switch ev.Kind {
	case quota.EventFiring:
		if ev.Repeat {
			return "still firing"
		}
		return "firing"
	case quota.EventResolved:
		return "resolved"
	case quota.EventPollFailed:
		return "poll failing"
	case quota.EventPollRecovered:
		return "poll recovered"
	case quota.EventTakeover:
		return "leader changed"
	case quota.EventTokenExpiring:
		return "token expiring"
	case quota.EventAction:
		if ev.Move != nil && ev.Move.Kind == quota.KindLimit {
			return raiseWord(ev)
		}
		switch {
		case ev.Result == quota.ResultApplied && ev.DryRun:
			return "would move"
		case ev.Result == quota.ResultApplied:
			return "moved"
		case ev.Result == quota.ResultFailed:
			return "move failed"
		}
		if w, ok := decisionCount(ev); ok {
			return w
		}
		return "move skipped"
	}
	return string(ev.Kind)
}

// digestKey is what the incidents of one digest share: the rule, what
// happened to them, and the cycle (its time).
type digestKey struct {
	rule   string
	kind   quota.EventKind
	repeat bool
	at     int64
}

func digestKeyOf(ev quota.Event) (digestKey, bool) {
	if ev.Key.Rule == "" || (ev.Kind != quota.EventFiring && ev.Kind != quota.EventResolved) {
		return digestKey{}, false
	}
	return digestKey{rule: ev.Key.Rule, kind: ev.Kind, repeat: ev.Repeat, at: ev.Time.UnixNano()}, true
}

// String names the digest, for its record among a bot's threads.
func (k digestKey) String() string {
	kind := string(k.kind)
	if k.repeat {
		kind = "repeat"
	}
	return fmt.Sprintf("%s@%d", kind, k.at)
}

// digests returns the groups of events that are told as digests: more
// than after incidents of one rule that open, fire on, or resolve in one
// cycle. Each group holds indices into events, in order; groups are in
// the order of their first event. A negative after groups nothing.
func digests(events []quota.Event, after int) [][]int {
	if after < 0 {
		return nil
	}
	order, byKey := groupsByKey(events)
	var out [][]int
	for _, k := range order {
		if g := byKey[k]; len(g) > after {
			out = append(out, g)
		}
	}
	return out
}

// groupsByKey groups the events that may make digests by what they share,
// in the order of each group's first event.
func groupsByKey(events []quota.Event) ([]digestKey, map[digestKey][]int) {
	byKey := map[digestKey][]int{}
	var order []digestKey
	for i, ev := range events {
		k, ok := digestKeyOf(ev)
		if !ok {
			continue
		}
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	return order, byKey
}

// digestOptions says where a digest goes.
type digestOptions struct {
	// statusURL is the status page's address, "" when unknown.
	statusURL string
	// threaded: the incidents follow in the digest's thread (bot), so the
	// digest need not name them all.
	threaded bool
}

// renderDigest lays out one digest: how many incidents of the rule, on
// what, the fullest ones in full, and where the others are (the digest
// itself for a webhook, the thread for a bot, the status page).
func renderDigest(evs []quota.Event, o digestOptions) Message {
	first := evs[0]
	n := len(evs)
	word, verb := "firing", "opened"
	switch {
	case first.Kind == quota.EventResolved:
		word, verb = "resolved", "resolved"
	case first.Repeat:
		word, verb = "still firing", "are still open"
	}
	emoji := severityEmoji(first.Severity)
	if first.Kind == quota.EventResolved {
		emoji = ":white_check_mark:"
	}
	var resources, accounts []string
	projects := map[string]bool{}
	for _, ev := range evs {
		if !slices.Contains(resources, ev.Key.Resource) {
			resources = append(resources, ev.Key.Resource)
		}
		if !slices.Contains(accounts, ev.Key.Account) {
			accounts = append(accounts, ev.Key.Account)
		}
		projects[ev.Key.Project] = true
	}
	sort.Strings(resources)
	sort.Strings(accounts)

	fullest := slices.Clone(evs)
	slices.SortStableFunc(fullest, func(a, b quota.Event) int {
		return cmp.Or(cmp.Compare(b.Quota.Ratio(), a.Quota.Ratio()), cmp.Compare(project(a), project(b)))
	})

	sev := ""
	if first.Severity != "" {
		sev = " (" + string(first.Severity) + ")"
	}
	title := fmt.Sprintf("%s %d %s: %s", emoji, n, word, first.Key.Rule)
	intro := fmt.Sprintf("*%d incidents* of rule *%s*%s %s %s: %s in %d projects, account %s.",
		n, esc(first.Key.Rule), sev, verb, slackDate(first.Time), esc(strings.Join(resources, ", ")), len(projects), esc(strings.Join(accounts, ", ")))
	if len(accounts) > 1 {
		intro = strings.Replace(intro, ", account ", ", accounts ", 1)
	}
	intro += describe(first)

	top := fullest[:min(digestTop, n)]
	lines := []string{"*Fullest*"}
	if first.Kind == quota.EventResolved {
		lines[0] = "*Fullest now*"
	}
	for _, ev := range top {
		id := ""
		if ev.ProjectName != "" && ev.ProjectName != ev.Key.Project {
			id = " `" + esc(ev.Key.Project) + "`"
		}
		lines = append(lines, fmt.Sprintf("• *%s*%s · %s %s", esc(project(ev)), id, esc(ev.Key.Resource), formatUsage(ev.Key.Resource, ev.Quota)))
	}
	blocks := []slack.Block{header(title), section(intro), section(strings.Join(lines, "\n"))}

	where := fmt.Sprintf("`quotawatch status --rule %s` lists them all", esc(first.Key.Rule))
	if o.threaded {
		where = "Each incident is in the thread"
	}
	if o.statusURL != "" {
		where += fmt.Sprintf(" · all %d on the <%s/|status page>", n, o.statusURL)
	}
	if rest := fullest[len(top):]; len(rest) > 0 && !o.threaded {
		// A webhook has no thread: the digest names every incident.
		blocks = append(blocks, restSections(rest, maxBlocks-len(blocks)-1)...)
	}
	blocks = append(blocks, contextBlock(where+" · quotawatch · "+slackDate(first.Time)))

	text := fmt.Sprintf("[%s] %d %s: %s (%s); fullest: ", strings.ToUpper(cmp.Or(string(first.Severity), "alert")), n, word,
		first.Key.Rule, strings.Join(resources, ", "))
	if first.Kind == quota.EventResolved {
		text = fmt.Sprintf("[RESOLVED] %d resolved: %s (%s); fullest now: ", n, first.Key.Rule, strings.Join(resources, ", "))
	}
	names := make([]string, len(top))
	for i, ev := range top {
		names[i] = project(ev) + " " + quota.FormatPercent(ev.Quota.Ratio())
	}
	return Message{Text: truncate(text+strings.Join(names, ", "), maxMessageText), Blocks: blocks}
}

// restSections names the incidents a digest does not show in full, by
// project, in at most room sections; what does not fit is counted.
func restSections(rest []quota.Event, room int) []slack.Block {
	if room <= 0 {
		return nil
	}
	var blocks []slack.Block
	var cur strings.Builder
	cur.WriteString(fmt.Sprintf("*The other %d:* ", len(rest)))
	start := cur.Len()
	for i, ev := range rest {
		name := esc(project(ev))
		if len(rest) > 1 && len(uniqueResources(rest)) > 1 {
			name += " (" + esc(ev.Key.Resource) + ")"
		}
		sep := ", "
		if cur.Len() == start {
			sep = ""
		}
		more := fmt.Sprintf(" … and %d more", len(rest)-i)
		if utf8.RuneCountInString(cur.String())+len(sep)+utf8.RuneCountInString(name)+len(more) > maxSectionText {
			if len(blocks)+1 == room {
				cur.WriteString(more)
				break
			}
			blocks = append(blocks, section(cur.String()))
			cur.Reset()
			start, sep = 0, ""
		}
		cur.WriteString(sep + name)
	}
	return append(blocks, section(cur.String()))
}

func uniqueResources(evs []quota.Event) []string {
	var rs []string
	for _, ev := range evs {
		if !slices.Contains(rs, ev.Key.Resource) {
			rs = append(rs, ev.Key.Resource)
		}
	}
	return rs
}
