package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/ha"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// Coordinator decides, with ha, which instance acts: only the leader
// decides, moves, delivers and answers approvals and control requests;
// every instance polls and records its own history.
type Coordinator interface {
	// Leading reports whether this instance may act now.
	Leading() bool
	Status() ha.Status
	// Run takes part in the election until ctx ends.
	Run(ctx context.Context, h ha.Hooks)
	// Mirror shares the store's decisions; the store calls it.
	Mirror(ops []store.Op, seq store.Sequences) error
	Close() error
}

var _ Coordinator = (*ha.Node)(nil)

// ErrFollower: a request only the leader carries out reached a follower.
var ErrFollower = errors.New("this instance follows")

// leading reports whether this instance may decide and act.
func (w *Watcher) leading() bool { return w.coord == nil || w.coord.Leading() }

// followerError says who leads, for a refused request.
func (w *Watcher) followerError() error {
	st := w.coord.Status()
	if st.LeaderKnown && st.Leader.ID != w.self.ID {
		return fmt.Errorf("%w: the leader is %s; ask it", ErrFollower, st.Leader)
	}
	return fmt.Errorf("%w and no leader is known right now; try again in a lease TTL", ErrFollower)
}

// newCoordinator joins the election the configuration asks for, if any.
func (w *Watcher) newCoordinator(o Options) error {
	cfg := o.Config
	if cfg.HA == nil || o.ReadOnly {
		return nil
	}
	host, _ := os.Hostname()
	w.self = ha.Member{ID: fmt.Sprintf("%s/%d", host, os.Getpid()), Host: host, PID: os.Getpid(),
		URL: cfg.HTTP.ExternalURL, Since: time.Now().UTC()}
	if o.Member != nil {
		w.self = *o.Member
	}
	if o.NewCoordinator != nil {
		c, err := o.NewCoordinator(w.self, w.store)
		if err != nil {
			return err
		}
		w.coord = c
	} else {
		hc, err := haConfig(cfg, w.self, w.log, func() time.Duration { return journalWindow(w.env.Load()) })
		if err != nil {
			return err
		}
		n, err := ha.New(hc, sharedStore{w})
		if err != nil {
			return err
		}
		w.coord = n
	}
	w.store.SetMirror(w.coord)
	w.takeovers = make(chan struct{}, 1)
	w.registerHA()
	return nil
}

// journalWindow is how far back settled moves matter to a successor: the
// no-return window, the longest cooldown, the settle window.
func journalWindow(e *env) time.Duration {
	if e == nil {
		return rules.BackMoveWindow
	}
	return max(rules.BackMoveWindow, maxCooldown(e), e.cfg.SettleWindow)
}

// registerHA adds the election's metrics.
func (w *Watcher) registerHA() {
	c := w.coord
	w.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quotawatch_ha_leader", Help: "1 if this instance leads (decides, moves, notifies), else 0.",
		}, func() float64 {
			if c.Leading() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quotawatch_ha_term", Help: "The current leader's term (its election key's etcd revision); 0 while none is known.",
		}, func() float64 { return float64(c.Status().Term) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quotawatch_ha_leader_changes_total", Help: "Leader changes this instance has seen.",
		}, func() float64 { return float64(c.Status().Changes) }),
	)
}

// runCoordinator takes part in the election for Run; takeovers is told
// when this instance has taken the lead, so Run starts a cycle at once.
// Its context is not Run's: the lead is given up only once Run stopped
// (stop), so that a move in flight at a stop is recorded and shared
// before another instance may act.
func (w *Watcher) runCoordinator(ctx context.Context) (stop func()) {
	if w.coord == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.coord.Run(ctx, ha.Hooks{Elected: w.takeLead, Leading: w.leads, Deposed: w.deposed})
	}()
	return func() {
		cancel()
		<-done
	}
}

// takeLead runs once this instance won the election. With the cycle's lock
// held, so that no cycle, delivery or decision begun before the term
// writes in it, it has the shared state loaded into the store and takes it
// in as if starting anew (rule states, account states; open moves are
// reconciled first), and tells of the takeover.
func (w *Watcher) takeLead(load func() (ha.Takeover, error)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() {
		if err := w.store.Release(); err != nil {
			w.log.Warn("releasing the store failed", "err", err)
		}
	}()
	t, err := load()
	if err != nil {
		w.log.Error("taking the lead failed: the shared state could not be loaded", "err", err)
		return err
	}
	if err := w.loadState(); err != nil {
		w.log.Error("taking the lead failed: the shared state could not be read back", "err", err)
		return err
	}
	w.unsettled = true
	w.refreshSilences()
	prev := "none"
	if t.HasPrev {
		prev = t.Prev.String()
	}
	w.log.Warn("this instance now leads", "self", t.Self.String(), "previous", prev, "term", t.Term)
	if t.HasPrev && t.Prev.ID != t.Self.ID {
		e := w.env.Load()
		ev := quota.Event{Kind: quota.EventTakeover, Time: w.now().UTC(),
			Reason: fmt.Sprintf("%s took over from %s (term %d)", t.Self.ID, t.Prev.ID, t.Term)}
		if err := w.store.Commit(&store.Batch{Time: ev.Time, Outbox: w.fanout(e, []quota.Event{ev})}); err != nil {
			w.log.Error("recording the takeover message failed", "err", err)
		}
	}
	return nil
}

