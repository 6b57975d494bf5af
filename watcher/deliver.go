package watcher

import (
	"context"
	"errors"
	"time"

	"github.com/quotawatch/quotawatch/notify"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

// deliverBudget bounds the time a cycle spends delivering notifications.
const deliverBudget = time.Minute

// deliver sends every due outbox message, notifier by notifier, in the
// order they were enqueued. A message that fails waits for its next-attempt
// time; the ones behind it in the same notifier wait with it, so order
// holds. A permanent failure is logged, counted and set aside.
func (w *Watcher) deliver(ctx context.Context, e *env, rep *Report) {
	// Pacing toward Slack can make a large backlog take long; what is not
	// sent within the budget stays due for the next cycle, in order.
	ctx, cancel := context.WithTimeout(ctx, deliverBudget)
	defer cancel()
	for _, name := range e.notifier {
		n, ok := e.notifiers[name]
		if !ok {
			continue
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
		w.settle(name, due, n.Notify(ctx, pending), rep)
	}
	if pending, dead, err := w.store.OutboxLen(); err == nil {
		rep.Undelivered = pending
		w.metrics.outbox(pending, dead)
	}
}

// errNoOutcome stands for the outcome a notifier did not return.
var errNoOutcome = errors.New("not delivered")

// settle records in the outbox what became of the due messages. Runs of
// messages with the same outcome are recorded (and logged) together.
func (w *Watcher) settle(name string, due []store.Message, outs []notify.Outcome, rep *Report) {
	outcome := func(i int) notify.Outcome {
		if i < len(outs) {
			return outs[i]
		}
		return notify.Outcome{Err: errNoOutcome}
	}
	for i := 0; i < len(due); {
		o := outcome(i)
		j := i + 1
		for j < len(due) && sameOutcome(o, outcome(j)) {
			j++
		}
		w.settleRun(name, due[i:j], o, rep)
		i = j
	}
}

func sameOutcome(a, b notify.Outcome) bool {
	if a.Delivered() || b.Delivered() {
		return a.Delivered() == b.Delivered()
	}
	// Error texts, not values: an error's dynamic type may not be
	// comparable.
	return a.Permanent == b.Permanent && a.RetryAt.Equal(b.RetryAt) && a.Err.Error() == b.Err.Error()
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
		// The cycle ended while waiting for our own pace toward Slack:
		// nothing was tried, so no attempt is counted; the messages stay due.
		return
	}
	next := o.RetryAt
	if next.IsZero() {
		next = w.now().Add(notify.Backoff(ms[0].Attempts))
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
