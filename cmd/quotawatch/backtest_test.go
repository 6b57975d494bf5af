package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/backtests"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

const (
	btAlice = "0f2c6a1e-4b7d-4e21-9c3a-5d8e7f6a1b2c"
	btCS333 = "c5333a1b-2f4e-4d6a-8b9c-0e1f2a3b4c5d"
	btGiB   = int64(1) << 30
)

// btRules warn at 80% and move the largest container out at 95%.
const btRules = `
  - name: disk-warn
    resource: pithos.diskspace
    when: ratio > 0.8
    clear: ratio < 0.75
  - name: container-rebalance
    resource: pithos.diskspace
    when: ratio > 0.95
    clear: ratio < 0.90
    action:
      reassign:
        kind: container
        select: largest
        to: ["*"]
`

// liveMonth is what a month of the daemon did on the simulated cloud.
type liveMonth struct {
	cfgPath, dbPath string
	env             map[string]string
	end             time.Time
	incidents       []string // rule project opened resolved
	moves           []string // time rule item from to
	events          map[quota.EventKind]int
}

// runMonth runs the real watcher on the seed scenario for 30 days of
// cycles 3h apart: alice's container grows past 95% and is moved to CS333,
// then her notes grow and are moved too.
func runMonth(t *testing.T) *liveMonth {
	t.Helper()
	sc, err := synnefosim.LoadScenario(filepath.Join("..", "..", "synnefosim", "testdata", "seed.yaml"))
	require.NoError(t, err)
	cloud := synnefosim.NewServer(sc)
	t.Cleanup(cloud.Close)
	slack := slacksink.New()
	t.Cleanup(slack.Close)
	dir := t.TempDir()
	lm := &liveMonth{cfgPath: filepath.Join(dir, "config.yaml"), dbPath: filepath.Join(dir, "q.db"),
		env: map[string]string{"ALICE_TOKEN": "alice-token", "SLACK_WEBHOOK": slack.WebhookURL()}}
	cfgText := fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_env: ALICE_TOKEN
  requests_per_second: 1000
schedule: "@every 3h"
store:
  path: %s
  retention: 90d
http:
  listen: ""
notifiers:
  - name: ops
    slack:
      webhook_url_env: SLACK_WEBHOOK
rules:
%s`, cloud.AuthURL(), lm.dbPath, btRules)
	require.NoError(t, os.WriteFile(lm.cfgPath, []byte(cfgText), 0o600))
	cfg, err := config.Load(lm.cfgPath, config.Options{LookupEnv: func(k string) (string, bool) { v, ok := lm.env[k]; return v, ok }})
	require.NoError(t, err)

	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	w, err := watcher.New(context.Background(), watcher.Options{Config: cfg, Now: func() time.Time { return now }, NotifyRate: 1000})
	require.NoError(t, err)
	require.NoError(t, cloud.Cloud.GrowContainer(btAlice, "course_container", -8*btGiB))
	open := map[string]time.Time{}
	lm.events = map[quota.EventKind]int{}
	for i := range 240 {
		now = now.Add(3 * time.Hour)
		require.NoError(t, cloud.Cloud.GrowContainer(btAlice, "course_container", btGiB/10))
		if i >= 100 {
			require.NoError(t, cloud.Cloud.GrowContainer(btAlice, "notes", btGiB/5))
		}
		rep, err := w.Cycle(context.Background())
		require.NoError(t, err)
		require.False(t, rep.Failed(), "%+v", rep)
		for _, ev := range rep.Events {
			lm.events[ev.Kind]++
			k := ev.Key.Rule + " " + ev.Key.Project
			switch {
			case ev.Kind == quota.EventFiring && !ev.Repeat:
				open[k] = now
			case ev.Kind == quota.EventResolved:
				lm.incidents = append(lm.incidents, fmt.Sprintf("%s %s %s", k, stamp(open[k]), stamp(now)))
				delete(open, k)
			}
		}
		for _, p := range rep.Plan {
			if !p.Skipped && (p.State == quota.ActionApplied || p.State == quota.ActionVerified) {
				lm.moves = append(lm.moves, fmt.Sprintf("%s %s %s %s %s", stamp(now), p.Rule, p.ItemName, p.From, p.To))
			}
		}
	}
	for k, at := range open {
		lm.incidents = append(lm.incidents, fmt.Sprintf("%s %s still open", k, stamp(at)))
	}
	require.NoError(t, w.Close())
	lm.end = now
	return lm
}

// backtestCmd runs `backtest` at the month's end.
func (lm *liveMonth) backtest(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	sio := &stdio{in: strings.NewReader(""), out: &out, errOut: &errOut, now: func() time.Time { return lm.end },
		lookupEnv: func(k string) (string, bool) { v, ok := lm.env[k]; return v, ok }}
	code := run(context.Background(), sio, append([]string{"backtest", "--config", lm.cfgPath}, args...))
	return code, out.String(), errOut.String()
}

func (lm *liveMonth) report(t *testing.T, args ...string) (*backtests.Report, map[string]any) {
	t.Helper()
	code, stdout, stderr := lm.backtest(t, append(args, "--output", "json")...)
	require.Equal(t, exitOK, code, stderr)
	var rep backtests.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	return &rep, raw
}

func incidentLines(rep *backtests.Report) []string {
	var out []string
	for _, in := range rep.Incidents {
		res := "still open"
		if in.Resolved != nil {
			res = stamp(*in.Resolved)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", in.Rule, in.Project, stamp(in.Opened), res))
	}
	return out
}

func moveLines(rep *backtests.Report) []string {
	var out []string
	for _, m := range rep.Moves {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", stamp(m.Time), m.Rule, m.ItemName, m.From, m.To))
	}
	return out
}

func TestBacktestReplaysWhatTheDaemonDid(t *testing.T) {
	lm := runMonth(t)
	require.Len(t, lm.moves, 2, "the month moves the container, then the notes")
	require.Contains(t, lm.moves[0], "course_container "+btAlice+" "+btCS333)
	require.Contains(t, lm.moves[1], "notes "+btAlice+" "+btCS333)
	require.Len(t, lm.incidents, 4, "%v", lm.incidents)

	before := fileHash(t, lm.dbPath)
	fi, err := os.Stat(lm.dbPath)
	require.NoError(t, err)

	// The same rules on the same month: the same incidents and moves, at
	// the same times.
	rep, raw := lm.report(t, "--since", "31d")
	require.ElementsMatch(t, lm.incidents, incidentLines(rep))
	require.Equal(t, lm.moves, moveLines(rep))
	require.Equal(t, 240, rep.Cycles)
	require.Contains(t, rep.Items, "2 item lists: 2 as listed at the time", "the daemon kept what it listed")
	for _, k := range []string{"incidents", "moves", "refusals", "messages"} {
		require.IsType(t, []any{}, raw[k], k)
	}
	inc := raw["incidents"].([]any)[0].(map[string]any)
	for _, k := range []string{"rule", "account", "project", "resource", "opened", "resolved", "peak_ratio"} {
		require.Contains(t, inc, k)
	}
	mv := raw["moves"].([]any)[0].(map[string]any)
	for _, k := range []string{"time", "rule", "kind", "item_id", "item_name", "from", "to"} {
		require.Contains(t, mv, k)
	}
	msgs := map[quota.EventKind]int{}
	for _, m := range rep.Messages {
		require.Equal(t, "ops", m.Notifier)
		msgs[m.Kind] = m.Count
	}
	require.Equal(t, lm.events, msgs, "one message to ops per event")
	for _, in := range rep.Incidents {
		require.Greater(t, in.PeakRatio, 0.8)
	}

	// The text tables say the same.
	code, stdout, stderr := lm.backtest(t, "--since", "31d")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "4 incidents (0 still open), 2 moves")
	require.Contains(t, stdout, "container course_container")
	require.Contains(t, stdout, "CS333 lab assignments")
	require.Empty(t, stderr, "no progress line on a pipe")

	// Other rules on the same history: warning at 60% opens earlier, and
	// moving at 85% moves earlier.
	other := filepath.Join(filepath.Dir(lm.cfgPath), "other.yaml")
	require.NoError(t, os.WriteFile(other, []byte("rules:"+strings.NewReplacer("0.8\n", "0.6\n", "0.75\n", "0.55\n", "0.95\n", "0.85\n").Replace(btRules)), 0o600))
	alt, _ := lm.report(t, "--since", "31d", "--rules", other)
	require.NotEqual(t, incidentLines(rep), incidentLines(alt))
	require.NotEmpty(t, alt.Moves)
	require.True(t, alt.Moves[0].Time.Before(rep.Moves[0].Time), "%v vs %v", moveLines(alt), moveLines(rep))
	require.True(t, alt.Incidents[0].Opened.Before(rep.Incidents[0].Opened))
	// Moving earlier than the daemon did, the backtest plans before any
	// listing was kept: it uses the first one made later.
	require.Regexp(t, `[1-9][0-9]* from a later listing`, alt.Items)

	// --since limits the window: the last 7 days hold the second move only.
	recent, _ := lm.report(t, "--since", "7d")
	require.Equal(t, 57, recent.Cycles, "both ends included")
	require.Equal(t, lm.moves[1:], moveLines(recent))
	for _, in := range recent.Incidents {
		require.False(t, in.Opened.Before(lm.end.Add(-7*24*time.Hour)))
	}

	// It wrote nothing.
	require.Equal(t, before, fileHash(t, lm.dbPath))
	fi2, err := os.Stat(lm.dbPath)
	require.NoError(t, err)
	require.Equal(t, fi.ModTime(), fi2.ModTime())
	st, err := store.Open(lm.dbPath, store.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, st.Close())
}

func TestBacktestBadRules(t *testing.T) {
	lm := &liveMonth{cfgPath: filepath.Join(t.TempDir(), "config.yaml"), env: map[string]string{}}
	require.NoError(t, os.WriteFile(lm.cfgPath, []byte(`cloud:
  auth_url: http://127.0.0.1:9/identity/v2.0
  accounts:
    - {name: alice, token: t}
store:
  path: `+filepath.Join(filepath.Dir(lm.cfgPath), "q.db")+`
http:
  listen: ""
`), 0o600))
	bad := filepath.Join(filepath.Dir(lm.cfgPath), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - name: x\n    resource: pithos.diskspace\n    when: ratio >\n"), 0o600))
	code, _, stderr := lm.backtest(t, "--rules", bad)
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "bad.yaml")
	code, _, stderr = lm.backtest(t, "--since", "soon")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "want a positive duration")
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	none := func(string) (string, bool) { return "", false }
	require.False(t, isTerminal(w, none), "a pipe")
	require.False(t, isTerminal(&bytes.Buffer{}, none))
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	require.False(t, isTerminal(null, none), "/dev/null is a character device, not a terminal")
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		require.True(t, isTerminal(tty, none))
		require.False(t, isTerminal(tty, func(k string) (string, bool) { return "8:1234", k == "JOURNAL_STREAM" }), "under systemd")
	}
}
