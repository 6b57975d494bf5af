package notify

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
)

func pendingOf(attempts int, events ...quota.Event) []Pending {
	out := make([]Pending, len(events))
	for i, ev := range events {
		out[i] = Pending{Event: ev, Attempts: attempts}
	}
	return out
}

func delivered(outs []Outcome) []bool {
	out := make([]bool, len(outs))
	for i, o := range outs {
		out[i] = o.Delivered()
	}
	return out
}

// fakeThreads is a Threads that records its calls and can fail them.
type fakeThreads struct {
	mu                sync.Mutex
	m                 map[quota.InstanceKey]Thread
	reads, sets       int
	readErr, writeErr error
}

func newFakeThreads() *fakeThreads { return &fakeThreads{m: map[quota.InstanceKey]Thread{}} }

func (f *fakeThreads) Thread(_ context.Context, k quota.InstanceKey) (Thread, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.readErr != nil {
		return Thread{}, false, f.readErr
	}
	th, ok := f.m[k]
	return th, ok, nil
}

func (f *fakeThreads) SetThread(_ context.Context, k quota.InstanceKey, th Thread) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	if f.writeErr != nil {
		return f.writeErr
	}
	f.m[k] = th
	return nil
}

func TestWebhookNotify(t *testing.T) {
	t.Run("one message, every event delivered", func(t *testing.T) {
		srv := slacksink.New()
		defer srv.Close()
		opt, _ := testOptions(t)
		ev := sampleEvents()
		outs := collect(t, NewWebhook("ops", srv.WebhookURL(), opt), context.Background(),
			pendingOf(0, ev["firing"], ev["action_applied"], ev["resolved"]))
		require.Equal(t, []Outcome{{}, {}, {}}, outs)
		require.Len(t, srv.Messages(), 1)
	})
	t.Run("nothing due", func(t *testing.T) {
		srv := slacksink.New()
		defer srv.Close()
		opt, _ := testOptions(t)
		require.Empty(t, collect(t, NewWebhook("ops", srv.WebhookURL(), opt), context.Background(), nil))
		require.Empty(t, srv.Messages())
	})
	t.Run("a failed part takes the rest along", func(t *testing.T) {
		srv := slacksink.New()
		defer srv.Close()
		opt, _ := testOptions(t)
		opt.DigestAfter = -1 // splitting, not grouping, is under test
		opt.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &scripted{answers: map[int]scriptedAnswer{
			2: {status: http.StatusServiceUnavailable, body: "busy"},
		}}}
		events := manyEvents(splitEvents)
		first := renderBatch(events)[0].events
		require.Less(t, first, len(events))
		pending := pendingOf(0, events...)
		pending[0].Attempts = 2 // the first event's attempts set the backoff of the batch
		outs := collect(t, NewWebhook("ops", srv.WebhookURL(), opt), context.Background(), pending)
		require.Len(t, outs, splitEvents)
		for i, o := range outs {
			if i < first {
				require.True(t, o.Delivered(), "event %d", i)
				continue
			}
			require.False(t, o.Delivered(), "event %d", i)
			require.False(t, o.Permanent)
			require.Equal(t, t0.Add(20*time.Second), o.RetryAt)
			require.Contains(t, o.Err.Error(), "HTTP 503: busy")
			require.Same(t, outs[first].Err, o.Err, "one failure, shared")
		}
	})
	t.Run("permanent", func(t *testing.T) {
		srv := slacksink.New()
		defer srv.Close()
		srv.FailWith("no_service")
		opt, _ := testOptions(t)
		outs := collect(t, NewWebhook("ops", srv.WebhookURL(), opt), context.Background(), pendingOf(0, manyEvents(2)...))
		require.Equal(t, []bool{false, false}, delivered(outs))
		for _, o := range outs {
			require.True(t, o.Permanent)
			require.True(t, o.RetryAt.IsZero())
			requireNoSecret(t, o.Err.Error(), srv.WebhookURL(), webhookSecret)
		}
	})
	t.Run("paced", func(t *testing.T) {
		srv := slacksink.New()
		defer srv.Close()
		opt, _ := testOptions(t)
		opt.Rate, opt.Burst = 0.1, 1
		w := NewWebhook("ops", srv.WebhookURL(), opt)
		require.Equal(t, []bool{true}, delivered(collect(t, w, ctxWithin(t, 300*time.Millisecond), pendingOf(0, manyEvents(1)...))))
		outs := collect(t, w, ctxWithin(t, 300*time.Millisecond), pendingOf(3, manyEvents(2)...))
		for _, o := range outs {
			require.ErrorIs(t, o.Err, ErrPaced)
			require.ErrorIs(t, o.Err, context.DeadlineExceeded)
			require.False(t, o.Permanent)
			require.Equal(t, t0, o.RetryAt, "due again at once")
		}
		require.Len(t, srv.Messages(), 1)
	})
}

