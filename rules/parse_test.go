package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/quota"
)

var update = flag.Bool("update", false, "rewrite the expected error files of testdata/invalid")

// TestParseInvalid checks the exact error text of every file in
// testdata/invalid against its .err sibling.
func TestParseInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			rules, err := ParseBytes(data, ParseOptions{Notifiers: []string{"ops", "dev"}})
			require.Error(t, err)
			require.Nil(t, rules)
			errFile := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				require.NoError(t, os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644))
			}
			want, rerr := os.ReadFile(errFile)
			require.NoError(t, rerr)
			require.Equal(t, strings.TrimSuffix(string(want), "\n"), err.Error())
			// Every joined problem is an *Error with a line.
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				for _, e := range joined.Unwrap() {
					var pe *Error
					require.ErrorAs(t, e, &pe)
					require.Positive(t, pe.Line, e.Error())
				}
			} else {
				var pe *Error
				require.ErrorAs(t, err, &pe)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.yaml")
	require.NoError(t, err)
	rules, err := ParseBytes(data, ParseOptions{Notifiers: []string{"ops"}})
	require.NoError(t, err)
	require.Len(t, rules, 2)

	full := rules[0]
	require.Equal(t, "container-rebalance", full.Name)
	require.Equal(t, "Move a container out of a project that is nearly full", full.Description)
	require.Equal(t, []string{"CS*", "0f2c*"}, full.Projects)
	require.Equal(t, "ratio < 0.90", full.Clear)
	require.Equal(t, 10*time.Minute, full.For)
	require.Equal(t, 36*time.Hour, full.Cooldown)
	require.Zero(t, full.Repeat)
	require.Equal(t, quota.Critical, full.Severity)
	require.Equal(t, []string{"ops"}, full.Notify)
	require.True(t, full.DryRun)
	require.Equal(t, 4, full.Line)
	require.Equal(t, &Reassign{Kind: quota.KindContainer, Match: "course_*", Select: SelectSmallest,
		MaxItems: 3, To: []string{"CS333*", "*"}, Strategy: StrategyFirstFit, KeepShared: true}, full.Action)
	require.False(t, full.usesForecast)

	minimal := rules[1]
	require.Equal(t, []string{"*"}, minimal.Projects)
	require.Equal(t, "not (usage > 10 * 1024^3 || days_to_full < 7)", minimal.Clear)
	require.Zero(t, minimal.For)
	require.Equal(t, time.Hour, minimal.Cooldown)
	require.Equal(t, 24*time.Hour, minimal.Repeat)
	require.Equal(t, quota.Warning, minimal.Severity)
	require.Empty(t, minimal.Notify)
	require.False(t, minimal.DryRun)
	require.Nil(t, minimal.Action)
	require.True(t, minimal.usesForecast)
	require.True(t, minimal.allProjects)
}

// TestParseMergeKeys: merge keys inside rules, with anchors held by other
// top-level keys, and a rule's own keys winning over merged ones.
func TestParseMergeKeys(t *testing.T) {
	data, err := os.ReadFile("testdata/merge.yaml")
	require.NoError(t, err)
	rules, err := ParseBytes(data, ParseOptions{})
	require.NoError(t, err)
	require.Len(t, rules, 3)

	full2 := rules[0]
	require.Equal(t, "full2", full2.Name)
	require.Equal(t, quota.DiskSpace, full2.Resource)
	require.Equal(t, "ratio > 0.9", full2.When)
	require.Equal(t, "not (ratio > 0.9)", full2.Clear)
	require.Equal(t, 9, full2.Line)
	require.Nil(t, full2.Action)

	full3 := rules[1]
	require.Equal(t, &Reassign{Kind: quota.KindContainer, Select: DefaultSelect, MaxItems: 2,
		To: []string{"lab-*"}, Strategy: DefaultStrategy, KeepShared: true}, full3.Action)

	// Earlier merged mappings win over later ones: resource, cooldown and
	// action come from full3, when from the rule itself.
	full4 := rules[2]
	require.Equal(t, "full4", full4.Name)
	require.Equal(t, "ratio > 0.99", full4.When)
	require.Equal(t, 22, full4.whenLine)
	require.Equal(t, 2*time.Hour, full4.Cooldown)
	require.Equal(t, full3.Action, full4.Action)
}

// TestParseNode checks the entry point the config loader uses: the node
// under `rules:`, with notifier names left unchecked when none are given.
func TestParseNode(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("rules:\n  - {name: a, resource: cyclades.vm, when: usage >= limit, notify: [anyone]}\n"), &doc))
	rules, err := Parse(doc.Content[0].Content[1], ParseOptions{})
	require.NoError(t, err)
	require.Len(t, rules, 1)
	require.Equal(t, []string{"anyone"}, rules[0].Notify)

	_, err = Parse(doc.Content[0].Content[1], ParseOptions{Notifiers: []string{}})
	require.EqualError(t, err, `rule a: notify: unknown notifier "anyone" (line 2)`)

	rules, err = Parse(nil, ParseOptions{})
	require.NoError(t, err)
	require.Empty(t, rules)
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "0", want: 0},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "2d30m15s", want: 48*time.Hour + 30*time.Minute + 15*time.Second},
		{in: "-1d", want: -24 * time.Hour},
		{in: "", err: true},
		{in: "d", err: true},
		{in: "1w", err: true},
		{in: "10 minutes", err: true},
		{in: "1dd", err: true},
		{in: "999999999d", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.err {
				require.EqualError(t, err, `invalid duration "`+tt.in+`"`)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		0: "0s", 10 * time.Second: "10s", time.Hour: "1h", 90 * time.Minute: "1h30m",
		36 * time.Hour: "1d12h", 48 * time.Hour: "2d", 61 * time.Second: "1m1s",
	} {
		require.Equal(t, want, formatDuration(in))
	}
}

func TestUsesHistory(t *testing.T) {
	rs, err := ParseBytes([]byte(`rules:
  - name: forecast
    resource: pithos.diskspace
    projects: ["lab-*"]
    when: days_to_full < 3
  - name: plain
    resource: "cyclades.*"
    when: ratio > 0.9
`), ParseOptions{})
	require.NoError(t, err)
	e := NewEngine(rs)
	require.True(t, e.UsesHistory(quota.DiskSpace, "p1", "lab-1"))
	require.False(t, e.UsesHistory(quota.DiskSpace, "p2", "other"))
	require.False(t, e.UsesHistory(quota.CPU, "p1", "lab-1"))
	require.True(t, e.UsesHistoryOf(quota.DiskSpace))
	require.False(t, e.UsesHistoryOf(quota.CPU))
}
