package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
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

// statusRow is one line of `status`.
type statusRow struct {
	Rule        string      `json:"rule"`
	Account     string      `json:"account"`
	Project     string      `json:"project"`
	ProjectName string      `json:"project_name"`
	Resource    string      `json:"resource"`
	State       quota.State `json:"state"`
	Since       *time.Time  `json:"since"`
	Usage       int64       `json:"usage"`
	Limit       int64       `json:"limit"`
	Ratio       jsonFloat   `json:"ratio"`
	Observed    time.Time   `json:"observed"`
}

// jsonFloat encodes infinities as null; JSON has no infinity.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return []byte(fmt.Sprintf("%g", float64(f))), nil
}

func cmdStatus(_ context.Context, sio *stdio, args []string) int {
	var c common
	cfg, _, _, code := c.setup("status", "", sio, args, true, 0, nil)
	if code != 0 {
		return code
	}
	st, err := openReadOnly(cfg.Store.Path)
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer st.Close()
	latest, err := st.Latest()
	if err != nil {
		return fail(sio, "read quotas: %v", err)
	}
	insts, err := st.Instances()
	if err != nil {
		return fail(sio, "read rule states: %v", err)
	}
	projects, err := st.Projects()
	if err != nil {
		return fail(sio, "read projects: %v", err)
	}
	cur := make(map[quota.Key]quota.Sample, len(latest))
	for _, l := range latest {
		cur[l.Key] = l.Sample
	}
	name := namer(projects)
	var rows []statusRow
	covered := map[quota.Key]bool{}
	for _, in := range insts {
		k := in.Key.Series()
		covered[k] = true
		s := cur[k]
		since := in.Since
		rows = append(rows, statusRow{Rule: in.Key.Rule, Account: k.Account, Project: k.Project, ProjectName: name(k.Project),
			Resource: k.Resource, State: in.State, Since: &since, Usage: s.Usage, Limit: s.EffectiveLimit(),
			Ratio: jsonFloat(s.Ratio()), Observed: s.Time})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return a.Rule+"\x00"+a.Account+"\x00"+a.ProjectName+"\x00"+a.Resource < b.Rule+"\x00"+b.Account+"\x00"+b.ProjectName+"\x00"+b.Resource
	})
	var series []statusRow
	for _, l := range latest {
		series = append(series, statusRow{Account: l.Key.Account, Project: l.Key.Project, ProjectName: name(l.Key.Project),
			Resource: l.Key.Resource, Usage: l.Sample.Usage, Limit: l.Sample.EffectiveLimit(), Ratio: jsonFloat(l.Sample.Ratio()),
			Observed: l.Sample.Time})
	}
	sort.Slice(series, func(i, j int) bool {
		a, b := series[i], series[j]
		return a.Account+"\x00"+a.ProjectName+"\x00"+a.Resource < b.Account+"\x00"+b.ProjectName+"\x00"+b.Resource
	})
	if c.output == "json" {
		out := append([]statusRow{}, rows...)
		for _, s := range series {
			if !covered[quota.Key{Account: s.Account, Project: s.Project, Resource: s.Resource}] {
				out = append(out, s)
			}
		}
		if err := writeJSON(sio.out, out); err != nil {
			return fail(sio, "%v", err)
		}
		return exitOK
	}
	fmt.Fprintln(sio.out, "RULES")
	tw := table(sio.out)
	fmt.Fprintln(tw, "RULE\tACCOUNT\tPROJECT\tPROJECT ID\tRESOURCE\tSTATE\tSINCE\tUSAGE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Rule, r.Account, r.ProjectName, r.Project, r.Resource,
			r.State, formatTime(*r.Since), usageOf(r.Resource, cur[quota.Key{Account: r.Account, Project: r.Project, Resource: r.Resource}].Quota))
	}
	tw.Flush()
	fmt.Fprintln(sio.out, "\nQUOTAS")
	tw = table(sio.out)
	fmt.Fprintln(tw, "ACCOUNT\tPROJECT\tPROJECT ID\tRESOURCE\tUSAGE\tPROJECT USAGE\tOBSERVED")
	for _, s := range series {
		q := cur[quota.Key{Account: s.Account, Project: s.Project, Resource: s.Resource}].Quota
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s / %s (%s)\t%s\n", s.Account, s.ProjectName, s.Project, s.Resource,
			usageOf(s.Resource, q), quota.FormatAmount(s.Resource, q.ProjectUsage), quota.FormatAmount(s.Resource, q.ProjectLimit),
			quota.FormatPercent(q.ProjectRatio()), formatTime(s.Observed))
	}
	tw.Flush()
	return exitOK
}

