package ruletests

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/replay"
	"github.com/quotawatch/quotawatch/rules"
)

// Epoch is the time of every test's first poll. Reasons name times (a
// cooldown's end, say), so a fixed one keeps the output reproducible; at
// 15m is 1970-01-01 00:15 UTC.
var Epoch = time.Unix(0, 0).UTC()

// pollFailed is the poll error of an account whose input is `_`.
const pollFailed = "poll failed (the test input is _)"

// evaluation is what one simulated cycle told.
type evaluation struct {
	events []quota.Event
	errors []error // runtime errors of expressions, counted as false
}

// simulate runs the test's cycles as the daemon runs them: evaluate the
// rules on the polls, plan the firing instances' moves on the cycle's
// ledgers, take every planned move as applied, and carry the rule and
// account states, the journal and the history to the next cycle. The input
// series stay what they are: a move changes the ledger of its own cycle
// only. A moved item is in its destination from then on, as a later
// listing would show it.
func (f *File) simulate(t *Test) []evaluation {
	sim := replay.New(rules.NewEngine(f.rules), f.cap, f.dryRun)
	samples := map[quota.Key][]quota.Sample{}
	history := func(k quota.Key) []quota.Sample { return samples[k] }
	items := slices.Clone(t.items)
	projects := t.projects()
	accounts := t.accounts()

	evals := make([]evaluation, t.polls)
	for i := range t.polls {
		now := Epoch.Add(time.Duration(i) * f.Interval)
		snaps, failed := t.poll(i, now, accounts)
		for _, s := range snaps {
			for _, e := range s.Entries {
				k := quota.Key{Account: s.Account, Project: e.Project, Resource: e.Resource}
				samples[k] = append(samples[k], quota.Sample{Time: now, Quota: e.Quota})
			}
		}
		res := sim.Step(replay.Cycle{
			Now: now, Snapshots: snaps, Failed: failed, Projects: projects, History: history,
			Items: func(account, project string, kind quota.Kind) []quota.Item {
				return listItems(items, account, project, kind)
			},
		})
		evals[i] = evaluation{events: res.Events, errors: res.Errors}
		for _, m := range res.Moves {
			if m.DryRun {
				continue
			}
			for j := range items {
				it := &items[j]
				if it.account == m.Account && it.Kind == m.Kind && it.ID == m.ItemID {
					it.Project = m.To
				}
			}
		}
	}
	return evals
}

// listItems is what listing the items of a kind in a project returns.
func listItems(items []item, account, project string, kind quota.Kind) []quota.Item {
	var out []quota.Item
	for _, it := range items {
		if it.account == account && it.Project == project && it.Kind == kind {
			out = append(out, it.Item)
		}
	}
	return out
}

// projects names every project of the input series: active projects the
// accounts are members of, since they hold quota there.
func (t *Test) projects() map[string]quota.Project {
	ps := map[string]quota.Project{}
	for _, s := range t.series {
		p := ps[s.key.Project]
		p.ID, p.State, p.Membership = s.key.Project, "active", "accepted"
		if s.projectName != "" {
			p.Name = s.projectName
		}
		ps[s.key.Project] = p
	}
	return ps
}

// accounts lists the accounts of the input series in order of appearance.
func (t *Test) accounts() []string {
	var out []string
	for _, s := range t.series {
		if !slices.Contains(out, s.key.Account) {
			out = append(out, s.key.Account)
		}
	}
	return out
}

// poll returns what the polls of cycle i return: a snapshot of each
// account whose series all have a value there, and the accounts with a
// `_` as failed. An account whose series all ended is polled with no
// quotas.
func (t *Test) poll(i int, now time.Time, accounts []string) ([]quota.Snapshot, map[string]string) {
	var snaps []quota.Snapshot
	failed := map[string]string{}
	for _, a := range accounts {
		s := quota.Snapshot{Account: a, Time: now, Service: a == config.ServiceAccount, Entries: []quota.Entry{}}
		for j := range t.series {
			sr := &t.series[j]
			if sr.key.Account != a {
				continue
			}
			q, present, missing := sr.at(i)
			if missing {
				failed[a] = pollFailed
			}
			if present && !missing {
				s.Entries = append(s.Entries, quota.Entry{Project: sr.key.Project, Resource: sr.key.Resource, Quota: q})
			}
		}
		if _, f := failed[a]; f {
			continue
		}
		if s.Service {
			rules.ServiceView(s.Entries)
		}
		slices.SortStableFunc(s.Entries, func(x, y quota.Entry) int {
			return cmp.Or(cmp.Compare(x.Project, y.Project), cmp.Compare(x.Resource, y.Resource))
		})
		snaps = append(snaps, s)
	}
	return snaps, failed
}

