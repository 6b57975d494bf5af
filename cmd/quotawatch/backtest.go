package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quotawatch/quotawatch/backtests"
	"github.com/quotawatch/quotawatch/internal/smallfile"
	"github.com/quotawatch/quotawatch/rules"
)

// backtestCmd holds the flags of `backtest`.
type backtestCmd struct {
	since time.Duration
	rules string
}

func (c *backtestCmd) flags(fs *flag.FlagSet) {
	c.since = 30 * 24 * time.Hour
	fs.Func("since", "how far back to replay, e.g. 12h or 30d (default 30d)", func(v string) error {
		x, err := rules.ParseDuration(v)
		if err != nil || x <= 0 {
			return fmt.Errorf("want a positive duration such as 12h or 30d")
		}
		c.since = x
		return nil
	})
	fs.StringVar(&c.rules, "rules", "", "a YAML file with a top-level rules: list, tried instead of the config's rules")
}

func (c *backtestCmd) run(_ context.Context, e *env) int {
	rs := e.cfg.Rules
	if c.rules != "" {
		data, err := smallfile.Read(c.rules)
		if err != nil {
			return usageErr(e.stdio, "backtest: --rules: %v", err)
		}
		rs, err = rules.ParseBytes(data, rules.ParseOptions{})
		if err != nil {
			return usageErr(e.stdio, "backtest: %s: %v", c.rules, err)
		}
	}
	st, err := openReadOnly(e.cfg.Store.Path)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	defer st.Close()
	now := e.now().UTC()
	opt := backtests.Options{
		Rules: rs, From: now.Add(-c.since), To: now,
		MaxActions: e.cfg.MaxActionsPerCycle, DryRun: e.cfg.DryRun,
	}
	for _, n := range e.cfg.Notifiers {
		opt.Notifiers = append(opt.Notifiers, n.Name)
	}
	if isTerminal(e.errOut, e.lookupEnv) {
		opt.Progress = func(at time.Time) {
			fmt.Fprintf(e.errOut, "\rbacktest: replayed up to %s ", at.Format("2006-01-02 15:04"))
		}
	}
	rep, err := backtests.Run(st, opt)
	if opt.Progress != nil {
		fmt.Fprintln(e.errOut)
	}
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	if e.output == "json" {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = writeBacktest(e.out, rep)
	}
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	return exitOK
}

// isTerminal reports whether w is a terminal a person watches: not a pipe
// or file, and not the journal systemd connects stderr to.
func isTerminal(w io.Writer, lookupEnv func(string) (string, bool)) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	if _, ok := lookupEnv("JOURNAL_STREAM"); ok {
		return false
	}
	fi, err := f.Stat()
	// /dev/null is a character device too, but not a terminal's: a
	// terminal also answers to its name under /dev/pts or /dev/tty*.
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// writeBacktest prints the report as tables with a summary.
func writeBacktest(w io.Writer, r *backtests.Report) error {
	ew := &errWriter{w: w}
	open := 0
	for _, in := range r.Incidents {
		if in.Resolved == nil {
			open++
		}
	}
	msgs := 0
	for _, m := range r.Messages {
		msgs += m.Count
	}
	refused := 0
	for _, f := range r.Refusals {
		refused += f.Count
	}
	ew.printf("backtest %s .. %s: %d cycles, %d series\n", stamp(r.From), stamp(r.To), r.Cycles, r.Series)
	ew.printf("items: %s\n", r.Items)
	ew.printf("%d incidents (%d still open), %d moves, %d refusals, %d messages\n",
		len(r.Incidents), open, len(r.Moves), refused, msgs)

	if len(r.Incidents) > 0 {
		ew.printf("\nINCIDENTS\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tACCOUNT\tPROJECT\tRESOURCE\tOPENED\tRESOLVED\tPEAK")
		for _, in := range r.Incidents {
			res := "still open"
			if in.Resolved != nil {
				res = stamp(*in.Resolved)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f%%\n", in.Rule, in.Account, orID(in.ProjectName, in.Project),
				in.Resource, stamp(in.Opened), res, in.PeakRatio*100)
		}
		_ = tw.Flush()
	}
	if len(r.Moves) > 0 {
		ew.printf("\nMOVES\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tRULE\tITEM\tFROM\tTO")
		for _, m := range r.Moves {
			item := fmt.Sprintf("%s %s", m.Kind, m.ItemName)
			if m.DryRun {
				item += " (dry run)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", stamp(m.Time), m.Rule, item, orID(m.FromName, m.From), orID(m.ToName, m.To))
		}
		_ = tw.Flush()
	}
	if len(r.Refusals) > 0 {
		ew.printf("\nREFUSALS\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COUNT\tREASON")
		for _, f := range r.Refusals {
			fmt.Fprintf(tw, "%d\t%s\n", f.Count, f.Reason)
		}
		_ = tw.Flush()
	}
	if len(r.Messages) > 0 {
		ew.printf("\nMESSAGES (before digests)\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NOTIFIER\tKIND\tCOUNT")
		for _, m := range r.Messages {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", m.Notifier, m.Kind, m.Count)
		}
		_ = tw.Flush()
	}
	if len(r.Errors) > 0 {
		errs := append([]string(nil), r.Errors...)
		sort.Strings(errs)
		ew.printf("\nrule errors (evaluated as false):\n  %s\n", strings.Join(errs, "\n  "))
	}
	return ew.err
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

func orID(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// errWriter keeps the first write error, so the tables can be written
// without checking each line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) { fmt.Fprintf(e, format, a...) }
