package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/quota"
)

// A scenario drives the engine through cycles the way the watcher does:
// evaluate, plan every firing instance with the cycle's planner, apply the
// moves to a simulated cloud, journal them, persist states.
type scenario struct {
	Description string          `yaml:"description"`
	DryRun      bool            `yaml:"dry_run"`
	MaxActions  *int            `yaml:"max_actions_per_cycle"`
	Rules       yaml.Node       `yaml:"rules"`
	Projects    []quota.Project `yaml:"projects"`
	Accounts    []scAccount     `yaml:"accounts"`
	Journal     []scAction      `yaml:"journal"`
	Cycles      []scCycle       `yaml:"cycles"`
}

type scAccount struct {
	Name    string    `yaml:"name"`
	User    string    `yaml:"user"`
	Service bool      `yaml:"service"`
	Quotas  []scQuota `yaml:"quotas"`
	Items   []scItem  `yaml:"items"`
}

// scQuota is one quota; project_usage and project_limit default to usage
// and limit (a project with one member).
type scQuota struct {
	Project        string `yaml:"project"`
	Resource       string `yaml:"resource"`
	Usage          *size  `yaml:"usage"`
	Limit          *size  `yaml:"limit"`
	Pending        *size  `yaml:"pending"`
	ProjectUsage   *size  `yaml:"project_usage"`
	ProjectLimit   *size  `yaml:"project_limit"`
	ProjectPending *size  `yaml:"project_pending"`
	Drop           bool   `yaml:"drop"` // the series vanishes
}

type scItem struct {
	Kind       quota.Kind      `yaml:"kind"`
	ID         string          `yaml:"id"`
	Name       string          `yaml:"name"`
	Project    string          `yaml:"project"`
	Quantities map[string]size `yaml:"quantities"`
	Busy       string          `yaml:"busy"`
}

type scAction struct {
	At      string     `yaml:"at"` // offset from the scenario start
	Account string     `yaml:"account"`
	Kind    quota.Kind `yaml:"kind"`
	ItemID  string     `yaml:"item_id"`
	From    string     `yaml:"from"`
	To      string     `yaml:"to"`
	State   string     `yaml:"state"`
	DryRun  bool       `yaml:"dry_run"`
}

type scCycle struct {
	At     string            `yaml:"at"`
	Failed map[string]string `yaml:"failed"`
	// Set changes quotas of an account before the poll.
	Set map[string][]scQuota `yaml:"set"`
	// Busy marks items busy (id → reason); "" clears.
	Busy map[string]string `yaml:"busy"`
	// History gives samples per series "account/project/resource" as
	// "offset usage" pairs.
	History map[string][]string `yaml:"history"`
	Want    []string            `yaml:"want"`
	// States checks instance states after the cycle ("none" = not stored).
	States map[string]string `yaml:"states"`
}

var scStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func offset(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return scStart
	}
	d, err := ParseDuration(s)
	require.NoError(t, err, s)
	return scStart.Add(d)
}

type simAccount struct {
	user    string
	service bool
	quotas  map[[2]string]quota.Quota
	order   [][2]string // entry order, as polled
	items   []quota.Item
}

func (a *simAccount) apply(t *testing.T, qs []scQuota) {
	for _, s := range qs {
		k := [2]string{s.Project, s.Resource}
		if s.Drop {
			delete(a.quotas, k)
			continue
		}
		q, ok := a.quotas[k]
		if !ok {
			a.order = append(a.order, k)
		}
		old := q
		set := func(dst *int64, v *size) {
			if v != nil {
				*dst = int64(*v)
			}
		}
		set(&q.Usage, s.Usage)
		set(&q.Limit, s.Limit)
		set(&q.Pending, s.Pending)
		set(&q.ProjectPending, s.ProjectPending)
		switch {
		case s.ProjectUsage != nil:
			q.ProjectUsage = int64(*s.ProjectUsage)
		case !ok:
			q.ProjectUsage = q.Usage
		default: // the member's usage is part of the project's
			q.ProjectUsage = old.ProjectUsage + q.Usage - old.Usage
		}
		switch {
		case s.ProjectLimit != nil:
			q.ProjectLimit = int64(*s.ProjectLimit)
		case !ok || old.ProjectLimit == old.Limit:
			q.ProjectLimit = q.Limit
		}
		a.quotas[k] = q
	}
}

