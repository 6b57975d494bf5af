// Command quotawatch watches the quotas of a Synnefo cloud and acts on them.
// See the README for the commands; `quotawatch help` lists them.
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/grpclog"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/watcher"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // bad configuration or bad usage
)

// stdio is where a command reads and writes; tests pass buffers.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
	// hup delivers SIGHUP to `run`; nil outside the real process.
	hup <-chan struct{}
	// lookupEnv reads the environment (config secrets, systemd variables).
	lookupEnv func(string) (string, bool)
	// now is the clock the read-only commands measure --since from.
	now func() time.Time
	// hostID names this host to the store (localHostID).
	hostID func() (string, error)
}

// command is one subcommand: what it takes, and what it runs once that is
// parsed and checked.
type command struct {
	name    string
	summary string // one line, for the command listing
	args    string // what follows the flags in the usage line, e.g. "OUT"
	// config commands read the configuration: they take --config FILE and
	// the log flags, and run with the configuration loaded.
	config bool
	// noSecrets config commands load their configuration without reading
	// secrets, so they run from a shell without the daemon's credentials:
	// the read-only ones, and those that ask the running daemon (which
	// load the secrets only when no daemon answers).
	noSecrets bool
	// logs commands take the log flags without a configuration.
	logs bool
	// logLevel is the default of --log-level; empty is info.
	logLevel string
	// output commands take --output text|json.
	output bool
	// nargs is how many positional arguments follow the flags; with
	// variadic, the least number of them.
	nargs    int
	variadic bool
	// flags registers the command's own flags, if it has any.
	flags func(*flag.FlagSet)
	run   func(ctx context.Context, e *env) int
}

// env is what a command runs with.
type env struct {
	*stdio
	configPath string
	cfg        *config.Config // config commands only
	log        *slog.Logger   // config and logs commands only
	output     string         // "text" or "json"
	args       []string       // the positional arguments
}

// commands is the command table, in the order `quotawatch help` lists it.
// It is built per call: the flag values of a command live in it.
func commands() []command {
	var (
		stat statusCmd
		hist historyCmd
		acts actionsCmd
		sil  silenceAddCmd
		appr = decideCmd{op: watcher.OpApprove}
		rej  = decideCmd{op: watcher.OpReject}
		undo = decideCmd{op: watcher.OpUndo}
		bak  backupCmd
		sim  simCmd
		demo demoCmd
		bt   backtestCmd
		rn   actCmd
		once actCmd
	)
	return []command{
		{name: "run", summary: "run the daemon (systemd runs this)", config: true, flags: rn.flags, run: rn.run},
		{name: "once", summary: "run one cycle, then exit", config: true, output: true, flags: once.flags, run: once.once},
		{name: "plan", summary: "run one cycle in dry-run and print what would happen; changes nothing",
			config: true, output: true, run: cmdPlan},
		{name: "validate", summary: "load and check the configuration and rules", config: true, run: cmdValidate},
		{name: "status", summary: "rule states and current quotas from the store, fullest first",
			args: "[--project P] [--rule R] [--state S] [--account A] [--top N]", config: true, noSecrets: true, output: true, flags: stat.flags, run: stat.run},
		{name: "history", summary: "the history of quota series", args: "[--project P] [--resource R] [--account A] [--since 7d]",
			config: true, noSecrets: true, output: true, flags: hist.flags, run: hist.run},
		{name: "actions", summary: "the action journal", args: "[--since 7d]",
			config: true, noSecrets: true, output: true, flags: acts.flags, run: acts.run},
		{name: "silence add", summary: "silence matching incidents: no message, no action, still recorded",
			args: "[--rule R] [--project P] [--resource R] --for 2h --comment TEXT", config: true, noSecrets: true, flags: sil.flags, run: sil.run},
		{name: "silence list", summary: "the silences, active and ended", config: true, noSecrets: true, output: true, run: cmdSilenceList},
		{name: "silence expire", summary: "end a silence now", args: "ID", config: true, noSecrets: true, nargs: 1, run: cmdSilenceExpire},
		{name: "proposals", summary: "the proposed moves waiting for approval", config: true, noSecrets: true, output: true, run: cmdProposals},
		{name: "approve", summary: "approve a proposal: planned again on a fresh poll, applied if it still holds", args: "ID [--comment TEXT]",
			config: true, noSecrets: true, nargs: 1, variadic: true, flags: appr.flags, run: appr.run},
		{name: "reject", summary: "reject a proposal: nothing moves", args: "ID [--comment TEXT]",
			config: true, noSecrets: true, nargs: 1, variadic: true, flags: rej.flags, run: rej.run},
		{name: "undo", summary: "move the item of an applied action back, if it fits and has not moved since", args: "ACTION_ID [--comment TEXT]",
			config: true, noSecrets: true, nargs: 1, variadic: true, flags: undo.flags, run: undo.run},
		{name: "backtest", summary: "replay the stored history through the rules and the planner; changes nothing",
			args: "[--since 30d] [--rules FILE]", config: true, noSecrets: true, output: true, flags: bt.flags, run: bt.run},
		{name: "backup", summary: "write a consistent copy of the store", args: "[--force] OUT",
			config: true, noSecrets: true, nargs: 1, flags: bak.flags, run: bak.run},
		{name: "test", summary: "run unit tests of rules on given series (like promtool test rules)", args: "FILE...",
			nargs: 1, variadic: true, run: cmdTest},
		{name: "sim", summary: "serve the simulated cloud", args: "--listen ADDR --scenario FILE", flags: sim.flags, run: sim.run},
		// The demo's story is on stdout; stderr stays quiet unless asked.
		{name: "demo", summary: "show a full rebalance on an embedded simulated cloud", args: "[--keep]",
			logs: true, logLevel: "warn", flags: demo.flags, run: demo.run},
		{name: "version", summary: "print the version, revision, build date and Go version", run: cmdVersion},
		{name: "man", summary: "print the manual page (roff), generated from this table", run: cmdMan},
	}
}

