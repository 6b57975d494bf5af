package watcher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/ha"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/watcher"
)

// largeCloudConfig is the configuration of a watcher of a simulated
// cloud of projects x 8 resources (synnefosim.LargeScenario), with extra
// top-level YAML, its store in a temporary directory.
func largeCloudConfig(t *testing.T, projects int, extra string) *config.Config {
	t.Helper()
	srv := synnefosim.NewServer(synnefosim.LargeScenario(projects))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: bench
      token: bench-token
  requests_per_second: 1000
store:
  path: %s
http:
  listen: ""
%s
`, srv.AuthURL(), filepath.Join(dir, "q.db"), extra)), config.Options{})
	require.NoError(t, err)
	return cfg
}

// The daemon's hook before a bulk record runs before the first cycle
// into an empty store records its 12,000 series, and not before the
// cycles that record none new; a follower's cycles too.
func TestRunBeforeBulkRecord(t *testing.T) {
	t.Run("leader", func(t *testing.T) { testBeforeBulkRecord(t, false) })
	t.Run("follower", func(t *testing.T) { testBeforeBulkRecord(t, true) })
}

func testBeforeBulkRecord(t *testing.T, follower bool) {
	cfg := largeCloudConfig(t, 1500, `schedule: "@every 1s"`)
	opts := watcher.Options{Config: cfg, Registry: prometheus.NewRegistry()}
	if follower {
		cfg.HA = &config.HA{Etcd: config.Etcd{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/qw/", LeaseTTL: 2 * time.Second}}
		opts.Member = &ha.Member{ID: "hostb/2", Host: "hostb"}
		opts.NewCoordinator = func(ha.Member, *store.Store) (watcher.Coordinator, error) { return &fakeCoord{}, nil }
	}
	w, err := watcher.New(context.Background(), opts)
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

// Project names are written when they are listed, before the cycle
// records its polls.
func TestNamesRecordedWhenListed(t *testing.T) {
	cfg := largeCloudConfig(t, 20, "")
	var w *watcher.Watcher
	var err error
	named := -1
	w, err = watcher.New(context.Background(), watcher.Options{Config: cfg, Registry: prometheus.NewRegistry(),
		Progress: func(phase string, _, _ int) {
			if phase == "planning" && named < 0 {
				ps, err := w.Store().Projects()
				require.NoError(t, err)
				named = 0
				for _, p := range ps {
					if p.Name != "" {
						named++
					}
				}
				n, err := w.Store().SeriesCount()
				require.NoError(t, err)
				require.Zero(t, n, "the polls are not recorded yet")
			}
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	_, err = w.Cycle(context.Background())
	require.NoError(t, err)
	require.GreaterOrEqual(t, named, 20, "every project named before the record")
}
