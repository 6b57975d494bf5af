package ruletests

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// A failing test says what differed, readably; the output is golden.
func TestFailingOutput(t *testing.T) {
	var out, errOut bytes.Buffer
	file := filepath.Join("testdata", "failing.test.yaml")
	s := RunFiles(&out, &errOut, []string{file}, Options{})
	require.Empty(t, errOut.String())
	require.Equal(t, Summary{Passed: 1, Failed: 2}, s)
	require.Equal(t, 1, s.ExitCode())
	golden := filepath.Join("testdata", "failing.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String())
}

func TestSummary(t *testing.T) {
	tests := []struct {
		s    Summary
		line string
		code int
	}{
		{Summary{Passed: 3}, "3 passed, 0 failed", 0},
		{Summary{Passed: 3, Failed: 1}, "3 passed, 1 failed", 1},
		{Summary{Passed: 3, Failed: 1, Malformed: 1}, "3 passed, 1 failed, 1 test file malformed", 2},
		{Summary{Malformed: 2}, "0 passed, 0 failed, 2 test files malformed", 2},
	}
	for _, tt := range tests {
		require.Equal(t, tt.line, tt.s.String())
		require.Equal(t, tt.code, tt.s.ExitCode())
	}
}

// runTests parses a test file (its config in testdata/) and runs every
// test, failing with what differed.
func runTests(t *testing.T, src string) {
	t.Helper()
	f, err := Parse(testFile, []byte(src), Options{LookupEnv: func(string) (string, bool) { return "", false }})
	require.NoError(t, err)
	for i := range f.Tests {
		r := f.Run(&f.Tests[i])
		if !r.Passed {
			var b strings.Builder
			writeResult(&b, f.Path, r)
			t.Errorf("%s", b.String())
		}
	}
}

// A move changes the ledger of its own cycle, which the other plans of
// the cycle see, but not the later polls: those are the input series.
func TestMoveChangesItsCycleNotLaterInputs(t *testing.T) {
	// full (cooldown 5m) and full-again (1h) watch the same series; full
	// plans first.
	runTests(t, `config: rules.yaml
tests:
  - name: moves
    input_series:
      - {account: alice, project: p1, resource: pithos.diskspace,
         usage: "95x1 10", limit: "100x2", project_usage: "95x1 10", project_limit: "100x2"}
      - {account: alice, project: p2, resource: pithos.diskspace,
         usage: "0x2", limit: "100x2", project_usage: "0x2", project_limit: "100x2"}
    items:
      - {account: alice, project: p1, kind: container, name: c1, quantities: {pithos.diskspace: 50}}
      - {account: alice, project: p1, kind: container, name: c2, quantities: {pithos.diskspace: 40}}
    expected_events:
      # c1 leaves p1 in the ledger (95 -> 45): full-again, planned after
      # full in the same cycle, finds p1 relieved and moves nothing.
      - at: 0m
        events:
          - {event: firing, rule: full}
          - {event: firing, rule: full-again}
          - {event: action, rule: full, item: c1, to: p2}
      # The polls still say 95: both still fire (nothing resolved), and
      # once full's cooldown is over it moves c2, since c1 has left p1.
      - at: 5m
        events:
          - {event: action, rule: full, item: c2, to: p2}
      - at: 10m
        events:
          - {event: resolved, rule: full}
          - {event: resolved, rule: full-again}
`)
}

// Once the only item has moved, the planner says there is nothing left to
// move, once per rule and incident: full after its cooldown, and
// full-again, which the polls still show over its limit.
func TestNothingLeftToMove(t *testing.T) {
	runTests(t, `config: rules.yaml
tests:
  - name: nothing left
    input_series:
      - {account: alice, project: p1, resource: pithos.diskspace,
         usage: "95x3", limit: "100x3", project_usage: "95x3", project_limit: "100x3"}
      - {account: alice, project: p2, resource: pithos.diskspace,
         usage: "0x3", limit: "100x3", project_usage: "0x3", project_limit: "100x3"}
    items:
      - {account: alice, project: p1, kind: container, name: c1, quantities: {pithos.diskspace: 50}}
    expected_events:
      - at: 5m
        events:
          - {event: skipped, rule: full, reason: "no container with pithos.diskspace to move in p1"}
          - {event: skipped, rule: full-again, reason: "no container with pithos.diskspace to move in p1"}
      - at: 10m
        events: []
`)
}

// The config's dry_run and max_actions_per_cycle apply: a dry-run move is
// told as an action but leaves the item where it is, and the cap refuses
// the moves past it.
func TestConfigDryRunAndCap(t *testing.T) {
	runTests(t, `config: config.yaml
tests:
  - name: capped dry run
    input_series:
      - {account: alice, project: p1, resource: pithos.diskspace,
         usage: "95x1", limit: "100x1", project_usage: "95x1", project_limit: "100x1"}
      - {account: alice, project: p3, resource: pithos.diskspace,
         usage: "95x1", limit: "100x1", project_usage: "95x1", project_limit: "100x1"}
      - {account: alice, project: p2, resource: pithos.diskspace,
         usage: "0x1", limit: "1000x1", project_usage: "0x1", project_limit: "1000x1"}
    items:
      - {account: alice, project: p1, kind: container, name: c1, quantities: {pithos.diskspace: 50}}
      - {account: alice, project: p3, kind: container, name: c3, quantities: {pithos.diskspace: 50}}
    expected_events:
      - at: 0m
        events:
          - {event: firing, project: p1}
          - {event: firing, project: p3}
          - {event: action, item: c1, to: p2}
          - {event: skipped, project: p3, reason: max_actions_per_cycle}
`)
}

// A missing poll is a failed poll of the account: its incidents are kept,
// three in a row alert and the next poll tells the recovery. A series that
// ends is gone from the polls.
func TestMissingPollsAndEndedSeries(t *testing.T) {
	runTests(t, `config: rules.yaml
tests:
  - name: polls
    input_series:
      - {account: alice, project: p1, resource: pithos.diskspace,
         usage: "95 _x3 95", limit: "100x4", project_usage: "95x4", project_limit: "100x4"}
      - {account: bob, project: p9, resource: pithos.diskspace,
         usage: "95", limit: "100", project_usage: "95", project_limit: "100"}
    expected_events:
      - at: 0m
        events:
          - {event: firing, account: alice, rule: full}
          - {event: firing, account: alice, rule: full-again}
          - {event: firing, account: bob, rule: full}
          - {event: firing, account: bob, rule: full-again}
          - {event: skipped, account: alice, rule: full}
          - {event: skipped, account: alice, rule: full-again}
          - {event: skipped, account: bob, rule: full}
          - {event: skipped, account: bob, rule: full-again}
      - at: 5m
        events:
          - {event: resolved, account: bob, rule: full, reason: no longer watched}
          - {event: resolved, account: bob, rule: full-again, reason: no longer watched}
      - at: 10m
        events: []
      - at: 15m
        events:
          - {event: poll_failed, account: alice, reason: "the test input is _"}
      - at: 20m
        events:
          - {event: poll_recovered, account: alice}
`)
}

// Forecasts read the polls so far: a trend needs three samples over an
// hour, and a failed poll is no sample.
func TestForecastReadsHistory(t *testing.T) {
	runTests(t, `config: forecast.yaml
tests:
  - name: +1 GiB every 5m, 80 GiB free
    input_series:
      - {account: alice, project: p1, resource: pithos.diskspace,
         usage: "10GiB+1GiBx12", limit: "100GiBx12", project_usage: "10GiB+1GiBx12", project_limit: "100GiBx12"}
    expected_events:
      - {at: 55m, events: []}
      - {at: 1h, events: [{event: firing, rule: filling}]}
  - name: the first poll failed, so the hour of samples is there only later
    input_series:
      - {account: alice, project: p1, resource: pithos.diskspace,
         usage: "_ 11GiB+1GiBx12", limit: "100GiBx13", project_usage: "10GiB+1GiBx13", project_limit: "100GiBx13"}
    expected_events:
      - {at: 1h, events: []}
      - {at: 1h5m, events: [{event: firing, rule: filling}]}
`)
}

// A poll returns each account's series at that index; a _ fails the
// account's poll.
func TestPoll(t *testing.T) {
	f := &File{Interval: DefaultInterval}
	tt := Test{polls: 3, series: []series{{
		key:    quota.Key{Account: "alice", Project: "p1", Resource: quota.DiskSpace},
		fields: [nFields][]point{{{v: 1}, {missing: true}, {v: 3}}, {{v: 9}, {v: 9}, {v: 9}}, nil, {{v: 1}, {v: 2}, {v: 3}}, {{v: 9}, {v: 9}, {v: 9}}},
		n:      3,
	}}}
	snaps, failed := tt.poll(1, Epoch, tt.accounts())
	require.Empty(t, snaps)
	require.Equal(t, map[string]string{"alice": pollFailed}, failed)
	snaps, failed = tt.poll(2, Epoch, tt.accounts())
	require.Empty(t, failed)
	require.Len(t, snaps, 1)
	require.Equal(t, quota.Quota{Usage: 3, Limit: 9, ProjectUsage: 3, ProjectLimit: 9}, snaps[0].Entries[0].Quota)
	require.Len(t, f.simulate(&tt), 3)
}
