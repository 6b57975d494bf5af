package view_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
)

const gib = int64(1) << 30

var (
	t0   = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	keyA = quota.Key{Account: "alice", Project: "p-alpha", Resource: quota.DiskSpace}
	keyB = quota.Key{Account: "alice", Project: "p-beta", Resource: quota.DiskSpace}
	keyC = quota.Key{Account: "alice", Project: "p-alpha", Resource: "cyclades.vm"}
)

// fakeStore holds what the queries read; failing names a method that
// fails.
type fakeStore struct {
	latest   []store.Latest
	insts    []quota.Instance
	projects map[string]quota.Project
	series   map[quota.Key][]quota.Sample
	actions  []quota.Action
	failing  string
	// downsampled records the spans Downsample was asked for.
	downsampled []string
}

var errBoom = errors.New("boom")

func (f *fakeStore) fail(method string) error {
	if f.failing == method {
		return errBoom
	}
	return nil
}

func (f *fakeStore) Latest() ([]store.Latest, error)      { return f.latest, f.fail("Latest") }
func (f *fakeStore) Instances() ([]quota.Instance, error) { return f.insts, f.fail("Instances") }
func (f *fakeStore) Projects() (map[string]quota.Project, error) {
	return f.projects, f.fail("Projects")
}

func (f *fakeStore) Keys() ([]quota.Key, error) {
	var ks []quota.Key
	for k := range f.series {
		ks = append(ks, k)
	}
	return ks, f.fail("Keys")
}

func (f *fakeStore) Series(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	var out []quota.Sample
	for _, s := range f.series[k] {
		if !s.Time.Before(from) && !s.Time.After(to) {
			out = append(out, s)
		}
	}
	return out, f.fail("Series")
}

func (f *fakeStore) Downsample(k quota.Key, from, to time.Time, n int) ([]quota.Sample, error) {
	f.downsampled = append(f.downsampled, k.Resource+" "+from.Format(time.RFC3339)+" "+to.Format(time.RFC3339))
	s, _ := f.Series(k, from, to)
	return s, f.fail("Downsample")
}

func (f *fakeStore) Actions(from, to time.Time) ([]quota.Action, error) {
	return f.actions, f.fail("Actions")
}

func sample(at time.Time, usage, limit int64) quota.Sample {
	return quota.Sample{Time: at, Quota: quota.Quota{Usage: usage, Limit: limit, ProjectUsage: usage, ProjectLimit: limit}}
}

// statusStore has two rule instances (out of order) over two series of
// three; the beta project has no known name.
func statusStore() *fakeStore {
	return &fakeStore{
		latest: []store.Latest{
			{Key: keyC, Sample: sample(t0, 1, 2)},
			{Key: keyB, Sample: sample(t0, 5*gib, 0)},
			{Key: keyA, Sample: sample(t0, 19*gib, 20*gib)},
		},
		insts: []quota.Instance{
			{Key: quota.InstanceKey{Rule: "nearly-full", Account: "alice", Project: "p-alpha", Resource: quota.DiskSpace}, State: quota.StateFiring, Since: t0.Add(-time.Hour)},
			{Key: quota.InstanceKey{Rule: "empty", Account: "alice", Project: "p-beta", Resource: quota.DiskSpace}, State: quota.StateOK, Since: t0.Add(-2 * time.Hour)},
		},
		projects: map[string]quota.Project{"p-alpha": {ID: "p-alpha", Name: "Alpha lab"}},
	}
}

func TestQueryStatus(t *testing.T) {
	st, err := view.QueryStatus(statusStore())
	require.NoError(t, err)
	var rules, quotas []string
	for _, r := range st.Rules {
		rules = append(rules, r.Rule+" "+r.ProjectName)
	}
	for _, r := range st.Quotas {
		quotas = append(quotas, r.ProjectName+" "+r.Resource)
	}
	require.Equal(t, []string{"empty p-beta", "nearly-full Alpha lab"}, rules, "by rule; an unnamed project shows its id")
	require.Equal(t, []string{"Alpha lab cyclades.vm", "Alpha lab pithos.diskspace", "p-beta pithos.diskspace"}, quotas)
	require.Equal(t, 19*gib, st.Rules[1].Usage)
	require.Equal(t, 20*gib, st.Rules[1].Limit)
	require.Equal(t, t0.Add(-time.Hour), *st.Rules[1].Since)

	rows := st.Rows()
	require.Len(t, rows, 3, "the rules, then the one series no rule covers")
	require.Equal(t, "cyclades.vm", rows[2].Resource)
	require.Nil(t, rows[2].Since)
}

