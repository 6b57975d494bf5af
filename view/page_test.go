package view_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
)

func (f *fakeStore) Accounts() ([]quota.AccountState, error) {
	return []quota.AccountState{{Account: "alice", Failures: 2}}, f.fail("Accounts")
}

func (f *fakeStore) OutboxLen() (int, int, error) { return 3, 1, f.fail("OutboxLen") }

// withProposals is a source that also lists proposals and silences.
type withProposals struct{ *fakeStore }

func (withProposals) OpenProposals(time.Time) ([]view.ProposalRow, error) {
	return []view.ProposalRow{{ID: "p1", Rule: "nearly-full"}}, nil
}

func (withProposals) ActiveSilences(time.Time) ([]view.SilenceRow, error) {
	return []view.SilenceRow{{ID: "s1", Comment: "maintenance"}}, nil
}

func TestNewPlot(t *testing.T) {
	samples := []quota.Sample{sample(t0, 1*gib, 10*gib), sample(t0.Add(5*time.Minute), 1*gib, 10*gib),
		sample(t0.Add(10*time.Minute), 4*gib, 10*gib)}
	moves := []view.ActionRow{
		{Time: t0.Add(7 * time.Minute), From: "p-other", To: "p-alpha", Kind: quota.KindContainer, ItemName: "c1",
			Quantities: quota.Quantities{quota.DiskSpace: 3 * gib}, State: quota.ActionVerified},
		{Time: t0.Add(8 * time.Minute), From: "p-alpha", To: "p-other", ItemName: "vm", Quantities: quota.Quantities{"cyclades.vm": 1}},
		{Time: t0.Add(-time.Hour), From: "p-alpha", To: "p-other", ItemName: "old"},
		{Time: t0.Add(9 * time.Minute), From: "p-x", To: "p-y", ItemName: "elsewhere"},
	}
	p := view.NewPlot(quota.DiskSpace, "p-alpha", samples, t0.Add(-time.Hour), t0.Add(10*time.Minute), []float64{0.9}, moves)
	require.Equal(t, 3, p.Samples)
	require.Equal(t, 5, p.Points, "a step line: two points per sample after the first")
	require.Len(t, strings.Fields(p.Usage), 5)
	require.Len(t, strings.Fields(p.Limit), 5)
	// The series starts after from: the plot starts with it.
	require.Equal(t, t0, p.From)
	pts := strings.Fields(p.Usage)
	require.Equal(t, "78.0", strings.Split(pts[0], ",")[0], "the first sample at the left edge")
	require.Equal(t, strings.Split(pts[2], ",")[1], strings.Split(pts[1], ",")[1], "held until the next sample")
	require.Equal(t, "10.0 GiB", p.LimitLabel)
	require.Len(t, p.Thresholds, 1)
	require.Equal(t, "90.0%", p.Thresholds[0].Label)
	require.Less(t, p.LimitY, p.Thresholds[0].Y, "the threshold is below the limit")
	require.Len(t, p.Moves, 1, "only moves of this project, resource and span")
	require.False(t, p.Moves[0].Out)
	require.Contains(t, p.Moves[0].Label, "container c1 in from p-other (verified)")
	var labels []string
	for _, tk := range p.YTicks {
		labels = append(labels, tk.Label)
	}
	require.Equal(t, []string{"0 B", "2.5 GiB", "5.0 GiB", "7.5 GiB", "10.0 GiB"}, labels, "round steps in the resource's unit")
	labels = nil
	for _, tk := range p.XTicks {
		labels = append(labels, tk.Label)
	}
	require.Equal(t, []string{"10:00", "10:05", "10:10"}, labels)

	// Unlimited: no limit line, no thresholds.
	free := []quota.Sample{{Time: t0, Quota: quota.Quota{Usage: 3, Limit: quota.Unlimited, ProjectLimit: quota.Unlimited}}}
	p = view.NewPlot("cyclades.vm", "p-alpha", free, t0.Add(-time.Hour), t0, []float64{0.9}, nil)
	require.Empty(t, p.Limit)
	require.Empty(t, p.Thresholds)
	require.Equal(t, 1, p.Points)

	// No samples: nothing to draw, but the axes are there.
	p = view.NewPlot("cyclades.vm", "p-alpha", nil, t0.Add(-7*24*time.Hour), t0, nil, nil)
	require.Empty(t, p.Usage)
	require.Len(t, p.XTicks, 7, "one a day")
	require.Equal(t, "Feb 23", p.XTicks[0].Label)
}