func (a *simAccount) entries() []quota.Entry {
	var es []quota.Entry
	for _, k := range a.order {
		if q, ok := a.quotas[k]; ok {
			es = append(es, quota.Entry{Project: k[0], Resource: k[1], Quota: q})
		}
	}
	return es
}

func describe(ev quota.Event, now time.Time) string {
	var s string
	k := ev.Key
	series := k.Rule + " " + k.Account + "/" + k.Project + "/" + k.Resource
	switch ev.Kind {
	case quota.EventFiring:
		s = "firing " + series
		if ev.Repeat {
			s = "repeat " + series
		}
	case quota.EventResolved:
		s = "resolved " + series + " after " + formatDuration(now.Sub(ev.Since))
	case quota.EventAction:
		s = string(ev.Result) + " " + series
		if ev.Move != nil && ev.Result != quota.ResultSkipped {
			s += ": " + ev.Move.ItemName + " " + ev.Move.From + " -> " + ev.Move.To
		}
		if ev.Reason != "" {
			s += ": " + ev.Reason
		}
	case quota.EventPollFailed:
		s = "poll_failed " + k.Account + ": " + ev.Reason
	case quota.EventPollRecovered:
		s = "poll_recovered " + k.Account
	}
	if ev.DryRun {
		s = "[dry] " + s
	}
	return s
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) { runScenario(t, f) })
	}
}