// TestBotNotifyKeepsThreads follows one incident through Notify: the
// thread is read from Threads before each event and saved when it changes.
func TestBotNotifyKeepsThreads(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	threads := newFakeThreads()
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
	ctx := context.Background()
	ev := sampleEvents()

	require.Equal(t, []Outcome{{}, {}}, collect(t, b, ctx, pendingOf(0, ev["firing"], ev["poll_failed"])))
	require.Equal(t, 1, threads.reads, "poll events have no thread")
	require.Equal(t, 1, threads.sets)
	th := threads.m[ev["firing"].Key]
	require.Equal(t, "C0QUOTA", th.Channel)
	parent, ok := srv.Message(th.Channel, th.TS)
	require.True(t, ok)
	require.Contains(t, string(parent.Blocks), "Incident status: *firing*")

	// A new Bot over the same Threads (a restart) replies in the thread.
	b = NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
	require.Equal(t, []Outcome{{}, {}}, collect(t, b, ctx, pendingOf(0, ev["action_applied"], ev["resolved"])))
	require.Equal(t, 1, threads.sets, "the thread did not change")
	require.Len(t, srv.Replies(th.Channel, th.TS), 2)
	parent, ok = srv.Message(th.Channel, th.TS)
	require.True(t, ok)
	require.Contains(t, string(parent.Blocks), "Incident status: *resolved*")

	// A new firing of the incident opens a new thread, saved in its place.
	require.Equal(t, []Outcome{{}}, collect(t, b, ctx, pendingOf(0, ev["firing"])))
	require.Equal(t, 2, threads.sets)
	require.NotEqual(t, th, threads.m[ev["firing"].Key])
}

func TestBotNotifyThreadStoreFailures(t *testing.T) {
	ev := sampleEvents()
	t.Run("read", func(t *testing.T) {
		srv := newBotServer(t)
		opt, logs := testOptions(t)
		threads := newFakeThreads()
		b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
		require.Equal(t, []Outcome{{}}, collect(t, b, context.Background(), pendingOf(0, ev["firing"])))
		threads.readErr = errors.New("disk on fire")
		// Without its thread the event heads a new one rather than wait.
		require.Equal(t, []Outcome{{}}, collect(t, b, context.Background(), pendingOf(0, ev["resolved"])))
		require.Equal(t, []string{"chat.postMessage", "chat.postMessage"}, endpoints(srv.Messages()))
		require.Contains(t, logs.String(), "reading the incident thread failed")
		require.Contains(t, logs.String(), "disk on fire")
	})
	t.Run("write", func(t *testing.T) {
		srv := newBotServer(t)
		opt, logs := testOptions(t)
		threads := newFakeThreads()
		threads.writeErr = errors.New("disk full")
		b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
		require.Equal(t, []Outcome{{}}, collect(t, b, context.Background(), pendingOf(0, ev["firing"])),
			"the message went: it is delivered")
		require.Contains(t, logs.String(), "saving the incident thread failed")
	})
}

func TestBotNotifyFailures(t *testing.T) {
	ev := sampleEvents()
	other := ev["firing"]
	other.Key.Project = labID
	third := ev["firing"]
	third.Key.Resource = quota.CPU
	events := []quota.Event{ev["firing"], other, third}

	t.Run("a permanent failure sets one event aside", func(t *testing.T) {
		srv := newBotServer(t)
		opt, _ := testOptions(t)
		opt.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &scripted{answers: map[int]scriptedAnswer{
			2: {status: http.StatusOK, body: `{"ok":false,"error":"invalid_blocks"}`},
		}}}
		threads := newFakeThreads()
		outs := collect(t, NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt), context.Background(), pendingOf(0, events...))
		require.Equal(t, []bool{true, false, true}, delivered(outs))
		require.True(t, outs[1].Permanent)
		require.Contains(t, outs[1].Err.Error(), "invalid_blocks")
		require.Len(t, srv.Messages(), 2)
		require.Len(t, threads.m, 2)
	})
	t.Run("a transient failure stops delivery", func(t *testing.T) {
		srv := newBotServer(t)
		opt, _ := testOptions(t)
		srv.FailNext(1, http.StatusTooManyRequests, 7*time.Second)
		// The delivery ends before the Retry-After: not waited out.
		outs := collect(t, NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt), ctxWithin(t, 2*time.Second), pendingOf(1, events...))
		require.Equal(t, []bool{false, false, false}, delivered(outs))
		for _, o := range outs {
			require.False(t, o.Permanent)
			require.Equal(t, t0.Add(7*time.Second), o.RetryAt)
			require.Same(t, outs[0].Err, o.Err, "the ones behind were not tried")
			requireNoSecret(t, o.Err.Error(), botToken)
		}
		require.Empty(t, srv.Messages())
	})
	t.Run("paced", func(t *testing.T) {
		srv := newBotServer(t)
		opt, _ := testOptions(t)
		opt.Rate, opt.Burst = 0.1, 1
		outs := collect(t, NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), nil, opt), ctxWithin(t, 300*time.Millisecond), pendingOf(2, events...))
		require.Equal(t, []bool{true, false, false}, delivered(outs))
		for _, o := range outs[1:] {
			require.ErrorIs(t, o.Err, ErrPaced)
			require.False(t, o.Permanent)
			require.Equal(t, t0, o.RetryAt)
		}
		require.Len(t, srv.Messages(), 1)
	})
}

func TestErrPacedOnlyWhenPacing(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	srv.FailNext(1, http.StatusServiceUnavailable, 0)
	opt, _ := testOptions(t)
	opt.Rate = rate.Inf
	outs := collect(t, NewWebhook("ops", srv.WebhookURL(), opt), context.Background(), pendingOf(0, manyEvents(1)...))
	require.Error(t, outs[0].Err)
	require.NotErrorIs(t, outs[0].Err, ErrPaced, "Slack was tried")
}
