package etcdtest

import (
	"errors"
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
// goroutine as the real ones do.
type recorder struct {
	testing.TB
	skipped, failed string
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
