package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
)

const botToken = "xoxb-1234-5678-s3cr3tT0k3n"

func newBotServer(t *testing.T) *slacksink.Server {
	t.Helper()
	srv := slacksink.New(slacksink.WithToken(botToken))
	t.Cleanup(srv.Close)
	return srv
}

func endpoints(rs []slacksink.Received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Endpoint
		if r.ThreadTS != "" {
			out[i] += " reply"
		}
	}
	return out
}

// TestBotIncidentThread follows one incident: the firing event opens a
// thread, later events reply in it and update the parent in place.
func TestBotIncidentThread(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	b := NewBot("ops", botToken, "#quota-alerts", strings.TrimSuffix(srv.APIURL(), "/"), nil, opt)
	require.Equal(t, "ops", b.Name())
	ctx := context.Background()
	ev := sampleEvents()

	res := b.send(ctx, ev["firing"], Thread{}, 0)
	require.NoError(t, res.Err)
	require.Equal(t, 1, res.Delivered)
	th := res.Thread
	require.Equal(t, "C00000001", th.Channel, "the channel ID Slack answered, not the name")
	require.NotEmpty(t, th.TS)
	parent, ok := srv.Message(th.Channel, th.TS)
	require.True(t, ok)
	require.Contains(t, string(parent.Blocks), "Incident status: *firing*")

	for _, name := range []string{"action_skipped", "action_applied", "resolved"} {
		res = b.send(ctx, ev[name], th, 0)
		require.NoError(t, res.Err, name)
		require.Equal(t, result{Delivered: 1, Thread: th}, res, name)
	}
	require.Equal(t, []string{
		"chat.postMessage",
		"chat.update", "chat.postMessage reply",
		"chat.update", "chat.postMessage reply",
		"chat.update", "chat.postMessage reply",
	}, endpoints(srv.Messages()))

	replies := srv.Replies(th.Channel, th.TS)
	require.Len(t, replies, 3)
	require.Contains(t, replies[0].Text, "no move out of")
	require.Contains(t, replies[1].Text, "moved container course_container (19.2 GiB) from "+sysName+" to "+labName)
	require.Contains(t, replies[2].Text, "after 2h15m")

	parent, ok = srv.Message(th.Channel, th.TS)
	require.True(t, ok)
	require.Contains(t, parent.Text, "[RESOLVED]")
	require.Contains(t, string(parent.Blocks), "Incident status: *resolved*")
}

func TestBotThreadRules(t *testing.T) {
	ev := sampleEvents()
	tests := []struct {
		name       string
		event      quota.Event
		withThread bool
		endpoints  []string // after the firing that opened the thread
		newThread  bool
		zeroThread bool
	}{
		{"repeat replies", ev["repeat"], true, []string{"chat.update", "chat.postMessage reply"}, false, false},
		{"a new firing opens a new incident", ev["firing"], true, []string{"chat.postMessage"}, true, false},
		{"no thread: the event heads one", ev["action_applied"], false, []string{"chat.postMessage"}, true, false},
		{"poll events stand alone", ev["poll_failed"], true, []string{"chat.postMessage"}, false, true},
		{"poll recovery stands alone", ev["poll_recovered"], false, []string{"chat.postMessage"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBotServer(t)
			opt, _ := testOptions(t)
			b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt)
			first := b.send(context.Background(), ev["firing"], Thread{}, 0)
			require.NoError(t, first.Err)
			th := Thread{}
			if tt.withThread {
				th = first.Thread
			}
			res := b.send(context.Background(), tt.event, th, 0)
			require.NoError(t, res.Err)
			require.Equal(t, 1, res.Delivered)
			require.Equal(t, tt.endpoints, endpoints(srv.Messages()[1:]))
			switch {
			case tt.zeroThread:
				require.True(t, res.Thread.IsZero())
			case tt.newThread:
				require.NotEqual(t, first.Thread.TS, res.Thread.TS)
				require.Equal(t, "C0QUOTA", res.Thread.Channel)
			default:
				require.Equal(t, first.Thread, res.Thread)
			}
		})
	}
}

