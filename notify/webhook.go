package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/quota"
)

// Webhook posts to a Slack incoming webhook: one message per cycle with
// every due event, one line each, split where Block Kit's limits demand
// it, and a digest instead of lines for the incidents of a rule that open
// or resolve in numbers.
//
// It posts with a small stdlib poster instead of
// slack.PostWebhookCustomHTTPContext because slack-go discards the
// response body of a failed webhook post, and that body is Slack's only
// statement of the reason (no_service, invalid_payload,
// channel_is_archived, ...) an operator needs to fix a dead webhook.
type Webhook struct {
	name    string
	url     string
	opt     Options
	limiter *rate.Limiter
}

// NewWebhook returns a notifier posting to the incoming webhook url.
func NewWebhook(name, url string, opt Options) *Webhook {
	opt = opt.withDefaults()
	return &Webhook{name: name, url: url, opt: opt, limiter: rate.NewLimiter(opt.Rate, opt.Burst)}
}

// Name returns the notifier's name.
func (w *Webhook) Name() string { return w.name }

// Notify delivers the events as one message (or several when the limits
// are reached), with a digest for each rule whose incidents opened or
// resolved in numbers in one cycle, and reports each message's events to
// settle as soon as it is sent. Messages go in the order of their first
// event. A rate limit is waited out (see Options.Sleep) and the same
// message tried again. Any other failure takes the messages behind it
// along: they were not tried, and wait with it so that order holds.
func (w *Webhook) Notify(ctx context.Context, pending []Pending, settle Settle) {
	if len(pending) == 0 {
		return
	}
	events := make([]quota.Event, len(pending))
	for i, p := range pending {
		events[i] = p.Event
	}
	// The batch goes or waits as one, so the first event's attempts set the
	// backoff of all.
	w.send(ctx, events, pending[0].Attempts, settle)
}

// webhookMessage is one message to post and the events it carries.
type webhookMessage struct {
	msg    Message
	events []int
}

// messages lays out events: a digest per group of incidents told
// together, and lines for the others, each message placed at its first
// event.
func (w *Webhook) messages(events []quota.Event) []webhookMessage {
	var out []webhookMessage
	inDigest := make([]bool, len(events))
	for _, g := range digests(events, w.opt.DigestAfter) {
		evs := make([]quota.Event, len(g))
		for i, j := range g {
			evs[i] = events[j]
			inDigest[j] = true
		}
		out = append(out, webhookMessage{msg: renderDigest(evs, digestOptions{statusURL: w.opt.StatusURL}), events: g})
	}
	var rest []quota.Event
	var idx []int
	for i, ev := range events {
		if !inDigest[i] {
			rest = append(rest, ev)
			idx = append(idx, i)
		}
	}
	at := 0
	for _, bm := range renderBatch(rest) {
		out = append(out, webhookMessage{msg: bm.msg, events: idx[at : at+bm.events]})
		at += bm.events
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].events[0] < out[j].events[0] })
	return out
}

// send delivers events as Notify does, reporting to settle (which may be
// nil); Delivered counts the events that went. attempts is how many times
// the first event was tried before.
func (w *Webhook) send(ctx context.Context, events []quota.Event, attempts int, settle Settle) result {
	if settle == nil {
		settle = func(int, int, Outcome) {}
	}
	var res result
	sent := make([]bool, len(events))
	for _, m := range w.messages(events) {
		e := w.sendOne(ctx, m.msg)
		for e != nil && w.opt.waitOut(ctx, e) {
			e = w.sendOne(ctx, m.msg)
		}
		if e != nil {
			if errors.Is(e, ErrPaced) {
				res = paced(res, e, w.opt.Now())
			} else {
				logFailure(ctx, w.opt.Logger, e, res.Delivered, len(events)-res.Delivered)
				res = w.opt.failed(res, e, attempts)
			}
			var unsent []int
			for i, ok := range sent {
				if !ok {
					unsent = append(unsent, i)
				}
			}
			settleEach(settle, unsent, res.rest())
			return res
		}
		for _, i := range m.events {
			sent[i] = true
		}
		settleEach(settle, m.events, Outcome{})
		res.Delivered += len(m.events)
		w.opt.Logger.LogAttrs(ctx, slog.LevelDebug, "slack webhook message sent",
			slog.String("notifier", w.name), slog.Int("events", len(m.events)))
	}
	return res
}

// settleEach reports o for the events idx (in increasing order), a run of
// consecutive ones at a time.
func settleEach(settle Settle, idx []int, o Outcome) {
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[j-1]+1 {
			j++
		}
		settle(idx[i], idx[j-1]+1, o)
		i = j
	}
}

// sendOne paces and posts one message.
func (w *Webhook) sendOne(ctx context.Context, m Message) *Error {
	if e := pace(ctx, w.limiter, w.name); e != nil {
		return e
	}
	if err := w.post(ctx, m); err != nil {
		return classify(w.name, "webhook", err, w.url)
	}
	return nil
}

// webhookBodyLimit bounds how much of an error answer is kept: Slack's
// reasons are short words.
const webhookBodyLimit = 256

// httpError is a non-2xx answer of the webhook.
type httpError struct {
	status     int
	body       string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func (w *Webhook) post(ctx context.Context, m Message) error {
	m = scrubMessage(m, w.url)
	payload := slack.WebhookMessage{Text: m.Text}
	if len(m.Blocks) > 0 {
		payload.Blocks = &slack.Blocks{BlockSet: m.Blocks}
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(raw))
	if err != nil {
		// NewRequest errors quote the URL: never pass them on.
		return fmt.Errorf("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.opt.HTTPClient.Do(req)
	if err != nil {
		return err // *url.Error: redacted by classify
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, webhookBodyLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // reuse the connection
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return &httpError{
		status:     resp.StatusCode,
		body:       slackCode(body),
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), w.opt.Now()),
	}
}

// slackCode returns a webhook's error answer if it is one of Slack's
// reason codes (no_service, invalid_payload, ...); other bodies, such as
// the HTML of a proxy error page, say nothing useful.
func slackCode(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return ""
		}
	}
	return s
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// paced is the result when the context ends while pacing: the rest is due
// again at once, not after a backoff.
func paced(r result, e *Error, now time.Time) result {
	r.Err = e
	r.RetryAt = now
	return r
}
