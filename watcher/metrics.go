package watcher

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
)

// metrics are the daemon's own. Per-series quota gauges are produced at
// scrape time from the last poll (a Collector), so tens of thousands of
// series cost no memory beyond the snapshot the watcher keeps anyway.
//
// Counters exist at zero for every label value the configuration makes
// known (rates and increase() then see the first event, and alerts on them
// do not wait for a series to appear); quota amounts are split by unit, so
// every family has one unit, named in it.
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

	mu    sync.Mutex
	rules []string // the configuration's rules, for the zero instance gauges
}

// Label values the code itself knows.
var (
	cycleResults        = []string{"ok", "error", "panic"}
	actionResults       = []string{"applied", "failed", "dry_run"}
	notificationResults = []string{"delivered", "retry", "permanent_failure"}
	instanceStates      = []quota.State{quota.StatePending, quota.StateFiring}
)

func newMetrics(reg prometheus.Registerer, name func(project string) string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		cycleDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name: "quotawatch_cycle_duration_seconds", Help: "Duration of a whole cycle.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		cycles: f.NewCounterVec(prometheus.CounterOpts{
			Name: "quotawatch_cycles_total", Help: "Cycles run, by result (ok, error, panic).",
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
			name:       name,
			max:        maxQuotaSeries,
			count:      prometheus.NewDesc("quotawatch_quota_series", "Quota series polled, by account and resource (the per-series gauges show at most the 2,000 fullest).", []string{"account", "resource"}, nil),
			usageBytes: prometheus.NewDesc("quotawatch_quota_usage_bytes", "Usage of a quota counted in bytes (pithos.diskspace, cyclades.disk, cyclades.ram, cyclades.total_ram).", quotaLabels, nil),
			limitBytes: prometheus.NewDesc("quotawatch_quota_limit_bytes", "Effective limit of a quota counted in bytes.", quotaLabels, nil),
			usage:      prometheus.NewDesc("quotawatch_quota_usage", "Usage of a quota counted in items (VMs, CPUs, IPs, networks, applications).", quotaLabels, nil),
			limit:      prometheus.NewDesc("quotawatch_quota_limit", "Effective limit of a quota counted in items.", quotaLabels, nil),
			ratio:      prometheus.NewDesc("quotawatch_quota_ratio", "Usage over effective limit, whatever the unit.", quotaLabels, nil),
		},
	}
	for _, r := range cycleResults {
		m.cycles.WithLabelValues(r)
	}
	m.outbox(0, 0)
	m.reloadOK.Set(1)
	reg.MustRegister(m.quotas)
	return m
}

var quotaLabels = []string{"account", "project", "project_name", "resource"}

// loaded marks the configuration the daemon started with as loaded at now,
// and makes its label values known.
func (m *metrics) loaded(cfg *config.Config, now time.Time) {
	m.known(cfg)
	m.reloaded(true, now)
}

