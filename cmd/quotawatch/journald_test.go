package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/synnefosim"
)

// On the journal every line starts with its syslog priority and carries no
// time; elsewhere lines are plain.
func TestJournalPriorities(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			lf := logFlags{format: format, level: "debug"}
			log, err := lf.newLogger(&buf, true)
			require.NoError(t, err)
			sub := log.With("account", "alice").WithGroup("g")
			log.Debug("d")
			log.Info("i")
			sub.Warn("w", "k", "v")
			log.Error("e")
			log.Log(t.Context(), slog.LevelWarn+2, "above warn")
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			require.Len(t, lines, 5, buf.String())
			for i, want := range []string{"<7>", "<6>", "<4>", "<3>", "<4>"} {
				require.True(t, strings.HasPrefix(lines[i], want), "line %d %q wants %s", i, lines[i], want)
				require.NotContains(t, lines[i], "time")
			}
			require.Contains(t, lines[2], "alice")
		})
	}
	var buf bytes.Buffer
	lf := logFlags{format: "text", level: "info"}
	log, err := lf.newLogger(&buf, false)
	require.NoError(t, err)
	log.Warn("w")
	require.True(t, strings.HasPrefix(buf.String(), "time="), buf.String())
}

// The real process, with stderr a file that JOURNAL_STREAM names as the
// journal's stream, writes the priorities.
func TestJournalStreamDetected(t *testing.T) {
	c := newCLI(t)
	c.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/account/v1.0/quotas", Status: 503}})
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	defer stderr.Close()
	var st syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(stderr.Fd()), &st))

	run := func(journal bool) string {
		t.Helper()
		require.NoError(t, stderr.Truncate(0))
		_, err := stderr.Seek(0, 0)
		require.NoError(t, err)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), daemonEnv+"=1",
			daemonEnv+"_ARGS="+strings.Join([]string{"once", "--config", c.cfg, "--log-level", "debug"}, "\n"))
		if journal {
			cmd.Env = append(cmd.Env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
		}
		for k, v := range c.env() {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = stderr
		_ = cmd.Run() // exits 1: the poll fails
		b, err := os.ReadFile(stderr.Name())
		require.NoError(t, err)
		return string(b)
	}

	out := run(true)
	require.Regexp(t, `(?m)^<[34]>.*poll`, out)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		require.Regexp(t, regexp.MustCompile(`^<[3467]>level=`), l)
	}
	out = run(false)
	require.Regexp(t, `(?m)^time=.*poll`, out)
	require.NotContains(t, out, "<4>")
}
