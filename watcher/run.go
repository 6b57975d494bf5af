package watcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/robfig/cron/v3"

	"github.com/quotawatch/quotawatch/config"
)

// shutdownTimeout bounds how long stopping may take once asked.
const shutdownTimeout = 10 * time.Second

// RunOptions are the daemon's ties to the operating system.
type RunOptions struct {
	// Reload delivers reload requests (SIGHUP).
	Reload <-chan struct{}
	// LoadConfig reads and validates the configuration again on reload.
	LoadConfig func() (*config.Config, error)
	// Notify sends a systemd notification; nil means sd_notify, which does
	// nothing outside systemd.
	Notify func(state string) error
	// Watchdog is the systemd watchdog interval; 0 asks systemd (WATCHDOG_USEC).
	Watchdog time.Duration
	// Listening, if set, is told the HTTP address once it is bound.
	Listening func(addr string)
	// AfterCycle, if set, runs after every cycle (the daemon tunes its
	// memory limit there).
	AfterCycle func()
	// BeforeBulkRecord, if set, runs before a cycle records more new
	// series than the store held, and at least 10,000 (its entries are
	// more than twice the series known plus 10,000: the first cycle into
	// an empty store): the daemon hands the cycle's garbage back then, as
	// that write is the largest of its life.
	BeforeBulkRecord func()
}

// cycleState is what the watchdog and the health endpoint look at.
type cycleState struct {
	running atomic.Bool
	started atomic.Int64 // unix nanos of the running cycle's start
	ready   atomic.Bool
	alive   atomic.Int64 // unix nanos of the main loop's last turn
}

// Run is the daemon: it reconciles interrupted moves, runs the first cycle
// at once, then one per schedule tick (never overlapping), delivers the
// outbox between cycles when a failed message is due again, reloads the
// configuration on request, serves HTTP, and talks to systemd. It returns
// when ctx is cancelled, after a bounded shutdown.
func (w *Watcher) Run(ctx context.Context, ro RunOptions) error {
	w.beforeBulk = ro.BeforeBulkRecord
	notifyFn := ro.Notify
	if notifyFn == nil {
		notifyFn = func(state string) error {
			_, err := daemon.SdNotify(false, state)
			return err
		}
	}
	sd := func(state string) {
		if err := notifyFn(state); err != nil {
			w.log.Warn("systemd notification failed", "state", state, "err", err)
		}
	}
	cs := &cycleState{}
	cs.alive.Store(time.Now().UnixNano())

	cfg := w.env.Load().cfg

	var srv *http.Server
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
		}
		srv = &http.Server{Handler: w.Handler(cs), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				w.log.Error("http server stopped", "err", err)
			}
		}()
		w.log.Info("serving http", "addr", ln.Addr().String())
		if ro.Listening != nil {
			ro.Listening(ln.Addr().String())
		}
	}

	stopControl := w.serveControl(ctx)
	defer stopControl()
	if w.coord == nil {
		defer w.serveSlackActions(ctx)()
	} else {
		// Only the leader answers Slack's buttons: a follower's connection
		// would take presses it must refuse.
		w.slack.ctx = ctx
		defer w.slackLeader(false)
		defer w.runCoordinator(ctx)()
	}

	if err := w.Reconcile(ctx); err != nil {
		w.log.Error("reconciling interrupted moves failed", "err", err)
	}

	cycleCtx, cancelCycles := context.WithCancel(ctx)
	defer cancelCycles()
	damaged := make(chan error, 1) // the store's damage, once a cycle met it
	job := cron.FuncJob(func() {
		if status := w.safeCycle(cycleCtx, cs); status != "" {
			sd("STATUS=" + status)
		}
		if err := w.store.Damaged(); err != nil {
			select {
			case damaged <- err:
			default:
			}
		}
		if ro.AfterCycle != nil {
			ro.AfterCycle()
		}
	})

	// The first cycle runs at start-up, not one interval later.
	job.Run()
	cs.ready.Store(true)
	sd(daemon.SdNotifyReady)

	logger := cronLogger{w.log}
	sched := cron.New(
		cron.WithLocation(time.UTC),
		cron.WithLogger(logger),
		// Skip must wrap Recover: a panic unwinding through Skip would
		// lose its token and stop every later cycle.
		cron.WithChain(cron.SkipIfStillRunning(logger), cron.Recover(logger)),
	)
	spec, err := cfg.CronSchedule()
	if err != nil {
		return fmt.Errorf("schedule %q: %w", cfg.Schedule, err)
	}
	id := sched.Schedule(spec, job)
	sched.Start()

	wd := ro.Watchdog
	if wd == 0 {
		wd, _ = daemon.SdWatchdogEnabled(false)
	}
	var wdTick <-chan time.Time
	if wd > 0 {
		t := time.NewTicker(wd / 3)
		defer t.Stop()
		wdTick = t.C
	}
	alive := time.NewTicker(time.Second)
	defer alive.Stop()

	// The outbox timer: every delivery (a cycle's or the timer's own) says
	// when the outbox is next due, and the timer delivers then, whatever
	// the schedule. One timer delivery runs at a time; it takes the
	// cycle's lock, so it never overlaps a cycle either.
	var (
		due        = time.NewTimer(time.Hour)
		dueC       <-chan time.Time
		delivering bool
		missed     bool // the timer fired while a delivery ran
		delivered  = make(chan struct{}, 1)
		deliveries sync.WaitGroup
	)
	due.Stop()
	defer due.Stop()
	floor := min(minRedeliver, w.retryBase)
	arm := func() {
		due.Stop()
		dueC = nil
		if next, ok := w.outbox.due(); ok {
			due.Reset(max(next.Sub(w.now()), floor))
			dueC = due.C
		}
	}

	for {
		select {
		case <-ctx.Done():
			sd(daemon.SdNotifyStopping)
			w.log.Info("stopping")
			return w.shutdown(sched, srv, cancelCycles, &deliveries)
		case err := <-damaged:
			// Every later cycle would fail the same way: stop, and let the
			// operator restore the store.
			sd(daemon.SdNotifyStopping)
			w.log.Error("the store is damaged; stopping", "err", err)
			return errors.Join(err, w.shutdown(sched, srv, cancelCycles, &deliveries))
		case <-w.outbox.changed:
			arm()
		case <-w.takeovers:
			// A takeover runs a cycle at once: open moves are read back,
			// the outbox is delivered, and firing rules act.
			deliveries.Add(1)
			go func() {
				defer deliveries.Done()
				job.Run()
			}()
		case <-dueC:
			dueC = nil
			if delivering {
				missed = true
				continue
			}
			delivering = true
			deliveries.Add(1)
			go func() {
				defer deliveries.Done()
				w.redeliver(cycleCtx)
				delivered <- struct{}{}
			}()
		case <-delivered:
			delivering = false
			if missed {
				missed = false
				arm()
			}
		case <-ro.Reload:
			sd(daemon.SdNotifyReloading)
			id = w.reload(ro, sched, id, job)
			sd(daemon.SdNotifyReady)
		case <-wdTick:
			// Alive means this loop turns and no cycle is stuck: a cycle
			// longer than an hour is a hang that a restart can fix.
			if !cs.running.Load() || time.Since(time.Unix(0, cs.started.Load())) < time.Hour {
				sd(daemon.SdNotifyWatchdog)
			}
		case <-alive.C:
			cs.alive.Store(time.Now().UnixNano())
		}
	}
}