// TestBotParentGone starts a new thread when the parent was deleted.
func TestBotParentGone(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt)
	gone := Thread{Channel: "C0QUOTA", TS: "1600000000.000001"}
	res := b.send(context.Background(), sampleEvents()["action_applied"], gone, 0)
	require.NoError(t, res.Err)
	require.Equal(t, 1, res.Delivered)
	require.NotEqual(t, gone, res.Thread)
	require.False(t, res.Thread.IsZero())
	require.Equal(t, []string{"chat.postMessage"}, endpoints(srv.Messages()))
}

// TestBotParentNotEditable still replies when Slack refuses the edit.
func TestBotParentNotEditable(t *testing.T) {
	srv := newBotServer(t)
	opt, logs := testOptions(t)
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt)
	first := b.send(context.Background(), sampleEvents()["firing"], Thread{}, 0)
	require.NoError(t, first.Err)
	b.opt.HTTPClient.Transport = &scripted{answers: map[int]scriptedAnswer{
		1: {status: http.StatusOK, body: `{"ok":false,"error":"cant_update_message"}`},
	}}
	res := b.send(context.Background(), sampleEvents()["resolved"], first.Thread, 0)
	require.NoError(t, res.Err)
	require.Equal(t, result{Delivered: 1, Thread: first.Thread}, res)
	require.Len(t, srv.Replies(first.Thread.Channel, first.Thread.TS), 1)
	require.Contains(t, logs.String(), "cant_update_message")
}

// TestBotRetryPostsReplyOnce: the parent update comes first because it is
// idempotent; a retry after a failed reply must not duplicate anything.
func TestBotRetryPostsReplyOnce(t *testing.T) {
	tests := []struct {
		name    string
		failReq int // which request of the second Send fails: 1 update, 2 reply
	}{
		{"update fails", 1},
		{"reply fails", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBotServer(t)
			opt, _ := testOptions(t)
			b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt)
			first := b.send(context.Background(), sampleEvents()["firing"], Thread{}, 0)
			require.NoError(t, first.Err)
			b.opt.HTTPClient.Transport = &scripted{answers: map[int]scriptedAnswer{
				tt.failReq: {status: http.StatusBadGateway, body: "<html>bad gateway</html>"},
			}}
			ev := sampleEvents()["action_applied"]
			res := b.send(context.Background(), ev, first.Thread, 1)
			require.Zero(t, res.Delivered)
			require.False(t, res.Permanent)
			require.Equal(t, t0.Add(10*time.Second), res.RetryAt)
			require.Equal(t, first.Thread, res.Thread)

			res = b.send(context.Background(), ev, first.Thread, 2)
			require.NoError(t, res.Err)
			require.Equal(t, 1, res.Delivered)
			require.Len(t, srv.Replies(first.Thread.Channel, first.Thread.TS), 1)
		})
	}
}

