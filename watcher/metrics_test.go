package watcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
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
# HELP quotawatch_quota_usage_bytes Usage of a quota counted in bytes (pithos.diskspace, cyclades.disk, cyclades.ram, cyclades.total_ram).
# TYPE quotawatch_quota_usage_bytes gauge
quotawatch_quota_usage_bytes{account="a",project="p7",project_name="name-p7",resource="pithos.diskspace"} 7
quotawatch_quota_usage_bytes{account="a",project="p8",project_name="name-p8",resource="pithos.diskspace"} 8
quotawatch_quota_usage_bytes{account="a",project="p9",project_name="name-p9",resource="pithos.diskspace"} 9
# HELP quotawatch_quota_series Quota series polled, by account and resource (the per-series gauges show at most the 2,000 fullest).
# TYPE quotawatch_quota_series gauge
quotawatch_quota_series{account="a",resource="pithos.diskspace"} 10
`), "quotawatch_quota_usage_bytes", "quotawatch_quota_series"))

	// Under the cap, every series.
	m.quotas.max = 100
	m.setQuotas([]quota.Snapshot{{Account: "a", Entries: es}})
	require.Equal(t, 10, testutil.CollectAndCount(reg, "quotawatch_quota_ratio"))
}

// The collector keeps copies of the fullest series of each account's last
// poll, not the poll's entries: the cycle's entries can go, and the
// fullest across accounts are still chosen when only one account polled.
func TestQuotaGaugesKeepCopiesOfTheFullest(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, func(id string) string { return id })
	m.quotas.max = 2
	entries := func(base int64) []quota.Entry {
		var es []quota.Entry
		for i := range 5 {
			u := base + int64(i)
			es = append(es, quota.Entry{Project: fmt.Sprintf("p%d", i), Resource: quota.VM,
				Quota: quota.Quota{Usage: u, Limit: 100, ProjectUsage: u, ProjectLimit: 100}})
		}
		return es
	}
	a, b := entries(10), entries(50)
	m.setQuotas([]quota.Snapshot{{Account: "a", Entries: a}, {Account: "b", Entries: b}})
	for i := range a {
		a[i].Usage, b[i].Usage = 0, 0 // the next poll decoding into the same array
	}
	// b fails its next poll; a's new poll is emptier than b's last.
	m.setQuotas([]quota.Snapshot{{Account: "a", Entries: entries(0)}})
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP quotawatch_quota_usage Usage of a quota counted in items (VMs, CPUs, IPs, networks, applications).
# TYPE quotawatch_quota_usage gauge
quotawatch_quota_usage{account="b",project="p3",project_name="p3",resource="cyclades.vm"} 53
quotawatch_quota_usage{account="b",project="p4",project_name="p4",resource="cyclades.vm"} 54
`), "quotawatch_quota_usage"))
}

