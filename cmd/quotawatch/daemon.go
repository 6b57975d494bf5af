package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

func cmdValidate(_ context.Context, e *env) int {
	cfg := e.cfg
	fmt.Fprintf(e.out, "%s: OK (%d accounts, %d notifiers, %d rules, schedule %q)\n",
		cfg.File, len(cfg.Cloud.Accounts), len(cfg.Notifiers), len(cfg.Rules), cfg.Schedule)
	return exitOK
}

func (c *actCmd) run(ctx context.Context, e *env) int {
	cfg, log, sio := e.cfg, e.log, e.stdio
	logStartup(log, cfg, currentBuild())
	st, host, err := openToAct(e, log, c.takeover)
	if err != nil {
		log.Error("start failed", "err", err)
		return exitFailure
	}
	w, err := watcher.New(ctx, watcher.Options{Config: cfg, Logger: log, Registry: daemonRegistry(currentBuild()), Store: st})
	if err != nil {
		_ = st.Close()
		log.Error("start failed", "err", err)
		return exitFailure
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	tune := memoryTuner(sio.lookupEnv, log)
	var beforeBulk func()
	if tune != nil {
		beforeBulk = debug.FreeOSMemory
	}
	afterCycle := func() {
		if tune != nil {
			tune()
		}
		reclaim(st, host, stop, log)
	}
	path := e.configPath
	err = w.Run(ctx, watcher.RunOptions{
		Reload:           sio.hup,
		AfterCycle:       afterCycle,
		BeforeBulkRecord: beforeBulk,
		LoadConfig: func() (*config.Config, error) {
			return config.Load(path, config.Options{LookupEnv: sio.lookupEnv})
		},
	})
	// The store closes last, after the cycle and the HTTP server stopped.
	_ = w.Close()
	if cerr := st.Close(); cerr != nil {
		log.Error("closing the store failed", "err", cerr)
		return exitFailure
	}
	if cause := context.Cause(ctx); errors.Is(cause, store.ErrOtherHost) {
		log.Error("stopped: another host took the store over", "err", cause)
		return exitFailure
	}
	if err != nil {
		log.Error("stopped with errors", "err", err)
		return exitFailure
	}
	log.Info("stopped")
	return exitOK
}

// logStartup says what is starting: the build and the configuration's
// outline, so that a log shows which version ran with what, and whether
// it could move anything. It names no token or URL.
func logStartup(log *slog.Logger, cfg *config.Config, b buildInfo) {
	names := make([]string, 0, len(cfg.Notifiers))
	for _, n := range cfg.Notifiers {
		names = append(names, n.Name)
	}
	log.Info("starting", "version", b.Version, "revision", b.Revision, "go", b.GoVersion,
		"config", cfg.File, "accounts", len(cfg.Cloud.Accounts), "rules", len(cfg.Rules), "notifiers", names,
		"schedule", cfg.Schedule, "dry_run", cfg.DryRun, "store", cfg.Store.Path)
}

func (c *actCmd) once(ctx context.Context, e *env) int {
	cfg, sio := e.cfg, e.stdio
	if cfg.HA != nil {
		// A lone cycle outside the election could act beside the leader.
		return fail(sio, "once: %s configures ha, where only the elected leader acts: use run (or plan, which changes nothing)", cfg.File)
	}
	prog := startProgress(sio.errOut, sio.lookupEnv, "once", fmt.Sprintf("polling %d accounts", len(cfg.Cloud.Accounts)))
	defer prog.end()
	log := withProgress(e.log, prog)
	st, _, err := openToAct(e, log, c.takeover)
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer st.Close()
	w, err := watcher.New(ctx, watcher.Options{Config: cfg, Logger: log, Progress: prog.progressFunc(), Store: st})
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer w.Close()
	if err := w.Reconcile(ctx); err != nil {
		log.Error("reconciling interrupted moves failed", "err", err)
	}
	rep, err := w.Cycle(ctx)
	prog.end()
	if rep != nil {
		if perr := printReport(sio.out, rep, e.output, false, termWidth(sio.out, sio.lookupEnv)); perr != nil {
			return fail(sio, "%v", perr)
		}
	}
	if err != nil {
		return fail(sio, "%v", err)
	}
	if rep.Failed() {
		return exitFailure
	}
	return exitOK
}

func cmdPlan(ctx context.Context, e *env) int {
	cfg, sio := e.cfg, e.stdio
	prog := startProgress(sio.errOut, sio.lookupEnv, "plan", fmt.Sprintf("polling %d accounts", len(cfg.Cloud.Accounts)))
	defer prog.end()
	log := withProgress(e.log, prog)
	st, cleanup, err := openForPlan(cfg.Store.Path, log)
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer cleanup()
	w, err := watcher.New(ctx, watcher.Options{Config: cfg, Logger: log, ReadOnly: true, Store: st, Progress: prog.progressFunc()})
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer w.Close()
	rep, err := w.Cycle(ctx)
	prog.end()
	if err != nil {
		return fail(sio, "%v", err)
	}
	if err := printReport(sio.out, rep, e.output, true, termWidth(sio.out, sio.lookupEnv)); err != nil {
		return fail(sio, "%v", err)
	}
	if rep.Failed() {
		return exitFailure
	}
	return exitOK
}

// openForPlan opens the store read-only; before the first real cycle there
// is none yet, and plan must not create one, so an empty scratch store
// stands in for it.
func openForPlan(path string, log *slog.Logger) (*store.Store, func(), error) {
	// Anything at path, even what cannot be a store, is opened, so that
	// damage is reported, not planned around.
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		st, err := store.Open(path, store.Options{ReadOnly: true, Logger: log, LockTimeout: 30 * time.Second})
		if err != nil {
			return nil, nil, fmt.Errorf("open store: %w", err)
		}
		return st, func() { st.Close() }, nil
	}
	dir, err := os.MkdirTemp("", "quotawatch-plan-")
	if err != nil {
		return nil, nil, fmt.Errorf("scratch store: %w", err)
	}
	st, err := store.Open(filepath.Join(dir, "plan.db"), store.Options{Logger: log, NoSync: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("scratch store: %w", err)
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}

// printReport prints a cycle's report: the moves (planned, applied,
// refused) with before/after usage, then the events, the tables fitted to
// width (0: any).
func printReport(w io.Writer, rep *watcher.Report, format string, plan bool, width int) error {
	if format == "json" {
		if plan {
			return view.WriteJSON(w, planLines(rep))
		}
		return view.WriteJSON(w, rep)
	}
	for _, p := range rep.Polls {
		if !p.OK {
			fmt.Fprintf(w, "poll of account %s failed: %s\n", p.Account, p.Error)
		}
	}
	if len(rep.Plan) == 0 {
		if plan {
			fmt.Fprintln(w, "nothing to move")
		} else {
			fmt.Fprintln(w, "no moves")
		}
	} else if err := printPlan(w, rep.Plan, plan, width); err != nil {
		return err
	}
	if len(rep.Events) > 0 {
		fmt.Fprintln(w)
		return printEvents(w, rep.Events, width)
	}
	return nil
}