// historyRow is one sample of `history --output json`.
type historyRow struct {
	Account      string    `json:"account"`
	Project      string    `json:"project"`
	ProjectName  string    `json:"project_name"`
	Resource     string    `json:"resource"`
	Time         time.Time `json:"time"`
	Usage        int64     `json:"usage"`
	Limit        int64     `json:"limit"`
	Pending      int64     `json:"pending"`
	ProjectUsage int64     `json:"project_usage"`
	ProjectLimit int64     `json:"project_limit"`
}

func cmdHistory(_ context.Context, sio *stdio, args []string) int {
	var c common
	var project, resource string
	var since time.Duration
	cfg, _, _, code := c.setup("history", " [--project P] [--resource R] [--since 7d]", sio, args, true, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&project, "project", "", "project id or name")
		fs.StringVar(&resource, "resource", "", "resource name")
		sinceFlag(fs, &since)
	})
	if code != 0 {
		return code
	}
	st, err := openReadOnly(cfg.Store.Path)
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer st.Close()
	keys, err := st.Keys()
	if err != nil {
		return fail(sio, "read series: %v", err)
	}
	projects, err := st.Projects()
	if err != nil {
		return fail(sio, "read projects: %v", err)
	}
	name := namer(projects)
	var sel []quota.Key
	for _, k := range keys {
		if project != "" && k.Project != project && name(k.Project) != project {
			continue
		}
		if resource != "" && k.Resource != resource {
			continue
		}
		sel = append(sel, k)
	}
	if len(sel) == 0 {
		return fail(sio, "no series matches --project %q --resource %q", project, resource)
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].String() < sel[j].String() })
	now := time.Now().UTC()
	from := now.Add(-since)
	var out []historyRow
	for i, k := range sel {
		samples, err := st.Series(k, from, now)
		if err != nil {
			return fail(sio, "read %s: %v", k, err)
		}
		if c.output == "json" {
			for _, s := range samples {
				out = append(out, historyRow{Account: k.Account, Project: k.Project, ProjectName: name(k.Project), Resource: k.Resource,
					Time: s.Time, Usage: s.Usage, Limit: s.Limit, Pending: s.Pending, ProjectUsage: s.ProjectUsage, ProjectLimit: s.ProjectLimit})
			}
			continue
		}
		if i > 0 {
			fmt.Fprintln(sio.out)
		}
		// The sparkline spans what was observed, not the whole --since.
		start := from
		if len(samples) > 0 && samples[0].Time.After(start) {
			start = samples[0].Time
		}
		points, err := st.Downsample(k, start, now, 60)
		if err != nil {
			return fail(sio, "read %s: %v", k, err)
		}
		vals := make([]int64, len(points))
		for j, p := range points {
			vals[j] = p.Usage
		}
		fmt.Fprintf(sio.out, "%s  %s  %s  %s\n", k.Account, name(k.Project), k.Resource, sparkline(vals))
		tw := table(sio.out)
		fmt.Fprintln(tw, "TIME\tUSAGE\tLIMIT\tPENDING\tPROJECT USAGE\tPROJECT LIMIT")
		// Consecutive equal samples are folded into one line: a step
		// series reads best as the times it changed.
		var prev *quota.Sample
		for j := range samples {
			s := &samples[j]
			if prev != nil && prev.Quota == s.Quota && j != len(samples)-1 {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(s.Time), quota.FormatAmount(k.Resource, s.Usage),
				quota.FormatAmount(k.Resource, s.Limit), quota.FormatAmount(k.Resource, s.Pending),
				quota.FormatAmount(k.Resource, s.ProjectUsage), quota.FormatAmount(k.Resource, s.ProjectLimit))
			prev = s
		}
		tw.Flush()
	}
	if c.output == "json" {
		if out == nil {
			out = []historyRow{}
		}
		if err := writeJSON(sio.out, out); err != nil {
			return fail(sio, "%v", err)
		}
	}
	return exitOK
}