// safeCycle runs a cycle and survives its panic. It returns the status line
// for systemd, empty when no cycle ran.
func (w *Watcher) safeCycle(ctx context.Context, cs *cycleState) (status string) {
	if ctx.Err() != nil {
		return ""
	}
	cs.started.Store(time.Now().UnixNano())
	cs.running.Store(true)
	defer cs.running.Store(false)
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("cycle panicked; the next cycle will run", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			w.metrics.cycles.WithLabelValues("panic").Inc()
			status = "last cycle panicked; see the log"
		}
	}()
	rep, err := w.Cycle(ctx)
	if err != nil {
		w.log.Error("cycle failed", "err", err)
		return "last cycle failed: " + err.Error()
	}
	moved, skipped := 0, 0
	for _, r := range rep.Plan {
		if r.Skipped {
			skipped++
		} else {
			moved++
		}
	}
	w.log.Info("cycle done", "duration", rep.End.Sub(rep.Start).String(), "events", len(rep.Events),
		"moves", moved, "skipped", skipped, "undelivered", rep.Undelivered)
	return w.cycleStatus(rep)
}

// reload parses and validates the configuration anew, then swaps it in;
// on failure the running configuration stays.
func (w *Watcher) reload(ro RunOptions, sched *cron.Cron, id cron.EntryID, job cron.Job) cron.EntryID {
	if ro.LoadConfig == nil {
		return id
	}
	now := time.Now()
	cfg, err := ro.LoadConfig()
	var spec cron.Schedule
	if err == nil {
		// Everything that can fail comes before the swap.
		spec, err = cfg.CronSchedule()
	}
	if err == nil {
		old := w.env.Load().cfg
		if cfg.Store.Path != old.Store.Path || cfg.HTTP.Listen != old.HTTP.Listen {
			w.log.Warn("store.path and http.listen changes take effect at the next restart",
				"store_path", old.Store.Path, "http_listen", old.HTTP.Listen)
		}
		if (cfg.HA == nil) != (old.HA == nil) || (cfg.HA != nil && !slices.Equal(cfg.HA.Etcd.Endpoints, old.HA.Etcd.Endpoints)) ||
			(cfg.HA != nil && (cfg.HA.Etcd.Prefix != old.HA.Etcd.Prefix || cfg.HA.Etcd.LeaseTTL != old.HA.Etcd.LeaseTTL)) {
			w.log.Warn("ha changes take effect at the next restart")
		}
		err = w.Reload(cfg)
	}
	if err != nil {
		w.metrics.reloaded(false, now)
		w.log.Error("reload failed; keeping the running configuration", "err", err)
		return id
	}
	sched.Remove(id)
	nid := sched.Schedule(spec, job)
	w.metrics.reloaded(true, now)
	w.log.Info("configuration reloaded", "rules", len(cfg.Rules), "schedule", cfg.Schedule)
	return nid
}

// shutdown stops the schedule, cancels the running cycle's API calls and
// any delivery between cycles, waits for them to record what they did, and
// stops the HTTP server, all within shutdownTimeout. A reassign already
// sent is not cancelled: it has moveStopGrace to finish and be read back,
// and no other is begun. The store is closed by the caller, last.
func (w *Watcher) shutdown(sched *cron.Cron, srv *http.Server, cancel context.CancelFunc, deliveries *sync.WaitGroup) error {
	deadline := time.NewTimer(shutdownTimeout)
	defer deadline.Stop()
	stopped := sched.Stop()
	cancel()
	idle := make(chan struct{})
	go func() {
		<-stopped.Done()
		deliveries.Wait()
		close(idle)
	}()
	var errs []error
	select {
	case <-idle:
	case <-deadline.C:
		errs = append(errs, errors.New("the running cycle or delivery did not finish in time"))
	}
	if srv != nil {
		ctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	return errors.Join(errs...)
}

// cronLogger adapts slog to cron.Logger.
type cronLogger struct {
	l interface {
		Debug(msg string, args ...any)
		Error(msg string, args ...any)
	}
}

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