func main() { os.Exit(mainArgs(os.Args[1:])) }

// mainArgs turns the process's signals into values (SIGINT/SIGTERM cancel
// the context; SIGHUP asks for a reload) and runs the command line.
func mainArgs(args []string) int {
	// gRPC (under the etcd client) logs to stderr on its own; every failure
	// that matters reaches quotawatch's log as an error it returns.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan struct{}, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	defer signal.Stop(sig)
	go func() {
		for range sig {
			// Bursts of SIGHUP collapse into one reload.
			select {
			case hup <- struct{}{}:
			default:
			}
		}
	}()
	return run(ctx, &stdio{in: os.Stdin, out: os.Stdout, errOut: os.Stderr, hup: hup, lookupEnv: os.LookupEnv}, args)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, sio *stdio, args []string) int {
	if sio.lookupEnv == nil {
		sio.lookupEnv = os.LookupEnv
	}
	if sio.now == nil {
		sio.now = time.Now
	}
	if sio.hostID == nil {
		sio.hostID = localHostID
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(sio.errOut, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	name, rest := args[0], args[1:]
	if name == "silence" && len(rest) > 0 {
		// Commands of two words: `silence add`, `silence list`, ...
		name, rest = name+" "+rest[0], rest[1:]
	}
	for _, c := range cmds {
		if c.name == name {
			return c.exec(ctx, sio, rest)
		}
	}
	fmt.Fprintf(sio.errOut, "quotawatch: unknown command %q\n\n", name)
	usage(sio.errOut, cmds)
	return exitUsage
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "usage: quotawatch COMMAND [flags]")
	fmt.Fprintln(w)
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w, "\n`quotawatch COMMAND -h` shows the flags of a command; `quotawatch --version` the version.")
}

