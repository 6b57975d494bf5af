package ruletests

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testFile is the name the test files of this file are parsed under, so
// that their config is testdata/rules.yaml.
var testFile = filepath.Join("testdata", "t.test.yaml")

// valid is a test file that loads; cases change one part of it.
const valid = `config: rules.yaml
interval: 5m
tests:
  - name: one
    input_series:
      - {account: alice, project: p1, resource: pithos.diskspace, usage: "95x1", limit: "100x1", project_usage: "95x1", project_limit: "100x1"}
    expected_events:
      - at: 0m
        events: []
`

func TestParseValid(t *testing.T) {
	f, err := Parse(testFile, []byte(valid), Options{})
	require.NoError(t, err)
	require.Len(t, f.Tests, 1)
	require.Equal(t, 2, f.Tests[0].polls)
	require.Equal(t, filepath.Join("testdata", "rules.yaml"), f.Config)
}

// Every problem of a malformed file names the file and the line.
func TestParseErrors(t *testing.T) {
	series := func(fields string) string {
		return "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n      - {account: alice, project: p1, resource: pithos.diskspace, " +
			fields + "}\n    expected_events:\n      - {at: 0m, events: []}\n"
	}
	const full = `usage: "1", limit: "2", project_usage: "1", project_limit: "2"`
	check := func(c string) string {
		return "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n      - {account: alice, project: p1, resource: pithos.diskspace, " +
			full + "}\n    expected_events:\n" + c
	}
	item := func(it string) string {
		return "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n      - {account: alice, project: p1, resource: pithos.diskspace, " +
			full + "}\n    items:\n      - " + it + "\n    expected_events:\n      - {at: 0m, events: []}\n"
	}
	tests := []struct {
		name string
		file string
		want []string // each FILE:LINE: message, in order
	}{
		{"invalid YAML", "config: [\n", []string{":2: invalid YAML: did not find expected node content"}},
		{"empty", "", []string{":1: test file is empty"}},
		{"not a mapping", "- a\n", []string{":1: test file: expected a mapping, got a list"}},
		{"unknown top-level key", strings.Replace(valid, "interval:", "intervall:", 1), []string{`:2: unknown key "intervall"`}},
		{"duplicate key", strings.Replace(valid, "interval: 5m", "interval: 5m\ninterval: 1m", 1),
			[]string{`:3: duplicate key "interval" (first on line 2)`}},
		{"no config", strings.Replace(valid, "config: rules.yaml\n", "", 1), []string{":1: config is required"}},
		{"config not found", strings.Replace(valid, "rules.yaml", "nope.yaml", 1),
			[]string{":1: config: open " + filepath.Join("testdata", "nope.yaml") + ": no such file or directory"}},
		{"config with a broken rule", strings.Replace(valid, "rules.yaml", "badrules.yaml", 1),
			[]string{filepath.Join("testdata", "badrules.yaml") + ":4: rule broken: when: "}},
		{"bad interval", strings.Replace(valid, "5m", "5 minutes", 1), []string{`:2: interval: invalid duration "5 minutes"`}},
		{"zero interval", strings.Replace(valid, "5m", "0s", 1), []string{":2: interval: must be positive, got 0s"}},
		{"tests not a list", "config: rules.yaml\ntests: {}\n", []string{":2: tests: expected a list, got a mapping"}},
		{"no tests", "config: rules.yaml\ntests: []\n", []string{":2: tests: no tests"}},
		{"test not a mapping", "config: rules.yaml\ntests:\n  - one\n", []string{`:3: tests[0]: expected a mapping, got "one"`}},
		{"unknown test key", strings.Replace(valid, "    input_series:", "    inputs: []\n    input_series:", 1),
			[]string{`:5: tests[0]: unknown key "inputs"`}},
		{"no name", strings.Replace(valid, "  - name: one\n    input_series:", "  - input_series:", 1),
			[]string{":4: tests[0]: name is required"}},
		{"duplicate name", valid + strings.SplitN(valid, "tests:\n", 2)[1],
			[]string{`:10: tests[1].name: duplicate test name "one" (first on line 4)`}},
		{"no series", "config: rules.yaml\ntests:\n  - name: one\n    input_series: []\n    expected_events: [{at: 0m, events: []}]\n",
			[]string{":4: tests[0].input_series: no series"}},
		{"nothing checked", "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n      - {account: alice, project: p1, resource: r, " +
			full + "}\n    expected_events: []\n", []string{":6: tests[0].expected_events: nothing is checked"}},
		{"no expected_events", "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n      - {account: alice, project: p1, resource: r, " +
			full + "}\n", []string{":3: tests[0]: expected_events is required"}},
		{"unknown series key", series(full + ", usge: 1"), []string{`:5: tests[0].input_series[0]: unknown key "usge"`}},
		{"missing fields", series(`usage: "1"`), []string{
			":5: tests[0].input_series[0]: limit is required",
			":5: tests[0].input_series[0]: project_usage is required",
			":5: tests[0].input_series[0]: project_limit is required",
		}},
		{"bad notation", "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n      - account: alice\n        project: p1\n" +
			"        resource: r\n        usage: \"1 2 abc\"\n        limit: \"2x2\"\n        project_usage: 1+1x2\n        project_limit: 2x2\n" +
			"    expected_events: [{at: 0m, events: []}]\n",
			[]string{`:8: tests[0].input_series[0].usage: term "abc": "abc": not a number`}},
		{"bad unit", series(strings.Replace(full, `limit: "2"`, `limit: "2GB 3Gb 4 Gigs"`, 1)),
			[]string{`:5: tests[0].input_series[0].limit: term "Gigs": "Gigs": not a number`}},
		{"lengths differ", series(strings.Replace(full, `limit: "2"`, `limit: "2x1"`, 1)),
			[]string{":5: tests[0].input_series[0].limit: 2 values, but usage has 1: every field has one value per poll"}},
		{"duplicate series", "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n" +
			"      - {account: alice, project: p1, resource: r, " + full + "}\n" +
			"      - {account: alice, project: p1, resource: r, " + full + "}\n    expected_events: [{at: 0m, events: []}]\n",
			[]string{":6: tests[0].input_series[1]: a second series of alice/p1/r (first on line 5)"}},
		{"two names for a project", "config: rules.yaml\ntests:\n  - name: one\n    input_series:\n" +
			"      - {account: alice, project: p1, project_name: a, resource: r, " + full + "}\n" +
			"      - {account: alice, project: p1, project_name: b, resource: s, " + full + "}\n    expected_events: [{at: 0m, events: []}]\n",
			[]string{`:6: tests[0].input_series[1]: project p1 is named "b" here and "a" on line 5`}},
		{"service with member fields", strings.Replace(series(full), "account: alice", "account: service", 1), []string{
			":5: tests[0].input_series[0].usage: the service view has only project_usage, project_limit and project_pending",
			":5: tests[0].input_series[0].limit: the service view has only project_usage, project_limit and project_pending",
		}},
		{"item: unknown kind", item("{account: alice, project: p1, kind: bucket, name: c, quantities: {pithos.diskspace: 1}}"),
			[]string{`:7: tests[0].items[0].kind: unknown kind "bucket"`}},
		{"item: bad amount", item("{account: alice, project: p1, kind: container, name: c, quantities: {pithos.diskspace: 1.5}}"),
			[]string{`:7: tests[0].items[0].quantities.pithos.diskspace: "1.5": not a whole number`}},
		{"item: no quantities", item("{account: alice, project: p1, kind: container, name: c, quantities: {}}"),
			[]string{":7: tests[0].items[0].quantities: no resources"}},
		{"item: unknown key", item("{account: alice, project: p1, kind: container, name: c, size: 1, quantities: {r: 1}}"),
			[]string{`:7: tests[0].items[0]: unknown key "size"`}},
		{"item: no name", item("{account: alice, project: p1, kind: container, quantities: {r: 1}}"),
			[]string{":7: tests[0].items[0]: name is required"}},
		{"at between polls", check("      - {at: 3m, events: []}\n"),
			[]string{":7: tests[0].expected_events[0].at: 3m is not a poll: polls are every 5m from 0"}},
		{"at after the last poll", check("      - {at: 5m, events: []}\n"),
			[]string{":7: tests[0].expected_events[0].at: 5m is after the last poll (at 0)"}},
		{"negative at", check("      - {at: -5m, events: []}\n"),
			[]string{":7: tests[0].expected_events[0].at: must be 0 or more, got -5m"}},
		{"at twice", check("      - {at: 0m, events: []}\n      - {at: 0s, events: []}\n"),
			[]string{":8: tests[0].expected_events[1]: at 0 is checked twice (first on line 7)"}},
		{"no events", check("      - {at: 0m}\n"), []string{":7: tests[0].expected_events[0]: events is required"}},
		{"unknown event", check("      - at: 0m\n        events:\n          - {event: fired}\n"),
			[]string{`:9: tests[0].expected_events[0].events[0].event: unknown event "fired" (want firing, resolved, action, skipped, poll_failed, poll_recovered)`}},
		{"unknown event key", check("      - at: 0m\n        events:\n          - {event: firing, severity: critical}\n"),
			[]string{`:9: tests[0].expected_events[0].events[0]: unknown key "severity"`}},
		{"event key without a value", check("      - at: 0m\n        events:\n          - {event: firing, rule: }\n"),
			[]string{":9: tests[0].expected_events[0].events[0].rule: has no value"}},
		{"unknown account", strings.Replace(strings.Replace(series(full), "rules.yaml", "config.yaml", 1), "account: alice", "account: carol", 1),
			[]string{`:5: tests[0].input_series[0].account: "carol" is not in the cloud.accounts of ` + filepath.Join("testdata", "config.yaml")}},
		{"service without a service token", strings.Replace(strings.Replace(series(`project_usage: "1", project_limit: "2"`), "rules.yaml", "config.yaml", 1), "account: alice", "account: service", 1),
			[]string{`:5: tests[0].input_series[0].account: "service" is the service token's view, and ` + filepath.Join("testdata", "config.yaml") + " sets no cloud.service_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(testFile, []byte(tt.file), Options{})
			require.Error(t, err)
			var got []string
			for _, e := range joined(err) {
				got = append(got, e.Error())
			}
			require.Len(t, got, len(tt.want), "%s", strings.Join(got, "\n"))
			for i, w := range tt.want {
				if !strings.HasPrefix(w, testFile) && !strings.HasPrefix(w, "testdata") {
					w = testFile + w
				}
				require.Contains(t, got[i], w)
				require.True(t, strings.HasPrefix(got[i], w[:strings.Index(w, ": ")+2]), "%q names no file and line", got[i])
			}
		})
	}
}

