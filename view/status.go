package view

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

// StatusSource is what the status query reads; *store.Store is one.
type StatusSource interface {
	Latest() ([]store.Latest, error)
	Instances() ([]quota.Instance, error)
	Projects() (map[string]quota.Project, error)
}

// StatusRow is one row of `status`: a rule instance with the latest values
// of its series, or a series alone (no rule, no state, since null).
type StatusRow struct {
	Rule        string      `json:"rule"`
	Account     string      `json:"account"`
	Project     string      `json:"project"`
	ProjectName string      `json:"project_name"`
	Resource    string      `json:"resource"`
	State       quota.State `json:"state"`
	Since       *time.Time  `json:"since"`
	Usage       int64       `json:"usage"`
	Limit       int64       `json:"limit"`
	Ratio       Float       `json:"ratio"`
	Observed    time.Time   `json:"observed"`
	// Silenced names the silence that holds the rule instance, on the
	// rows MarkSilenced marked; other rows leave it out.
	Silenced string `json:"silenced,omitempty"`
	// Quota is the series' latest values in full, for the tables; the JSON
	// row carries only the fields above.
	Quota quota.Quota `json:"-"`
}

func (r StatusRow) key() quota.Key {
	return quota.Key{Account: r.Account, Project: r.Project, Resource: r.Resource}
}

// Status is the state `status` shows.
type Status struct {
	// Rules holds every rule instance, by rule, account, project name and
	// resource.
	Rules []StatusRow
	// Quotas holds the latest values of every series, by account, project
	// name and resource.
	Quotas []StatusRow
}

// QueryStatus reads the rule instances and the latest values of every
// series.
func QueryStatus(src StatusSource) (*Status, error) {
	d, err := readStatus(src)
	if err != nil {
		return nil, err
	}
	ranks := d.nameRanks()
	order := make([]int32, len(ranks))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return ranks[a].compare(&ranks[b], a, b) })
	st := &Status{Rules: d.rules, Quotas: make([]StatusRow, len(order))}
	for j, i := range order {
		st.Quotas[j] = d.row(i)
	}
	return st, nil
}

// SelectStatus is QueryStatus(src).Select(f), in one pass: the rows of the
// series, which may be 80,000, are made once, in the order shown.
func SelectStatus(src StatusSource, f StatusFilter) (*Status, error) {
	d, err := readStatus(src)
	if err != nil {
		return nil, err
	}
	rules, covered := f.selectRules(d.rules)
	byInstance := f.Rule != "" || f.State != ""
	ranks := d.nameRanks()
	type key struct {
		fullness uint64
		name     nameRank
		i        int32
	}
	keys := make([]key, 0, len(d.latest))
	for i := range d.latest {
		l := &d.latest[i]
		if !f.series(l.Key.Account, l.Key.Project, d.names[i]) || byInstance && !covered[l.Key] {
			continue
		}
		keys = append(keys, key{fullness(l.Sample.Ratio()), ranks[i], int32(i)})
	}
	// Fullest first; ties in the order QueryStatus lists them.
	slices.SortFunc(keys, func(a, b key) int {
		if a.fullness != b.fullness {
			return cmp.Compare(a.fullness, b.fullness)
		}
		return a.name.compare(&b.name, a.i, b.i)
	})
	if f.Top > 0 && len(keys) > f.Top {
		keys = keys[:f.Top]
	}
	st := &Status{Rules: fullestFirst(d.rules, rules, f.Top), Quotas: make([]StatusRow, len(keys))}
	for j, k := range keys {
		st.Quotas[j] = d.row(k.i)
	}
	return st, nil
}

// statusData is what a status is made of: every series' latest values and
// its project's name, and the rule instances' rows.
type statusData struct {
	latest []store.Latest
	// unsorted: latest is in no order, and ties of names are broken by
	// project id, as in key order.
	unsorted bool
	names    []string
	rules    []StatusRow
}

func (d *statusData) row(i int32) StatusRow {
	l := &d.latest[i]
	return seriesRow(l.Key, d.names[i], l.Sample)
}

// unsortedLatest is a source that lists the latest values in no order,
// cheaper than sorted; *store.Store is one. The status sorts them its own
// way.
type unsortedLatest interface {
	LatestUnsorted() ([]store.Latest, error)
}

func readStatus(src StatusSource) (*statusData, error) {
	read, unsorted := src.Latest, false
	if u, ok := src.(unsortedLatest); ok {
		read, unsorted = u.LatestUnsorted, true
	}
	latest, insts, projects, err := readStateWith(src, read)
	if err != nil {
		return nil, err
	}
	// Only the instances' series are looked up.
	var cur map[quota.Key]quota.Sample
	if len(insts) > 0 {
		cur = make(map[quota.Key]quota.Sample, len(insts))
		for _, in := range insts {
			cur[in.Key.Series()] = quota.Sample{}
		}
		for _, l := range latest {
			if _, ok := cur[l.Key]; ok {
				cur[l.Key] = l.Sample
			}
		}
	}
	name := namer(projects)
	d := &statusData{latest: latest, unsorted: unsorted, names: make([]string, len(latest)), rules: RuleRows(insts, name, cur)}
	for i := range latest {
		// The series come by project: a project's name is looked up once.
		if p := latest[i].Key.Project; i > 0 && p == latest[i-1].Key.Project {
			d.names[i] = d.names[i-1]
		} else {
			d.names[i] = name(p)
		}
	}
	return d, nil
}

