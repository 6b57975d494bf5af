package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

// silenceAddCmd holds the flags of `silence add`.
type silenceAddCmd struct {
	spec watcher.SilenceSpec
}

func (s *silenceAddCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.spec.Rule, "rule", "", "rule name or glob")
	fs.StringVar(&s.spec.Project, "project", "", "project id or name, or a glob")
	fs.StringVar(&s.spec.Resource, "resource", "", "resource name or glob")
	fs.StringVar(&s.spec.Comment, "comment", "", "why (required)")
	fs.Func("for", "how long, e.g. 2h or 1d (required)", func(v string) error {
		d, err := rules.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 2h or 1d")
		}
		s.spec.For = d
		return nil
	})
}

func (s *silenceAddCmd) run(ctx context.Context, e *env) int {
	s.spec.By = localUser()
	if err := s.spec.Check(); err != nil {
		return usageErr(e.stdio, "silence add: %v", err)
	}
	if s.spec.Rule != "" && !slices.ContainsFunc(e.cfg.Rules, func(r *rules.Rule) bool {
		ok, _ := path.Match(s.spec.Rule, r.Name)
		return ok
	}) {
		// Not an error: the rule may be added later.
		fmt.Fprintf(e.errOut, "quotawatch: warning: --rule %q matches no configured rule\n", s.spec.Rule)
	}
	sl, err := watcher.AddSilence(ctx, e.cfg, s.spec, e.now().UTC())
	if err != nil {
		return fail(e.stdio, "silence add: %v", err)
	}
	fmt.Fprintf(e.out, "silence %d added: %s, until %s\n", sl.ID, matchers(sl), view.Time(sl.Ends))
	return exitOK
}

// silenceRow is one row of `silence list --output json`.
type silenceRow struct {
	store.Silence
	Active bool `json:"active"`
}

func cmdSilenceList(ctx context.Context, e *env) int {
	list, err := watcher.ListSilences(ctx, e.cfg)
	if err != nil {
		return fail(e.stdio, "silence list: %v", err)
	}
	now := e.now().UTC()
	if e.output == "json" {
		rows := make([]silenceRow, len(list))
		for i, sl := range list {
			rows[i] = silenceRow{Silence: sl, Active: sl.Active(now)}
		}
		if err := view.WriteJSON(e.out, rows); err != nil {
			return fail(e.stdio, "%v", err)
		}
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(e.out, "no silences")
		return exitOK
	}
	cells := make([][]string, 0, len(list))
	for _, sl := range list {
		state := "active"
		switch {
		case sl.Expired && !sl.Active(now):
			state = "expired"
		case !sl.Active(now):
			state = "ended"
		}
		cells = append(cells, []string{strconv.FormatUint(sl.ID, 10), state, view.Dash(sl.Rule), view.Dash(sl.Project),
			view.Dash(sl.Resource), view.Time(sl.Ends), view.Dash(sl.CreatedBy), sl.Comment})
	}
	if err := view.WriteRows(e.out, []string{"ID", "STATE", "RULE", "PROJECT", "RESOURCE", "ENDS", "BY", "COMMENT"}, cells); err != nil {
		return fail(e.stdio, "%v", err)
	}
	return exitOK
}

func cmdSilenceExpire(ctx context.Context, e *env) int {
	id, err := strconv.ParseUint(e.args[0], 10, 64)
	if err != nil {
		return usageErr(e.stdio, "silence expire: %q is not a silence id", e.args[0])
	}
	sl, err := watcher.ExpireSilence(ctx, e.cfg, id, e.now().UTC())
	if err != nil {
		return fail(e.stdio, "silence expire: %v", err)
	}
	fmt.Fprintf(e.out, "silence %d ended at %s: %s\n", sl.ID, view.Time(sl.Ends), matchers(sl))
	return exitOK
}

// matchers describes what a silence matches.
func matchers(sl store.Silence) string {
	s := ""
	add := func(k, v string) {
		if v == "" {
			return
		}
		if s != "" {
			s += ", "
		}
		s += k + " " + v
	}
	add("rule", sl.Rule)
	add("project", sl.Project)
	add("resource", sl.Resource)
	return s
}

// localUser names who runs the command, for the silence's record; under
// sudo, the user who asked.
func localUser() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// silencedStatus marks the rule rows of status that a silence holds now.
func silencedStatus(st *store.Store, rows []view.StatusRow, now time.Time) ([]statusRow, error) {
	list, err := st.Silences()
	if err != nil {
		return nil, err
	}
	s := watcher.NewSilencer(list, now)
	out := make([]statusRow, len(rows))
	for i, r := range rows {
		out[i] = statusRow{StatusRow: r}
		if r.Rule == "" {
			continue
		}
		k := quota.InstanceKey{Rule: r.Rule, Account: r.Account, Project: r.Project, Resource: r.Resource}
		name := r.ProjectName
		if n := view.SynnefoName(r.Project, name); n != "" {
			name = n // silences match the cloud's names
		}
		if sl, ok := s.Silenced(k, name); ok {
			out[i].Silenced = watcher.SilenceReason(sl)
		}
	}
	return out, nil
}

// statusRow is a row of status with the silence that holds it, if any.
type statusRow struct {
	view.StatusRow
	Silenced string `json:"silenced,omitempty"`
}

// printSilenced lists the rule instances a silence holds, after the
// status tables.
func printSilenced(e *env, rows []statusRow) error {
	var cells [][]string
	for _, r := range rows {
		if r.Silenced != "" {
			cells = append(cells, []string{r.Rule, r.Account, view.NameOr(r.ProjectName, r.Project), r.Resource, string(r.State), r.Silenced})
		}
	}
	if len(cells) == 0 {
		return nil
	}
	fmt.Fprintf(e.out, "\nsilenced: %d\n", len(cells))
	return view.WriteRows(e.out, []string{"RULE", "ACCOUNT", "PROJECT", "RESOURCE", "STATE", "SILENCE"}, cells)
}
