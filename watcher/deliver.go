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
		now := w.now().UTC()
		due, err := w.store.Due(name, now)
		if err != nil {
			w.log.Error("reading the outbox failed", "notifier", name, "err", err)
			continue
		}
		if len(due) == 0 {
			continue
		}
		if wh, ok := e.webhooks[name]; ok {
			w.deliverWebhook(ctx, name, wh, due, rep)
		} else if b, ok := e.bots[name]; ok {
			w.deliverBot(ctx, name, b, due, rep)
		}
	}
	if pending, dead, err := w.store.OutboxLen(); err == nil {
		rep.Undelivered = pending
		w.metrics.outbox(pending, dead)
	}
}

func (w *Watcher) deliverWebhook(ctx context.Context, name string, wh WebhookSender, due []store.Message, rep *Report) {
	events := make([]quota.Event, len(due))
	for i, m := range due {
		events[i] = m.Event
	}
	res := wh.Send(ctx, events, due[0].Attempts)
	n := min(max(res.Delivered, 0), len(due))
	w.settle(name, due[:n], due[n:], res, rep)
}

func (w *Watcher) deliverBot(ctx context.Context, name string, b BotSender, due []store.Message, rep *Report) {
	for i, m := range due {
		var th notify.Thread
		incident := m.Event.Key.Rule != ""
		if incident {
			t, ok, err := w.store.Thread(name, m.Event.Key)
			if err != nil {
				w.log.Error("reading the incident thread failed", "notifier", name, "err", err)
			} else if ok {
				th = notify.Thread{Channel: t.Channel, TS: t.TS}
			}
		}
		res := b.Send(ctx, m.Event, th, m.Attempts)
		if res.Delivered > 0 {
			if incident && res.Thread.TS != "" && res.Thread != th {
				if err := w.store.SetThread(name, m.Event.Key, store.Thread{Channel: res.Thread.Channel, TS: res.Thread.TS}); err != nil {
					w.log.Error("saving the incident thread failed", "notifier", name, "err", err)
				}
			}
			w.settle(name, due[i:i+1], nil, res, rep)
			continue
		}
		if res.Permanent {
			// This message can never go; the next ones may.
			w.settle(name, nil, due[i:i+1], res, rep)
			continue
		}
		w.settle(name, nil, due[i:], res, rep)
		return
	}
}

// settle records a delivery attempt's outcome in the outbox.
func (w *Watcher) settle(name string, sent, unsent []store.Message, res notify.Result, rep *Report) {
	if len(sent) > 0 {
		ids := make([]uint64, len(sent))
		for i, m := range sent {
			ids[i] = m.ID
		}
		if err := w.store.Delivered(ids...); err != nil {
			w.log.Error("marking messages delivered failed", "notifier", name, "err", err)
		}
		rep.Delivered += len(sent)
		w.metrics.notified(name, "delivered", len(sent))
	}
	if len(unsent) == 0 {
		return
	}
	errText := "not delivered"
	if res.Err != nil {
		errText = res.Err.Error()
	}
	if res.Permanent {
		w.log.Error("notification failed for good; set aside", "notifier", name, "messages", len(unsent), "err", errText)
		for _, m := range unsent {
			if err := w.store.Dead(m.ID, errText); err != nil {
				w.log.Error("marking a message dead failed", "notifier", name, "err", err)
			}
		}
		w.metrics.notified(name, "permanent_failure", len(unsent))
		return
	}
	var ne *notify.Error
	if errors.As(res.Err, &ne) && ne.Op == "pace" {
		// The cycle ended while waiting for our own pace toward Slack:
		// nothing was tried, so no attempt is counted; the messages stay due.
		return
	}
	next := res.RetryAt
	if next.IsZero() {
		next = w.now().Add(notify.Backoff(unsent[0].Attempts))
	}
	w.log.Warn("notification failed; will retry", "notifier", name, "messages", len(unsent), "retry_at", next.UTC().Format(time.RFC3339), "err", errText)
	for _, m := range unsent {
		if err := w.store.Failed(m.ID, next, errText); err != nil {
			w.log.Error("marking a message for retry failed", "notifier", name, "err", err)
		}
	}
	w.metrics.notified(name, "retry", len(unsent))
}
