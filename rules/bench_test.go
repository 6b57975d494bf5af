package rules

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// benchRulesFile holds the 20 rules the rule and backtest benchmarks share.
const benchRulesFile = "testdata/bench-rules.yaml"

var benchResources = []string{
	quota.DiskSpace, quota.VM, quota.CPU, quota.RAM, quota.Disk,
	quota.FloatingIP, quota.PrivateNetwork, quota.PendingApp,
}

// benchInput builds one cycle of n projects x 8 resources, with about 1%
// of the series above their thresholds.
func benchInput(n int) Input {
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	projects := make(map[string]quota.Project, n)
	entries := make([]quota.Entry, 0, n*len(benchResources))
	for p := range n {
		id := fmt.Sprintf("p-%05d", p)
		name := id
		switch p % 10 {
		case 1:
			name = fmt.Sprintf("course-%d", p)
		case 2:
			name = fmt.Sprintf("lab-%d", p)
		}
		projects[id] = quota.Project{ID: id, Name: name, System: p%50 == 0}
		for ri, r := range benchResources {
			limit := int64(100)
			if quota.UnitOf(r) == quota.Bytes {
				limit = 100 * quota.GiB
			}
			usage := limit * int64((p*7+ri*13)%70) / 100
			if (p+ri)%100 == 0 {
				usage = limit * 99 / 100
			}
			entries = append(entries, quota.Entry{Project: id, Resource: r, Quota: quota.Quota{
				Usage: usage, Limit: limit, ProjectUsage: usage, ProjectLimit: limit,
			}})
		}
	}
	hist := make([]quota.Sample, 48)
	for i := range hist {
		hist[i] = quota.Sample{Time: now.Add(-time.Duration(48-i) * 30 * time.Minute),
			Quota: quota.Quota{Usage: int64(i) * quota.GiB / 10}}
	}
	return Input{
		Now:       now,
		Snapshots: []quota.Snapshot{{Account: "alice", User: "u-alice", Time: now, Entries: entries}},
		Projects:  projects,
		History:   func(quota.Key) []quota.Sample { return hist },
	}
}

func BenchmarkEvaluate80k(b *testing.B) {
	rules := mustParse(b, benchRulesDoc(b))
	require.Len(b, rules, 20)
	e := NewEngine(rules)
	in := benchInput(10_000)
	// Steady state: the previous cycle's states are the input.
	first := e.Evaluate(in)
	in.Instances = map[quota.InstanceKey]quota.Instance{}
	for _, inst := range first.Instances {
		in.Instances[inst.Key] = inst
	}
	in.Now = in.Now.Add(5 * time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	var out Output
	for b.Loop() {
		out = e.Evaluate(in)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/cycle")
	b.ReportMetric(float64(len(in.Snapshots[0].Entries)), "series")
	b.ReportMetric(float64(len(in.Instances)), "instances")
	b.ReportMetric(float64(len(out.Events)), "events")
}

// TestBenchInputIsRealistic keeps the benchmark honest: some series fire,
// most do not, and the forecast rules see a trend.
func TestBenchInputIsRealistic(t *testing.T) {
	rules := mustParse(t, benchRulesDoc(t))
	out := NewEngine(rules).Evaluate(benchInput(1000))
	require.Empty(t, out.Errors)
	count := map[string]int{}
	for _, ev := range out.Events {
		count[ev.Key.Rule]++
	}
	require.Positive(t, count["disk-crit"])
	require.Positive(t, count["vol-fill"])
	require.Positive(t, count["disk-fill"])
	require.Less(t, len(out.Events), 8000/20)
}

func benchRulesDoc(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(benchRulesFile)
	require.NoError(t, err)
	return string(b)
}
