package notify

import (
	"context"
	"errors"
	"fmt"
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
// is sent. The incidents of a digest go together at the place of the first
// (see sendDigest), and so do the events bound for one digest's thread
// (see sendReplies): a burst (say, the refusals of a cycle's cap after 150
// incidents opened) is a few replies, not one each. A rate limit is waited
// out (see Options.Sleep) and the same message tried again. An event that
// fails for good is set aside and the next ones are tried; any other
// failure stops delivery, and the events behind it wait with it so that
// order holds.
func (b *Bot) Notify(ctx context.Context, pending []Pending, settle Settle) {
	n := len(pending)
	done := make([]bool, n)
	events := make([]quota.Event, n)
	for i, p := range pending {
		events[i] = p.Event
	}
	// report settles the events idx (in increasing order) not yet settled.
	report := func(idx []int, o Outcome) {
		var todo []int
		for _, j := range idx {
			if !done[j] {
				done[j] = true
				todo = append(todo, j)
			}
		}
		settleEach(settle, todo, o)
	}
	rest := func(from int) []int {
		var idx []int
		for j := from; j < n; j++ {
			idx = append(idx, j)
		}
		return idx
	}
	tc := &threadCache{b: b, m: map[quota.InstanceKey]Thread{}}
	group := map[int][]int{} // first event of a digest → its events
	inGroup := make([]bool, n)
	for _, g := range b.digests(ctx, tc, pending, events) {
		group[g[0]] = g
		for _, j := range g {
			inGroup[j] = true
		}
	}
	// together sends the events idx at once, settling them as their
	// messages go; it reports whether delivery goes on.
	together := func(idx []int, send func(evs []quota.Event, sent func(ks []int)) result) bool {
		evs := make([]quota.Event, len(idx))
		for k, j := range idx {
			evs[k] = events[j]
		}
		res := send(evs, func(ks []int) {
			went := make([]int, len(ks))
			for i, k := range ks {
				went[i] = idx[k]
			}
			report(went, Outcome{})
		})
		if res.Err == nil {
			return true
		}
		if res.Permanent {
			report(idx, res.rest())
			return true
		}
		report(rest(idx[0]), res.rest())
		return false
	}
	for i, p := range pending {
		if done[i] {
			continue
		}
		if g, ok := group[i]; ok {
			if !together(g, func(evs []quota.Event, sent func([]int)) result {
				return b.sendDigest(ctx, tc, evs, p.Attempts, sent)
			}) {
				return
			}
			continue
		}
		ev := p.Event
		var th Thread
		if !isPollEvent(ev) {
			th = tc.get(ctx, ev.Key)
		}
		if !th.IsZero() && !opens(ev) && tc.isDigest(ctx, th) {
			if batch := b.sameThread(ctx, tc, events, i, th, done, inGroup); len(batch) > 1 {
				if !together(batch, func(evs []quota.Event, sent func([]int)) result {
					return b.sendReplies(ctx, tc, th, evs, "quotawatch: "+counts(evs), p.Attempts, sent)
				}) {
					return
				}
				continue
			}
		}
		res := b.send(ctx, ev, th, p.Attempts)
		for res.Delivered == 0 && b.opt.waitOut(ctx, res.Err) {
			res = b.send(ctx, ev, th, p.Attempts)
		}
		if res.Delivered > 0 {
			if res.Thread.TS != "" && res.Thread != th {
				tc.set(ctx, ev.Key, res.Thread)
			}
			report([]int{i}, Outcome{})
			continue
		}
		if res.Permanent {
			// This event can never go; the next ones may.
			report([]int{i}, res.rest())
			continue
		}
		report(rest(i), res.rest())
		return
	}
}

// opens reports whether ev opens a new incident (and so a new thread).
func opens(ev quota.Event) bool { return ev.Kind == quota.EventFiring && !ev.Repeat }

// sameThread returns event i and the later events bound for the same
// digest thread th, in order. An incident's events after one that opens
// it anew are not: they belong to its new thread.
func (b *Bot) sameThread(ctx context.Context, tc *threadCache, events []quota.Event, i int, th Thread, done, inGroup []bool) []int {
	batch := []int{i}
	reopened := map[quota.InstanceKey]bool{}
	for j := i + 1; j < len(events); j++ {
		ev := events[j]
		if done[j] || inGroup[j] || isPollEvent(ev) || reopened[ev.Key] {
			continue
		}
		if opens(ev) {
			reopened[ev.Key] = true
			continue
		}
		if tc.get(ctx, ev.Key) == th {
			batch = append(batch, j)
		}
	}
	return batch
}

// threadCache keeps, for one Notify, the threads read and written, so
// that an incident's thread is read once and a digest's threading is seen
// by the events behind it.
type threadCache struct {
	b *Bot
	m map[quota.InstanceKey]Thread
}

func (c *threadCache) get(ctx context.Context, k quota.InstanceKey) Thread {
	if th, ok := c.m[k]; ok {
		return th
	}
	th := c.b.thread(ctx, k)
	c.m[k] = th
	return th
}

func (c *threadCache) set(ctx context.Context, k quota.InstanceKey, th Thread) {
	c.m[k] = th
	c.b.setThread(ctx, k, th)
}

// isDigest reports whether th heads a digest.
func (c *threadCache) isDigest(ctx context.Context, th Thread) bool {
	return !c.get(ctx, digestMark(th)).IsZero()
}

// thread returns the incident's thread; without it (none, or the store
// failed) the event heads a new one, which is better than none.
func (b *Bot) thread(ctx context.Context, k quota.InstanceKey) Thread {
	t, ok, err := b.threads.Thread(ctx, k)
	if err != nil {
		b.opt.Logger.LogAttrs(ctx, slog.LevelError, "reading the incident thread failed",
			slog.String("notifier", b.name), slog.String("incident", k.String()), slog.String("err", err.Error()))
		return Thread{}
	}
	if !ok {
		return Thread{}
	}
	return t
}

func (b *Bot) setThread(ctx context.Context, k quota.InstanceKey, th Thread) {
	if err := b.threads.SetThread(ctx, k, th); err != nil {
		b.opt.Logger.LogAttrs(ctx, slog.LevelError, "saving the incident thread failed",
			slog.String("notifier", b.name), slog.String("incident", k.String()), slog.String("err", err.Error()))
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
	if isProposalEvent(ev) {
		return b.sendProposal(ctx, ev, th, attempts)
	}
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
	if !b.thread(ctx, digestMark(th)).IsZero() {
		// The parent is a digest of many incidents: it is never rewritten
		// for one of them; the event is a reply in the digest's thread.
		if _, err := b.post(ctx, "chat.postMessage", th, Render(ev)); err != nil {
			if code := b.classify("chat.postMessage", err).Code; code == "thread_not_found" || code == "message_not_found" {
				return b.startThread(ctx, ev, attempts)
			}
			return b.fail(ctx, res, err, attempts)
		}
		res.Delivered = 1
		return res
	}
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
	return ev.Kind == quota.EventPollFailed || ev.Kind == quota.EventPollRecovered || ev.Kind == quota.EventTokenExpiring || ev.Kind == quota.EventTakeover || ev.Key.Rule == ""
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

// A bot keeps two records of each digest among its incident threads,
// under keys no incident has (no rule is named "digest:"): that the
// parent heads a digest, so that it is never rewritten for one incident;
// and the digest's parent by what it groups, so that a retry of its
// incidents goes under the parent already posted.
const digestRule = "digest:"

func digestMark(th Thread) quota.InstanceKey {
	return quota.InstanceKey{Rule: digestRule, Account: th.Channel, Project: th.TS}
}

func digestRecord(k digestKey) quota.InstanceKey {
	return quota.InstanceKey{Rule: digestRule, Project: k.rule, Resource: k.String()}
}

// digests groups the events told as digests: those of digests (see the
// package function), and those of a digest whose parent was posted
// before, however few are left to tell (a retry, or a delivery cut short
// by a crash; a single event not tried before is told on its own).
func (b *Bot) digests(ctx context.Context, tc *threadCache, pending []Pending, events []quota.Event) [][]int {
	order, byKey := groupsByKey(events)
	var out [][]int
	for _, k := range order {
		g := byKey[k]
		switch {
		case b.opt.DigestAfter >= 0 && len(g) > b.opt.DigestAfter:
			out = append(out, g)
		case (len(g) > 1 || pending[g[0]].Attempts > 0) && !tc.get(ctx, digestRecord(k)).IsZero():
			out = append(out, g)
		}
	}
	return out
}

// sendDigest tells the incidents of one digest: a parent message that
// counts them and names the fullest, then their events as lines in its
// thread, in as few replies as the limits allow. A new incident's thread
// is the digest's, so its later events reply there; an incident with a
// thread of its own keeps it, and its parent is brought up to date. sent
// is told the positions in evs of the events of each reply as it goes;
// res describes the failure of the others.
func (b *Bot) sendDigest(ctx context.Context, tc *threadCache, evs []quota.Event, attempts int, sent func(ks []int)) result {
	first := evs[0]
	dk, _ := digestKeyOf(first)
	parent := tc.get(ctx, digestRecord(dk))
	if parent.IsZero() {
		msg := renderDigest(evs, digestOptions{statusURL: b.opt.StatusURL, threaded: true})
		th, err := b.post(ctx, "chat.postMessage", Thread{Channel: b.channel}, msg)
		for err != nil && b.opt.waitOut(ctx, err) {
			th, err = b.post(ctx, "chat.postMessage", Thread{Channel: b.channel}, msg)
		}
		if err != nil {
			return b.fail(ctx, result{}, err, attempts)
		}
		parent = th
		tc.set(ctx, digestMark(parent), parent)
		tc.set(ctx, digestRecord(dk), parent)
	}
	for _, ev := range evs {
		var own Thread
		if !opens(ev) {
			own = tc.get(ctx, ev.Key)
		}
		switch {
		case own.IsZero():
			tc.set(ctx, ev.Key, parent)
		case own == parent || tc.isDigest(ctx, own):
		default:
			b.updateParent(ctx, ev, own)
		}
	}
	title := fmt.Sprintf("%s: %d %s", first.Key.Rule, len(evs), countWord(first))
	res := b.sendReplies(ctx, tc, parent, evs, title, attempts, sent)
	if res.Err != nil && res.Delivered == 0 && threadGone(b.classify("chat.postMessage", res.Err)) {
		// The digest was deleted: the retry posts a new one.
		tc.set(ctx, digestRecord(dk), Thread{})
	}
	return res
}

// sendReplies posts the events as lines in the thread th, in as few
// replies as the limits allow; title heads each reply (with the events'
// range when there are several). sent is told the positions in evs of the
// events of each reply as it goes; res describes the failure of the
// others. If the thread is gone, the events' threads are forgotten, so
// that their retry heads threads of their own.
func (b *Bot) sendReplies(ctx context.Context, tc *threadCache, th Thread, evs []quota.Event, title string, attempts int, sent func(ks []int)) result {
	msgs := renderLines(evs, func(_, parts, from, to int) string {
		if parts == 1 && len(evs) > 1 {
			return fmt.Sprintf("%s (%d–%d)", title, from, to)
		}
		if parts == 1 {
			return title
		}
		return fmt.Sprintf("%s (%d–%d of %d)", title, from, to, len(evs))
	})
	at := 0
	for _, bm := range msgs {
		_, err := b.post(ctx, "chat.postMessage", th, bm.msg)
		for err != nil && b.opt.waitOut(ctx, err) {
			_, err = b.post(ctx, "chat.postMessage", th, bm.msg)
		}
		if err != nil {
			if threadGone(b.classify("chat.postMessage", err)) {
				for _, ev := range evs[at:] {
					if tc.get(ctx, ev.Key) == th {
						tc.set(ctx, ev.Key, Thread{})
					}
				}
			}
			return b.fail(ctx, result{Delivered: at, Thread: th}, err, attempts)
		}
		ks := make([]int, bm.events)
		for k := range ks {
			ks[k] = at + k
		}
		sent(ks)
		at += bm.events
	}
	return result{Delivered: at, Thread: th}
}

// threadGone reports whether Slack said the thread's parent is gone.
func threadGone(e *Error) bool {
	return e.Code == "thread_not_found" || e.Code == "message_not_found"
}

// updateParent brings an incident's own parent up to date, at best: the
// event is told in the digest's thread either way.
func (b *Bot) updateParent(ctx context.Context, ev quota.Event, th Thread) {
	if _, err := b.post(ctx, "chat.update", th, renderParent(ev)); err != nil {
		b.opt.Logger.LogAttrs(ctx, slog.LevelWarn, "slack parent message not updated",
			slog.String("notifier", b.name), slog.String("incident", ev.Key.String()), slog.String("err", err.Error()))
	}
}
