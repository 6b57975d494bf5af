package watcher

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// Over the cap, only the fullest series get gauges, and the count says how
// many there are.
func TestQuotaGaugesCapAtTheFullest(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, func(id string) string { return "name-" + id })
	m.quotas.max = 3
	var es []quota.Entry
	for i := range 10 {
		es = append(es, quota.Entry{Project: fmt.Sprintf("p%d", i), Resource: quota.DiskSpace,
			Quota: quota.Quota{Usage: int64(i), Limit: 10, ProjectUsage: int64(i), ProjectLimit: 10}})
	}
	m.setQuotas([]quota.Snapshot{{Account: "a", Entries: es}})
	require.Equal(t, 3, testutil.CollectAndCount(reg, "quotawatch_quota_ratio"))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP quotawatch_quota_usage Usage of a quota (bytes or count).
# TYPE quotawatch_quota_usage gauge
quotawatch_quota_usage{account="a",project="p7",project_name="name-p7",resource="pithos.diskspace"} 7
quotawatch_quota_usage{account="a",project="p8",project_name="name-p8",resource="pithos.diskspace"} 8
quotawatch_quota_usage{account="a",project="p9",project_name="name-p9",resource="pithos.diskspace"} 9
# HELP quotawatch_quota_series Quota series polled, by account and resource (the per-series gauges show at most the 2,000 fullest).
# TYPE quotawatch_quota_series gauge
quotawatch_quota_series{account="a",resource="pithos.diskspace"} 10
`), "quotawatch_quota_usage", "quotawatch_quota_series"))

	// Under the cap, every series.
	m.quotas.max = 100
	m.setQuotas([]quota.Snapshot{{Account: "a", Entries: es}})
	require.Equal(t, 10, testutil.CollectAndCount(reg, "quotawatch_quota_ratio"))
}