// readState reads what both the status and the status page start from:
// every series' latest values, the rule instances and the projects.
func readState(src StatusSource) ([]store.Latest, []quota.Instance, map[string]quota.Project, error) {
	return readStateWith(src, src.Latest)
}

// readStateWith is readState with the latest values read by latest.
func readStateWith(src StatusSource, latest func() ([]store.Latest, error)) ([]store.Latest, []quota.Instance, map[string]quota.Project, error) {
	all, err := latest()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read quotas: %w", err)
	}
	insts, err := src.Instances()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read rule states: %w", err)
	}
	projects, err := src.Projects()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read projects: %w", err)
	}
	return all, insts, projects, nil
}

// nameRank is a series' place by account, project name and resource, as
// the ranks of each among the series' distinct names, then by project id
// when the series came in no order.
type nameRank struct{ account, project, resource, id uint32 }

// compare orders series a and b (at indexes i and j) by name, ties in
// their order.
func (a *nameRank) compare(b *nameRank, i, j int32) int {
	switch {
	case a.account != b.account:
		return cmp.Compare(a.account, b.account)
	case a.project != b.project:
		return cmp.Compare(a.project, b.project)
	case a.resource != b.resource:
		return cmp.Compare(a.resource, b.resource)
	case a.id != b.id:
		return cmp.Compare(a.id, b.id)
	}
	return cmp.Compare(i, j)
}

// nameRanks ranks the few distinct names of each kind once: there may be
// 80,000 series, and comparing their names while sorting costs more than
// the rest of `status`.
func (d *statusData) nameRanks() []nameRank {
	out := make([]nameRank, len(d.latest))
	var accounts, projects, resources, ids ranker
	for i := range d.latest {
		k := &d.latest[i].Key
		out[i] = nameRank{accounts.id(k.Account), projects.id(d.names[i]), resources.id(k.Resource), 0}
		if d.unsorted {
			out[i].id = ids.id(k.Project)
		}
	}
	ra, rp, rr, ri := accounts.ranks(), projects.ranks(), resources.ranks(), ids.ranks()
	for i := range out {
		r := &out[i]
		r.account, r.project, r.resource = ra[r.account], rp[r.project], rr[r.resource]
		if d.unsorted {
			r.id = ri[r.id]
		}
	}
	return out
}

// ranker numbers distinct strings as they come, then ranks them in order.
type ranker struct {
	idx    map[string]uint32
	values []string
	last   string
	lastID uint32
}

// id returns s's number; a string equal to the last one asked costs no
// lookup.
func (r *ranker) id(s string) uint32 {
	if len(r.values) > 0 && s == r.last {
		return r.lastID
	}
	// The few values seen first (resources, accounts) are compared before
	// any is hashed.
	for i := range min(len(r.values), 8) {
		if r.values[i] == s {
			r.last, r.lastID = s, uint32(i)
			return uint32(i)
		}
	}
	if r.idx == nil {
		r.idx = map[string]uint32{}
	}
	id, ok := r.idx[s]
	if !ok {
		id = uint32(len(r.values))
		r.idx[s] = id
		r.values = append(r.values, s)
	}
	r.last, r.lastID = s, id
	return id
}

// ranks returns the rank of each number's string in string order.
func (r *ranker) ranks() []uint32 {
	order := make([]uint32, len(r.values))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(r.values[a], r.values[b]) })
	rank := make([]uint32, len(order))
	for j, i := range order {
		rank[i] = uint32(j) // distinct strings: no ties
	}
	return rank
}

// RuleRows turns rule instances into rows, with the latest values of their
// series from cur (nil when they are not at hand), sorted by rule, account,
// project name and resource. name gives a project's name, or its id.
func RuleRows(insts []quota.Instance, name func(id string) string, cur map[quota.Key]quota.Sample) []StatusRow {
	rows := make([]StatusRow, 0, len(insts))
	for _, in := range insts {
		k := in.Key.Series()
		r := seriesRow(k, name(k.Project), cur[k])
		since := in.Since
		r.Rule, r.State, r.Since = in.Key.Rule, in.State, &since
		rows = append(rows, r)
	}
	return sortRows(rows, 0, func(a, b *StatusRow) int {
		return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.ProjectName, b.ProjectName), cmp.Compare(a.Resource, b.Resource))
	})
}

func seriesRow(k quota.Key, projectName string, s quota.Sample) StatusRow {
	return StatusRow{Account: k.Account, Project: k.Project, ProjectName: projectName, Resource: k.Resource,
		Usage: s.Usage, Limit: s.EffectiveLimit(), Ratio: Float(s.Ratio()), Observed: s.Time, Quota: s.Quota}
}