func TestStatusJSONShape(t *testing.T) {
	st, err := view.QueryStatus(statusStore())
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, view.WriteJSON(&buf, st.Rows()))
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rows))
	for _, r := range rows {
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		require.Equal(t, []string{"account", "limit", "observed", "project", "project_name", "ratio", "resource", "rule", "since", "state", "usage"}, keys)
	}
	require.Nil(t, rows[0]["ratio"], "5 GiB against a zero limit is an infinite ratio: null")
	require.InDelta(t, 0.95, rows[1]["ratio"], 1e-9)
	require.Equal(t, "2026-03-01T09:00:00Z", rows[1]["since"])
	require.Nil(t, rows[2]["since"])

	buf.Reset()
	require.NoError(t, view.WriteJSON(&buf, (&view.Status{}).Rows()))
	require.Equal(t, "[]\n", buf.String(), "no row is an empty array, not null")
}

func TestWriteStatus(t *testing.T) {
	st, err := view.QueryStatus(statusStore())
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, view.WriteStatus(&buf, st))
	want := `RULES
RULE         ACCOUNT  PROJECT    PROJECT ID  RESOURCE          STATE   SINCE                 USAGE
empty        alice    p-beta     p-beta      pithos.diskspace  ok      2026-03-01 08:00:00Z  5.0 GiB / 0 B (over a zero limit)
nearly-full  alice    Alpha lab  p-alpha     pithos.diskspace  firing  2026-03-01 09:00:00Z  19.0 GiB / 20.0 GiB (95.0%)

QUOTAS
ACCOUNT  PROJECT    PROJECT ID  RESOURCE          USAGE                              PROJECT USAGE                      OBSERVED
alice    Alpha lab  p-alpha     cyclades.vm       1 / 2 (50.0%)                      1 / 2 (50.0%)                      2026-03-01 10:00:00Z
alice    Alpha lab  p-alpha     pithos.diskspace  19.0 GiB / 20.0 GiB (95.0%)        19.0 GiB / 20.0 GiB (95.0%)        2026-03-01 10:00:00Z
alice    p-beta     p-beta      pithos.diskspace  5.0 GiB / 0 B (over a zero limit)  5.0 GiB / 0 B (over a zero limit)  2026-03-01 10:00:00Z
`
	require.Equal(t, want, buf.String())
}

func TestBriefRuleTable(t *testing.T) {
	f := statusStore()
	rows := view.RuleRows(f.insts, func(id string) string { return strings.ToUpper(id) }, nil)
	var buf bytes.Buffer
	require.NoError(t, view.WriteTable(&buf, view.BriefRuleColumns(), rows))
	want := `RULE         ACCOUNT  PROJECT  RESOURCE          STATE   SINCE
empty        alice    P-BETA   pithos.diskspace  ok      2026-03-01 08:00:00Z
nearly-full  alice    P-ALPHA  pithos.diskspace  firing  2026-03-01 09:00:00Z
`
	require.Equal(t, want, buf.String())
}

func TestQueryErrors(t *testing.T) {
	tests := []struct {
		failing string
		query   func(*fakeStore) error
		want    string
	}{
		{"Latest", queryStatus, "read quotas: boom"},
		{"Instances", queryStatus, "read rule states: boom"},
		{"Projects", queryStatus, "read projects: boom"},
		{"Keys", queryHistory, "read series: boom"},
		{"Projects", queryHistory, "read projects: boom"},
		{"Series", queryHistory, "read alice/p-alpha/cyclades.vm: boom"},
		{"Downsample", queryHistory, "read alice/p-alpha/cyclades.vm: boom"},
		{"Actions", queryActions, "read journal: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.failing+" "+tt.want, func(t *testing.T) {
			f := historyStore()
			f.failing = tt.failing
			err := tt.query(f)
			require.ErrorIs(t, err, errBoom)
			require.EqualError(t, err, tt.want)
		})
	}
}

func queryStatus(f *fakeStore) error { _, err := view.QueryStatus(f); return err }
func queryHistory(f *fakeStore) error {
	_, err := view.QueryHistory(f, view.HistoryQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Points: 60})
	return err
}
func queryActions(f *fakeStore) error { _, err := view.QueryActions(f, t0, t0); return err }

