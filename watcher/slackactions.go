package watcher

import (
	"context"
	"slices"
	"sync"

	"github.com/quotawatch/quotawatch/notify"
)

// serveSlackActions listens, through Slack's Socket Mode, for the Approve
// and Reject buttons of proposals, for every bot notifier with an
// app_token, until ctx ends or the returned stop is called (which waits
// for the decisions in progress). Only the notifier's approvers may
// decide; anyone else is refused, logged and told in the thread. The
// notifiers are those of the configuration at start-up.
func (w *Watcher) serveSlackActions(ctx context.Context) (stop func()) {
	e := w.env.Load()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, n := range e.cfg.Notifiers {
		s := n.Slack
		if !s.AppToken.IsSet() || !s.Token.IsSet() || s.AppToken.Unread() {
			continue
		}
		sm := notify.NewSocketMode(n.Name, s.AppToken.Reveal(), s.Token.Reveal(), s.APIURL, w.httpc, w.log)
		// No approvers listed: nobody may decide from this channel.
		approvers := append([]string{}, slices.Clone(s.Approvers)...)
		name := n.Name
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := sm.Run(ctx, func(ctx context.Context, p notify.Press) {
				op := OpReject
				if p.Approve {
					op = OpApprove
				}
				a, err := w.Decide(ctx, Decision{Op: op, ID: p.ID, By: p.User, Approvers: approvers})
				if err != nil {
					w.log.Warn("slack decision not carried out", "notifier", name, "op", op, "proposal", p.ID, "by", p.User, "err", err)
					return
				}
				w.log.Info("slack decision", "notifier", name, "op", op, "proposal", p.ID, "by", p.User, "state", a.State)
			})
			if err != nil && ctx.Err() == nil {
				w.log.Error("slack socket mode stopped; buttons do nothing until a restart", "notifier", name, "err", err)
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
