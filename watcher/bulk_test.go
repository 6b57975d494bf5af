package watcher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

// The daemon's hook before a bulk record runs before the first cycle
// into an empty store records its 12,000 series, and not before the
// cycles that record none new.
func TestRunBeforeBulkRecord(t *testing.T) {
	srv := synnefosim.NewServer(synnefosim.LargeScenario(1500))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	cfg, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: bench
      token: bench-token
  requests_per_second: 1000
schedule: "@every 1s"
store:
  path: %s
http:
  listen: ""
`, srv.AuthURL(), path)), config.Options{})
	require.NoError(t, err)
	w, err := watcher.New(context.Background(), watcher.Options{Config: cfg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	var mu sync.Mutex
	var seen []string
	note := func(s string) func() {
		return func() {
			mu.Lock()
			seen = append(seen, s)
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, watcher.RunOptions{AfterCycle: note("cycle"), BeforeBulkRecord: note("bulk"),
			LoadConfig: func() (*config.Config, error) { return cfg, nil }})
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 4
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"bulk", "cycle", "cycle", "cycle"}, seen[:4])
}