// known creates, at zero, the series of every account, rule and notifier
// of cfg. Those of a configuration reloaded away stay as they were.
func (m *metrics) known(cfg *config.Config) {
	for _, a := range cfg.Cloud.Accounts {
		m.pollErrors.WithLabelValues(a.Name)
	}
	if cfg.Cloud.HasServiceView() {
		m.pollErrors.WithLabelValues(ServiceAccount)
	}
	rules := make([]string, 0, len(cfg.Rules))
	for _, r := range cfg.Rules {
		rules = append(rules, r.Name)
		if r.Action != nil {
			for _, res := range actionResults {
				m.actions.WithLabelValues(r.Name, string(r.Action.Kind), res)
			}
		}
	}
	for _, n := range cfg.Notifiers {
		for _, res := range notificationResults {
			m.notifications.WithLabelValues(n.Name, res)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules = rules
	m.zeroInstances() // the rules' counts stay until the next cycle recounts
}

// zeroInstances adds the known rules' missing instance gauges at zero; m.mu
// is held.
func (m *metrics) zeroInstances() {
	for _, r := range m.rules {
		for _, st := range instanceStates {
			m.ruleInstances.WithLabelValues(r, string(st)).Add(0)
		}
	}
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
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ruleInstances.Reset()
	m.zeroInstances()
	for k, n := range counts {
		m.ruleInstances.WithLabelValues(k.rule, k.state).Set(float64(n))
	}
}

// setQuotas hands the last poll to the scrape-time collector.
func (m *metrics) setQuotas(snaps []quota.Snapshot) { m.quotas.set(snaps) }

// maxQuotaSeries caps the per-series quota gauges. A cloud of 10,000
// projects has 80,000 series: three gauges each would make every scrape
// allocate hundreds of megabytes and hand Prometheus a cardinality it
// should not store. Beyond the cap the fullest series are exported (those
// an operator looks at), and quotawatch_quota_series tells how many there
// are in all.
const maxQuotaSeries = 2000

// quotaCollector exposes the last poll's fullest quotas at scrape time.
type quotaCollector struct {
	usage, limit, usageBytes, limitBytes, ratio, count *prometheus.Desc

	name func(project string) string
	max  int

	mu sync.Mutex
	// last holds, per account, the fullest series of its last successful
	// poll: the fullest of all accounts are among them. Copies, so that
	// the poll's entries (tens of megabytes in a large cloud) are not
	// kept from one cycle to the next.
	last   map[string][]exported
	top    []exported // the series with gauges
	counts map[string]map[string]int
}

// exported is one series chosen for the gauges.
type exported struct {
	account string
	entry   quota.Entry
	ratio   float64
}

// fuller orders the exported series: higher ratio first, then by key so
// the set does not flap between equals.
func fuller(a, b *exported) int {
	if d := cmp.Compare(b.ratio, a.ratio); d != 0 {
		return d
	}
	return cmp.Or(cmp.Compare(a.account, b.account), cmp.Compare(a.entry.Project, b.entry.Project),
		cmp.Compare(a.entry.Resource, b.entry.Resource))
}

// set takes the accounts polled this cycle and chooses the fullest series
// of every account's last poll (all of them in a cloud under the cap).
func (c *quotaCollector) set(snaps []quota.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last, c.counts = map[string][]exported{}, map[string]map[string]int{}
	}
	for _, s := range snaps {
		n := map[string]int{}
		for i := range s.Entries {
			n[s.Entries[i].Resource]++
		}
		c.counts[s.Account] = n
		h := c.last[s.Account][:0]
		for i := range s.Entries {
			e := &s.Entries[i]
			h = c.push(h, exported{account: s.Account, entry: *e, ratio: e.Ratio()})
		}
		c.last[s.Account] = h
	}
	h := c.top[:0]
	for _, xs := range c.last {
		for i := range xs {
			h = c.push(h, xs[i])
		}
	}
	slices.SortFunc(h, func(a, b exported) int { return fuller(&a, &b) })
	c.top = h
}

// push adds x to the bounded min-heap h of at most c.max series, which
// keeps the fullest without sorting them all.
func (c *quotaCollector) push(h []exported, x exported) []exported {
	switch {
	case len(h) < c.max:
		h = append(h, x)
		heapUp(h, len(h)-1)
	case len(h) > 0 && fuller(&x, &h[0]) < 0:
		h[0] = x
		heapDown(h, 0)
	}
	return h
}

// heapUp and heapDown keep h a heap whose root is the least full series.
func heapUp(h []exported, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if fuller(&h[i], &h[p]) <= 0 {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func heapDown(h []exported, i int) {
	for {
		l, least := 2*i+1, i
		if l < len(h) && fuller(&h[l], &h[least]) > 0 {
			least = l
		}
		if r := l + 1; r < len(h) && fuller(&h[r], &h[least]) > 0 {
			least = r
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}

// Describe implements prometheus.Collector.
func (c *quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.usage
	ch <- c.limit
	ch <- c.usageBytes
	ch <- c.limitBytes
	ch <- c.ratio
	ch <- c.count
}

// Collect implements prometheus.Collector.
func (c *quotaCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.top {
		x := &c.top[i]
		e := &x.entry
		labels := []string{x.account, e.Project, c.name(e.Project), e.Resource}
		usage, limit := c.usage, c.limit
		if quota.UnitOf(e.Resource) == quota.Bytes {
			usage, limit = c.usageBytes, c.limitBytes
		}
		ch <- prometheus.MustNewConstMetric(usage, prometheus.GaugeValue, float64(e.Usage), labels...)
		ch <- prometheus.MustNewConstMetric(limit, prometheus.GaugeValue, float64(e.EffectiveLimit()), labels...)
		ch <- prometheus.MustNewConstMetric(c.ratio, prometheus.GaugeValue, x.ratio, labels...)
	}
	for acct, n := range c.counts {
		for res, v := range n {
			ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(v), acct, res)
		}
	}
}
