package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
)

// openReadOnly opens the store for reading; it works while the daemon
// runs, since the daemon holds the file only during its cycles.
func openReadOnly(path string) (*store.Store, error) {
	st, err := store.Open(path, store.Options{ReadOnly: true, LockTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

// statusCmd holds the flags of `status`.
type statusCmd struct {
	project, rule, state, account string
	top                           int
}

func (c *statusCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.project, "project", "", "only projects whose id or name matches this glob")
	fs.StringVar(&c.rule, "rule", "", "only instances of rules matching this glob (and their series)")
	fs.StringVar(&c.state, "state", "", "only rule instances in a state matching this glob: ok, pending or firing")
	fs.StringVar(&c.account, "account", "", "only accounts matching this glob")
	fs.IntVar(&c.top, "top", 0, "only the N fullest rows of each table (0: all)")
}

func (c *statusCmd) run(_ context.Context, e *env) int {
	f := view.StatusFilter{Project: view.Glob(c.project), Rule: view.Glob(c.rule), State: view.Glob(c.state),
		Account: view.Glob(c.account), Top: c.top}
	if err := f.Check(); err != nil {
		return usageErr(e.stdio, "status: %v", err)
	}
	tuneForCommand(e.lookupEnv)
	st, err := openReadOnly(e.cfg.Store.Path)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	defer st.Close()
	status, err := view.SelectStatus(st, f)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	// Only rule instances can be silenced: the text lists them alone,
	// without copying every series' row.
	all := status.Rules
	if e.output == "json" {
		all = status.Rows()
	}
	rows, err := silencedStatus(st, all, e.now().UTC())
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	if e.output == "json" {
		err = view.WriteJSON(e.out, rows)
	} else if err = view.WriteStatus(e.out, status); err == nil {
		err = printSilenced(e, rows)
	}
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	return exitOK
}

// historyCmd holds the flags of `history`.
type historyCmd struct {
	project, resource, account string
	since                      time.Duration
}

func (h *historyCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.project, "project", "", "project id or name, or a glob on either")
	fs.StringVar(&h.resource, "resource", "", "resource name, or a glob on it")
	fs.StringVar(&h.account, "account", "", "account name, or a glob on it")
	sinceFlag(fs, &h.since)
}

// sparkPoints is how many points the sparkline of a series has.
const sparkPoints = 60

func (h *historyCmd) run(_ context.Context, e *env) int {
	tuneForCommand(e.lookupEnv)
	st, err := openReadOnly(e.cfg.Store.Path)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	defer st.Close()
	now := e.now().UTC()
	q := view.HistoryQuery{Project: view.Glob(h.project), Resource: view.Glob(h.resource), Account: view.Glob(h.account),
		From: now.Add(-h.since), To: now}
	for _, g := range []view.Glob{q.Project, q.Resource, q.Account} {
		if err := g.Check(); err != nil {
			return usageErr(e.stdio, "history: %v", err)
		}
	}
	if e.output != "json" {
		q.Points = sparkPoints
	}
	series, err := view.QueryHistory(st, q)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	if len(series) == 0 {
		return fail(e.stdio, "no series matches --project %q --resource %q --account %q", h.project, h.resource, h.account)
	}
	if e.output == "json" {
		err = view.WriteJSON(e.out, view.HistoryRows(series))
	} else {
		err = view.WriteHistory(e.out, series)
	}
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	return exitOK
}

// actionsCmd holds the flags of `actions`.
type actionsCmd struct{ since time.Duration }

func (a *actionsCmd) flags(fs *flag.FlagSet) { sinceFlag(fs, &a.since) }

func (a *actionsCmd) run(_ context.Context, e *env) int {
	st, err := openReadOnly(e.cfg.Store.Path)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	defer st.Close()
	now := e.now().UTC()
	rows, err := view.QueryActions(st, now.Add(-a.since), now)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	switch {
	case e.output == "json":
		err = view.WriteJSON(e.out, rows)
	case len(rows) == 0:
		_, err = fmt.Fprintf(e.out, "no actions in the last %s\n", a.since)
	default:
		err = view.WriteActions(e.out, rows)
	}
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	return exitOK
}

// backupCmd holds the flags of `backup`.
type backupCmd struct{ force bool }

func (b *backupCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&b.force, "force", false, "replace OUT if it is an existing regular file")
}

func (b *backupCmd) run(_ context.Context, e *env) int {
	st, err := openReadOnly(e.cfg.Store.Path)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	defer st.Close()
	out := e.args[0]
	if err := st.BackupFile(out, store.BackupOptions{Force: b.force}); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fail(e.stdio, "%v (use --force to replace it)", err)
		}
		return fail(e.stdio, "%v", err)
	}
	fmt.Fprintf(e.out, "wrote %s\n", out)
	return exitOK
}

// sinceFlag registers --since, a duration with days allowed.
func sinceFlag(fs *flag.FlagSet, d *time.Duration) {
	*d = 7 * 24 * time.Hour
	fs.Func("since", "how far back, e.g. 12h or 30d (default 7d)", func(v string) error {
		x, err := rules.ParseDuration(v)
		if err != nil || x <= 0 {
			return fmt.Errorf("want a positive duration such as 12h or 7d")
		}
		*d = x
		return nil
	})
}
