package view

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
)

// PageSource is what the status pages read; *store.Store is one.
type PageSource interface {
	StatusSource
	ActionSource
	Series(k quota.Key, from, to time.Time) ([]quota.Sample, error)
	Accounts() ([]quota.AccountState, error)
	OutboxLen() (pending, dead int, err error)
}

// ProposalLister is a source that also holds proposed moves awaiting
// approval; the overview lists them when its source is one.
type ProposalLister interface {
	OpenProposals(now time.Time) ([]ProposalRow, error)
}

// SilenceLister is a source that also holds silences; the overview lists
// the active ones when its source is one.
type SilenceLister interface {
	ActiveSilences(now time.Time) ([]SilenceRow, error)
}

// ProposalRow is one move awaiting approval.
type ProposalRow struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Expires  time.Time `json:"expires"`
	Rule     string    `json:"rule"`
	Account  string    `json:"account"`
	Kind     string    `json:"kind"`
	ItemName string    `json:"item_name"`
	From     string    `json:"from"`
	FromName string    `json:"from_name"`
	To       string    `json:"to"`
	ToName   string    `json:"to_name"`
}

// SilenceRow is one silence.
type SilenceRow struct {
	ID       string    `json:"id"`
	Rule     string    `json:"rule"`
	Project  string    `json:"project"`
	Resource string    `json:"resource"`
	Until    time.Time `json:"until"`
	Comment  string    `json:"comment"`
}

// Threshold is the ratio at which a rule fires on a series.
type Threshold struct {
	Rule  string
	Ratio float64
}

// ratioWhen finds "ratio > 0.95" (or >=) in a rule's condition: the
// threshold a bar can show. Conditions of other forms show none.
var ratioWhen = regexp.MustCompile(`\bratio\s*>=?\s*([0-9]*\.?[0-9]+)`)

// Thresholds returns, for a series, the ratio thresholds of the rules that
// select it.
func Thresholds(rs []*rules.Rule) func(projectID, projectName, resource string) []Threshold {
	type rt struct {
		r     *rules.Rule
		ratio float64
	}
	var with []rt
	for _, r := range rs {
		m := ratioWhen.FindStringSubmatch(r.When)
		if m == nil {
			continue
		}
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			with = append(with, rt{r, v})
		}
	}
	return func(id, name, resource string) []Threshold {
		var out []Threshold
		for _, w := range with {
			if ok, _ := path.Match(w.r.Resource, resource); !ok {
				continue
			}
			sel := len(w.r.Projects) == 0
			for _, g := range w.r.Projects {
				if Glob(g).Match(id, name) {
					sel = true
					break
				}
			}
			if sel {
				out = append(out, Threshold{Rule: w.r.Name, Ratio: w.ratio})
			}
		}
		return out
	}
}

// OverviewQuery says what the overview shows.
type OverviewQuery struct {
	Now time.Time
	// Rules give the thresholds on the bars and plots.
	Rules []*rules.Rule
	// Top is how many of the fullest series get a bar.
	Top int
	// Window is the span of the incident plots and of the recent moves.
	Window time.Duration
	// MaxPlots bounds how many incidents get a plot; the rest are listed.
	MaxPlots int
	// MaxMoves bounds how many recent moves are listed.
	MaxMoves int
}

// Overview is what the status page shows of the store.
type Overview struct {
	// Series counts the series stored.
	Series int
	// Fullest are the fullest series that have a limit, fullest first.
	Fullest []Bar
	// Incidents are the firing rule instances, fullest first.
	Incidents []Incident
	// Pending counts the rule instances whose condition holds but whose
	// `for` has not yet passed.
	Pending int
	// Moves are the recent journal entries, newest first.
	Moves     []ActionRow
	Accounts  []quota.AccountState
	Proposals []ProposalRow
	Silences  []SilenceRow
	// OutboxPending and OutboxDead count undelivered notifications.
	OutboxPending, OutboxDead int
}

// Bar is a series against its limit, with the thresholds of the rules on
// it; Width and the thresholds' At are percentages of the limit, capped
// at 100.
type Bar struct {
	StatusRow
	Width      float64
	Marks      []BarMark
	UsageLabel string
}

// BarMark is a rule's threshold on a bar.
type BarMark struct {
	At    float64
	Label string
}

