package notify

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
)

// webhookSecret is the part of the fake's webhook URL that is the secret.
const webhookSecret = "T000/B000/XXXX"

func requireNoSecret(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		require.NotContains(t, s, sec)
	}
}

func TestWebhookSendsOneMessagePerCycle(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	opt, _ := testOptions(t)
	w := NewWebhook("ops", srv.WebhookURL(), opt)
	require.Equal(t, "ops", w.Name())
	ev := sampleEvents()
	events := []quota.Event{ev["firing"], ev["action_applied"], ev["resolved"]}

	res := w.send(context.Background(), events, 0, nil)
	require.NoError(t, res.Err)
	require.Equal(t, result{Delivered: 3}, res)
	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, slacksink.EndpointWebhook, msgs[0].Endpoint)
	require.Contains(t, msgs[0].Text, "quotawatch: 1 firing, 1 moved, 1 resolved", "the header counts what happened")
	require.Contains(t, msgs[0].Text, "moved container course_container (19.2 GiB)")

	res = w.send(context.Background(), nil, 0, nil)
	require.Equal(t, result{}, res, "nothing due, nothing sent")
	require.Len(t, srv.Messages(), 1)
}

func TestWebhookFailures(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, srv *slacksink.Server) string // returns the webhook URL
		attempts  int
		permanent bool
		retryIn   time.Duration
		status    int
		code      string
		errText   string
	}{
		{name: "429 with Retry-After", setup: failNext(1, http.StatusTooManyRequests, 30*time.Second),
			attempts: 3, retryIn: 30 * time.Second, status: 429, errText: "retry after 30s"},
		{name: "429 without Retry-After", setup: failNext(1, http.StatusTooManyRequests, 0),
			attempts: 2, retryIn: 20 * time.Second, status: 429},
		{name: "503", setup: failNext(1, http.StatusServiceUnavailable, 0), retryIn: 5 * time.Second, status: 503},
		{name: "503 with Retry-After", setup: failNext(1, http.StatusServiceUnavailable, 5*time.Second),
			attempts: 4, retryIn: 5 * time.Second, status: 503},
		{name: "500", setup: failNext(1, http.StatusInternalServerError, 0), attempts: 1, retryIn: 10 * time.Second, status: 500},
		{name: "408", setup: failNext(1, http.StatusRequestTimeout, 0), retryIn: 5 * time.Second, status: 408},
		{name: "down", setup: func(_ *testing.T, srv *slacksink.Server) string { srv.SetDown(true); return srv.WebhookURL() },
			attempts: 7, retryIn: time.Minute, status: 503},
		{name: "no_service", setup: failWith("no_service"), permanent: true, status: 404, code: "no_service"},
		{name: "invalid_payload", setup: failWith("invalid_payload"), permanent: true, status: 400, code: "invalid_payload"},
		{name: "action_prohibited", setup: failWith("action_prohibited"), permanent: true, status: 403, code: "action_prohibited"},
		{name: "channel_is_archived", setup: failWith("channel_is_archived"), permanent: true, status: 410, code: "channel_is_archived"},
		{name: "other 4xx", setup: failNext(1, http.StatusUnprocessableEntity, 0), permanent: true, status: 422},
		{name: "connection refused", setup: func(t *testing.T, _ *slacksink.Server) string {
			return refusedURL(t) + slacksink.WebhookPath
		}, attempts: 1, retryIn: 10 * time.Second, errText: "connection refused"},
		{name: "timeout", setup: func(t *testing.T, _ *slacksink.Server) string {
			return hangingURL(t) + slacksink.WebhookPath
		}, retryIn: 5 * time.Second, errText: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := slacksink.New()
			defer srv.Close()
			url := tt.setup(t, srv)
			opt, logs := testOptions(t)
			opt.Timeout = shortTimeout
			w := NewWebhook("ops", url, opt)

			// A context too short for any Retry-After here: a rate limit is
			// reported, not waited out.
			res := w.send(ctxWithin(t, 2*time.Second), []quota.Event{sampleEvents()["firing"]}, tt.attempts, nil)
			require.Error(t, res.Err)
			require.Zero(t, res.Delivered)
			require.Equal(t, tt.permanent, res.Permanent)
			if tt.permanent {
				require.True(t, res.RetryAt.IsZero())
			} else {
				require.Equal(t, t0.Add(tt.retryIn), res.RetryAt)
			}
			var e *Error
			require.ErrorAs(t, res.Err, &e)
			require.Equal(t, tt.status, e.Status)
			require.Equal(t, tt.code, e.Code)
			require.Equal(t, "webhook", e.Op)
			require.Contains(t, res.Err.Error(), "notify ops: webhook")
			if tt.errText != "" {
				require.Contains(t, res.Err.Error(), tt.errText)
			}
			require.Contains(t, logs.String(), "slack delivery failed")
			requireNoSecret(t, res.Err.Error(), url, webhookSecret)
			requireNoSecret(t, logs.String(), url, webhookSecret)
			require.Empty(t, srv.Messages())
		})
	}
}

