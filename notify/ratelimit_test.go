package notify

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/slacksink"
)

// sleeps records the waits a notifier asks for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// A 429 with a Retry-After is waited out and delivery goes on with the same
// event, in order; each event is reported as soon as it is sent.
func TestBotWaitsOutRateLimits(t *testing.T) {
	srv := newBotServer(t)
	srv.FailEvery(2, http.StatusTooManyRequests, 3*time.Second)
	opt, _ := testOptions(t)
	sl := &sleeps{}
	opt.Sleep = sl.sleep
	events := manyEvents(5)
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt)
	var reported []int
	b.Notify(ctxWithin(t, time.Minute), pendingOf(0, events...), func(from, to int, o Outcome) {
		require.NoError(t, o.Err)
		require.Equal(t, from+1, to, "one event at a time")
		// Reported before the next event was tried: Slack has exactly
		// this many messages so far.
		require.Len(t, srv.Messages(), to)
		reported = append(reported, from)
	})
	require.Equal(t, []int{0, 1, 2, 3, 4}, reported)
	require.Equal(t, []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}, sl.all())
	msgs := srv.Messages()
	require.Len(t, msgs, 5, "no duplicates")
	for i, m := range msgs {
		require.Contains(t, m.Text, events[i].ProjectName, "in order")
	}
}

func TestWebhookWaitsOutRateLimits(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	srv.FailNext(1, http.StatusTooManyRequests, time.Second)
	srv.FailEvery(2, http.StatusTooManyRequests, 2*time.Second)
	opt, _ := testOptions(t)
	sl := &sleeps{}
	opt.Sleep = sl.sleep
	opt.DigestAfter = -1 // splitting, not grouping, is under test
	events := manyEvents(splitEvents)
	parts := renderBatch(events)
	require.Len(t, parts, 3)
	type report struct{ from, to int }
	var reported []report
	NewWebhook("ops", srv.WebhookURL(), opt).Notify(ctxWithin(t, time.Minute), pendingOf(0, events...), func(from, to int, o Outcome) {
		require.NoError(t, o.Err)
		reported = append(reported, report{from, to})
	})
	p0, p1 := parts[0].events, parts[0].events+parts[1].events
	require.Equal(t, []report{{0, p0}, {p0, p1}, {p1, splitEvents}}, reported, "one report per message")
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}, sl.all())
	require.Len(t, srv.Messages(), 3)
}

// A rate limit that would outlast the delivery is not waited for: the
// rest keeps Slack's Retry-After as its next attempt.
func TestRateLimitPastTheDeadlineIsNotWaited(t *testing.T) {
	srv := newBotServer(t)
	srv.FailNext(1, http.StatusTooManyRequests, 30*time.Second)
	opt, _ := testOptions(t)
	sl := &sleeps{}
	opt.Sleep = sl.sleep
	outs := collect(t, NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt), ctxWithin(t, 10*time.Second), pendingOf(0, manyEvents(2)...))
	require.Equal(t, []bool{false, false}, delivered(outs))
	require.Equal(t, t0.Add(30*time.Second), outs[0].RetryAt)
	require.Empty(t, sl.all())
}

// Without a Retry-After, or on another failure, nothing is waited for.
func TestOnlyRateLimitsAreWaited(t *testing.T) {
	tests := []struct {
		name   string
		status int
		after  time.Duration
	}{
		{"429 without Retry-After", http.StatusTooManyRequests, 0},
		{"503 with Retry-After", http.StatusServiceUnavailable, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBotServer(t)
			srv.FailNext(1, tt.status, tt.after)
			opt, _ := testOptions(t)
			sl := &sleeps{}
			opt.Sleep = sl.sleep
			outs := collect(t, NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt), ctxWithin(t, 10*time.Second), pendingOf(0, manyEvents(1)...))
			require.False(t, outs[0].Delivered())
			require.Empty(t, sl.all())
		})
	}
}

func TestRetryBackoffOptions(t *testing.T) {
	tests := []struct {
		name      string
		base, max time.Duration
		want      []time.Duration // for attempts 0, 1, ...
	}{
		{"default: 5s doubling to a minute", 0, 0,
			[]time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}},
		{"given", 5 * time.Millisecond, 60 * time.Millisecond,
			[]time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond, 60 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{RetryBase: tt.base, RetryMax: tt.max}.withDefaults()
			for n, want := range tt.want {
				require.Equal(t, want, o.backoff(n), "attempts %d", n)
			}
		})
	}
}
