package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/watcher"
)

// common are the flags of the commands that read the configuration.
type common struct {
	config string
	log    logFlags
	output string
}

func (c *common) register(fs *flag.FlagSet, output bool) {
	fs.StringVar(&c.config, "config", "", "configuration file (required)")
	c.log.register(fs)
	if output {
		fs.StringVar(&c.output, "output", "text", "output format: text or json")
	}
}

// setup parses a command's flags (the common ones plus those extra
// registers), checks that exactly nargs positional arguments follow, builds
// the logger and loads the configuration. A non-zero code means the
// command must exit with it.
func (c *common) setup(name, usage string, sio *stdio, args []string, output bool, nargs int,
	extra func(*flag.FlagSet)) (*config.Config, *slog.Logger, []string, int) {
	fs := newFlagSet(name, " --config FILE"+usage)
	c.register(fs, output)
	if extra != nil {
		extra(fs)
	}
	rest, code, ok := parseFlags(fs, sio, args)
	if !ok {
		return nil, nil, nil, code
	}
	switch {
	case len(rest) > nargs:
		return nil, nil, nil, usageErr(sio, "%s: unexpected argument %q", name, rest[nargs])
	case len(rest) < nargs:
		return nil, nil, nil, usageErr(sio, "%s: want %d argument(s) after the flags, got %d", name, nargs, len(rest))
	case c.config == "":
		return nil, nil, nil, usageErr(sio, "%s: --config FILE is required", name)
	case output && c.output != "text" && c.output != "json":
		return nil, nil, nil, usageErr(sio, "--output %q: want text or json", c.output)
	}
	log, err := c.log.logger(sio.errOut)
	if err != nil {
		return nil, nil, nil, usageErr(sio, "%v", err)
	}
	cfg, err := config.Load(c.config, config.Options{LookupEnv: sio.lookupEnv})
	if err != nil {
		fmt.Fprintln(sio.errOut, err)
		return nil, nil, nil, exitUsage
	}
	return cfg, log, rest, 0
}

func cmdValidate(_ context.Context, sio *stdio, args []string) int {
	var c common
	cfg, _, _, code := c.setup("validate", "", sio, args, false, 0, nil)
	if code != 0 {
		return code
	}
	fmt.Fprintf(sio.out, "%s: OK (%d accounts, %d notifiers, %d rules, schedule %q)\n",
		cfg.File, len(cfg.Cloud.Accounts), len(cfg.Notifiers), len(cfg.Rules), cfg.Schedule)
	return exitOK
}

func cmdRun(ctx context.Context, sio *stdio, args []string) int {
	var c common
	cfg, log, _, code := c.setup("run", "", sio, args, false, 0, nil)
	if code != 0 {
		return code
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w, err := watcher.New(ctx, watcher.Options{Config: cfg, Logger: log, Registry: reg})
	if err != nil {
		log.Error("start failed", "err", err)
		return exitFailure
	}
	path := c.config
	err = w.Run(ctx, watcher.RunOptions{
		Reload:     sio.hup,
		AfterCycle: memoryTuner(sio.lookupEnv),
		LoadConfig: func() (*config.Config, error) {
			return config.Load(path, config.Options{LookupEnv: sio.lookupEnv})
		},
	})
	// The store closes last, after the cycle and the HTTP server stopped.
	if cerr := w.Close(); cerr != nil {
		log.Error("closing the store failed", "err", cerr)
		return exitFailure
	}
	if err != nil {
		log.Error("stopped with errors", "err", err)
		return exitFailure
	}
	log.Info("stopped")
	return exitOK
}

func cmdOnce(ctx context.Context, sio *stdio, args []string) int {
	var c common
	cfg, log, _, code := c.setup("once", "", sio, args, true, 0, nil)
	if code != 0 {
		return code
	}
	w, err := watcher.New(ctx, watcher.Options{Config: cfg, Logger: log})
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer w.Close()
	if err := w.Reconcile(ctx); err != nil {
		log.Error("reconciling interrupted moves failed", "err", err)
	}
	rep, err := w.Cycle(ctx)
	if rep != nil {
		if perr := printReport(sio.out, rep, c.output, false); perr != nil {
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

func cmdPlan(ctx context.Context, sio *stdio, args []string) int {
	var c common
	cfg, log, _, code := c.setup("plan", "", sio, args, true, 0, nil)
	if code != 0 {
		return code
	}
	st, cleanup, err := openForPlan(cfg.Store.Path, log)
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer cleanup()
	w, err := watcher.New(ctx, watcher.Options{Config: cfg, Logger: log, ReadOnly: true, Store: st})
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer w.Close()
	rep, err := w.Cycle(ctx)
	if err != nil {
		return fail(sio, "%v", err)
	}
	if err := printReport(sio.out, rep, c.output, true); err != nil {
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
	if _, err := os.Stat(path); err == nil {
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
// refused) with before/after usage, then the events.
func printReport(w io.Writer, rep *watcher.Report, format string, plan bool) error {
	if format == "json" {
		rows := rep.Plan
		if rows == nil {
			rows = []watcher.PlanRow{}
		}
		if plan {
			return writeJSON(w, rows)
		}
		return writeJSON(w, rep)
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
	} else {
		printPlan(w, rep.Plan, plan)
	}
	if len(rep.Events) > 0 {
		fmt.Fprintln(w)
		printEvents(w, rep.Events)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