// Incident is a firing rule instance with its recent history.
type Incident struct {
	StatusRow
	// HasPlot is false for incidents beyond OverviewQuery.MaxPlots.
	HasPlot bool
	Plot    Plot
	// GrowthPerDay and DaysToFull forecast from the last day.
	GrowthPerDay float64
	DaysToFull   quota.Days
}

// DaysToFullLabel renders days to full: "never" when usage does not grow.
func (i Incident) DaysToFullLabel() string {
	switch d := float64(i.DaysToFull); {
	case math.IsInf(d, 1):
		return "never (not growing)"
	case d == 0:
		return "full"
	case d < 1:
		return fmt.Sprintf("%.0f hours", d*24)
	default:
		return fmt.Sprintf("%.1f days", d)
	}
}

// QueryOverview reads what the status page shows. It reads every series'
// latest values once and keeps only what it shows (the Top fullest, the
// firing ones), so that 80,000 series cost one pass and no sort.
func QueryOverview(src PageSource, q OverviewQuery) (*Overview, error) {
	latest, insts, projects, err := readState(src)
	if err != nil {
		return nil, err
	}
	name := namer(projects)
	thr := Thresholds(q.Rules)
	ov := &Overview{Series: len(latest)}

	var firingInsts []quota.Instance
	want := map[quota.Key]quota.Sample{}
	for _, in := range insts {
		switch in.State {
		case quota.StateFiring:
			firingInsts = append(firingInsts, in)
			want[in.Key.Series()] = quota.Sample{}
		case quota.StatePending:
			ov.Pending++
		}
	}
	top := newTopN(q.Top)
	for i := range latest {
		l := &latest[i]
		if _, ok := want[l.Key]; ok {
			want[l.Key] = l.Sample
		}
		if Limited(l.Sample.Quota) {
			top.offer(i, l.Sample.Ratio())
		}
	}
	for _, i := range top.sorted() {
		l := latest[i]
		r := seriesRow(l.Key, name(l.Key.Project), l.Sample)
		b := Bar{StatusRow: r, Width: pct(float64(r.Ratio)), UsageLabel: Usage(r.Resource, r.Quota)}
		for _, t := range thr(r.Project, r.ProjectName, r.Resource) {
			b.Marks = append(b.Marks, BarMark{At: pct(t.Ratio), Label: t.Rule + " at " + quota.FormatPercent(t.Ratio)})
		}
		ov.Fullest = append(ov.Fullest, b)
	}
	firing := RuleRows(firingInsts, name, want)

	from := q.Now.Add(-q.Window)
	if ov.Moves, err = QueryActions(src, from, q.Now); err != nil {
		return nil, err
	}
	slices.SortStableFunc(firing, byRatio)
	for i, r := range firing {
		in := Incident{StatusRow: r, DaysToFull: quota.Days(math.Inf(1))}
		if i < q.MaxPlots {
			samples, err := src.Series(r.key(), from, q.Now)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", r.key(), err)
			}
			var ratios []float64
			for _, t := range thr(r.Project, r.ProjectName, r.Resource) {
				if t.Rule == r.Rule {
					ratios = append(ratios, t.Ratio)
				}
			}
			in.HasPlot = true
			in.Plot = NewPlot(r.Resource, r.Project, samples, from, q.Now, ratios, ov.Moves)
			in.Plot.Series = r.key().String()
			// A move is a step, not growth: the trend starts after the
			// last one that touched the project.
			trend := samples
			for _, m := range ov.Moves {
				if m.From != r.Project && m.To != r.Project {
					continue
				}
				for len(trend) > 0 && !trend[0].Time.After(m.Time) {
					trend = trend[1:]
				}
			}
			in.GrowthPerDay = rules.Growth(trend, r.Quota, r.Observed, q.Now)
			in.DaysToFull = quota.Days(rules.DaysToFull(r.Quota.Headroom(), in.GrowthPerDay))
		}
		ov.Incidents = append(ov.Incidents, in)
	}

	slices.SortStableFunc(ov.Moves, func(a, b ActionRow) int { return -cmp.Compare(a.ID, b.ID) })
	ov.Moves = ov.Moves[:min(len(ov.Moves), q.MaxMoves)]

	if ov.Accounts, err = src.Accounts(); err != nil {
		return nil, fmt.Errorf("read account states: %w", err)
	}
	if ov.OutboxPending, ov.OutboxDead, err = src.OutboxLen(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	if pl, ok := src.(ProposalLister); ok {
		if ov.Proposals, err = pl.OpenProposals(q.Now); err != nil {
			return nil, fmt.Errorf("read proposals: %w", err)
		}
	}
	if sl, ok := src.(SilenceLister); ok {
		if ov.Silences, err = sl.ActiveSilences(q.Now); err != nil {
			return nil, fmt.Errorf("read silences: %w", err)
		}
	}
	return ov, nil
}

