package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/internal/testutil"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/view"
)

// runCmd runs the command line in-process and returns the exit code,
// stdout and stderr.
func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	sio := &stdio{in: strings.NewReader(""), out: &out, errOut: &errOut, lookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	code := run(context.Background(), sio, args)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: quotawatch COMMAND"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"empty config", []string{"once", "--config", ""}, "once: --config FILE is required"},
		{"unknown flag", []string{"validate", "--nope"}, "flag provided but not defined: -nope"},
		{"bad output", []string{"status", "--config", "x.yaml", "--output", "xml"}, `--output "xml": want text or json`},
		{"bad log level", []string{"validate", "--config", "x.yaml", "--log-level", "loud"}, `--log-level "loud"`},
		{"bad since", []string{"history", "--config", "x.yaml", "--since", "soon"}, `invalid value "soon" for flag -since: want a positive duration`},
		{"backup without out", []string{"backup", "--config", "x.yaml"}, "backup: want 1 argument(s) after the flags, got 0"},
		{"sim without scenario", []string{"sim"}, "sim: --scenario FILE is required"},
		{"version with an argument", []string{"version", "x"}, `version: unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, nil, tt.args...)
			require.Equal(t, exitUsage, code)
			require.Contains(t, stderr, tt.want)
		})
	}
}

// Every command prints its own usage on -h and --help and exits 0; the
// table drives it, so a new command is covered by being added.
func TestHelpOfEveryCommand(t *testing.T) {
	for _, c := range commands() {
		for _, h := range []string{"-h", "--help"} {
			t.Run(c.name+" "+h, func(t *testing.T) {
				var code int
				var stdout, stderr string
				require.NotPanics(t, func() { code, stdout, stderr = runCmd(t, nil, c.name, h) })
				require.Equal(t, exitOK, code, stderr)
				require.Empty(t, stdout, "usage goes to stderr")
				require.Regexp(t, `^usage: quotawatch `+c.name+`\b`, stderr)
				require.Contains(t, stderr, c.summary)
				if c.config {
					require.Contains(t, stderr, "-config string")
				}
			})
		}
	}
}

// The demo's story is on stdout, so its logs default to warnings.
func TestDemoLogsWarningsByDefault(t *testing.T) {
	code, _, stderr := runCmd(t, nil, "demo", "-h")
	require.Equal(t, exitOK, code)
	require.Regexp(t, `-log-level string\n.*\(default "warn"\)`, stderr)
}

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, stdout, stderr := runCmd(t, nil, args...)
		require.Equal(t, exitOK, code)
		require.Empty(t, stdout)
		for _, c := range commands() {
			require.Regexp(t, `(?m)^  `+c.name+` +`+regexp.QuoteMeta(c.summary)+`$`, stderr)
		}
	}
}

func TestValidateInvalidConfigs(t *testing.T) {
	dir := filepath.Join("..", "..", "config", "testdata")
	tests := []struct {
		file string
		want string
	}{
		{"invalid-unknown-key.yaml", `FILE:6: unknown key "shedule"`},
		{"invalid-schedule.yaml", `FILE:6: schedule: invalid schedule "*/5 * * *": expected 5 to 6 fields, found 4: [*/5 * * *]`},
		{"invalid-rule-when.yaml", ""},
		{"invalid-several.yaml", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			code, stdout, stderr := runCmd(t, nil, "validate", "--config", path)
			require.Equal(t, exitUsage, code)
			require.Empty(t, stdout)
			// The command prints exactly what the loader reports, every
			// problem on its own line, each naming the file and line.
			want := tt.want
			if want == "" {
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				for _, l := range lines {
					require.True(t, strings.HasPrefix(l, path+":"), "line names the file: %q", l)
				}
				return
			}
			require.Equal(t, strings.ReplaceAll(want, "FILE", path)+"\n", stderr)
		})
	}
}

func TestValidateGood(t *testing.T) {
	code, stdout, stderr := runCmd(t, nil, "validate", "--config", filepath.Join("..", "..", "config", "testdata", "good-minimal.yaml"))
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "OK (1 accounts")
}

// cli is a simulated cloud, a Slack fake and a config for the commands.
type cli struct {
	t     *testing.T
	dir   string
	cfg   string
	cloud *synnefosim.Server
	slack *slacksink.Server
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	sc, err := synnefosim.LoadScenario(filepath.Join("..", "..", "synnefosim", "testdata", "seed.yaml"))
	require.NoError(t, err)
	c := &cli{t: t, dir: t.TempDir(), cloud: synnefosim.NewServer(sc), slack: slacksink.New()}
	t.Cleanup(c.cloud.Close)
	t.Cleanup(c.slack.Close)
	c.cfg = filepath.Join(c.dir, "config.yaml")
	cfg := fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_env: ALICE_TOKEN
schedule: "@every 5m"
store:
  path: %s
http:
  listen: ""
notifiers:
  - name: ops
    slack:
      webhook_url_env: SLACK_WEBHOOK
rules:
  - name: container-rebalance
    resource: pithos.diskspace
    when: ratio > 0.95
    clear: ratio < 0.90
    action:
      reassign:
        kind: container
`, c.cloud.AuthURL(), filepath.Join(c.dir, "q.db"))
	require.NoError(t, os.WriteFile(c.cfg, []byte(cfg), 0o600))
	return c
}

