package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quotawatch/quotawatch/internal/backoff"
	"github.com/quotawatch/quotawatch/notify"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

// deliverBudget bounds the time one delivery spends.
const deliverBudget = time.Minute

// minRedeliver is the shortest wait of the outbox timer after a delivery
// (or the retry base, if shorter), so that a message still due after one
// (the budget ran out while pacing) never makes the timer spin.
const minRedeliver = time.Second

// deliver sends every due outbox message, notifier by notifier, in the
// order they were enqueued, and records each outcome as soon as the
// notifier reports it. A message that fails waits for its next-attempt
// time; the ones behind it in the same notifier wait with it, so order
// holds. A permanent failure is logged, counted and set aside. At the end
// it tells the outbox timer when the earliest waiting message is due.
func (w *Watcher) deliver(ctx context.Context, e *env, rep *Report) {
	// Pacing toward Slack and waiting out its rate limits can make a large
	// backlog take long; what is not sent within the budget stays due, in
	// order, for the outbox timer.
	ctx, cancel := context.WithTimeout(ctx, deliverBudget)
	defer cancel()
	ctx, stop := w.leaderContext(ctx)
	defer stop()
	for _, name := range e.notifier {
		n, ok := e.notifiers[name]
		if !ok {
			continue
		}
		if !w.leading() {
			return // the leader delivers
		}
		now := w.now().UTC()
		due, err := w.store.Due(name, now)
		if err != nil {
			w.log.Error("reading the outbox failed", "notifier", name, "err", err)
			continue
		}
		if len(due) == 0 {
			continue
		}
		pending := make([]notify.Pending, len(due))
		for i, m := range due {
			pending[i] = notify.Pending{Event: m.Event, Attempts: m.Attempts}
		}
		w.progress("delivering", 0, len(due))
		s := &settler{w: w, name: name, due: due, rep: rep, settled: make([]bool, len(due))}
		n.Notify(ctx, pending, s.settle)
		s.close()
	}
	if pending, dead, err := w.store.OutboxLen(); err == nil {
		rep.Undelivered = pending
		w.metrics.outbox(pending, dead)
	}
	w.outbox.set(w.nextDue(e))
}