// actionRow is one journal entry of `actions --output json`.
type actionRow struct {
	ID         uint64            `json:"id"`
	Time       time.Time         `json:"time"`
	Rule       string            `json:"rule"`
	Account    string            `json:"account"`
	Kind       quota.Kind        `json:"kind"`
	ItemID     string            `json:"item_id"`
	ItemName   string            `json:"item_name"`
	From       string            `json:"from"`
	FromName   string            `json:"from_name"`
	To         string            `json:"to"`
	ToName     string            `json:"to_name"`
	Quantities quota.Quantities  `json:"quantities"`
	State      quota.ActionState `json:"state"`
	DryRun     bool              `json:"dry_run"`
	Error      string            `json:"error"`
}

func cmdActions(_ context.Context, sio *stdio, args []string) int {
	var c common
	var since time.Duration
	cfg, _, _, code := c.setup("actions", " [--since 7d]", sio, args, true, 0, func(fs *flag.FlagSet) { sinceFlag(fs, &since) })
	if code != 0 {
		return code
	}
	st, err := openReadOnly(cfg.Store.Path)
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer st.Close()
	now := time.Now().UTC()
	acts, err := st.Actions(now.Add(-since), now)
	if err != nil {
		return fail(sio, "read journal: %v", err)
	}
	rows := make([]actionRow, 0, len(acts))
	for _, a := range acts {
		rows = append(rows, actionRow{ID: a.ID, Time: a.Time, Rule: a.Rule, Account: a.Account, Kind: a.Kind,
			ItemID: a.ItemID, ItemName: a.ItemName, From: a.From, FromName: a.FromName, To: a.To, ToName: a.ToName,
			Quantities: a.Quantities, State: a.State, DryRun: a.DryRun, Error: a.Error})
	}
	if c.output == "json" {
		if err := writeJSON(sio.out, rows); err != nil {
			return fail(sio, "%v", err)
		}
		return exitOK
	}
	if len(rows) == 0 {
		fmt.Fprintf(sio.out, "no actions in the last %s\n", since)
		return exitOK
	}
	tw := table(sio.out)
	fmt.Fprintln(tw, "ID\tTIME\tRULE\tACCOUNT\tKIND\tITEM\tAMOUNT\tFROM\tTO\tSTATE\tERROR")
	for _, r := range rows {
		st := string(r.State)
		if r.DryRun {
			st += " (dry run)"
		}
		var amounts []string
		for _, res := range r.Quantities.Resources() {
			amounts = append(amounts, res+" "+quota.FormatAmount(res, r.Quantities[res]))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, formatTime(r.Time), r.Rule, r.Account, r.Kind,
			r.ItemName, dash(strings.Join(amounts, ", ")), nameOr(r.FromName, r.From), nameOr(r.ToName, r.To), st, dash(r.Error))
	}
	tw.Flush()
	return exitOK
}

func cmdBackup(_ context.Context, sio *stdio, args []string) int {
	var c common
	cfg, _, rest, code := c.setup("backup", " OUT", sio, args, false, 1, nil)
	if code != 0 {
		return code
	}
	st, err := openReadOnly(cfg.Store.Path)
	if err != nil {
		return fail(sio, "%v", err)
	}
	defer st.Close()
	if err := st.BackupFile(rest[0]); err != nil {
		return fail(sio, "backup to %s: %v", rest[0], err)
	}
	fmt.Fprintf(sio.out, "wrote %s\n", rest[0])
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

// namer returns a function giving a project's name, or its id when the
// store knows no name for it.
func namer(projects map[string]quota.Project) func(id string) string {
	return func(id string) string {
		if p, ok := projects[id]; ok && p.Name != "" {
			return p.Name
		}
		return id
	}
}