// Rows is the status as one list, as `status --output json` prints it: the
// rule instances, then the series that no rule instance covers.
func (s *Status) Rows() []StatusRow {
	out := append([]StatusRow{}, s.Rules...)
	covered := make(map[quota.Key]bool, len(s.Rules))
	for _, r := range s.Rules {
		covered[r.key()] = true
	}
	for _, q := range s.Quotas {
		if !covered[q.key()] {
			out = append(out, q)
		}
	}
	return out
}

// MarkSilenced sets Silenced on the rule rows that a silence holds:
// silenced names the silence holding an incident (with its project's name,
// which silences may match), if any. The command line and the JSON API
// mark rows the same way.
func MarkSilenced(rows []StatusRow, silenced func(k quota.InstanceKey, projectName string) (string, bool)) {
	for i := range rows {
		r := &rows[i]
		if r.Rule == "" {
			continue
		}
		k := quota.InstanceKey{Rule: r.Rule, Account: r.Account, Project: r.Project, Resource: r.Resource}
		name := r.ProjectName
		if n := SynnefoName(r.Project, name); n != "" {
			name = n // silences match the cloud's names
		}
		if reason, ok := silenced(k, name); ok {
			r.Silenced = reason
		}
	}
}

// WriteStatus writes the status as two tables, the rule instances and the
// quotas.
func WriteStatus(w io.Writer, s *Status) error {
	fmt.Fprintln(w, "RULES")
	if err := WriteTable(w, RuleColumns(), s.Rules); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nQUOTAS")
	return WriteTable(w, QuotaColumns(), s.Quotas)
}

// RuleColumns are the columns of the rule table of `status`. Columns
// remember the last time and unit they rendered: each call's serve one
// table at a time.
func RuleColumns() []Column[StatusRow] {
	return []Column[StatusRow]{colRule, colAccount, colProjectName, colProjectID, colResource, colState, colSince(), colUsage()}
}

// BriefRuleColumns are the columns of the rule table of the status page,
// which leaves out the project id and the usage.
func BriefRuleColumns() []Column[StatusRow] {
	return []Column[StatusRow]{colRule, colAccount, colProjectName, colResource, colState, colSince()}
}

// QuotaColumns are the columns of the quota table of `status`.
func QuotaColumns() []Column[StatusRow] {
	observed, unit := timeAppender(), unitOf()
	return []Column[StatusRow]{colAccount, colProjectName, colProjectID, colResource, colUsage(),
		{Header: "PROJECT USAGE",
			Cell: func(r StatusRow) string { return ProjectUsage(r.Resource, r.Quota) },
			Append: func(b []byte, r *StatusRow) []byte {
				return appendUsage(b, unit(r.Resource), r.Quota.ProjectUsage, r.Quota.ProjectLimit, r.Quota.ProjectRatio())
			}},
		{Header: "OBSERVED",
			Cell:   func(r StatusRow) string { return Time(r.Observed) },
			Append: func(b []byte, r *StatusRow) []byte { return observed(b, r.Observed) }}}
}

// textColumn is a column showing one text field of the row.
func textColumn(header string, field func(r *StatusRow) string) Column[StatusRow] {
	return Column[StatusRow]{Header: header,
		Cell:   func(r StatusRow) string { return field(&r) },
		Append: func(b []byte, r *StatusRow) []byte { return append(b, field(r)...) }}
}

var (
	colRule        = textColumn("RULE", func(r *StatusRow) string { return r.Rule })
	colAccount     = textColumn("ACCOUNT", func(r *StatusRow) string { return r.Account })
	colProjectName = textColumn("PROJECT", func(r *StatusRow) string { return r.ProjectName })
	colProjectID   = textColumn("PROJECT ID", func(r *StatusRow) string { return r.Project })
	colResource    = textColumn("RESOURCE", func(r *StatusRow) string { return r.Resource })
	colState       = textColumn("STATE", func(r *StatusRow) string { return string(r.State) })
)

// colUsage is the column of the usage against the effective limit.
func colUsage() Column[StatusRow] {
	unit := unitOf()
	return Column[StatusRow]{Header: "USAGE",
		Cell: func(r StatusRow) string { return Usage(r.Resource, r.Quota) },
		Append: func(b []byte, r *StatusRow) []byte {
			return appendUsage(b, unit(r.Resource), r.Quota.Usage, r.Quota.EffectiveLimit(), r.Quota.Ratio())
		}}
}

// unitOf returns quota.UnitOf, remembering the last resource it was asked:
// a table's rows repeat a few resources.
func unitOf() func(resource string) quota.Unit {
	var last string
	var unit quota.Unit
	return func(resource string) quota.Unit {
		if unit == "" || resource != last {
			last, unit = resource, quota.UnitOf(resource)
		}
		return unit
	}
}

// colSince is the column of when a rule instance entered its state.
func colSince() Column[StatusRow] {
	since := timeAppender()
	return Column[StatusRow]{Header: "SINCE",
		Cell: func(r StatusRow) string {
			if r.Since == nil {
				return "-"
			}
			return Time(*r.Since)
		},
		Append: func(b []byte, r *StatusRow) []byte {
			if r.Since == nil {
				return append(b, '-')
			}
			return since(b, *r.Since)
		}}
}
