package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/internal/backoff"
	"github.com/quotawatch/quotawatch/quota"
)

// Defaults applied by NewWebhook and NewBot to a zero Options.
const (
	DefaultTimeout = 10 * time.Second
	DefaultRate    = rate.Limit(1)
	DefaultBurst   = 1
)

// Without a Retry-After, a failed message waits 5s, doubling per previous
// attempt up to a minute: an alert is never held back long by a short
// outage (Alertmanager caps its retries at a minute too).
const (
	DefaultRetryBase = 5 * time.Second
	DefaultRetryMax  = time.Minute
)

// Options configures a notifier. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests. Nil means a client of the notifier's
	// own with Timeout; a given client without a timeout is copied and
	// given Timeout.
	HTTPClient *http.Client
	// Timeout of the notifier's own client; default 10s.
	Timeout time.Duration
	// Rate is how many messages per second the notifier sends toward Slack
	// (default 1, Slack's posting limit per channel); Burst is the limiter's
	// bucket size (default 1).
	Rate  rate.Limit
	Burst int
	// Now is the clock used for RetryAt; default time.Now.
	Now func() time.Time
	// RetryBase and RetryMax set the backoff of a failed message that
	// Slack gave no Retry-After: RetryBase doubling per previous attempt,
	// capped at RetryMax (defaults DefaultRetryBase and DefaultRetryMax).
	RetryBase, RetryMax time.Duration
	// Sleep waits d, or until ctx ends and then returns its error; a 429
	// is waited out with it. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives delivery logs; default discards.
	Logger *slog.Logger
	// DigestAfter is how many incidents of one rule may open, fire on or
	// resolve in one cycle and still be told one by one; more become one
	// digest. Zero means DefaultDigestAfter, a negative value never.
	DigestAfter int
	// StatusURL is the status page's address, for links; "" for none.
	StatusURL string
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.HTTPClient == nil:
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	case o.HTTPClient.Timeout == 0:
		// A client without a timeout could hang a cycle on a stuck
		// connection: use a copy with ours.
		c := *o.HTTPClient
		c.Timeout = o.Timeout
		o.HTTPClient = &c
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = max(DefaultRetryMax, o.RetryBase)
	}
	if o.Sleep == nil {
		o.Sleep = backoff.Sleep
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DigestAfter == 0 {
		o.DigestAfter = DefaultDigestAfter
	}
	o.StatusURL = strings.TrimSuffix(o.StatusURL, "/")
	return o
}

// Thread identifies a bot message that heads an incident's thread. The zero
// Thread means "no thread".
type Thread struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// IsZero reports whether t names no message.
func (t Thread) IsZero() bool { return t.Channel == "" || t.TS == "" }

// Threads keeps, for one bot notifier, the message that heads each
// incident's thread, so that later events of the incident reply under it
// across restarts. The daemon backs it with its store.
type Threads interface {
	// Thread returns the incident's thread; ok is false if it has none.
	Thread(ctx context.Context, incident quota.InstanceKey) (th Thread, ok bool, err error)
	// SetThread records the incident's thread.
	SetThread(ctx context.Context, incident quota.InstanceKey, th Thread) error
}

// Pending is an event waiting to be delivered.
type Pending struct {
	Event quota.Event
	// Attempts is how many times the event was tried before.
	Attempts int
}

// Outcome is what became of one event handed to Notify.
type Outcome struct {
	// Err is nil if the event was delivered. Its text never contains the
	// webhook URL or the token. errors.Is(Err, ErrPaced) reports that the
	// event was not tried at all.
	Err error
	// Permanent reports that Err will not go away by retrying
	// (invalid_auth, channel_not_found, a 4xx other than 429, ...): the
	// event should be set aside.
	Permanent bool
	// RetryAt is when to try the event again, if it failed and not for
	// good: Slack's Retry-After if it gave one, else after the backoff
	// (Options.RetryBase); now if it was not tried (ErrPaced).
	RetryAt time.Time
}

// Delivered reports whether the event was delivered.
func (o Outcome) Delivered() bool { return o.Err == nil }

// Settle receives what became of the events pending[from:to] of a Notify
// call, which share the outcome o. Notify reports every event once, as
// soon as its fate is known: a delivered event is reported before the next
// message is tried, so that a crash never sends it twice. Events go, and
// are reported, in order, except that those told together (a digest, the
// replies under one) go at the place of the first of them.
type Settle func(from, to int, o Outcome)