func TestThresholds(t *testing.T) {
	rs := []*rules.Rule{
		{Name: "full", Resource: "pithos.*", When: "ratio > 0.95"},
		{Name: "lab", Resource: quota.DiskSpace, Projects: []string{"Alpha*"}, When: "ratio >= 0.5 && usage > 0"},
		{Name: "growth", Resource: quota.DiskSpace, When: "days_to_full < 3"},
	}
	thr := view.Thresholds(rs)
	require.Equal(t, []view.Threshold{{"full", 0.95}, {"lab", 0.5}}, thr("p-alpha", "Alpha lab", quota.DiskSpace))
	require.Equal(t, []view.Threshold{{"full", 0.95}}, thr("p-beta", "p-beta", quota.DiskSpace))
	require.Empty(t, thr("p-alpha", "Alpha lab", "cyclades.vm"))
}

func TestStatusSelect(t *testing.T) {
	st, err := view.QueryStatus(statusStore())
	require.NoError(t, err)
	names := func(rows []view.StatusRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.Rule+"|"+r.ProjectName+"|"+r.Resource)
		}
		return out
	}
	tests := []struct {
		name          string
		f             view.StatusFilter
		rules, quotas []string
	}{
		{"everything, fullest first", view.StatusFilter{},
			[]string{"empty|p-beta|pithos.diskspace", "nearly-full|Alpha lab|pithos.diskspace"},
			[]string{"|p-beta|pithos.diskspace", "|Alpha lab|pithos.diskspace", "|Alpha lab|cyclades.vm"}},
		{"top", view.StatusFilter{Top: 1}, []string{"empty|p-beta|pithos.diskspace"}, []string{"|p-beta|pithos.diskspace"}},
		{"project glob by name", view.StatusFilter{Project: "Alpha*"},
			[]string{"nearly-full|Alpha lab|pithos.diskspace"}, []string{"|Alpha lab|pithos.diskspace", "|Alpha lab|cyclades.vm"}},
		{"project by id", view.StatusFilter{Project: "p-beta"}, []string{"empty|p-beta|pithos.diskspace"}, []string{"|p-beta|pithos.diskspace"}},
		{"state: only covered series", view.StatusFilter{State: "firing"},
			[]string{"nearly-full|Alpha lab|pithos.diskspace"}, []string{"|Alpha lab|pithos.diskspace"}},
		{"rule glob", view.StatusFilter{Rule: "near*"},
			[]string{"nearly-full|Alpha lab|pithos.diskspace"}, []string{"|Alpha lab|pithos.diskspace"}},
		{"account", view.StatusFilter{Account: "bob"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.f.Check())
			got := st.Select(tt.f)
			require.Equal(t, tt.rules, names(got.Rules))
			require.Equal(t, tt.quotas, names(got.Quotas))
		})
	}
	require.Error(t, view.StatusFilter{Rule: "["}.Check())
	require.Error(t, view.StatusFilter{Top: -1}.Check())
	require.NotNil(t, st.Select(view.StatusFilter{Account: "bob"}).Rows(), "no match is an empty array")
}

func overviewStore() *fakeStore {
	f := statusStore()
	f.series = map[quota.Key][]quota.Sample{keyA: {
		sample(t0.Add(-3*time.Hour), 10*gib, 20*gib),
		sample(t0.Add(-2*time.Hour), 18*gib, 20*gib),
		sample(t0.Add(-time.Hour), 18*gib+gib/2, 20*gib),
		sample(t0, 19*gib, 20*gib),
	}}
	f.actions = []quota.Action{
		{ID: 1, Time: t0.Add(-150 * time.Minute), State: quota.ActionVerified, Move: quota.Move{From: "p-other", To: "p-alpha", ItemName: "in",
			Quantities: quota.Quantities{quota.DiskSpace: 8 * gib}}},
		{ID: 2, Time: t0.Add(-time.Minute), State: quota.ActionFailed, Move: quota.Move{From: "p-beta", To: "p-other", ItemName: "out"}},
	}
	return f
}