func TestBotFailures(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, srv *slacksink.Server) (apiURL, token, channel string)
		attempts  int
		permanent bool
		retryIn   time.Duration
		status    int
		code      string
		errText   string
	}{
		{name: "invalid_auth", setup: func(_ *testing.T, srv *slacksink.Server) (string, string, string) {
			return srv.APIURL(), "xoxb-9999-wrong-s3cr3t", "C0QUOTA"
		}, permanent: true, code: "invalid_auth"},
		{name: "channel_not_found", setup: apiFailWith("channel_not_found"), permanent: true, code: "channel_not_found"},
		{name: "not_in_channel", setup: apiFailWith("not_in_channel"), permanent: true, code: "not_in_channel"},
		{name: "no channel configured", setup: func(_ *testing.T, srv *slacksink.Server) (string, string, string) {
			return srv.APIURL(), botToken, ""
		}, permanent: true, code: "channel_not_found"},
		{name: "ok:false ratelimited", setup: apiFailWith("ratelimited"), attempts: 1, retryIn: 10 * time.Second, code: "ratelimited"},
		{name: "ok:false internal_error", setup: apiFailWith("internal_error"), retryIn: 5 * time.Second, code: "internal_error"},
		{name: "429 with Retry-After", setup: apiFailNext(1, http.StatusTooManyRequests, 7*time.Second),
			attempts: 5, retryIn: 7 * time.Second, status: 429, errText: "retry after 7s"},
		{name: "429 without Retry-After", setup: apiFailNext(1, http.StatusTooManyRequests, 0),
			attempts: 1, retryIn: 10 * time.Second, status: 429},
		{name: "503", setup: apiFailNext(1, http.StatusServiceUnavailable, 0), attempts: 3, retryIn: 40 * time.Second, status: 503},
		{name: "down", setup: func(_ *testing.T, srv *slacksink.Server) (string, string, string) {
			srv.SetDown(true)
			return srv.APIURL(), botToken, "C0QUOTA"
		}, attempts: 9, retryIn: time.Minute, status: 503},
		{name: "400", setup: apiFailNext(1, http.StatusBadRequest, 0), permanent: true, status: 400},
		{name: "403", setup: apiFailNext(1, http.StatusForbidden, 0), permanent: true, status: 403},
		{name: "connection refused", setup: func(t *testing.T, _ *slacksink.Server) (string, string, string) {
			return refusedURL(t) + "/api/", botToken, "C0QUOTA"
		}, retryIn: 5 * time.Second, errText: "connection refused"},
		{name: "timeout", setup: func(t *testing.T, _ *slacksink.Server) (string, string, string) {
			return hangingURL(t) + "/api/", botToken, "C0QUOTA"
		}, attempts: 2, retryIn: 20 * time.Second, errText: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBotServer(t)
			apiURL, token, channel := tt.setup(t, srv)
			opt, logs := testOptions(t)
			opt.Timeout = shortTimeout
			b := NewBot("ops", token, channel, apiURL, nil, opt)

			res := b.send(context.Background(), sampleEvents()["firing"], Thread{}, tt.attempts)
			require.Error(t, res.Err)
			require.Zero(t, res.Delivered)
			require.True(t, res.Thread.IsZero())
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
			require.Contains(t, res.Err.Error(), "notify ops: chat.postMessage")
			if tt.errText != "" {
				require.Contains(t, res.Err.Error(), tt.errText)
			}
			require.Contains(t, logs.String(), "slack delivery failed")
			requireNoSecret(t, res.Err.Error(), token, botToken)
			requireNoSecret(t, logs.String(), token, botToken)
			require.Empty(t, srv.Messages())

			// Check reports the same classes at start-up.
			if tt.name == "invalid_auth" || tt.name == "connection refused" || tt.name == "down" {
				err := b.Check(context.Background())
				require.Error(t, err)
				require.Contains(t, err.Error(), "notify ops: auth.test")
				requireNoSecret(t, err.Error(), token, botToken)
			}
		})
	}
}

func apiFailWith(code string) func(*testing.T, *slacksink.Server) (string, string, string) {
	return func(_ *testing.T, srv *slacksink.Server) (string, string, string) {
		srv.FailWith(code)
		return srv.APIURL(), botToken, "C0QUOTA"
	}
}

func apiFailNext(n, status int, retryAfter time.Duration) func(*testing.T, *slacksink.Server) (string, string, string) {
	return func(_ *testing.T, srv *slacksink.Server) (string, string, string) {
		srv.FailNext(n, status, retryAfter)
		return srv.APIURL(), botToken, "C0QUOTA"
	}
}

func TestBotCheck(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		wantCode  string
		permanent bool
	}{
		{"good token", botToken, "", false},
		{"wrong token", "xoxb-0000-other-s3cr3t", "invalid_auth", true},
		{"no token", "", "not_authed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBotServer(t)
			opt, logs := testOptions(t)
			err := NewBot("ops", tt.token, "C0QUOTA", srv.APIURL(), nil, opt).Check(context.Background())
			if tt.wantCode == "" {
				require.NoError(t, err)
				require.Contains(t, logs.String(), "slack bot authenticated")
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.wantCode, e.Code)
			require.Equal(t, tt.permanent, e.Permanent)
			require.Equal(t, "auth.test", e.Op)
			if tt.token != "" {
				requireNoSecret(t, err.Error(), tt.token)
			}
		})
	}
}

