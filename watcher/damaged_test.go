package watcher_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/watcher"
)

// A store damaged under the running daemon stops it with ErrDamaged and a
// clear log line, instead of failing or panicking every cycle after.
func TestRunStopsOnADamagedStore(t *testing.T) {
	h := newHarness(t, "seed.yaml", `
  - name: nearly-full
    resource: pithos.diskspace
    when: ratio > 0.999
`)
	h.cfg.Schedule = "@every 1s"
	d := h.runDaemon(t, watcher.RunOptions{})
	require.Eventually(t, func() bool { return strings.Contains(h.logs.String(), `msg="cycle done"`) },
		10*time.Second, 20*time.Millisecond)
	path := filepath.Join(h.dir, "quotawatch.db")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	// In place, between cycles: the same inode, its pages gone.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, fi.Size()), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		require.ErrorIs(t, err, store.ErrDamaged)
		require.Contains(t, err.Error(), "store "+path+" is damaged")
	case <-time.After(15 * time.Second):
		t.Fatalf("Run did not stop on the damaged store; log:\n%s", h.logs.String())
	}
	require.Contains(t, h.logs.String(), `msg="the store is damaged; stopping"`)
	require.NotContains(t, h.logs.String(), "panicked")
}