// historyStore has a diskspace series that steps once and then holds, and
// a vm series older than an hour.
func historyStore() *fakeStore {
	return &fakeStore{
		projects: map[string]quota.Project{"p-alpha": {ID: "p-alpha", Name: "Alpha lab"}},
		series: map[quota.Key][]quota.Sample{
			keyA: {sample(t0, 1*gib, 20*gib), sample(t0.Add(5*time.Minute), 1*gib, 20*gib),
				sample(t0.Add(10*time.Minute), 2*gib, 20*gib), sample(t0.Add(15*time.Minute), 2*gib, 20*gib),
				sample(t0.Add(20*time.Minute), 2*gib, 20*gib)},
			keyC: {sample(t0.Add(-3*time.Hour), 1, 2)},
			keyB: {sample(t0, 3*gib, 10*gib)},
		},
	}
}

func TestQueryHistory(t *testing.T) {
	tests := []struct {
		name                       string
		project, resource, account view.Glob
		want                       []string
	}{
		{"everything", "", "", "", []string{"alice/p-alpha/cyclades.vm", "alice/p-alpha/pithos.diskspace", "alice/p-beta/pithos.diskspace"}},
		{"project by name", "Alpha lab", "", "", []string{"alice/p-alpha/cyclades.vm", "alice/p-alpha/pithos.diskspace"}},
		{"project by id", "p-beta", "", "", []string{"alice/p-beta/pithos.diskspace"}},
		{"resource", "", quota.DiskSpace, "", []string{"alice/p-alpha/pithos.diskspace", "alice/p-beta/pithos.diskspace"}},
		{"both", "Alpha lab", quota.DiskSpace, "", []string{"alice/p-alpha/pithos.diskspace"}},
		{"no match", "nope", "", "", nil},
		{"project glob on names", "Alpha*", "", "", []string{"alice/p-alpha/cyclades.vm", "alice/p-alpha/pithos.diskspace"}},
		{"project glob on ids", "p-*", "pithos.*", "", []string{"alice/p-alpha/pithos.diskspace", "alice/p-beta/pithos.diskspace"}},
		{"resource glob", "", "cyclades.*", "", []string{"alice/p-alpha/cyclades.vm"}},
		{"account", "", "", "alice", []string{"alice/p-alpha/cyclades.vm", "alice/p-alpha/pithos.diskspace", "alice/p-beta/pithos.diskspace"}},
		{"other account", "", "", "bob", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := historyStore()
			series, err := view.QueryHistory(f, view.HistoryQuery{Project: tt.project, Resource: tt.resource, Account: tt.account,
				From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
			require.NoError(t, err)
			var got []string
			for _, s := range series {
				got = append(got, s.Key.String())
				require.Nil(t, s.Points, "no points unless asked")
			}
			require.Equal(t, tt.want, got)
			require.Empty(t, f.downsampled)
		})
	}
}

func TestHistoryRows(t *testing.T) {
	series, err := view.QueryHistory(historyStore(), view.HistoryQuery{Project: "p-beta", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, []view.HistoryRow{{Account: "alice", Project: "p-beta", ProjectName: "p-beta", Resource: quota.DiskSpace,
		Time: t0, Usage: 3 * gib, Limit: 10 * gib, ProjectUsage: 3 * gib, ProjectLimit: 10 * gib}}, view.HistoryRows(series))
	var buf bytes.Buffer
	require.NoError(t, view.WriteJSON(&buf, view.HistoryRows(nil)))
	require.Equal(t, "[]\n", buf.String())
}

func TestWriteHistory(t *testing.T) {
	f := historyStore()
	series, err := view.QueryHistory(f, view.HistoryQuery{Project: "Alpha lab", From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Points: 60})
	require.NoError(t, err)
	// The vm series has no sample in the span: its points span all of it;
	// the diskspace one's start at its first sample.
	require.Equal(t, []string{
		"cyclades.vm 2026-03-01T09:00:00Z 2026-03-01T11:00:00Z",
		"pithos.diskspace 2026-03-01T10:00:00Z 2026-03-01T11:00:00Z",
	}, f.downsampled)
	var buf bytes.Buffer
	require.NoError(t, view.WriteHistory(&buf, series))
	// Equal consecutive samples fold into the first, but the last sample
	// always shows.
	want := `alice  Alpha lab  cyclades.vm
TIME  USAGE  LIMIT  PENDING  PROJECT USAGE  PROJECT LIMIT

alice  Alpha lab  pithos.diskspace  ▁▁███  min 1.0 GiB  max 2.0 GiB
TIME                  USAGE    LIMIT     PENDING  PROJECT USAGE  PROJECT LIMIT
2026-03-01 10:00:00Z  1.0 GiB  20.0 GiB  0 B      1.0 GiB        20.0 GiB
2026-03-01 10:10:00Z  2.0 GiB  20.0 GiB  0 B      2.0 GiB        20.0 GiB
2026-03-01 10:20:00Z  2.0 GiB  20.0 GiB  0 B      2.0 GiB        20.0 GiB
`
	require.Equal(t, want, buf.String())
}

func TestActions(t *testing.T) {
	f := &fakeStore{actions: []quota.Action{
		{ID: 7, Time: t0, State: quota.ActionVerified, Move: quota.Move{Rule: "nearly-full", Account: "alice", Kind: quota.KindContainer,
			ItemID: "c1", ItemName: "course_container", From: "p-alpha", FromName: "Alpha lab", To: "p-beta",
			Quantities: quota.Quantities{quota.DiskSpace: 19 * gib}}},
		{ID: 8, Time: t0.Add(time.Minute), State: quota.ActionFailed, DryRun: true, Error: "413 over quota",
			Move: quota.Move{Rule: "nearly-full", Account: "alice", Kind: quota.KindContainer, ItemName: "big",
				From: "p-alpha", To: "p-beta", ToName: "Beta"}},
	}}
	rows, err := view.QueryActions(f, t0.Add(-time.Hour), t0.Add(time.Hour))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, view.WriteActions(&buf, rows))
	want := `ID  TIME                  RULE         ACCOUNT  KIND       ITEM              AMOUNT                     FROM       TO      STATE             ERROR
7   2026-03-01 10:00:00Z  nearly-full  alice    container  course_container  pithos.diskspace 19.0 GiB  Alpha lab  p-beta  verified          -
8   2026-03-01 10:01:00Z  nearly-full  alice    container  big               -                          p-alpha    Beta    failed (dry run)  413 over quota
`
	require.Equal(t, want, buf.String())

	rows, err = view.QueryActions(&fakeStore{}, t0, t0)
	require.NoError(t, err)
	buf.Reset()
	require.NoError(t, view.WriteJSON(&buf, rows))
	require.Equal(t, "[]\n", buf.String())
}

func TestFloatJSON(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0"},
		{0.95, "0.95"},
		{math.Inf(1), "null"},
		{math.NaN(), "null"},
	}
	for _, tt := range tests {
		b, err := json.Marshal(view.Float(tt.f))
		require.NoError(t, err)
		require.Equal(t, tt.want, string(b))
	}
}

