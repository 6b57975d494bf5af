package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

// proposalRow is one row of `proposals --output json`.
type proposalRow struct {
	ID       uint64           `json:"id"`
	Time     string           `json:"time"`
	Expires  string           `json:"expires"`
	Rule     string           `json:"rule"`
	Account  string           `json:"account"`
	Kind     quota.Kind       `json:"kind"`
	ItemID   string           `json:"item_id"`
	ItemName string           `json:"item_name"`
	From     string           `json:"from"`
	FromName string           `json:"from_name"`
	To       string           `json:"to"`
	ToName   string           `json:"to_name"`
	Quantity quota.Quantities `json:"quantities"`
}

// cmdProposals lists the proposals waiting for a decision, from the store.
func cmdProposals(_ context.Context, e *env) int {
	st, err := openReadOnly(e.cfg.Store.Path)
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	defer st.Close()
	list, err := st.Proposals()
	if err != nil {
		return fail(e.stdio, "%v", err)
	}
	if e.output == "json" {
		rows := make([]proposalRow, len(list))
		for i, a := range list {
			rows[i] = proposalRow{ID: a.ID, Time: a.Time.UTC().Format(rfc3339), Expires: a.Expires.UTC().Format(rfc3339),
				Rule: a.Rule, Account: a.Account, Kind: a.Kind, ItemID: a.ItemID, ItemName: a.ItemName,
				From: a.From, FromName: a.FromName, To: a.To, ToName: a.ToName, Quantity: a.Quantities}
		}
		if err := view.WriteJSON(e.out, rows); err != nil {
			return fail(e.stdio, "%v", err)
		}
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(e.out, "no proposals waiting")
		return exitOK
	}
	cells := make([][]string, 0, len(list))
	for _, a := range list {
		cells = append(cells, []string{strconv.FormatUint(a.ID, 10), view.Time(a.Time), view.Time(a.Expires), a.Rule,
			string(a.Kind), a.ItemName, quota.FormatAmount(a.Resource, a.Quantities[a.Resource]),
			view.NameOr(a.FromName, a.From), view.NameOr(a.ToName, a.To)})
	}
	if err := view.WriteRows(e.out, []string{"ID", "PROPOSED", "EXPIRES", "RULE", "KIND", "ITEM", "AMOUNT", "FROM", "TO"}, cells); err != nil {
		return fail(e.stdio, "%v", err)
	}
	return exitOK
}

const rfc3339 = "2006-01-02T15:04:05Z07:00"

// decideCmd holds the flags of approve, reject and undo.
type decideCmd struct {
	op      string
	comment string
}

func (c *decideCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.comment, "comment", "", "why, for the journal and the announcement")
}

func (c *decideCmd) run(ctx context.Context, e *env) int {
	id, err := strconv.ParseUint(e.args[0], 10, 64)
	if err != nil {
		return usageErr(e.stdio, "%s: %q is not an id", c.op, e.args[0])
	}
	if rest := e.args[1:]; len(rest) > 0 {
		// Flags may follow the id: approve 12 --comment "ok".
		fs := flag.NewFlagSet(c.op, flag.ContinueOnError)
		fs.SetOutput(e.errOut)
		c.flags(fs)
		if err := fs.Parse(rest); err != nil {
			return exitUsage
		}
		if fs.NArg() > 0 {
			return usageErr(e.stdio, "%s: unexpected argument %q", c.op, fs.Arg(0))
		}
	}
	d := watcher.Decision{Op: c.op, ID: id, By: localUser(), Comment: c.comment}
	// The configuration was loaded without secrets: the daemon, if one
	// runs, needs none from us; without it, the fresh poll needs them.
	// Acting itself, it claims the store as run and once do: a store last
	// written by another host is refused.
	var st *store.Store
	withSecrets := func() (watcher.Options, error) {
		cfg, err := config.Load(e.configPath, config.Options{LookupEnv: e.lookupEnv})
		if err != nil || cfg.HA != nil {
			return watcher.Options{Config: cfg, Logger: e.log}, err
		}
		st, _, err = openToAct(e, e.log, false)
		return watcher.Options{Config: cfg, Logger: e.log, Store: st}, err
	}
	a, err := watcher.DecideOptions(ctx, e.cfg.Store.Path, d, withSecrets)
	if st != nil {
		_ = st.Close()
	}
	if err != nil {
		return fail(e.stdio, "%s %d: %v", c.op, id, err)
	}
	what := fmt.Sprintf("%s %s from %s to %s", a.Kind, a.ItemName, view.NameOr(a.FromName, a.From), view.NameOr(a.ToName, a.To))
	switch {
	case a.State == quota.ActionRejected:
		fmt.Fprintf(e.out, "proposal %d rejected: %s stays\n", a.ID, what)
	case a.State == quota.ActionExpired:
		fmt.Fprintf(e.out, "proposal %d expired: %s\n", a.ID, a.Error)
		return exitFailure
	case a.UndoOf != 0:
		fmt.Fprintf(e.out, "action %d (undo of %d): moved %s (%s)\n", a.ID, a.UndoOf, what, a.State)
	default:
		fmt.Fprintf(e.out, "proposal %d approved: moved %s (%s)\n", a.ID, what, a.State)
	}
	return exitOK
}