func failNext(n, status int, retryAfter time.Duration) func(*testing.T, *slacksink.Server) string {
	return func(_ *testing.T, srv *slacksink.Server) string {
		srv.FailNext(n, status, retryAfter)
		return srv.WebhookURL()
	}
}

func failWith(code string) func(*testing.T, *slacksink.Server) string {
	return func(_ *testing.T, srv *slacksink.Server) string {
		srv.FailWith(code)
		return srv.WebhookURL()
	}
}

func TestWebhookRetryDeliversAfterFailure(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	opt, _ := testOptions(t)
	w := NewWebhook("ops", srv.WebhookURL(), opt)
	events := []quota.Event{sampleEvents()["firing"]}
	srv.FailNext(1, http.StatusServiceUnavailable, 0)

	res := w.send(context.Background(), events, 0, nil)
	require.Error(t, res.Err)
	res = w.send(context.Background(), events, 1, nil)
	require.NoError(t, res.Err)
	require.Equal(t, 1, res.Delivered)
	require.Len(t, srv.Messages(), 1)
}

// TestWebhookPartialBatch fails the second message of a split batch: the
// events of the first count as delivered, the rest wait.
func TestWebhookPartialBatch(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	opt, _ := testOptions(t)
	opt.DigestAfter = -1 // splitting, not grouping, is under test
	opt.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &scripted{answers: map[int]scriptedAnswer{
		2: {status: http.StatusServiceUnavailable, body: "busy"},
	}}}
	events := manyEvents(splitEvents)
	parts := renderBatch(events)
	require.Len(t, parts, 3)

	res := NewWebhook("ops", srv.WebhookURL(), opt).send(context.Background(), events, 2, nil)
	require.Equal(t, parts[0].events, res.Delivered)
	require.False(t, res.Permanent)
	require.Equal(t, t0.Add(20*time.Second), res.RetryAt)
	require.Len(t, srv.Messages(), 1)
	require.Contains(t, res.Err.Error(), "HTTP 503: busy")
}

func TestWebhookPacing(t *testing.T) {
	events := manyEvents(splitEvents) // three messages
	tests := []struct {
		name      string
		rate      rate.Limit
		sends     int // Send calls in a row
		delivered []int
	}{
		// One message per ten seconds (slow, so a loaded machine cannot
		// earn a token by accident): the first goes out, the next would
		// wait past the context's end, so the rest is due again at once.
		{"slow", 0.1, 2, []int{renderBatch(events)[0].events, 0}},
		{"fast", rate.Inf, 2, []int{splitEvents, splitEvents}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := slacksink.New()
			defer srv.Close()
			opt, _ := testOptions(t)
			opt.Rate, opt.Burst = tt.rate, 1
			opt.DigestAfter = -1
			w := NewWebhook("ops", srv.WebhookURL(), opt)
			sent := 0
			for i := range tt.sends {
				res := w.send(ctxWithin(t, 300*time.Millisecond), events, 0, nil)
				require.Equal(t, tt.delivered[i], res.Delivered)
				if tt.delivered[i] < len(events) {
					require.Error(t, res.Err)
					require.ErrorIs(t, res.Err, context.DeadlineExceeded)
					require.False(t, res.Permanent)
					require.Equal(t, t0, res.RetryAt, "due again at the next cycle")
				} else {
					require.NoError(t, res.Err)
				}
				sent += len(renderBatch(events[:tt.delivered[i]]))
			}
			require.Len(t, srv.Messages(), sent)
		})
	}
}

func TestWebhookCanceledContext(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	opt, _ := testOptions(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := NewWebhook("ops", srv.WebhookURL(), opt).send(ctx, manyEvents(2), 0, nil)
	require.Zero(t, res.Delivered)
	require.True(t, errors.Is(res.Err, context.Canceled))
	require.False(t, res.Permanent)
	require.Empty(t, srv.Messages())
}