// nextDue returns when the configured notifiers' outbox can next make
// progress; zero if nothing waits.
func (w *Watcher) nextDue(e *env) time.Time {
	var next time.Time
	for _, name := range e.notifier {
		at, ok, err := w.store.NextDue(name)
		if err != nil {
			// Try again once the longest backoff has passed rather than
			// forget the outbox.
			w.log.Error("reading the outbox failed", "notifier", name, "err", err)
			at, ok = w.now().Add(w.retryMax), true
		}
		if ok && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next
}

// redeliver is a delivery between cycles, run by the outbox timer. It
// holds the cycle's lock, so it never overlaps a cycle or its delivery,
// and lets the store go afterwards as a cycle does. A panic is logged and
// survived.
func (w *Watcher) redeliver(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readOnly || ctx.Err() != nil || !w.leading() {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("delivery panicked; the next cycle delivers", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		if err := w.store.Release(); err != nil {
			w.log.Warn("releasing the store failed", "err", err)
		}
	}()
	rep := &Report{}
	w.deliver(ctx, w.env.Load(), rep)
	level := slog.LevelDebug
	if rep.Delivered > 0 {
		level = slog.LevelInfo
	}
	w.log.Log(ctx, level, "outbox delivered between cycles", "delivered", rep.Delivered, "undelivered", rep.Undelivered)
}

// outboxTimer carries, from each delivery to Run, when the outbox is next
// due.
type outboxTimer struct {
	next    atomic.Int64  // unix nanoseconds; 0: nothing waits
	changed chan struct{} // capacity 1: next was set
}

func newOutboxTimer() *outboxTimer { return &outboxTimer{changed: make(chan struct{}, 1)} }

func (t *outboxTimer) set(next time.Time) {
	var ns int64
	if !next.IsZero() {
		ns = next.UnixNano()
	}
	t.next.Store(ns)
	select {
	case t.changed <- struct{}{}:
	default: // Run has not read the last one yet; it reads next then.
	}
}

// due returns the last time set; ok is false if nothing waits.
func (t *outboxTimer) due() (time.Time, bool) {
	ns := t.next.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// errNoOutcome stands for the outcome a notifier did not report.
var errNoOutcome = errors.New("not delivered")

// settler records in the outbox what became of one notifier's due
// messages, as the notifier reports it.
type settler struct {
	w    *Watcher
	name string
	due  []store.Message
	rep  *Report

	mu      sync.Mutex
	settled []bool
	closed  bool // Notify returned: later reports are ignored
}

// settle is the notify.Settle of a delivery: it records the outcome of
// due[from:to] at once, so a message sent is never sent again, even if the
// daemon dies before the notifier returns. A message already settled is
// not settled again.
func (s *settler) settle(from, to int, o notify.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	from, to = max(from, 0), min(to, len(s.due))
	for i := from; i < to; {
		if s.settled[i] {
			i++
			continue
		}
		j := i
		for j < to && !s.settled[j] {
			s.settled[j] = true
			j++
		}
		s.w.settleRun(s.name, s.due[i:j], o, s.rep)
		s.w.progress("delivering", j, len(s.due))
		i = j
	}
}

// close settles the messages the notifier did not report as not
// delivered, and ignores any later report.
func (s *settler) close() {
	s.settle(0, len(s.due), notify.Outcome{Err: errNoOutcome})
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// settleRun records one outcome shared by the messages ms.
func (w *Watcher) settleRun(name string, ms []store.Message, o notify.Outcome, rep *Report) {
	if o.Delivered() {
		ids := make([]uint64, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		if err := w.store.Delivered(ids...); err != nil {
			w.log.Error("marking messages delivered failed", "notifier", name, "err", err)
		}
		rep.Delivered += len(ms)
		w.metrics.notified(name, "delivered", len(ms))
		return
	}
	errText := o.Err.Error()
	if o.Permanent {
		w.log.Error("notification failed for good; set aside", "notifier", name, "messages", len(ms), "err", errText)
		for _, m := range ms {
			if err := w.store.Dead(m.ID, errText); err != nil {
				w.log.Error("marking a message dead failed", "notifier", name, "err", err)
			}
		}
		w.metrics.notified(name, "permanent_failure", len(ms))
		return
	}
	if errors.Is(o.Err, notify.ErrPaced) {
		// The delivery ended while waiting for our own pace toward Slack:
		// nothing was tried, so no attempt is counted; the messages stay
		// due, for the outbox timer.
		return
	}
	next := o.RetryAt
	if next.IsZero() {
		next = w.now().Add(backoff.Exp(w.retryBase, w.retryMax, ms[0].Attempts))
	}
	w.log.Warn("notification failed; will retry", "notifier", name, "messages", len(ms), "retry_at", next.UTC().Format(time.RFC3339), "err", errText)
	for _, m := range ms {
		if err := w.store.Failed(m.ID, next, errText); err != nil {
			w.log.Error("marking a message for retry failed", "notifier", name, "err", err)
		}
	}
	w.metrics.notified(name, "retry", len(ms))
}

// storeThreads keeps a bot notifier's incident threads in the store.
type storeThreads struct {
	st       *store.Store
	notifier string
}

func (t storeThreads) Thread(_ context.Context, k quota.InstanceKey) (notify.Thread, bool, error) {
	th, ok, err := t.st.Thread(t.notifier, k)
	return notify.Thread{Channel: th.Channel, TS: th.TS}, ok, err
}

func (t storeThreads) SetThread(_ context.Context, k quota.InstanceKey, th notify.Thread) error {
	return t.st.SetThread(t.notifier, k, store.Thread{Channel: th.Channel, TS: th.TS})
}