// ErrPaced marks events that were not tried because the context ended
// while they waited for the notifier's own pace toward Slack. Nothing
// reached Slack, so no attempt should be counted: they are due again at
// once, in order.
var ErrPaced = errors.New("not sent: the context ended while pacing")

// result is the outcome of one try at delivering events in order.
type result struct {
	// Delivered is how many events were delivered, counted from the first,
	// in order. The others were not delivered at all.
	Delivered int
	// Thread is the incident's thread after this call (bot mode only).
	Thread Thread
	// Err, Permanent and RetryAt describe the undelivered rest, as in
	// Outcome.
	Err       error
	Permanent bool
	RetryAt   time.Time
}

// rest is the outcome of the events r did not deliver.
func (r result) rest() Outcome {
	o := Outcome{Err: r.Err, Permanent: r.Permanent, RetryAt: r.RetryAt}
	if o.Err == nil {
		o.Err = errNotDelivered
	}
	return o
}

// errNotDelivered stands in for a missing error, so that an undelivered
// event never looks delivered.
var errNotDelivered = errors.New("not delivered")

// Backoff is the default wait before the next attempt of a message
// already tried attempts times without a Retry-After: 5s doubling per
// previous attempt, capped at a minute.
func Backoff(attempts int) time.Duration {
	return backoff.Exp(DefaultRetryBase, DefaultRetryMax, attempts)
}

// backoff is Backoff with o's base and cap.
func (o Options) backoff(attempts int) time.Duration {
	return backoff.Exp(o.RetryBase, o.RetryMax, attempts)
}

// Error is a failed delivery. Its text is built only from redacted parts,
// so it can be logged as is.
type Error struct {
	// Notifier is the notifier's name.
	Notifier string
	// Op is what failed: "webhook", "chat.postMessage", "chat.update",
	// "auth.test" or "pace".
	Op string
	// Status is the HTTP status Slack answered, 0 if none.
	Status int
	// Code is Slack's error code (ok:false "error", or a webhook's text
	// answer such as "no_service"), if any.
	Code string
	// RetryAfter is Slack's Retry-After, 0 if none.
	RetryAfter time.Duration
	// Permanent reports that retrying will not help.
	Permanent bool

	detail string // redacted description of the cause
	ctxErr error  // context.Canceled or DeadlineExceeded, kept for errors.Is
	paced  bool   // nothing was sent: see ErrPaced
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "notify %s: %s", e.Notifier, e.Op)
	switch {
	case e.Status != 0 && e.Code != "":
		fmt.Fprintf(&b, ": HTTP %d: %s", e.Status, e.Code)
	case e.Status != 0:
		fmt.Fprintf(&b, ": HTTP %d %s", e.Status, http.StatusText(e.Status))
	case e.Code != "":
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap exposes context errors and ErrPaced only: other causes may embed
// secrets.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.ctxErr != nil {
		errs = append(errs, e.ctxErr)
	}
	if e.paced {
		errs = append(errs, ErrPaced)
	}
	return errs
}

// Slack Web API error codes that retrying can fix; every other ok:false
// answer is permanent (Slack documents them as caller errors).
var transientCodes = map[string]bool{
	"ratelimited":         true,
	"rate_limited":        true,
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"team_added_to_org":   true,
}

// classify turns an error from slack-go or from the webhook poster into a
// redacted *Error. secrets are scrubbed from any text that survives.
func classify(notifier, op string, err error, secrets ...string) *Error {
	e := &Error{Notifier: notifier, Op: op}
	var (
		rl  *slack.RateLimitedError
		sc  slack.StatusCodeError
		ser slack.SlackErrorResponse
		he  *httpError
		ue  *url.Error
	)
	switch {
	case errors.As(err, &he):
		e.Status, e.Code, e.RetryAfter = he.status, he.body, he.retryAfter
		e.Permanent = permanentStatus(he.status)
	case errors.As(err, &rl):
		e.Status, e.RetryAfter = http.StatusTooManyRequests, rl.RetryAfter
	case errors.As(err, &sc):
		e.Status = sc.Code
		e.Permanent = permanentStatus(sc.Code)
	case errors.As(err, &ser):
		e.Code = ser.Err
		e.Permanent = !transientCodes[ser.Err]
	case errors.As(err, &ue):
		// The URL is the secret for a webhook; the rest (operation and the
		// transport error) is what an operator needs.
		e.detail = ue.Op + " <redacted>: " + ue.Err.Error()
		if ue.Timeout() {
			e.detail = ue.Op + " <redacted>: timeout: " + ue.Err.Error()
		}
	default:
		e.detail = err.Error()
	}
	switch {
	case errors.Is(err, context.Canceled):
		e.ctxErr = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		e.ctxErr = context.DeadlineExceeded
	}
	e.detail = scrub(e.detail, secrets...)
	e.Code = scrub(e.Code, secrets...)
	return e
}