// A config is loaded with its dry_run, cap and accounts, though its
// secrets are nowhere to be read.
func TestParseConfig(t *testing.T) {
	file := strings.Replace(valid, "rules.yaml", "config.yaml", 1)
	f, err := Parse(testFile, []byte(file), Options{LookupEnv: func(string) (string, bool) { return "", false }})
	require.NoError(t, err)
	require.True(t, f.dryRun)
	require.Equal(t, 1, f.cap)
	require.Equal(t, map[string]bool{"alice": true, "bob": true}, f.accounts)
	require.Len(t, f.rules, 1)
}

// An error in the expanding notation names the line of the value.
func TestNotationErrorsNameTheirLine(t *testing.T) {
	src := `config: rules.yaml
tests:
  - name: notation
    input_series:
      - account: alice
        project: p1
        resource: pithos.diskspace
        usage: "1 2 x3"
        limit: "10GiB+1Gx2"
        project_usage: >-
          1 2
          3 4 stale
        project_limit: "_x0 1"
        pending: "1-+1x2"
        project_pending: "1x2x3"
    items:
      - {account: alice, project: p1, kind: container, name: c,
         quantities: {pithos.diskspace: 3 apples}}
    expected_events:
      - {at: 0m, events: []}
`
	_, err := Parse(testFile, []byte(src), Options{})
	require.Error(t, err)
	var got []string
	for _, e := range joined(err) {
		got = append(got, e.Error())
	}
	p := testFile + ":"
	require.Equal(t, []string{
		p + `8: tests[0].input_series[0].usage: term "x3": "": not a number`,
		p + `9: tests[0].input_series[0].limit: term "10GiB+1Gx2": "1G": unknown unit "G" (want B, KiB, MiB, GiB, TiB, PiB, EiB, kB, MB, GB, TB, PB or EB)`,
		p + `10: tests[0].input_series[0].project_usage: term "stale": a poll returns the quota or fails (_): there is no stale value`,
		p + `13: tests[0].input_series[0].project_limit: term "_x0": _x0 is no poll at all`,
		p + `14: tests[0].input_series[0].pending: term "1-+1x2": "1-+1": one sign between the start and the step`,
		p + `15: tests[0].input_series[0].project_pending: term "1x2x3": the count after x must be a whole number of 0 or more, got "2x3"`,
		p + `18: tests[0].items[0].quantities.pithos.diskspace: "3 apples": unknown unit "apples" (want B, KiB, MiB, GiB, TiB, PiB, EiB, kB, MB, GB, TB, PB or EB)`,
	}, got)
}
