package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// daemonProcess runs `quotawatch run` as its own process (the test binary
// re-executed) and follows its log.
type daemonProcess struct {
	cmd   *exec.Cmd
	lines chan string
	seen  []string
}

func startDaemon(t *testing.T, c *cli) *daemonProcess {
	t.Helper()
	d := &daemonProcess{lines: make(chan string, 1000)}
	var done chan struct{}
	d.cmd, done = spawnDaemon(t, "", c.env(), func(l string) { d.lines <- l }, "run", "--config", c.cfg)
	go func() {
		<-done
		close(d.lines)
	}()
	return d
}

// waitFor reads the log until a line contains s.
func (d *daemonProcess) waitFor(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("the daemon exited before logging %q; log:\n%s", s, strings.Join(d.seen, "\n"))
			}
			d.seen = append(d.seen, l)
			if strings.Contains(l, s) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q in the log:\n%s", s, strings.Join(d.seen, "\n"))
		}
	}
}

func TestDaemonSignals(t *testing.T) {
	c := newCLI(t)
	d := startDaemon(t, c)
	d.waitFor(t, `msg="cycle done"`)

	// The read-only commands work while the daemon runs.
	for _, args := range [][]string{{"status"}, {"actions"}, {"history", "--resource", "pithos.diskspace"}, {"backup", c.dir + "/live-backup.db"}} {
		code, _, stderr := c.run(args...)
		require.Equal(t, exitOK, code, "%v: %s", args, stderr)
	}

	// A second writer on the same store gets a clear error, not a hang.
	code, _, stderr := c.run("once")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "locked by another quotawatch process")

	// SIGHUP with a broken file: refused, the daemon runs on.
	good, err := os.ReadFile(c.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(c.cfg, append(good, []byte("nonsense: true\n")...), 0o600))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	l := d.waitFor(t, "reload failed; keeping the running configuration")
	require.Contains(t, l, `unknown key`)

	// SIGHUP with a good file: swapped in.
	require.NoError(t, os.WriteFile(c.cfg, good, 0o600))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	d.waitFor(t, "configuration reloaded")

	// SIGTERM: a clean, prompt stop with exit code 0.
	start := time.Now()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	d.waitFor(t, `msg=stopped`)
	require.NoError(t, d.cmd.Wait())
	require.Less(t, time.Since(start), 15*time.Second)
	for _, l := range d.seen {
		require.NotContains(t, l, "alice-token")
		require.NotContains(t, l, c.slack.WebhookURL())
	}
}
