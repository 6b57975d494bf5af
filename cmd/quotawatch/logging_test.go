package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
)

// TestJSONLogDurationsInSeconds: JSON logs give durations in seconds, the
// key saying so, as Prometheus does; text logs keep the readable form.
func TestJSONLogDurationsInSeconds(t *testing.T) {
	for _, journal := range []bool{false, true} {
		var buf bytes.Buffer
		log, err := (&logFlags{format: "json", level: "info"}).newLogger(&buf, journal)
		require.NoError(t, err)
		log.WithGroup("cycle").Info("cycle done", "took", 1500*time.Millisecond, "wait_seconds", 2*time.Second, "n", 3)
		line := buf.Bytes()
		if journal {
			line = bytes.TrimPrefix(line, []byte("<6>"))
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec), buf.String())
		require.Equal(t, map[string]any{"took_seconds": 1.5, "wait_seconds": 2.0, "n": 3.0}, rec["cycle"])
	}
	var buf bytes.Buffer
	log, err := (&logFlags{format: "text", level: "info"}).newLogger(&buf, false)
	require.NoError(t, err)
	log.Info("cycle done", "took", 1500*time.Millisecond)
	require.Contains(t, buf.String(), "took=1.5s")
}

// TestStartupLogLine: run's first line says the version, the config's
// outline and whether it is a dry run, and no secret.
func TestStartupLogLine(t *testing.T) {
	c := newCLI(t)
	env := c.env()
	cfg, err := config.Load(c.cfg, config.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	require.NoError(t, err)
	var buf bytes.Buffer
	log, err := (&logFlags{format: "json", level: "info"}).newLogger(&buf, false)
	require.NoError(t, err)
	logStartup(log, cfg, buildInfo{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.x"})
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), buf.String())
	require.Equal(t, "starting", rec["msg"])
	require.Equal(t, "v1.2.3", rec["version"])
	require.Equal(t, c.cfg, rec["config"])
	require.Equal(t, 1.0, rec["accounts"])
	require.Equal(t, 1.0, rec["rules"])
	require.Equal(t, []any{"ops"}, rec["notifiers"])
	require.Equal(t, "@every 5m", rec["schedule"])
	require.Equal(t, false, rec["dry_run"])
	require.Equal(t, filepath.Join(c.dir, "q.db"), rec["store"])
	require.NotContains(t, buf.String(), "alice-token")
	require.NotContains(t, buf.String(), c.slack.WebhookURL())
}

// TestRunLogsStartupFirst: the daemon's first log line is the start-up
// line.
func TestRunLogsStartupFirst(t *testing.T) {
	c := newCLI(t)
	d := startDaemon(t, c)
	line := d.waitFor(t, "msg=")
	require.Contains(t, line, "msg=starting")
	require.Contains(t, line, "dry_run=false")
	require.Contains(t, line, "accounts=1")
}

// TestPlanLogsNoScratchStore: plan's scratch store is no news at the
// default level.
func TestPlanLogsNoScratchStore(t *testing.T) {
	c := newCLI(t)
	code, _, stderr := c.run("plan")
	require.Equal(t, exitOK, code, stderr)
	require.NotContains(t, stderr, "store created")
	require.NotContains(t, stderr, "level=INFO")
}
