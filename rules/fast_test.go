package rules

import (
	"math"
	"testing"

	"github.com/expr-lang/expr/vm"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// fastExprs all compile natively; the differential tests check that the
// native form and expr's VM agree on them.
var fastExprs = []string{
	"ratio > 0.95",
	"ratio >= 1",
	"usage >= limit && !unlimited",
	"usage > 10 * 1024^3",
	"headroom < 512 * 1024 * 1024",
	"days_to_full < 7 && growth_per_day > 0",
	"not (ratio > 0.9) or project_ratio == 1",
	"usage / limit > 0.5",
	"usage - pending + 1 != project_usage * 2",
	"-headroom > -5 && +usage >= 0",
	"effective_limit == 9223372036854775807 || limit == 9.223372036854776e18",
	"system == true && unlimited != false",
	"project_name == 'CS101' || account != user",
	"resource == 'pithos.diskspace' && unit == 'bytes'",
	"project == 'p1' and project_pending ** 2 > 3.5",
	"days_to_full * 0 == 0",
	"usage * 4 < 0",
	"limit != 0 && usage > 0.5 && pending <= project_pending && growth_per_day <= 1e9",
	"headroom != effective_limit || headroom == 3 || days_to_full >= 2 || ratio != 0.25",
}

func TestNativeCoverage(t *testing.T) {
	for _, src := range fastExprs {
		p, err := compile(src)
		require.Nil(t, err, src)
		require.NotNil(t, p.fast, src)
	}
	for _, src := range []string{
		"usage % 2 == 0",
		"project_name startsWith 'CS'",
		"ratio > 0.9 ? true : false",
		"len(project) > 3",
		"project_name < 'M'",
	} {
		p, err := compile(src)
		require.Nil(t, err, src)
		require.Nil(t, p.fast, src)
	}
}

// agree runs every fast expression natively and on the VM over e.
func agree(t *testing.T, e *env) {
	t.Helper()
	var m vm.VM
	for _, src := range fastExprs {
		p, cerr := compile(src)
		require.Nil(t, cerr, src)
		out, err := m.Run(p.prog, e)
		require.NoError(t, err, src)
		require.Equal(t, out, p.fast(e), "%s on %+v", src, *e)
	}
}

func TestNativeAgreesWithVM(t *testing.T) {
	u := quota.Unlimited
	quotas := []quota.Quota{
		{},
		{Usage: 95, Limit: 100, ProjectUsage: 95, ProjectLimit: 100},
		{Usage: 11 * quota.GiB, Limit: 20 * quota.GiB, ProjectUsage: 15 * quota.GiB, ProjectLimit: 20 * quota.GiB, Pending: 1},
		{Usage: 1, Limit: 0, ProjectUsage: 1, ProjectLimit: 0},
		{Limit: u, ProjectLimit: u},
		{Usage: u, Limit: u, ProjectUsage: u, ProjectLimit: u, Pending: u, ProjectPending: u},
		{Usage: math.MinInt64, Limit: -5, ProjectUsage: math.MinInt64, ProjectLimit: math.MinInt64},
	}
	for _, q := range quotas {
		for _, g := range []float64{0, 1e9, -3, math.MaxFloat64} {
			e := &env{Account: "alice", User: "u", Project: "p1", ProjectName: "CS101", System: g > 0}
			e.setQuota(quota.DiskSpace, "bytes", q)
			e.GrowthPerDay = g
			e.DaysToFull = DaysToFull(e.Headroom, g)
			agree(t, e)
		}
	}
}

// FuzzNative checks the native evaluation against the VM on arbitrary
// numbers.
func FuzzNative(f *testing.F) {
	f.Add(int64(95), int64(100), int64(0), int64(95), int64(100), int64(0), 1.5)
	f.Add(int64(1), int64(0), int64(0), int64(1), int64(0), int64(0), math.Inf(1))
	f.Add(quota.Unlimited, quota.Unlimited, int64(-1), int64(math.MinInt64), quota.Unlimited, int64(3), math.NaN())
	f.Fuzz(func(t *testing.T, usage, limit, pending, pu, pl, pp int64, growth float64) {
		q := quota.Quota{Usage: usage, Limit: limit, Pending: pending, ProjectUsage: pu, ProjectLimit: pl, ProjectPending: pp}
		e := &env{Account: "a", User: "a", Project: "p1", ProjectName: "CS101"}
		e.setQuota(quota.DiskSpace, "bytes", q)
		e.GrowthPerDay = growth
		e.DaysToFull = DaysToFull(e.Headroom, growth)
		agree(t, e)
	})
}
