package notify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/quota"
)

// Bot posts with a bot token through Slack's Web API: one parent message
// per incident, later events as thread replies, and the parent edited in
// place to show the incident's current state.
type Bot struct {
	name    string
	token   string
	channel string
	api     *slack.Client
	threads Threads
	opt     Options
	limiter *rate.Limiter
}

// NewBot returns a notifier posting to channel with token. apiURL is the
// Web API base ("" means https://slack.com/api/); method names are
// appended to it, so a missing trailing slash is added. threads keeps the
// incidents' threads; nil keeps them in memory, for the life of the Bot.
func NewBot(name, token, channel, apiURL string, threads Threads, opt Options) *Bot {
	opt = opt.withDefaults()
	if apiURL == "" {
		apiURL = slack.APIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	api := slack.New(token, slack.OptionHTTPClient(opt.HTTPClient), slack.OptionAPIURL(apiURL))
	if threads == nil {
		threads = &memThreads{m: map[quota.InstanceKey]Thread{}}
	}
	return &Bot{
		name: name, token: token, channel: channel, api: api, threads: threads, opt: opt,
		limiter: rate.NewLimiter(opt.Rate, opt.Burst),
	}
}

// Name returns the notifier's name.
func (b *Bot) Name() string { return b.name }

// Check calls auth.test, so a bad token is reported at start-up rather
// than at the first incident.
func (b *Bot) Check(ctx context.Context) error {
	resp, err := b.api.AuthTestContext(ctx)
	if err != nil {
		return b.classify("auth.test", err)
	}
	b.opt.Logger.LogAttrs(ctx, slog.LevelDebug, "slack bot authenticated",
		slog.String("notifier", b.name), slog.String("team", resp.Team), slog.String("user", resp.User))
	return nil
}

// Notify delivers the events one by one, in order, each under its
// incident's thread (see send), and reports each to settle as soon as it
// is sent. A rate limit is waited out (see Options.Sleep) and the same
// event tried again. An event that fails for good is set aside and the
// next ones are tried; any other failure stops delivery, and the events
// behind it wait with it so that order holds.
func (b *Bot) Notify(ctx context.Context, pending []Pending, settle Settle) {
	for i, p := range pending {
		ev := p.Event
		var th Thread
		if !isPollEvent(ev) {
			t, ok, err := b.threads.Thread(ctx, ev.Key)
			switch {
			case err != nil:
				// Without it the event heads a new thread: better than none.
				b.opt.Logger.LogAttrs(ctx, slog.LevelError, "reading the incident thread failed",
					slog.String("notifier", b.name), slog.String("incident", ev.Key.String()), slog.String("err", err.Error()))
			case ok:
				th = t
			}
		}
		res := b.send(ctx, ev, th, p.Attempts)
		for res.Delivered == 0 && b.opt.waitOut(ctx, res.Err) {
			res = b.send(ctx, ev, th, p.Attempts)
		}
		if res.Delivered > 0 {
			if res.Thread.TS != "" && res.Thread != th {
				if err := b.threads.SetThread(ctx, ev.Key, res.Thread); err != nil {
					b.opt.Logger.LogAttrs(ctx, slog.LevelError, "saving the incident thread failed",
						slog.String("notifier", b.name), slog.String("incident", ev.Key.String()), slog.String("err", err.Error()))
				}
			}
			settle(i, i+1, Outcome{})
			continue
		}
		if res.Permanent {
			// This event can never go; the next ones may.
			settle(i, i+1, res.rest())
			continue
		}
		settle(i, len(pending), res.rest())
		return
	}
}

// send delivers one event. th is the incident's thread if there is one.
// A firing event that is not a repeat always starts a new incident (a new
// parent message), as does any event without a thread; poll events are
// plain messages outside any thread and return the zero Thread. Otherwise
// the parent is updated first (an idempotent edit, so a retry after a
// failed reply does no harm) and the event is posted as a reply. attempts
// is how many times the event was tried before.
func (b *Bot) send(ctx context.Context, ev quota.Event, th Thread, attempts int) result {
	if isPollEvent(ev) {
		res := result{}
		if _, err := b.post(ctx, "chat.postMessage", Thread{Channel: b.channel}, Render(ev)); err != nil {
			return b.fail(ctx, res, err, attempts)
		}
		res.Delivered = 1
		return res
	}
	if th.IsZero() || (ev.Kind == quota.EventFiring && !ev.Repeat) {
		return b.startThread(ctx, ev, attempts)
	}
	res := result{Thread: th}
	if _, err := b.post(ctx, "chat.update", th, renderParent(ev)); err != nil {
		code := b.classify("chat.update", err).Code
		switch code {
		case "message_not_found", "thread_not_found":
			// The parent was deleted: this event heads a new thread.
			b.opt.Logger.LogAttrs(ctx, slog.LevelInfo, "slack parent message gone; starting a new thread",
				slog.String("notifier", b.name), slog.String("incident", ev.Key.String()))
			return b.startThread(ctx, ev, attempts)
		case "cant_update_message", "edit_window_closed":
			// The parent cannot be edited any more; the thread still tells
			// the story.
			b.opt.Logger.LogAttrs(ctx, slog.LevelWarn, "slack parent message not updated",
				slog.String("notifier", b.name), slog.String("incident", ev.Key.String()), slog.String("code", code))
		default:
			return b.fail(ctx, res, err, attempts)
		}
	}
	if _, err := b.post(ctx, "chat.postMessage", th, Render(ev)); err != nil {
		return b.fail(ctx, res, err, attempts)
	}
	res.Delivered = 1
	return res
}

func (b *Bot) startThread(ctx context.Context, ev quota.Event, attempts int) result {
	th, err := b.post(ctx, "chat.postMessage", Thread{Channel: b.channel}, renderParent(ev))
	if err != nil {
		return b.fail(ctx, result{}, err, attempts)
	}
	return result{Delivered: 1, Thread: th}
}

// post paces and sends one message: for "chat.update" an edit of the
// message at, else a post to at.Channel, in the thread of at.TS if set.
func (b *Bot) post(ctx context.Context, op string, at Thread, m Message) (Thread, error) {
	if e := pace(ctx, b.limiter, b.name); e != nil {
		return Thread{}, e
	}
	m = scrubMessage(m, b.token)
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	var (
		ch, ts string
		err    error
	)
	switch {
	case op == "chat.update":
		ch, ts, _, err = b.api.UpdateMessageContext(ctx, at.Channel, at.TS, opts...)
	case at.TS != "":
		ch, ts, err = b.api.PostMessageContext(ctx, at.Channel, append(opts, slack.MsgOptionTS(at.TS))...)
	default:
		ch, ts, err = b.api.PostMessageContext(ctx, at.Channel, opts...)
	}
	if err != nil {
		return Thread{}, b.classify(op, err)
	}
	b.opt.Logger.LogAttrs(ctx, slog.LevelDebug, "slack message sent",
		slog.String("notifier", b.name), slog.String("op", op), slog.String("channel", ch), slog.String("ts", ts))
	return Thread{Channel: ch, TS: ts}, nil
}

func (b *Bot) classify(op string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return classify(b.name, op, err, b.token)
}

func (b *Bot) fail(ctx context.Context, res result, err error, attempts int) result {
	e := b.classify("chat.postMessage", err)
	if errors.Is(e, ErrPaced) {
		return paced(res, e, b.opt.Now())
	}
	logFailure(ctx, b.opt.Logger, e, res.Delivered, 1-res.Delivered)
	return b.opt.failed(res, e, attempts)
}

func isPollEvent(ev quota.Event) bool {
	return ev.Kind == quota.EventPollFailed || ev.Kind == quota.EventPollRecovered || ev.Key.Rule == ""
}

// memThreads keeps threads in memory when no Threads is given.
type memThreads struct {
	mu sync.Mutex
	m  map[quota.InstanceKey]Thread
}

func (t *memThreads) Thread(_ context.Context, k quota.InstanceKey) (Thread, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	th, ok := t.m[k]
	return th, ok, nil
}

func (t *memThreads) SetThread(_ context.Context, k quota.InstanceKey, th Thread) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[k] = th
	return nil
}