// Result is the outcome of one test.
type Result struct {
	Name   string
	Passed bool
	// Diffs are the checks that failed, in time order.
	Diffs []Diff
	// Notes are the runtime errors of rule expressions met on the way
	// (counted as false, as the daemon counts them).
	Notes []string
}

// Diff is what differed at one checked evaluation.
type Diff struct {
	At   time.Duration
	Line int
	// Missing are the expected events no event matched; Unexpected the
	// events no expectation matched.
	Missing    []string
	Unexpected []string
}

// Run runs one test of the file.
func (f *File) Run(t *Test) Result {
	evals := f.simulate(t)
	r := Result{Name: t.Name, Passed: true}
	for i, ev := range evals {
		for _, err := range ev.errors {
			msg := err.Error()
			var re *rules.Error
			if errors.As(err, &re) && re.Line > 0 {
				msg = fmt.Sprintf("%s:%d: %s", f.Config, re.Line, re.Detail())
			}
			r.Notes = append(r.Notes, fmt.Sprintf("at %s: %s", formatAt(time.Duration(i)*f.Interval), msg))
		}
	}
	checks := slices.Clone(t.checks)
	slices.SortFunc(checks, func(a, b check) int { return cmp.Compare(a.at, b.at) })
	for _, c := range checks {
		unmet, extra := match(c.events, evals[int(c.at/f.Interval)].events)
		if len(unmet) == 0 && len(extra) == 0 {
			continue
		}
		r.Passed = false
		d := Diff{At: c.at, Line: c.line}
		for _, x := range unmet {
			d.Missing = append(d.Missing, fmt.Sprintf("%s (line %d)", x.String(), x.line))
		}
		for j := range extra {
			d.Unexpected = append(d.Unexpected, describeEvent(&extra[j]))
		}
		r.Diffs = append(r.Diffs, d)
	}
	return r
}

// Summary counts the outcomes of a run.
type Summary struct {
	Passed, Failed int
	// Malformed counts the test files that could not be loaded.
	Malformed int
}

// ExitCode is 0 when every test passed, 1 when one failed, and 2 when a
// file was malformed.
func (s Summary) ExitCode() int {
	switch {
	case s.Malformed > 0:
		return 2
	case s.Failed > 0:
		return 1
	}
	return 0
}

// RunFiles loads and runs the test files in order. It writes a line per
// test to w (`ok   NAME`, or `FAIL NAME` and what differed), then a summary
// line; the problems of a malformed file go to errW, each FILE:LINE:
// message, and its tests are not run.
func RunFiles(w, errW io.Writer, paths []string, opt Options) Summary {
	var s Summary
	for _, path := range paths {
		f, err := Load(path, opt)
		if err != nil {
			s.Malformed++
			for _, e := range joined(err) {
				fmt.Fprintln(errW, e)
			}
			continue
		}
		for i := range f.Tests {
			r := f.Run(&f.Tests[i])
			writeResult(w, f.Path, r)
			if r.Passed {
				s.Passed++
			} else {
				s.Failed++
			}
		}
	}
	fmt.Fprintln(w, s)
	return s
}

// String renders the summary line: "3 passed, 1 failed".
func (s Summary) String() string {
	line := fmt.Sprintf("%d passed, %d failed", s.Passed, s.Failed)
	switch s.Malformed {
	case 0:
	case 1:
		line += ", 1 test file malformed"
	default:
		line += fmt.Sprintf(", %d test files malformed", s.Malformed)
	}
	return line
}

// writeResult writes one test's line and, when it failed, what differed.
func writeResult(w io.Writer, file string, r Result) {
	if r.Passed {
		fmt.Fprintf(w, "ok   %s\n", r.Name)
	} else {
		fmt.Fprintf(w, "FAIL %s\n", r.Name)
	}
	for _, d := range r.Diffs {
		fmt.Fprintf(w, "     at %s (%s:%d):\n", formatAt(d.At), file, d.Line)
		for _, m := range d.Missing {
			fmt.Fprintf(w, "       missing:    %s\n", m)
		}
		for _, u := range d.Unexpected {
			fmt.Fprintf(w, "       unexpected: %s\n", u)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "     note: %s\n", n)
	}
}