func runScenario(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var sc scenario
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&sc))
	rules, err := Parse(&sc.Rules, ParseOptions{})
	require.NoError(t, err)
	eng := NewEngine(rules)

	projects := map[string]quota.Project{}
	for _, p := range sc.Projects {
		projects[p.ID] = p
	}
	accounts := map[string]*simAccount{}
	var accountOrder []string
	for _, a := range sc.Accounts {
		sa := &simAccount{user: a.User, service: a.Service, quotas: map[[2]string]quota.Quota{}}
		sa.apply(t, a.Quotas)
		for _, it := range a.Items {
			sa.items = append(sa.items, quota.Item{Kind: it.Kind, ID: it.ID, Name: it.Name, Owner: a.User,
				Project: it.Project, Quantities: quantities(it.Quantities), Busy: it.Busy})
		}
		accounts[a.Name] = sa
		accountOrder = append(accountOrder, a.Name)
	}
	var journal []quota.Action
	for _, j := range sc.Journal {
		st := quota.ActionState(j.State)
		if st == "" {
			st = quota.ActionVerified
		}
		journal = append(journal, quota.Action{Time: offset(t, j.At), State: st, DryRun: j.DryRun,
			Move: quota.Move{Account: j.Account, Kind: j.Kind, ItemID: j.ItemID, From: j.From, To: j.To}})
	}
	instances := map[quota.InstanceKey]quota.Instance{}
	accStates := map[string]quota.AccountState{}

	for ci, c := range sc.Cycles {
		now := offset(t, c.At)
		for name, qs := range c.Set {
			require.Contains(t, accounts, name)
			accounts[name].apply(t, qs)
		}
		for id, reason := range c.Busy {
			for _, a := range accounts {
				for i := range a.items {
					if a.items[i].ID == id {
						a.items[i].Busy = reason
					}
				}
			}
		}
		history := map[quota.Key][]quota.Sample{}
		for series, samples := range c.History {
			parts := strings.SplitN(series, "/", 3)
			require.Len(t, parts, 3, series)
			k := quota.Key{Account: parts[0], Project: parts[1], Resource: parts[2]}
			for _, s := range samples {
				var off string
				var usage int64
				_, err := fmt.Sscan(s, &off, &usage)
				require.NoError(t, err, s)
				d, err := ParseDuration(off)
				require.NoError(t, err)
				history[k] = append(history[k], quota.Sample{Time: now.Add(d), Quota: quota.Quota{Usage: usage}})
			}
		}
		in := Input{
			Now: now, Failed: c.Failed, Projects: projects, Instances: instances, Accounts: accStates,
			History: func(k quota.Key) []quota.Sample { return history[k] }, DryRun: sc.DryRun,
		}
		for _, name := range accountOrder {
			a := accounts[name]
			snap := quota.Snapshot{Account: name, User: a.user, Time: now, Service: a.service, Entries: a.entries()}
			in.Snapshots = append(in.Snapshots, snap)
		}
		out := eng.Evaluate(in)
		require.Empty(t, out.Errors)

		newInst := map[quota.InstanceKey]quota.Instance{}
		for k, v := range instances {
			newInst[k] = v
		}
		for _, k := range out.Deleted {
			delete(newInst, k)
		}
		for _, inst := range out.Instances {
			newInst[inst.Key] = inst
		}
		for _, st := range out.Accounts {
			accStates[st.Account] = st
		}
		var got []string
		for _, ev := range out.Events {
			got = append(got, describe(ev, now))
		}

		maxMoves := 10
		if sc.MaxActions != nil {
			maxMoves = *sc.MaxActions
		}
		planner := eng.NewPlanner(PlannerInput{
			Now: now, Snapshots: in.Snapshots, Projects: projects, Journal: journal,
			Cap: maxMoves, DryRun: sc.DryRun, History: in.History,
		})
		for _, f := range out.Firing {
			a := accounts[f.Instance.Key.Account]
			var items []quota.Item
			for _, it := range a.items {
				if it.Kind == f.Rule.Action.Kind && it.Project == f.Instance.Key.Project {
					items = append(items, it)
				}
			}
			plan := planner.Plan(f, items)
			inst := plan.Instance
			for _, m := range plan.Moves {
				journal = append(journal, quota.Action{Time: now, State: quota.ActionVerified, DryRun: m.DryRun, Move: m.Move})
				// A dry run starts the cooldown too, so it reports at the
				// pace of the real thing.
				res := planner.Applied(m)
				for _, ev := range res.Events {
					got = append(got, describe(ev, now))
				}
				inst = res.Instance
				if m.DryRun {
					continue
				}
				for i := range a.items {
					if a.items[i].ID == m.ItemID && a.items[i].Kind == m.Kind {
						a.items[i].Project = m.To
					}
				}
				// The cloud now charges the destination.
				for r, n := range m.Quantities {
					if q, ok := a.quotas[[2]string{m.From, r}]; ok {
						a.quotas[[2]string{m.From, r}] = q.Add(-n)
					}
					if q, ok := a.quotas[[2]string{m.To, r}]; ok {
						a.quotas[[2]string{m.To, r}] = q.Add(n)
					}
				}
			}
			for _, ev := range plan.Events {
				got = append(got, describe(ev, now))
			}
			newInst[f.Instance.Key] = inst
		}
		instances = newInst

		if len(c.Want) == 0 {
			c.Want = nil
		}
		require.Equal(t, c.Want, got, "cycle %d (at %s) events", ci+1, c.At)
		for key, want := range c.States {
			parts := strings.SplitN(key, "/", 4)
			require.Len(t, parts, 4, key)
			inst, ok := instances[quota.InstanceKey{Rule: parts[0], Account: parts[1], Project: parts[2], Resource: parts[3]}]
			st := "none"
			if ok {
				st = string(inst.State)
			}
			require.Equal(t, want, st, "cycle %d (at %s) state of %s", ci+1, c.At, key)
		}
	}
}

// size is an amount in a scenario: a plain number, or a number with a
// GiB or MiB suffix.
type size int64

func (s *size) UnmarshalYAML(unmarshal func(any) error) error {
	var str string
	if err := unmarshal(&str); err != nil {
		return err
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"GiB": quota.GiB, "MiB": quota.MiB} {
		if strings.HasSuffix(str, suffix) {
			str, mult = strings.TrimSuffix(str, suffix), m
		}
	}
	if n, err := strconv.ParseInt(str, 10, 64); err == nil && mult == 1 {
		*s = size(n)
		return nil
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return fmt.Errorf("bad size %q: %w", str, err)
	}
	*s = size(f * float64(mult))
	return nil
}

func quantities(m map[string]size) quota.Quantities {
	q := quota.Quantities{}
	for r, n := range m {
		q[r] = int64(n)
	}
	return q
}