func (c *cli) env() map[string]string {
	return map[string]string{"ALICE_TOKEN": "alice-token", "SLACK_WEBHOOK": c.slack.WebhookURL()}
}

func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	return runCmd(c.t, c.env(), append(args[:1:1], append([]string{"--config", c.cfg}, args[1:]...)...)...)
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func TestPlanChangesNothing(t *testing.T) {
	c := newCLI(t)
	// Before any store exists.
	code, stdout, stderr := c.run("plan")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "course_container")
	require.Contains(t, stdout, "CS333 lab assignments")
	require.Contains(t, stdout, "would move")
	_, err := os.Stat(filepath.Join(c.dir, "q.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "plan creates no store")

	// With a store: it stays byte for byte the same.
	code, _, stderr = c.run("status") // status on a missing store fails cleanly
	require.Equal(t, exitFailure, code, stderr)
	st, err := store.Open(filepath.Join(c.dir, "q.db"), store.Options{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	before := fileHash(t, filepath.Join(c.dir, "q.db"))
	c.cloud.Cloud.ResetRequests()
	code, stdout, stderr = c.run("plan", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	require.Len(t, rows, 1)
	for _, f := range []string{"rule", "account", "kind", "item_id", "item_name", "from", "from_name", "to", "to_name",
		"quantities", "source_before", "source_after", "dest_before", "dest_after", "skipped"} {
		require.Contains(t, rows[0], f)
	}
	require.Equal(t, before, fileHash(t, filepath.Join(c.dir, "q.db")))
	for _, r := range c.cloud.Cloud.Requests() {
		// The token request and the user catalogs are reads.
		if !strings.HasPrefix(r.Path, "/identity") && !strings.HasSuffix(r.Path, "/user_catalogs") {
			require.Equal(t, "GET", r.Method, "plan calls nothing that changes the cloud: %+v", r)
		}
	}
	require.Empty(t, c.slack.Messages(), "plan sends no message")
}

func TestOnceThenInspect(t *testing.T) {
	c := newCLI(t)
	code, stdout, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "course_container")
	require.Contains(t, stdout, "19.2 GiB")
	require.Contains(t, stdout, "verified")
	require.NotEmpty(t, c.slack.Messages())

	code, stdout, stderr = c.run("actions", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var acts []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &acts))
	require.Len(t, acts, 1)
	for _, f := range []string{"id", "time", "rule", "account", "kind", "item_id", "item_name", "from", "from_name",
		"to", "to_name", "quantities", "state", "dry_run", "error"} {
		require.Contains(t, acts[0], f)
	}
	require.Equal(t, "verified", acts[0]["state"])

	code, stdout, stderr = c.run("actions")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "CS333 lab assignments")

	code, stdout, stderr = c.run("status", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var status []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &status))
	require.NotEmpty(t, status)
	for _, f := range []string{"rule", "account", "project", "project_name", "resource", "state", "since", "usage", "limit", "ratio"} {
		require.Contains(t, status[0], f)
	}
	require.Equal(t, "container-rebalance", status[0]["rule"])
	require.Equal(t, "firing", status[0]["state"])

	code, stdout, stderr = c.run("status")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "CS333 lab assignments")
	require.Contains(t, stdout, "firing")

	code, stdout, stderr = c.run("history", "--project", "CS333 lab assignments", "--resource", "pithos.diskspace", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var hist []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &hist))
	require.Len(t, hist, 1)
	for _, f := range []string{"time", "usage", "limit", "pending", "project_usage", "project_limit"} {
		require.Contains(t, hist[0], f)
	}
	code, stdout, stderr = c.run("history", "--project", "CS333 lab assignments", "--resource", "pithos.diskspace")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "PROJECT USAGE")
	code, _, stderr = c.run("history", "--project", "nope")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "no series matches")

	out := filepath.Join(c.dir, "backup.db")
	code, _, stderr = c.run("backup", out)
	require.Equal(t, exitOK, code, stderr)
	st, err := store.Open(out, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer st.Close()
	latest, err := st.Latest()
	require.NoError(t, err)
	require.NotEmpty(t, latest)
}

