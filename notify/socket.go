package notify

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/quotawatch/quotawatch/quota"
)

// The Approve and Reject buttons of a proposal carry these action ids and
// the proposal's journal id as their value.
const (
	ActionApprove = "quotawatch_approve"
	ActionReject  = "quotawatch_reject"
)

// proposalRule marks, among a bot's threads, the message of a proposal
// (no rule is named "proposal:"), so that its decision updates it in place.
const proposalRule = "proposal:"

func proposalMark(id uint64) quota.InstanceKey {
	return quota.InstanceKey{Rule: proposalRule, Project: strconv.FormatUint(id, 10)}
}

// isProposalEvent reports whether ev is about a proposal: made, decided,
// or the outcome of an approved one.
func isProposalEvent(ev quota.Event) bool {
	return ev.Kind == quota.EventAction && ev.Move != nil && ev.Move.ProposalID != 0 && ev.Move.UndoOf == 0
}

// proposalButtons is the actions block of a waiting proposal.
func proposalButtons(id uint64) slack.Block {
	v := strconv.FormatUint(id, 10)
	approve := slack.NewButtonBlockElement(ActionApprove, v, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
	approve.Style = slack.StylePrimary
	reject := slack.NewButtonBlockElement(ActionReject, v, slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false))
	reject.Style = slack.StyleDanger
	return slack.NewActionBlock("proposal-"+v, approve, reject)
}

// sendProposal delivers an event of a proposal: the proposal itself as a
// message with Approve and Reject buttons (in the incident's thread if it
// has one); a decision as a reply under it, and, unless it was refused, an
// edit of the proposal's message that removes the buttons and shows the
// outcome.
func (b *Bot) sendProposal(ctx context.Context, ev quota.Event, th Thread, attempts int) result {
	id := ev.Move.ProposalID
	if ev.Result == quota.ResultProposed {
		m := Render(ev)
		m.Blocks = append(m.Blocks, proposalButtons(id))
		at := th
		if at.IsZero() {
			at = Thread{Channel: b.channel}
		}
		msg, err := b.post(ctx, "chat.postMessage", at, m)
		if err != nil {
			return b.fail(ctx, result{Thread: th}, err, attempts)
		}
		b.setThread(ctx, proposalMark(id), msg)
		if th.IsZero() {
			// The proposal heads the thread its decision goes in.
			th = msg
		}
		return result{Delivered: 1, Thread: th}
	}
	msg := b.thread(ctx, proposalMark(id))
	if !msg.IsZero() && ev.Result != quota.ResultRefused {
		if _, err := b.post(ctx, "chat.update", msg, Render(ev)); err != nil {
			b.opt.Logger.LogAttrs(ctx, slog.LevelWarn, "slack proposal message not updated",
				slog.String("notifier", b.name), slog.Uint64("proposal", id), slog.String("err", err.Error()))
		}
	}
	at := th
	if at.IsZero() {
		at = msg
	}
	if at.IsZero() {
		at = Thread{Channel: b.channel}
	}
	if _, err := b.post(ctx, "chat.postMessage", at, Render(ev)); err != nil {
		return b.fail(ctx, result{Thread: th}, err, attempts)
	}
	return result{Delivered: 1, Thread: th}
}

// Press is a button of a proposal pressed in Slack.
type Press struct {
	// Approve is true for Approve, false for Reject.
	Approve bool
	// ID is the proposal's journal id.
	ID uint64
	// User is the Slack user id of who pressed it.
	User string
}

// SocketMode receives the presses of proposal buttons through Slack's
// Socket Mode: the daemon opens the connection (with the app-level token),
// so no inbound port is needed.
type SocketMode struct {
	name   string
	client *socketmode.Client
	log    *slog.Logger
}

// NewSocketMode returns a Socket Mode listener for the notifier's app.
// apiURL is the Web API base, as for NewBot.
func NewSocketMode(name, appToken, botToken, apiURL string, httpc *http.Client, log *slog.Logger) *SocketMode {
	if apiURL == "" {
		apiURL = slack.APIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	if httpc == nil {
		httpc = http.DefaultClient
	}
	api := slack.New(botToken, slack.OptionAppLevelToken(appToken), slack.OptionAPIURL(apiURL), slack.OptionHTTPClient(httpc))
	return &SocketMode{name: name, client: socketmode.New(api), log: log}
}

// Run connects and calls press for every button of a proposal pressed,
// after acknowledging its envelope (Slack wants that within 3 seconds; a
// decision may take longer), until ctx ends. The client reconnects by
// itself.
func (s *SocketMode) Run(ctx context.Context, press func(context.Context, Press)) error {
	errc := make(chan error, 1)
	go func() { errc <- s.client.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		case evt, ok := <-s.client.Events:
			if !ok {
				return <-errc
			}
			s.handle(ctx, evt, press)
		}
	}
}

func (s *SocketMode) handle(ctx context.Context, evt socketmode.Event, press func(context.Context, Press)) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		s.log.LogAttrs(ctx, slog.LevelInfo, "slack socket mode connected", slog.String("notifier", s.name))
		return
	case socketmode.EventTypeInteractive:
	default:
		return
	}
	cb, ok := evt.Data.(slack.InteractionCallback)
	if evt.Request != nil {
		if err := s.client.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "slack socket mode: acknowledging failed",
				slog.String("notifier", s.name), slog.String("err", err.Error()))
		}
	}
	if !ok || cb.Type != slack.InteractionTypeBlockActions {
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID != ActionApprove && a.ActionID != ActionReject {
			continue
		}
		id, err := strconv.ParseUint(a.Value, 10, 64)
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "slack socket mode: bad proposal id", slog.String("value", a.Value))
			continue
		}
		press(ctx, Press{Approve: a.ActionID == ActionApprove, ID: id, User: cb.User.ID})
	}
}
