package watcher

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/quotawatch/quotawatch/quota"
)

// metrics are the daemon's own. Per-series quota gauges are produced at
// scrape time from the last poll (a Collector), so tens of thousands of
// series cost no memory beyond the snapshot the watcher keeps anyway.
type metrics struct {
	cycleDuration prometheus.Histogram
	cycles        *prometheus.CounterVec
	lastSuccess   *prometheus.GaugeVec
	pollErrors    *prometheus.CounterVec
	pollUp        *prometheus.GaugeVec
	apiRequests   *prometheus.CounterVec
	apiDuration   *prometheus.HistogramVec
	ruleInstances *prometheus.GaugeVec
	actions       *prometheus.CounterVec
	notifications *prometheus.CounterVec
	outboxDepth   *prometheus.GaugeVec
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	lastCycle     prometheus.Gauge
	quotas        *quotaCollector
}

func newMetrics(reg prometheus.Registerer, name func(project string) string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		cycleDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name: "quotawatch_cycle_duration_seconds", Help: "Duration of a whole cycle.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		cycles: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quotawatch_cycles_total", Help: "Cycles run, by result (ok, error).",
		}, []string{"result"}),
		lastCycle: f.NewGauge(prometheus.GaugeOpts{
			Name: "quotawatch_last_cycle_timestamp_seconds", Help: "When the last cycle finished.",
		}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotawatch_poll_last_success_timestamp_seconds", Help: "When the account's quotas were last polled successfully.",
		}, []string{"account"}),
		pollUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotawatch_poll_success", Help: "1 if the account's last poll succeeded, else 0.",
		}, []string{"account"}),
		pollErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quotawatch_poll_errors_total", Help: "Failed polls by account.",
		}, []string{"account"}),
		apiRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quotawatch_api_requests_total", Help: "Synnefo API requests by service, method and HTTP status (0: no answer).",
		}, []string{"service", "method", "code"}),
		apiDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "quotawatch_api_request_duration_seconds", Help: "Synnefo API request duration by service.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"service"}),
		ruleInstances: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotawatch_rule_instances", Help: "Rule instances by rule and state (pending, firing).",
		}, []string{"rule", "state"}),
		actions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quotawatch_actions_total", Help: "Moves by rule, item kind and result (applied, failed, dry_run).",
		}, []string{"rule", "kind", "result"}),
		notifications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quotawatch_notifications_total", Help: "Notification messages by notifier and result (delivered, retry, permanent_failure).",
		}, []string{"notifier", "result"}),
		outboxDepth: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quotawatch_outbox_messages", Help: "Messages in the outbox by state (pending, dead).",
		}, []string{"state"}),
		reloadOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "quotawatch_config_last_reload_successful", Help: "1 if the last configuration reload succeeded.",
		}),
		reloadTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "quotawatch_config_last_reload_success_timestamp_seconds", Help: "When the configuration was last loaded successfully.",
		}),
		quotas: &quotaCollector{
			name:  name,
			usage: prometheus.NewDesc("quotawatch_quota_usage", "Usage of a quota (bytes or count).", []string{"account", "project", "project_name", "resource"}, nil),
			limit: prometheus.NewDesc("quotawatch_quota_limit", "Effective limit of a quota (bytes or count).", []string{"account", "project", "project_name", "resource"}, nil),
			ratio: prometheus.NewDesc("quotawatch_quota_ratio", "Usage over effective limit.", []string{"account", "project", "project_name", "resource"}, nil),
		},
	}
	m.reloadOK.Set(1)
	reg.MustRegister(m.quotas)
	return m
}

func (m *metrics) cycleDone(d time.Duration, ok bool) {
	m.cycleDuration.Observe(d.Seconds())
	m.lastCycle.SetToCurrentTime()
	if ok {
		m.cycles.WithLabelValues("ok").Inc()
	} else {
		m.cycles.WithLabelValues("error").Inc()
	}
}

func (m *metrics) pollOK(account string, now time.Time) {
	m.pollUp.WithLabelValues(account).Set(1)
	m.lastSuccess.WithLabelValues(account).Set(float64(now.UnixNano()) / 1e9)
}

func (m *metrics) pollFailed(account string) {
	m.pollUp.WithLabelValues(account).Set(0)
	m.pollErrors.WithLabelValues(account).Inc()
}

func (m *metrics) observeAPI(service, method string, status int, d time.Duration) {
	m.apiRequests.WithLabelValues(service, method, strconv.Itoa(status)).Inc()
	m.apiDuration.WithLabelValues(service).Observe(d.Seconds())
}

func (m *metrics) action(rule string, kind quota.Kind, result string) {
	m.actions.WithLabelValues(rule, string(kind), result).Inc()
}

func (m *metrics) notified(notifier, result string, n int) {
	m.notifications.WithLabelValues(notifier, result).Add(float64(n))
}

func (m *metrics) outbox(pending, dead int) {
	m.outboxDepth.WithLabelValues("pending").Set(float64(pending))
	m.outboxDepth.WithLabelValues("dead").Set(float64(dead))
}

func (m *metrics) reloaded(ok bool, now time.Time) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadTime.Set(float64(now.UnixNano()) / 1e9)
	} else {
		m.reloadOK.Set(0)
	}
}

// setRuleStates recounts instances per rule and state after a cycle.
func (m *metrics) setRuleStates(prev map[quota.InstanceKey]quota.Instance, changed []quota.Instance, deleted []quota.InstanceKey) {
	cur := make(map[quota.InstanceKey]quota.State, len(prev))
	for k, in := range prev {
		cur[k] = in.State
	}
	for _, in := range changed {
		cur[in.Key] = in.State
	}
	for _, k := range deleted {
		delete(cur, k)
	}
	type rs struct{ rule, state string }
	counts := map[rs]int{}
	for k, st := range cur {
		if st != quota.StateOK {
			counts[rs{k.Rule, string(st)}]++
		}
	}
	m.ruleInstances.Reset()
	for k, n := range counts {
		m.ruleInstances.WithLabelValues(k.rule, k.state).Set(float64(n))
	}
}

// setQuotas hands the last poll to the scrape-time collector.
func (m *metrics) setQuotas(snaps []quota.Snapshot) { m.quotas.set(snaps) }

// quotaCollector exposes the last poll's quotas at scrape time.
type quotaCollector struct {
	usage, limit, ratio *prometheus.Desc

	name func(project string) string

	mu    sync.Mutex
	snaps map[string]quota.Snapshot // account → last successful poll
}

func (c *quotaCollector) set(snaps []quota.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snaps == nil {
		c.snaps = map[string]quota.Snapshot{}
	}
	for _, s := range snaps {
		c.snaps[s.Account] = s
	}
}

// Describe implements prometheus.Collector.
func (c *quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.usage
	ch <- c.limit
	ch <- c.ratio
}

// Collect implements prometheus.Collector.
func (c *quotaCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for acct, s := range c.snaps {
		for _, e := range s.Entries {
			labels := []string{acct, e.Project, c.name(e.Project), e.Resource}
			ch <- prometheus.MustNewConstMetric(c.usage, prometheus.GaugeValue, float64(e.Usage), labels...)
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(e.EffectiveLimit()), labels...)
			ch <- prometheus.MustNewConstMetric(c.ratio, prometheus.GaugeValue, e.Ratio(), labels...)
		}
	}
}