// topN keeps the indices of the n highest ratios offered; ties keep the
// first offered.
type topN struct {
	n   int
	idx []int
	r   []float64
}

func newTopN(n int) *topN { return &topN{n: n} }

func (t *topN) offer(i int, r float64) {
	if t.n <= 0 || math.IsNaN(r) {
		return
	}
	if len(t.idx) == t.n && r <= t.r[len(t.r)-1] {
		return
	}
	// Insert in order, highest first; n is small.
	at := len(t.r)
	for at > 0 && t.r[at-1] < r {
		at--
	}
	t.idx = slices.Insert(t.idx, at, i)
	t.r = slices.Insert(t.r, at, r)
	if len(t.idx) > t.n {
		t.idx, t.r = t.idx[:t.n], t.r[:t.n]
	}
}

func (t *topN) sorted() []int { return t.idx }

// pct is a ratio as a percentage for a width, within [0,100].
func pct(r float64) float64 {
	if math.IsNaN(r) {
		return 0
	}
	return math.Round(math.Min(1, math.Max(0, r))*1000) / 10
}

// ProjectPage is the history of one project's limited series.
type ProjectPage struct {
	ID, Name string
	From, To time.Time
	Plots    []ProjectPlot
	// Moves are the journal entries in the span that moved an item out of
	// or into the project, newest first.
	Moves []ActionRow
}

// ProjectPlot is one series of the project with its plot.
type ProjectPlot struct {
	StatusRow
	Plot Plot
}

// ErrNoProject is returned by QueryProject for a project with no series.
var ErrNoProject = errors.New("no such project")

// QueryProject reads the history over [from,to] of every series of a
// project (by id) that has a limit, one plot each, fullest first.
func QueryProject(src PageSource, id string, from, to time.Time, rs []*rules.Rule) (*ProjectPage, error) {
	latest, err := src.Latest()
	if err != nil {
		return nil, fmt.Errorf("read quotas: %w", err)
	}
	projects, err := src.Projects()
	if err != nil {
		return nil, fmt.Errorf("read projects: %w", err)
	}
	name := namer(projects)
	pg := &ProjectPage{ID: id, Name: name(id), From: from, To: to}
	var rows []StatusRow
	found := false
	for _, l := range latest {
		if l.Key.Project != id {
			continue
		}
		found = true
		if Limited(l.Sample.Quota) {
			rows = append(rows, seriesRow(l.Key, pg.Name, l.Sample))
		}
	}
	if !found {
		return nil, fmt.Errorf("project %s: %w", id, ErrNoProject)
	}
	// Fullest first, then by account and resource.
	slices.SortFunc(rows, func(a, b StatusRow) int {
		return cmp.Or(byRatio(a, b), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Resource, b.Resource))
	})
	acts, err := QueryActions(src, from, to)
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		if a.From == id || a.To == id {
			pg.Moves = append(pg.Moves, a)
		}
	}
	slices.SortStableFunc(pg.Moves, func(a, b ActionRow) int { return -cmp.Compare(a.ID, b.ID) })
	thr := Thresholds(rs)
	for _, r := range rows {
		samples, err := src.Series(r.key(), from, to)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.key(), err)
		}
		var ratios []float64
		for _, t := range thr(r.Project, r.ProjectName, r.Resource) {
			ratios = append(ratios, t.Ratio)
		}
		pl := NewPlot(r.Resource, id, samples, from, to, ratios, pg.Moves)
		pl.Series = r.key().String()
		pg.Plots = append(pg.Plots, ProjectPlot{StatusRow: r, Plot: pl})
	}
	return pg, nil
}