func TestWriteTableNeverTruncates(t *testing.T) {
	long := strings.Repeat("x", 300)
	var buf bytes.Buffer
	require.NoError(t, view.WriteRows(&buf, []string{"A", "B"}, [][]string{{long, "1"}, {"y", "2"}}))
	require.Equal(t, "A"+strings.Repeat(" ", 301)+"B\n"+long+"  1\ny"+strings.Repeat(" ", 301)+"2\n", buf.String())
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		vals []int64
		want string
	}{
		{nil, ""},
		{[]int64{5}, "▁"},
		{[]int64{3, 3, 3}, "▁▁▁"},
		{[]int64{0, 7, 14}, "▁▅█"}, // the middle rounds up
		{[]int64{10, 0}, "█▁"},
		{[]int64{0, 1, 2, 3, 4, 5, 6, 7}, "▁▂▃▄▅▆▇█"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, view.Sparkline(tt.vals), "%v", tt.vals)
	}
}

// TestStateTextDryRun: a dry-run move is journaled as applied, but nothing
// moved: it reads as planned.
func TestStateTextDryRun(t *testing.T) {
	for _, c := range []struct {
		state quota.ActionState
		dry   bool
		want  string
	}{
		{quota.ActionApplied, true, "planned (dry run)"},
		{quota.ActionVerified, true, "planned (dry run)"},
		{quota.ActionFailed, true, "failed (dry run)"},
		{quota.ActionApplied, false, "applied"},
	} {
		require.Equal(t, c.want, view.StateText(c.state, c.dry), "%s dry=%v", c.state, c.dry)
	}
}