func TestOnceExitsOneWhenThePollFails(t *testing.T) {
	c := newCLI(t)
	c.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/account/v1.0/quotas", Status: 503}})
	code, stdout, _ := c.run("once")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stdout, "poll of account alice failed")
}

func TestSim(t *testing.T) {
	code, _, stderr := runCmd(t, nil, "sim", "--scenario", filepath.Join("..", "..", "synnefosim", "testdata", "invalid-unknown-key.yaml"))
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "invalid-unknown-key.yaml:")

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testutil.SyncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, &stdio{out: &out, errOut: &errOut}, []string{"sim", "--listen", "127.0.0.1:0",
			"--scenario", filepath.Join("..", "..", "synnefosim", "testdata", "seed.yaml")})
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "auth_url: http://127.0.0.1:") }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.Equal(t, exitOK, <-done, errOut.String())
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCmd(t, nil, "version")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(stdout, "quotawatch "))
}

// Separate `once` runs carry state exactly as cycles of `run` do: here the
// consecutive poll failures of an account, then the rule state and cooldown.
func TestOnceCarriesStateBetweenRuns(t *testing.T) {
	c := newCLI(t)
	c.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/account/v1.0/quotas", Status: 503}})
	var outs []string
	for range 3 {
		code, stdout, _ := c.run("once")
		require.Equal(t, exitFailure, code)
		outs = append(outs, stdout)
	}
	require.NotContains(t, outs[0]+outs[1], "poll_failed")
	require.Contains(t, outs[2], "poll_failed", "the third failure in a row, across processes")

	c.cloud.Cloud.SetFaults(nil)
	code, stdout, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "poll_recovered")
	require.Contains(t, stdout, "verified", "the move happens once the data is back")
	code, stdout, _ = c.run("once")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "resolved")
	require.NotContains(t, stdout, "firing ")
}

func TestInspectAtScale(t *testing.T) {
	c := newCLI(t)
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)

	status := func(args ...string) []map[string]any {
		t.Helper()
		code, stdout, stderr := c.run(append([]string{"status", "--output", "json"}, args...)...)
		require.Equal(t, exitOK, code, stderr)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
		return rows
	}
	// The poll came before the move: the system project is the fullest.
	rows := status("--project", "system:*", "--top", "3")
	require.Len(t, rows, 3, "the rule instance, then the fullest series it does not cover")
	require.Equal(t, "container-rebalance", rows[0]["rule"])
	require.Equal(t, []any{"cyclades.floating_ip", "cyclades.network.private"}, []any{rows[1]["resource"], rows[2]["resource"]}, "1 of 1: fullest")
	rows = status("--project", "CS333*")
	require.Len(t, rows, 7)
	rows = status("--state", "firing", "--rule", "container-*")
	require.Len(t, rows, 1, "the instance, whose row carries its series")
	require.Equal(t, "firing", rows[0]["state"])
	require.Empty(t, status("--account", "bob"))

	code, stdout, stderr := c.run("status", "--top", "1", "--project", "system:*")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "cyclades.floating_ip")
	require.NotContains(t, stdout, "cyclades.vm")
	code, _, stderr = c.run("status", "--rule", "[")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "pattern")

	code, stdout, stderr = c.run("history", "--project", "CS333*", "--resource", "cyclades.*", "--account", "alice", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var hist []view.HistoryRow
	require.NoError(t, json.Unmarshal([]byte(stdout), &hist))
	require.Len(t, hist, 6, "one sample of each cyclades resource of the lab")
	code, stdout, stderr = c.run("history", "--project", "CS333*", "--resource", "pithos.diskspace")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "min 0 B  max 0 B")
	code, _, stderr = c.run("history", "--account", "bob")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, `--account "bob"`)
}

func TestPlanJSONCarriesEvents(t *testing.T) {
	c := newCLI(t)
	code, stdout, stderr := c.run("plan", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var rows []struct {
		Rule     string        `json:"rule"`
		ItemName string        `json:"item_name"`
		Events   []quota.Event `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	require.Len(t, rows, 1)
	require.Equal(t, "course_container", rows[0].ItemName)
	var kinds []quota.EventKind
	for _, e := range rows[0].Events {
		kinds = append(kinds, e.Kind)
	}
	require.Equal(t, []quota.EventKind{quota.EventFiring}, kinds, "the events the table prints, on the row of their move")
	require.Equal(t, "container-rebalance", rows[0].Events[0].Key.Rule)
}