// The label values the configuration makes known exist at zero before any
// event, and the load time is set at start-up.
func TestMetricsKnownAtZero(t *testing.T) {
	cfg, err := config.Parse("config.yaml", []byte(`
cloud:
  auth_url: https://cloud.example.org/identity/v2.0
  accounts:
    - name: alice
      token_env: TOKEN
  service_token_env: TOKEN
notifiers:
  - name: ops
    slack:
      webhook_url_env: HOOK
rules:
  - name: alert-only
    resource: cyclades.vm
    when: ratio > 0.9
  - name: rebalance
    resource: pithos.diskspace
    when: ratio > 0.95
    action:
      reassign:
        kind: container
`), config.Options{LookupEnv: func(k string) (string, bool) {
		return map[string]string{"TOKEN": "t", "HOOK": "https://hooks.slack.com/services/T/B/X"}[k], true
	}})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, func(id string) string { return id })
	m.loaded(cfg, time.Unix(1700000000, 0))
	names := []string{"quotawatch_cycles_total", "quotawatch_poll_errors_total", "quotawatch_actions_total",
		"quotawatch_notifications_total", "quotawatch_rule_instances", "quotawatch_outbox_messages",
		"quotawatch_config_last_reload_success_timestamp_seconds", "quotawatch_config_last_reload_successful"}
	want := `
# HELP quotawatch_actions_total Moves by rule, item kind and result (applied, failed, dry_run).
# TYPE quotawatch_actions_total counter
quotawatch_actions_total{kind="container",result="applied",rule="rebalance"} 0
quotawatch_actions_total{kind="container",result="dry_run",rule="rebalance"} 0
quotawatch_actions_total{kind="container",result="failed",rule="rebalance"} 0
# HELP quotawatch_config_last_reload_success_timestamp_seconds When the configuration was last loaded successfully.
# TYPE quotawatch_config_last_reload_success_timestamp_seconds gauge
quotawatch_config_last_reload_success_timestamp_seconds 1.7e+09
# HELP quotawatch_config_last_reload_successful 1 if the last configuration reload succeeded.
# TYPE quotawatch_config_last_reload_successful gauge
quotawatch_config_last_reload_successful 1
# HELP quotawatch_cycles_total Cycles run, by result (ok, error, panic).
# TYPE quotawatch_cycles_total counter
quotawatch_cycles_total{result="error"} 0
quotawatch_cycles_total{result="ok"} 0
quotawatch_cycles_total{result="panic"} 0
# HELP quotawatch_notifications_total Notification messages by notifier and result (delivered, retry, permanent_failure).
# TYPE quotawatch_notifications_total counter
quotawatch_notifications_total{notifier="ops",result="delivered"} 0
quotawatch_notifications_total{notifier="ops",result="permanent_failure"} 0
quotawatch_notifications_total{notifier="ops",result="retry"} 0
# HELP quotawatch_outbox_messages Messages in the outbox by state (pending, dead).
# TYPE quotawatch_outbox_messages gauge
quotawatch_outbox_messages{state="dead"} 0
quotawatch_outbox_messages{state="pending"} 0
# HELP quotawatch_poll_errors_total Failed polls by account.
# TYPE quotawatch_poll_errors_total counter
quotawatch_poll_errors_total{account="alice"} 0
quotawatch_poll_errors_total{account="service"} 0
# HELP quotawatch_rule_instances Rule instances by rule and state (pending, firing).
# TYPE quotawatch_rule_instances gauge
quotawatch_rule_instances{rule="alert-only",state="firing"} 0
quotawatch_rule_instances{rule="alert-only",state="pending"} 0
quotawatch_rule_instances{rule="rebalance",state="firing"} 0
quotawatch_rule_instances{rule="rebalance",state="pending"} 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), names...))

	// A cycle's recount keeps the known rules' zeros.
	k := quota.InstanceKey{Rule: "rebalance", Account: "alice", Project: "p", Resource: quota.DiskSpace}
	m.setRuleStates(nil, []quota.Instance{{Key: k, State: quota.StateFiring}}, nil)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP quotawatch_rule_instances Rule instances by rule and state (pending, firing).
# TYPE quotawatch_rule_instances gauge
quotawatch_rule_instances{rule="alert-only",state="firing"} 0
quotawatch_rule_instances{rule="alert-only",state="pending"} 0
quotawatch_rule_instances{rule="rebalance",state="firing"} 1
quotawatch_rule_instances{rule="rebalance",state="pending"} 0
`), "quotawatch_rule_instances"))
}

// Quota amounts are split by unit: bytes in the _bytes families, counts in
// the plain ones; the ratio has every series.
func TestQuotaGaugesSplitByUnit(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, func(id string) string { return id })
	q := quota.Quota{Usage: 1, Limit: 4, ProjectUsage: 1, ProjectLimit: 4}
	m.setQuotas([]quota.Snapshot{{Account: "a", Entries: []quota.Entry{
		{Project: "p", Resource: quota.DiskSpace, Quota: q},
		{Project: "p", Resource: quota.RAM, Quota: q},
		{Project: "p", Resource: quota.VM, Quota: q},
		{Project: "p", Resource: quota.CPU, Quota: q},
	}}})
	for name, n := range map[string]int{
		"quotawatch_quota_usage_bytes": 2, "quotawatch_quota_limit_bytes": 2,
		"quotawatch_quota_usage": 2, "quotawatch_quota_limit": 2, "quotawatch_quota_ratio": 4,
	} {
		require.Equal(t, n, testutil.CollectAndCount(reg, name), name)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP quotawatch_quota_usage Usage of a quota counted in items (VMs, CPUs, IPs, networks, applications).
# TYPE quotawatch_quota_usage gauge
quotawatch_quota_usage{account="a",project="p",project_name="p",resource="cyclades.cpu"} 1
quotawatch_quota_usage{account="a",project="p",project_name="p",resource="cyclades.vm"} 1
`), "quotawatch_quota_usage"))
}