// leads runs once this instance may act: Slack's buttons are answered
// here from now on, and a cycle runs at once.
func (w *Watcher) leads() {
	w.slackLeader(true)
	select {
	case w.takeovers <- struct{}{}:
	default:
	}
}

// deposed runs when this instance stops leading: it keeps polling.
func (w *Watcher) deposed(reason string) {
	w.log.Warn("this instance no longer leads; it goes on polling", "reason", reason)
	w.slackLeader(false)
}

// leaderContext is ctx, ended as soon as this instance no longer leads
// (its fence closed), so a delivery stops sending then.
func (w *Watcher) leaderContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if w.coord == nil {
		return ctx, cancel
	}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !w.coord.Leading() {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// followCycle is a follower's cycle after its poll: the history only.
func (w *Watcher) followCycle(now time.Time, snaps []quota.Snapshot) error {
	w.metrics.setQuotas(snaps)
	batch := &store.Batch{Time: now, Snapshots: snaps, Projects: w.names.drain()}
	w.beforeRecord(snaps)
	if err := w.store.Commit(batch); err != nil {
		w.names.redo(batch.Projects)
		return fmt.Errorf("record history: %w", err)
	}
	return nil
}

// slackLeader starts (on) or stops the Socket Mode listeners, which only
// the leader runs.
func (w *Watcher) slackLeader(on bool) {
	w.slack.mu.Lock()
	defer w.slack.mu.Unlock()
	if w.slack.stop != nil {
		w.slack.stop()
		w.slack.stop = nil
	}
	if on && w.slack.ctx != nil && w.slack.ctx.Err() == nil {
		w.slack.stop = w.serveSlackActions(w.slack.ctx)
	}
}

// haLine is the status page's account of the election; empty without ha.
func (w *Watcher) haLine() string {
	if w.coord == nil {
		return ""
	}
	st := w.coord.Status()
	switch {
	case st.Leading:
		return fmt.Sprintf("leader: this instance, %s (term %d)", w.self.ID, st.Term)
	case st.LeaderKnown && st.Leader.ID != w.self.ID:
		return fmt.Sprintf("follower (%s); leader: %s (term %d)", w.self.ID, st.Leader, st.Term)
	}
	return fmt.Sprintf("follower (%s); no leader right now", w.self.ID)
}

// HAStatus is /api/v1/ha.
type HAStatus struct {
	Enabled bool       `json:"enabled"`
	Leading bool       `json:"leading"`
	Self    *ha.Member `json:"self,omitempty"`
	Leader  *ha.Member `json:"leader,omitempty"`
	Term    int64      `json:"term"`
	Changes uint64     `json:"leader_changes"`
}

// HA reports the election as this instance sees it.
func (w *Watcher) HA() HAStatus {
	if w.coord == nil {
		return HAStatus{}
	}
	st := w.coord.Status()
	out := HAStatus{Enabled: true, Leading: st.Leading, Self: &w.self, Term: st.Term, Changes: st.Changes}
	if st.LeaderKnown {
		out.Leader = &st.Leader
	}
	return out
}

// errNoLeaderHere refuses a change made beside the daemon: with ha only
// the leader's daemon may write the shared state.
func errNoLeaderHere(storePath string) error {
	return fmt.Errorf("%w: no quotawatch run answers on %s, and with ha only the leader's daemon records decisions: run this where the leader runs (its status page names it)",
		ErrFollower, ControlSocket(storePath))
}

// sharedStore is the store as the election's follower writes to it: after
// taking in what the leader shared, it lets go of the file as a cycle does
// (unless one runs), so read-only commands can open it.
type sharedStore struct{ w *Watcher }

func (s sharedStore) SharedState() (store.SharedState, error) { return s.w.store.SharedState() }

func (s sharedStore) ApplyShared(ups []store.SharedUpdate, seq store.Sequences) error {
	err := s.w.store.ApplyShared(ups, seq)
	s.w.letGoIdle()
	return err
}

// haConfig is the election's configuration from ha.etcd.
func haConfig(cfg *config.Config, self ha.Member, log *slog.Logger, window func() time.Duration) (ha.Config, error) {
	e := cfg.HA.Etcd
	tc, err := e.TLS()
	if err != nil {
		return ha.Config{}, fmt.Errorf("etcd TLS: %w", err)
	}
	return ha.Config{Endpoints: e.Endpoints, TLS: tc, Prefix: e.Prefix, TTL: e.LeaseTTL, Self: self,
		Logger: log.With("component", "ha"), JournalWindow: window}, nil
}
