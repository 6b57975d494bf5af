package etcdtest

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNoProcessOutlivesTheTest: the members of a test's cluster are gone
// once the test ends, stopped or killed.
func TestNoProcessOutlivesTheTest(t *testing.T) {
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		c := Start(t, 3)
		c.Kill(1)
		c.Start(1)
		for _, m := range c.members {
			pids = append(pids, m.running().cmd.Process.Pid)
		}
	})
	require.Len(t, pids, 3)
	for _, pid := range pids {
		err := syscall.Kill(pid, 0)
		require.True(t, errors.Is(err, syscall.ESRCH), "member %d is still running (%v)", pid, err)
	}
}

// recorder is a testing.TB that records a Skipf or Fatalf and ends the
// goroutine as the real ones do, and that can pass for a failed test whose
// cleanups and logs it keeps.
type recorder struct {
	testing.TB
	skipped, failed string
	fail            bool
	cleanups        []func()
	logs            []string
}

func (r *recorder) Failed() bool { return r.fail || r.TB.Failed() }

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = format
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	runtime.Goexit()
}

// TestLogsOfAFailedTest: when a test fails, its cleanup stops the members
// and prints what each logged.
func TestLogsOfAFailedTest(t *testing.T) {
	r := &recorder{TB: t, fail: true}
	c := Start(r, 1)
	pid := c.members[0].running().cmd.Process.Pid
	r.cleanup()
	require.True(t, errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), "the member is stopped")
	require.Len(t, r.logs, 1)
	require.Contains(t, r.logs[0], "etcdtest: log of m0")
	require.Contains(t, r.logs[0], "--initial-cluster-state new", "the command line")
	require.Contains(t, r.logs[0], "starting an etcd server", "etcd's own log")

	// A test that passes prints nothing.
	r = &recorder{TB: t}
	Start(r, 1)
	r.cleanup()
	require.Empty(t, r.logs)
}

func TestBinaryMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		var wg sync.WaitGroup
		wg.Go(func() { Binary(r) })
		wg.Wait()
		if ci == "true" {
			require.Contains(t, r.failed, "etcd not found: install Debian's etcd-server", "in CI a missing etcd fails")
			require.Empty(t, r.skipped)
		} else {
			require.Contains(t, r.skipped, "etcd not found: install Debian's etcd-server")
			require.Empty(t, r.failed)
		}
	}
}