// permanentStatus reports whether an HTTP status is a final answer: any
// 4xx except 408 and 429.
func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout
}

// scrub removes every secret (and its URL-escaped form) from s.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, "<redacted>")
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, "<redacted>")
		}
	}
	return s
}

// scrubMessage removes secrets from an outgoing message, in case an event
// carries one (say, a poll error quoting a URL).
func scrubMessage(m Message, secrets ...string) Message {
	m.Text = scrub(m.Text, secrets...)
	raw, err := json.Marshal(m.Blocks)
	if err != nil {
		return m
	}
	clean := scrub(string(raw), secrets...)
	if clean == string(raw) {
		return m
	}
	var bs slack.Blocks
	if err := json.Unmarshal([]byte(clean), &bs); err != nil {
		// Keep the fallback text only rather than risk sending a secret.
		m.Blocks = nil
		return m
	}
	m.Blocks = bs.BlockSet
	return m
}

// failed fills r for an undelivered rest after e: its next attempt is at
// Slack's Retry-After, else after the backoff for attempts.
func (o Options) failed(r result, e *Error, attempts int) result {
	r.Err = e
	r.Permanent = e.Permanent
	if !e.Permanent {
		if e.RetryAfter > 0 {
			r.RetryAt = o.Now().Add(e.RetryAfter)
		} else {
			r.RetryAt = o.Now().Add(o.backoff(attempts))
		}
	}
	return r
}

// waitOut sleeps out Slack's rate limit (a 429, or ok:false ratelimited,
// with a Retry-After) when ctx leaves time for it, and reports whether it
// did: the caller then tries the same message again, so that a backlog
// drains at Slack's rate. A limit that would outlast ctx is not waited
// for; the message keeps its Retry-After as its next attempt.
func (o Options) waitOut(ctx context.Context, err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.paced || e.Permanent || e.RetryAfter <= 0 || !e.rateLimited() {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= e.RetryAfter {
		return false
	}
	o.Logger.LogAttrs(ctx, slog.LevelInfo, "slack rate limit; waiting it out",
		slog.String("notifier", e.Notifier), slog.String("op", e.Op), slog.Duration("retry_after", e.RetryAfter))
	return o.Sleep(ctx, e.RetryAfter) == nil
}

// rateLimited reports whether Slack refused the call for its rate limit.
func (e *Error) rateLimited() bool {
	return e.Status == http.StatusTooManyRequests || e.Code == "ratelimited" || e.Code == "rate_limited"
}

// opPace is the Op of an error of pace.
const opPace = "pace"

// pace waits for the limiter. A context that ends first is not a Slack
// failure: the messages are due again at once.
func pace(ctx context.Context, l *rate.Limiter, notifier string) *Error {
	if err := l.Wait(ctx); err != nil {
		e := &Error{Notifier: notifier, Op: opPace, detail: err.Error(), paced: true}
		if ctx.Err() != nil {
			e.ctxErr = ctx.Err()
		} else {
			// rate.Limiter refuses up front when the wait would pass the
			// deadline.
			e.ctxErr = context.DeadlineExceeded
		}
		return e
	}
	return nil
}

// logFailure logs a failed attempt; e is already redacted.
func logFailure(ctx context.Context, l *slog.Logger, e *Error, delivered, pending int) {
	level := slog.LevelWarn
	if e.Permanent {
		level = slog.LevelError
	}
	l.LogAttrs(ctx, level, "slack delivery failed",
		slog.String("notifier", e.Notifier), slog.String("op", e.Op),
		slog.Bool("permanent", e.Permanent), slog.Int("delivered", delivered),
		slog.Int("pending", pending), slog.String("err", e.Error()))
}