func TestBotPacing(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	opt.Rate, opt.Burst = 0.1, 1
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt)
	first := b.send(ctxWithin(t, 300*time.Millisecond), sampleEvents()["firing"], Thread{}, 0)
	require.NoError(t, first.Err)
	// The parent took the only token: the next message (the parent's
	// update) cannot go out before the context ends, so the event is due
	// again at the next cycle.
	res := b.send(ctxWithin(t, 300*time.Millisecond), sampleEvents()["resolved"], first.Thread, 4)
	require.Zero(t, res.Delivered)
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)
	require.False(t, res.Permanent)
	require.Equal(t, t0, res.RetryAt)
	require.Equal(t, first.Thread, res.Thread)
	require.Len(t, srv.Messages(), 1)
}

// TestMessagesNeverCarrySecrets: an event that quotes the notifier's own
// secret (a poll error echoing a URL, say) goes out with it redacted.
func TestMessagesNeverCarrySecrets(t *testing.T) {
	tests := []struct {
		name string
		send func(t *testing.T, srv *slacksink.Server, ev quota.Event) (secret string)
	}{
		{"webhook", func(t *testing.T, srv *slacksink.Server, ev quota.Event) string {
			opt, _ := testOptions(t)
			ev.Reason = "Post " + srv.WebhookURL() + ": refused"
			require.NoError(t, NewWebhook("ops", srv.WebhookURL(), opt).send(context.Background(), []quota.Event{ev, ev}, 0, nil).Err)
			return srv.WebhookURL()
		}},
		{"bot", func(t *testing.T, srv *slacksink.Server, ev quota.Event) string {
			opt, _ := testOptions(t)
			ev.Reason = "token " + botToken + " rejected"
			require.NoError(t, NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt).send(context.Background(), ev, Thread{}, 0).Err)
			return botToken
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBotServer(t)
			secret := tt.send(t, srv, sampleEvents()["poll_failed"])
			msgs := srv.Messages()
			require.Len(t, msgs, 1)
			require.Contains(t, msgs[0].Text, "<redacted>")
			requireNoSecret(t, msgs[0].Text, secret)
			requireNoSecret(t, string(msgs[0].Blocks), secret)
			require.Contains(t, string(msgs[0].Blocks), "redacted")
		})
	}
}

// TestBotGolden pins what the bot sends over one incident: the parent, the
// update and the reply of each later event.
func TestBotGolden(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	b := NewBot("ops", botToken, "quota-alerts", srv.APIURL(), nil, opt)
	ev := sampleEvents()
	th := Thread{}
	for _, name := range []string{"firing", "dry_run", "resolved", "poll_failed"} {
		res := b.send(context.Background(), ev[name], th, 0)
		require.NoError(t, res.Err)
		if !res.Thread.IsZero() {
			th = res.Thread
		}
	}
	checkGolden(t, "bot_incident", botSent(t, srv))
}

// botSent is what the fake received from a bot, for a golden file.
func botSent(t *testing.T, srv *slacksink.Server) []byte {
	t.Helper()
	type sent struct {
		Endpoint string          `json:"endpoint"`
		Channel  string          `json:"channel"`
		TS       string          `json:"ts,omitempty"`
		ThreadTS string          `json:"thread_ts,omitempty"`
		Text     string          `json:"text"`
		Blocks   json.RawMessage `json:"blocks"`
	}
	var all []sent
	for _, m := range srv.Messages() {
		s := sent{Endpoint: m.Endpoint, Channel: m.Channel, ThreadTS: m.ThreadTS, Text: m.Text, Blocks: m.Blocks}
		if m.Endpoint == slacksink.EndpointUpdate {
			s.TS = m.TS
		}
		all = append(all, s)
	}
	raw, err := json.Marshal(all)
	require.NoError(t, err)
	return raw
}
