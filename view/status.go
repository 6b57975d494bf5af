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
	latest, insts, projects, err := readState(src)
	if err != nil {
		return nil, err
	}
	cur := make(map[quota.Key]quota.Sample, len(latest))
	for _, l := range latest {
		cur[l.Key] = l.Sample
	}
	name := namer(projects)
	st := &Status{Rules: RuleRows(insts, name, cur)}
	for _, l := range latest {
		st.Quotas = append(st.Quotas, seriesRow(l.Key, name(l.Key.Project), l.Sample))
	}
	st.Quotas = sortByName(st.Quotas)
	return st, nil
}

// readState reads what both the status and the status page start from:
// every series' latest values, the rule instances and the projects.
func readState(src StatusSource) ([]store.Latest, []quota.Instance, map[string]quota.Project, error) {
	latest, err := src.Latest()
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
	return latest, insts, projects, nil
}

// sortByName sorts rows by account, project name and resource, ties in
// their order. It sorts those names beside the rows' indices, not through
// the rows: there may be 80,000 rows, and they do not fit a cache.
func sortByName(rows []StatusRow) []StatusRow {
	type nameKey struct {
		account, project, resource string
		i                          int32
	}
	keys := make([]nameKey, len(rows))
	for i := range rows {
		r := &rows[i]
		keys[i] = nameKey{r.Account, r.ProjectName, r.Resource, int32(i)}
	}
	slices.SortFunc(keys, func(a, b nameKey) int {
		// Not cmp.Or, which would compare every name of every pair.
		if c := strings.Compare(a.account, b.account); c != 0 {
			return c
		}
		if c := strings.Compare(a.project, b.project); c != 0 {
			return c
		}
		if c := strings.Compare(a.resource, b.resource); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	out := make([]StatusRow, len(keys))
	for i, k := range keys {
		out[i] = rows[k.i]
	}
	return out
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

// RuleColumns are the columns of the rule table of `status`.
func RuleColumns() []Column[StatusRow] {
	return []Column[StatusRow]{colRule, colAccount, colProjectName, colProjectID, colResource, colState, colSince, colUsage}
}

// BriefRuleColumns are the columns of the rule table of the status page,
// which leaves out the project id and the usage.
func BriefRuleColumns() []Column[StatusRow] {
	return []Column[StatusRow]{colRule, colAccount, colProjectName, colResource, colState, colSince}
}

// QuotaColumns are the columns of the quota table of `status`.
func QuotaColumns() []Column[StatusRow] {
	return []Column[StatusRow]{colAccount, colProjectName, colProjectID, colResource, colUsage,
		{"PROJECT USAGE", func(r StatusRow) string { return ProjectUsage(r.Resource, r.Quota) }},
		{"OBSERVED", func(r StatusRow) string { return Time(r.Observed) }}}
}

var (
	colRule        = Column[StatusRow]{"RULE", func(r StatusRow) string { return r.Rule }}
	colAccount     = Column[StatusRow]{"ACCOUNT", func(r StatusRow) string { return r.Account }}
	colProjectName = Column[StatusRow]{"PROJECT", func(r StatusRow) string { return r.ProjectName }}
	colProjectID   = Column[StatusRow]{"PROJECT ID", func(r StatusRow) string { return r.Project }}
	colResource    = Column[StatusRow]{"RESOURCE", func(r StatusRow) string { return r.Resource }}
	colState       = Column[StatusRow]{"STATE", func(r StatusRow) string { return string(r.State) }}
	colUsage       = Column[StatusRow]{"USAGE", func(r StatusRow) string { return Usage(r.Resource, r.Quota) }}
	colSince       = Column[StatusRow]{"SINCE", func(r StatusRow) string {
		if r.Since == nil {
			return "-"
		}
		return Time(*r.Since)
	}}
)
