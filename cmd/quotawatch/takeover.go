package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/quotawatch/quotawatch/store"
)

// actCmd holds the flag of the commands that act on the cloud and write
// the store: run and once.
type actCmd struct{ takeover bool }

func (c *actCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.takeover, "takeover", false, "write a store last written by another host, after making sure the quotawatch there "+
		"is stopped; needed once for a store restored from a backup, or moved, onto a new host")
}

// openToAct opens the store for writing and claims it for this host: a
// store last written by another host is refused unless takeover is set,
// before anything is asked of the cloud. It returns the store and the
// host id it claimed with.
func openToAct(e *env, log *slog.Logger, takeover bool) (*store.Store, string, error) {
	host, err := e.hostID()
	if err != nil {
		return nil, "", err
	}
	st, err := store.Open(e.cfg.Store.Path, store.Options{Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("open store: %w", err)
	}
	// The record before the claim is only for the log: an unreadable one
	// is the claim's to refuse or, taken over, to replace.
	prev, at, werr := st.Writer()
	if err := st.ClaimWriter(host, takeover); err != nil {
		_ = st.Close()
		return nil, "", err
	}
	if werr == nil && prev != "" && prev != host {
		log.Warn("took the store over from another host", "store", st.Path(), "host", prev, "last_written", at, "this_host", host)
	}
	return st, host, nil
}

// reclaim makes the daemon's claim again after a cycle: it dates the
// record, and when another host has taken over a store shared with it
// meanwhile, stop is called with that error, so that both do not act.
// It lets go of the file again, as the cycle did, for the readers.
func reclaim(st *store.Store, host string, stop context.CancelCauseFunc, log *slog.Logger) {
	if st.Damaged() != nil {
		return // the daemon stops on the damage itself
	}
	err := st.ClaimWriter(host, false)
	if rerr := st.Release(); rerr != nil {
		log.Warn("releasing the store failed", "err", rerr)
	}
	switch {
	case errors.Is(err, store.ErrOtherHost):
		stop(err)
	case err != nil:
		log.Warn("recording this host as the store's writer failed", "err", err)
	}
}