// exec parses and checks the command's flags and arguments, builds the
// logger and loads the configuration as the command asks, then runs it.
// Flag and argument errors are usage errors (exit 2); -h prints the
// command's usage and exits 0.
func (c command) exec(ctx context.Context, sio *stdio, args []string) int {
	e := &env{stdio: sio}
	var lf logFlags
	fs := c.flagSet(e, &lf)
	fs.SetOutput(sio.errOut)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if c.config && !isSet(fs, "config") {
		e.configPath = defaultConfigPath(sio.lookupEnv)
	}
	e.args = fs.Args()
	switch {
	case len(e.args) > c.nargs && !c.variadic:
		return usageErr(sio, "%s: unexpected argument %q", c.name, e.args[c.nargs])
	case len(e.args) < c.nargs && c.variadic:
		return usageErr(sio, "%s: want at least %d argument(s) after the flags, got %d", c.name, c.nargs, len(e.args))
	case len(e.args) < c.nargs:
		return usageErr(sio, "%s: want %d argument(s) after the flags, got %d", c.name, c.nargs, len(e.args))
	case c.config && e.configPath == "":
		return usageErr(sio, "%s: --config FILE is required", c.name)
	case c.output && e.output != "text" && e.output != "json":
		return usageErr(sio, "--output %q: want text or json", e.output)
	}
	if c.config || c.logs {
		log, err := lf.logger(sio.errOut)
		if err != nil {
			return usageErr(sio, "%v", err)
		}
		e.log = log
	}
	if c.config {
		cfg, err := config.Load(e.configPath, config.Options{LookupEnv: sio.lookupEnv, NoSecrets: c.noSecrets})
		if err != nil {
			fmt.Fprintln(sio.errOut, err)
			return exitUsage
		}
		e.cfg = cfg
	}
	if !c.output {
		return c.run(ctx, e)
	}
	// Output commands print a report or a table, then exit: one write
	// system call per line, or per cell, would cost more than the query.
	bw := bufio.NewWriterSize(sio.out, 64<<10)
	buffered := *sio
	buffered.out = bw
	e.stdio = &buffered
	code := c.run(ctx, e)
	if err := bw.Flush(); err != nil && code == exitOK {
		return fail(sio, "write output: %v", err)
	}
	return code
}

// flagSet registers the command's flags, writing their values into e and lf.
func (c command) flagSet(e *env, lf *logFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.Usage = func() { c.usage(fs) }
	if c.config {
		fs.StringVar(&e.configPath, "config", "", "configuration file (default $"+configEnv+", else "+defaultConfig+")")
	}
	if c.config || c.logs {
		lf.register(fs, cmp.Or(c.logLevel, "info"))
	}
	if c.output {
		fs.StringVar(&e.output, "output", "text", "output format: text or json")
	}
	if c.flags != nil {
		c.flags(fs)
	}
	return fs
}

// Where config commands find the configuration without --config.
const (
	configEnv     = "QUOTAWATCH_CONFIG"
	defaultConfig = "/etc/quotawatch/config.yaml"
)

// defaultConfigPath is $QUOTAWATCH_CONFIG if set and not empty, else the
// file the package installs.
func defaultConfigPath(lookupEnv func(string) (string, bool)) string {
	if p, ok := lookupEnv(configEnv); ok && p != "" {
		return p
	}
	return defaultConfig
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// usage prints the command's usage line, what it does and its flags.
func (c command) usage(fs *flag.FlagSet) {
	line := "usage: quotawatch " + c.name
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		line += " [flags]"
	}
	if c.config {
		line += " [--config FILE]"
	}
	if c.args != "" {
		line += " " + c.args
	}
	fmt.Fprintf(fs.Output(), "%s\n\n%s\n", line, c.summary)
	if hasFlags {
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
}

// logFlags are the flags every command that logs takes.
type logFlags struct {
	format, level string
}

func (l *logFlags) register(fs *flag.FlagSet, level string) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", level, "log level: debug, info, warn or error")
}

// logger builds the slog logger on w. When w is stderr and stderr is the
// journal, the time is dropped, since the journal stamps every line itself,
// and every line carries its syslog priority.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return l.newLogger(w, onJournal(w))
}

func (l *logFlags) newLogger(w io.Writer, journal bool) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	jsonOut := l.format == "json"
	var pw *priorityWriter
	if journal {
		pw = &priorityWriter{w: w}
		w = pw
	}
	opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if journal && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if jsonOut && a.Value.Kind() == slog.KindDuration {
			return secondsAttr(a)
		}
		return a
	}
	var h slog.Handler
	switch l.format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
	}
	if pw != nil {
		h = priorityHandler{h: h, w: pw}
	}
	return slog.New(h), nil
}

// secondsAttr turns a duration into seconds, as Prometheus gives them: JSON
// would otherwise carry bare nanoseconds. The key says the unit.
func secondsAttr(a slog.Attr) slog.Attr {
	key := a.Key
	if !strings.HasSuffix(key, "_seconds") {
		key += "_seconds"
	}
	return slog.Float64(key, a.Value.Duration().Seconds())
}

// usageErr reports a usage problem and returns exit code 2.
func usageErr(sio *stdio, format string, a ...any) int {
	fmt.Fprintf(sio.errOut, "quotawatch: "+format+"\n", a...)
	return exitUsage
}

// fail reports a runtime failure and returns exit code 1.
func fail(sio *stdio, format string, a ...any) int {
	fmt.Fprintf(sio.errOut, "quotawatch: "+format+"\n", a...)
	return exitFailure
}