func TestQueryOverview(t *testing.T) {
	rs := []*rules.Rule{{Name: "nearly-full", Resource: quota.DiskSpace, When: "ratio > 0.9"}}
	q := view.OverviewQuery{Now: t0, Rules: rs, Top: 1, Window: 7 * 24 * time.Hour, MaxPlots: 5, MaxMoves: 10}
	ov, err := view.QueryOverview(overviewStore(), q)
	require.NoError(t, err)
	require.Equal(t, 3, ov.Series)
	require.Len(t, ov.Fullest, 1, "top 1 of the series with a limit")
	require.Equal(t, "p-beta", ov.Fullest[0].Project, "a zero limit is fullest")
	require.Equal(t, 100.0, ov.Fullest[0].Width)
	require.Equal(t, []view.BarMark{{At: 90, Label: "nearly-full at 90.0%"}}, ov.Fullest[0].Marks)

	require.Len(t, ov.Incidents, 1)
	in := ov.Incidents[0]
	require.True(t, in.HasPlot)
	require.Equal(t, "alice/p-alpha/pithos.diskspace", in.Plot.Series)
	require.Equal(t, 4, in.Plot.Samples)
	require.Len(t, in.Plot.Moves, 1)
	// The trend starts after the move in: 1 GiB over two hours.
	require.InDelta(t, 12*float64(gib), in.GrowthPerDay, float64(gib)/100)
	require.InDelta(t, 1.0/12, float64(in.DaysToFull), 0.001, "1 GiB of headroom")
	require.Equal(t, "2 hours", in.DaysToFullLabel())

	require.Equal(t, []uint64{2, 1}, []uint64{ov.Moves[0].ID, ov.Moves[1].ID}, "newest first")
	require.Equal(t, 3, ov.OutboxPending)
	require.Equal(t, 1, ov.OutboxDead)
	require.Equal(t, 2, ov.Accounts[0].Failures)
	require.Nil(t, ov.Proposals, "a source without proposals has none")

	q.MaxPlots = 0
	ov, err = view.QueryOverview(withProposals{overviewStore()}, q)
	require.NoError(t, err)
	require.False(t, ov.Incidents[0].HasPlot, "beyond MaxPlots: listed, not plotted")
	require.True(t, math.IsInf(float64(ov.Incidents[0].DaysToFull), 1))
	require.Len(t, ov.Proposals, 1)
	require.Len(t, ov.Silences, 1)

	for _, m := range []string{"Latest", "Actions", "Series", "Accounts", "OutboxLen"} {
		f := overviewStore()
		f.failing = m
		_, err := view.QueryOverview(f, q)
		if m == "Series" {
			q.MaxPlots = 5
			_, err = view.QueryOverview(f, q)
		}
		require.ErrorIs(t, err, errBoom, m)
	}
}

func TestQueryProject(t *testing.T) {
	f := overviewStore()
	f.latest = append(f.latest, store.Latest{Key: quota.Key{Account: "alice", Project: "p-alpha", Resource: "cyclades.cpu"},
		Sample: quota.Sample{Time: t0, Quota: quota.Quota{Limit: quota.Unlimited, ProjectLimit: quota.Unlimited}}})
	pg, err := view.QueryProject(f, "p-alpha", t0.Add(-24*time.Hour), t0, nil)
	require.NoError(t, err)
	require.Equal(t, "Alpha lab", pg.Name)
	var res []string
	for _, p := range pg.Plots {
		res = append(res, p.Resource)
	}
	require.Equal(t, []string{quota.DiskSpace, "cyclades.vm"}, res, "fullest first; the unlimited cpu has no plot")
	require.Len(t, pg.Moves, 1, "only the moves of this project")
	require.Equal(t, 4, pg.Plots[0].Plot.Samples)

	_, err = view.QueryProject(f, "p-none", t0.Add(-time.Hour), t0, nil)
	require.ErrorIs(t, err, view.ErrNoProject)
}

func TestQueryHistoryMaxSeries(t *testing.T) {
	f := historyStore()
	_, err := view.QueryHistory(f, view.HistoryQuery{From: t0.Add(-time.Hour), To: t0, MaxSeries: 2})
	require.ErrorIs(t, err, view.ErrTooManySeries)
	series, err := view.QueryHistory(f, view.HistoryQuery{Resource: quota.DiskSpace, From: t0.Add(-time.Hour), To: t0, MaxSeries: 2})
	require.NoError(t, err)
	require.Len(t, series, 2)
}
