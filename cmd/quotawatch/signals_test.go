package main

import (
	"bufio"
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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), daemonEnv+"=1", daemonEnv+"_ARGS="+strings.Join([]string{"run", "--config", c.cfg}, "\n"))
	for k, v := range c.env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	d := &daemonProcess{cmd: cmd, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
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
