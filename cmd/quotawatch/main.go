// Command quotawatch watches the quotas of a Synnefo cloud and acts on them.
// See the README for the commands; `quotawatch help` lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/coreos/go-systemd/v22/journal"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // bad configuration or bad usage
)

// command is one subcommand. It gets the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, io *stdio, args []string) int
}

// stdio is where a command reads and writes; tests pass buffers.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
	// hup delivers SIGHUP to `run`; nil outside the real process.
	hup <-chan struct{}
	// lookupEnv reads the environment (config secrets, systemd variables).
	lookupEnv func(string) (string, bool)
}

func commands() map[string]command {
	return map[string]command{
		"run":      {"run the daemon (systemd runs this)", cmdRun},
		"once":     {"run one cycle, then exit", cmdOnce},
		"plan":     {"run one cycle in dry-run and print what would happen; changes nothing", cmdPlan},
		"validate": {"load and check the configuration and rules", cmdValidate},
		"status":   {"rule states and current quotas from the store", cmdStatus},
		"history":  {"the history of quota series", cmdHistory},
		"actions":  {"the action journal", cmdActions},
		"backup":   {"write a consistent copy of the store", cmdBackup},
		"sim":      {"serve the simulated cloud", cmdSim},
		"demo":     {"show a full rebalance on an embedded simulated cloud", cmdDemo},
		"version":  {"print the version", cmdVersion},
	}
}

func main() { os.Exit(mainArgs(os.Args[1:])) }

// mainArgs turns the process's signals into values (SIGINT/SIGTERM cancel
// the context; SIGHUP asks for a reload) and runs the command line.
func mainArgs(args []string) int {
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
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(sio.errOut, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(sio.errOut, "quotawatch: unknown command %q\n\n", args[0])
		usage(sio.errOut, cmds)
		return exitUsage
	}
	return c.run(ctx, sio, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: quotawatch COMMAND [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\n`quotawatch COMMAND -h` shows the flags of a command.")
}

// logFlags are the flags every command that logs takes.
type logFlags struct {
	format, level string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

// logger builds the slog logger on stderr. Under journald the time is
// dropped, since the journal stamps every line itself.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if f, ok := w.(*os.File); ok && f == os.Stderr {
		if j, _ := journal.StderrIsJournalStream(); j {
			opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}
		}
	}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// parseFlags parses a command's flags; errors are usage errors (exit 2).
// Positional arguments are returned. -h prints the flags and exits 0.
func parseFlags(fs *flag.FlagSet, sio *stdio, args []string) ([]string, int, bool) {
	fs.SetOutput(sio.errOut)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false
		}
		return nil, exitUsage, false
	}
	return fs.Args(), 0, true
}

func newFlagSet(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: quotawatch %s [flags]%s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
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
