package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/ha"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/watcher"
)

var (
	dashboardFile = filepath.Join("..", "..", "contrib", "grafana", "quotawatch.json")
	rulesFile     = filepath.Join("..", "..", "contrib", "prometheus", "quotawatch.rules.yml")
	rulesTestFile = filepath.Join("..", "..", "contrib", "prometheus", "quotawatch.rules.test.yml")
)

// needTool returns the path of a command the test runs. Outside CI a
// missing one skips the test; in CI it fails it.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (%s); .ci/run installs it", name, install)
	}
	t.Skipf("%s is not installed (%s); CI runs this test", name, install)
	return ""
}

// dashboardQueries are the PromQL expressions of the dashboard's panels and
// variables.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "expr" || k == "definition") {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(b, &rf))
	return rf
}

// metricName finds the metric names in a PromQL expression: ours, the Go
// runtime's and the process's (up is Prometheus's own).
var metricName = regexp.MustCompile(`\b(?:quotawatch|go|process)_[a-zA-Z0-9_]+\b`)

// Every metric the dashboard and the alerts query is one the daemon
// serves, so renaming a metric breaks this test rather than the dashboard.
func TestContribMetricsExist(t *testing.T) {
	c := newCLI(t)
	cfg, err := config.Load(c.cfg, config.Options{LookupEnv: func(k string) (string, bool) { v, ok := c.env()[k]; return v, ok }})
	require.NoError(t, err)
	reg := daemonRegistry(currentBuild())
	// With ha, so that its metrics are served too.
	cfg.HA = &config.HA{Etcd: config.Etcd{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/qw/", LeaseTTL: 2 * time.Second}}
	w, err := watcher.New(context.Background(), watcher.Options{Config: cfg, Registry: reg, NotifyRate: 1000,
		NewCoordinator: func(ha.Member, *store.Store) (watcher.Coordinator, error) { return leaderAlways{}, nil }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	_, err = w.Cycle(context.Background())
	require.NoError(t, err)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	served := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		served[n] = true
		switch mf.GetType().String() {
		case "HISTOGRAM":
			served[n+"_bucket"], served[n+"_sum"], served[n+"_count"] = true, true, true
		case "SUMMARY":
			served[n+"_sum"], served[n+"_count"] = true, true
		}
	}

	used := map[string][]string{}
	for _, q := range dashboardQueries(t) {
		for _, n := range metricName.FindAllString(q, -1) {
			used[n] = append(used[n], "dashboard")
		}
	}
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			for _, n := range metricName.FindAllString(r.Expr, -1) {
				used[n] = append(used[n], "alert "+r.Alert)
			}
		}
	}
	require.Contains(t, used, "quotawatch_build_info", "the queries were read")
	require.Contains(t, used, "quotawatch_last_cycle_timestamp_seconds", "the alerts were read")
	for n, where := range used {
		require.True(t, served[n], "%s (used by %s) is not served", n, strings.Join(slices.Compact(where), ", "))
	}
}

// The alerting rules are valid and their unit tests pass; the dashboard's
// queries parse as PromQL too (checked as recording rules, with Grafana's
// variables filled in).
func TestContribPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", "Debian package prometheus")
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}
	run("check", "rules", rulesFile)
	run("test", "rules", rulesTestFile)

	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1d", "$job", "quotawatch", "$instance", "qw:9457")
	var rf strings.Builder
	rf.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range dashboardQueries(t) {
		q = vars.Replace(q)
		if m := regexp.MustCompile(`^label_values\((.*), *\w+\)$`).FindStringSubmatch(q); m != nil {
			q = m[1] // a variable's query: its selector is the PromQL
		}
		b, err := json.Marshal(q)
		require.NoError(t, err)
		fmt.Fprintf(&rf, "      - record: dashboard:query%d\n        expr: %s\n", i, b)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	require.NoError(t, os.WriteFile(path, []byte(rf.String()), 0o600))
	run("check", "rules", path)
}

// Every alert has a unit test where it fires and one where it does not.
func TestContribEveryAlertTested(t *testing.T) {
	b, err := os.ReadFile(rulesTestFile)
	require.NoError(t, err)
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(b, &tf))
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			require.True(t, fires[r.Alert], "%s has no test where it fires", r.Alert)
			require.True(t, quiet[r.Alert], "%s has no test where it stays quiet", r.Alert)
		}
	}
	require.Positive(t, n)
}

// dashPanel is the part of a Grafana panel the shape test reads.
type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

// The dashboard imports cleanly: unique panel ids, every panel on the
// data source variable, every query with an expression, and the panels an
// operator looks for.
func TestContribDashboardShape(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d struct {
		UID    string      `json:"uid"`
		Panels []dashPanel `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &d))
	require.Equal(t, "quotawatch", d.UID)
	ids := map[int]bool{}
	for _, p := range d.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, p.Title)
			require.NotEmpty(t, tg.RefID, p.Title)
		}
	}
	for _, want := range []string{"Cycle duration", "Last cycle age", "Poll success per account", "API requests by code",
		"Fullest quotas", "Rule instances", "Actions", "Notifications", "Outbox"} {
		require.True(t, slices.ContainsFunc(d.Panels, func(p dashPanel) bool { return p.Title == want }), "no panel %q", want)
	}
}

// leaderAlways is an election this instance always wins.
type leaderAlways struct{}

func (leaderAlways) Leading() bool                            { return true }
func (leaderAlways) Status() ha.Status                        { return ha.Status{Leading: true} }
func (leaderAlways) Run(ctx context.Context, _ ha.Hooks)      { <-ctx.Done() }
func (leaderAlways) Mirror([]store.Op, store.Sequences) error { return nil }
func (leaderAlways) Close() error                             { return nil }
