package notify

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/quotawatch/quotawatch/quota"
)

// batchMessage is one message of a batch and how many events it carries.
type batchMessage struct {
	msg    Message
	events int
}

// RenderBatch lays out a cycle's events for a webhook: one message, or
// several when Block Kit's limits (50 blocks, 3000 characters of text) are
// reached. A single event gets the same message as Render.
func RenderBatch(events []quota.Event) []Message {
	bms := renderBatch(events)
	out := make([]Message, len(bms))
	for i, bm := range bms {
		out[i] = bm.msg
	}
	return out
}

func renderBatch(events []quota.Event) []batchMessage {
	switch len(events) {
	case 0:
		return nil
	case 1:
		return []batchMessage{{msg: Render(events[0]), events: 1}}
	}
	type part struct {
		blocks []slack.Block
		lines  []string
		chars  int
	}
	// Room for the header block, and for its text line.
	const headerBlocks, headerChars = 1, 80
	var parts []part
	cur := part{chars: headerChars}
	for _, ev := range events {
		r := layout(ev)
		bs := eventBlocks(r)
		line := "• " + r.summary
		if len(cur.lines) > 0 && (headerBlocks+len(cur.blocks)+1+len(bs) > maxBlocks || cur.chars+len(line)+1 > maxMessageText) {
			parts = append(parts, cur)
			cur = part{chars: headerChars}
		}
		if len(cur.lines) > 0 {
			cur.blocks = append(cur.blocks, slack.NewDividerBlock())
		}
		cur.blocks = append(cur.blocks, bs...)
		cur.lines = append(cur.lines, truncate(line, maxMessageText-headerChars))
		cur.chars += len(line) + 1
	}
	parts = append(parts, cur)

	out := make([]batchMessage, len(parts))
	for i, p := range parts {
		title := fmt.Sprintf("quotawatch: %d events", len(events))
		if len(parts) > 1 {
			title += fmt.Sprintf(" (part %d of %d)", i+1, len(parts))
		}
		out[i] = batchMessage{
			msg: Message{
				Text:   title + "\n" + strings.Join(p.lines, "\n"),
				Blocks: append([]slack.Block{header(title)}, p.blocks...),
			},
			events: len(p.lines),
		}
	}
	return out
}

// eventBlocks lays out one event inside a batch: its title in bold over
// its text, the fields, and the context line.
func eventBlocks(r rendered) []slack.Block {
	return []slack.Block{
		section("*"+esc(r.title)+"*\n"+r.body, r.fields),
		contextBlock(r.context),
	}
}
