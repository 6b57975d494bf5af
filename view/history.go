package view

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// HistorySource is what the history query reads; *store.Store is one.
type HistorySource interface {
	Keys() ([]quota.Key, error)
	Projects() (map[string]quota.Project, error)
	Series(k quota.Key, from, to time.Time) ([]quota.Sample, error)
	Downsample(k quota.Key, from, to time.Time, n int) ([]quota.Sample, error)
}

// keySelector is a source that selects series without listing and
// sorting every key first; *store.Store is one.
type keySelector interface {
	SelectKeys(account, project, resource func(name string) bool) ([]quota.Key, error)
}

// keyPicker is a source that reads a few series named in full without
// loading every series first; *store.Store is one.
type keyPicker interface {
	HistoryAccounts() ([]string, error)
	PickKeys(keys []quota.Key) ([]quota.Key, error)
}

// HistoryQuery selects series and a span of their history.
type HistoryQuery struct {
	// Project is a project id or name, or a glob on either; empty
	// matches every project.
	Project Glob
	// Resource is a resource name or a glob on it; empty matches every
	// resource.
	Resource Glob
	// Account is an account name or a glob on it; empty matches every
	// account.
	Account  Glob
	From, To time.Time
	// Points, if positive, also reads that many points of each series,
	// downsampled over the span observed, for a sparkline.
	Points int
	// MaxSeries, if positive, is the most series the query may select;
	// more is ErrTooManySeries, before any history is read.
	MaxSeries int
}

// ErrTooManySeries is returned by QueryHistory when more series match than
// the query allows.
var ErrTooManySeries = errors.New("too many series match")

// Series is the history of one series.
type Series struct {
	Key         quota.Key
	ProjectName string
	// Samples are the samples as stored, one per poll.
	Samples []quota.Sample
	// Points are the downsampled points, when the query asked for them.
	Points []quota.Sample
}

// HistoryRow is one sample of `history --output json`.
type HistoryRow struct {
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

// QueryHistory reads the history of the series the query selects, in the
// order of their keys. No match is no series and no error.
func QueryHistory(src HistorySource, q HistoryQuery) ([]Series, error) {
	projects, err := src.Projects()
	if err != nil {
		return nil, fmt.Errorf("read projects: %w", err)
	}
	name := namer(projects)
	account, resource := q.Account.match, q.Resource.match
	project := func(id string) bool { return q.Project.match(id) || q.Project.match(name(id)) }
	var sel []quota.Key
	if kp, ok := src.(keyPicker); ok && q.Project.literal() && q.Project != "" && q.Resource.literal() && q.Resource != "" && q.Account.literal() {
		// Named in full: only the series of that project (by id, or of
		// the projects of that name) and resource in each account.
		if sel, err = pickKeys(kp, projects, q); err != nil {
			return nil, fmt.Errorf("read series: %w", err)
		}
	} else if ks, ok := src.(keySelector); ok {
		if sel, err = ks.SelectKeys(account, project, resource); err != nil {
			return nil, fmt.Errorf("read series: %w", err)
		}
	} else {
		keys, err := src.Keys()
		if err != nil {
			return nil, fmt.Errorf("read series: %w", err)
		}
		for _, k := range keys {
			if account(k.Account) && resource(k.Resource) && project(k.Project) {
				sel = append(sel, k)
			}
		}
	}
	if q.MaxSeries > 0 && len(sel) > q.MaxSeries {
		return nil, fmt.Errorf("%d series, at most %d: %w", len(sel), q.MaxSeries, ErrTooManySeries)
	}
	slices.SortFunc(sel, func(a, b quota.Key) int { return strings.Compare(a.String(), b.String()) })
	out := make([]Series, 0, len(sel))
	for _, k := range sel {
		s := Series{Key: k, ProjectName: name(k.Project)}
		if s.Samples, err = src.Series(k, q.From, q.To); err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		if q.Points > 0 {
			// The sparkline spans what was observed, not the whole query.
			start := q.From
			if len(s.Samples) > 0 && s.Samples[0].Time.After(start) {
				start = s.Samples[0].Time
			}
			if s.Points, err = src.Downsample(k, start, q.To, q.Points); err != nil {
				return nil, fmt.Errorf("read %s: %w", k, err)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// pickKeys is the series of a query whose project, resource and account
// (if any) hold no pattern.
func pickKeys(kp keyPicker, projects map[string]quota.Project, q HistoryQuery) ([]quota.Key, error) {
	accounts := []string{string(q.Account)}
	if q.Account == "" {
		var err error
		if accounts, err = kp.HistoryAccounts(); err != nil {
			return nil, err
		}
	}
	ids := []string{string(q.Project)}
	for id, p := range projects {
		if p.Name == string(q.Project) && id != string(q.Project) {
			ids = append(ids, id)
		}
	}
	var keys []quota.Key
	for _, a := range accounts {
		for _, id := range ids {
			keys = append(keys, quota.Key{Account: a, Project: id, Resource: string(q.Resource)})
		}
	}
	return kp.PickKeys(keys)
}

// HistoryRows flattens series into the rows of `history --output json`,
// one per sample; never nil, so that no sample is an empty array.
func HistoryRows(series []Series) []HistoryRow {
	out := []HistoryRow{}
	for _, sr := range series {
		k := sr.Key
		for _, s := range sr.Samples {
			out = append(out, HistoryRow{Account: k.Account, Project: k.Project, ProjectName: sr.ProjectName, Resource: k.Resource,
				Time: s.Time, Usage: s.Usage, Limit: s.Limit, Pending: s.Pending, ProjectUsage: s.ProjectUsage, ProjectLimit: s.ProjectLimit})
		}
	}
	return out
}

// WriteHistory writes each series as a title line with its sparkline and a
// table of its samples.
func WriteHistory(w io.Writer, series []Series) error {
	for i, sr := range series {
		if i > 0 {
			fmt.Fprintln(w)
		}
		k := sr.Key
		amount := func(v int64) string { return quota.FormatAmount(k.Resource, v) }
		vals := make([]int64, len(sr.Points))
		for j, p := range sr.Points {
			vals[j] = p.Usage
		}
		title := k.Account + "  " + sr.ProjectName + "  " + k.Resource
		if len(vals) > 0 {
			// The sparkline is scaled between its extremes: say what they are.
			title += "  " + Sparkline(vals) + "  min " + amount(slices.Min(vals)) + "  max " + amount(slices.Max(vals))
		}
		fmt.Fprintln(w, title)
		var rows [][]string
		// Consecutive equal samples fold into one line: a step series
		// reads best as the times it changed.
		var prev *quota.Sample
		for j := range sr.Samples {
			s := &sr.Samples[j]
			if prev != nil && prev.Quota == s.Quota && j != len(sr.Samples)-1 {
				continue
			}
			rows = append(rows, []string{Time(s.Time), amount(s.Usage), amount(s.Limit), amount(s.Pending),
				amount(s.ProjectUsage), amount(s.ProjectLimit)})
			prev = s
		}
		if err := WriteRows(w, []string{"TIME", "USAGE", "LIMIT", "PENDING", "PROJECT USAGE", "PROJECT LIMIT"}, rows); err != nil {
			return err
		}
	}
	return nil
}
