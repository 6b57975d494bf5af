package watcher_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/ha"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/watcher"
)

// fakeCoord is an election the test decides: Leading is what the test
// says, and Elect calls the watcher's Elected hook as a won election does.
type fakeCoord struct {
	leading atomic.Bool
	mu      sync.Mutex
	hooks   *ha.Hooks
	leader  ha.Member
	mirrors atomic.Int32
}

func (f *fakeCoord) Leading() bool { return f.leading.Load() }
func (f *fakeCoord) Status() ha.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ha.Status{Leading: f.leading.Load(), Leader: f.leader, LeaderKnown: f.leader.ID != "", Term: 7}
}
func (f *fakeCoord) Run(ctx context.Context, h ha.Hooks) {
	f.mu.Lock()
	f.hooks = &h
	f.mu.Unlock()
	<-ctx.Done()
}
func (f *fakeCoord) Mirror([]store.Op, store.Sequences) error {
	f.mirrors.Add(1)
	return nil
}
func (f *fakeCoord) Close() error { return nil }

// elect makes this instance the leader, as the ha node does: Elected
// first, Leading after.
func (f *fakeCoord) elect(t *testing.T, prev ha.Member) {
	t.Helper()
	var h *ha.Hooks
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		h = f.hooks
		return h != nil
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, h.Elected(func() (ha.Takeover, error) {
		return ha.Takeover{Self: ha.Member{ID: "hostb/2", Host: "hostb"}, Prev: prev, HasPrev: true, Term: 7}, nil
	}))
	f.mu.Lock()
	f.leader = ha.Member{ID: "hostb/2", Host: "hostb"}
	f.mu.Unlock()
	f.leading.Store(true)
	h.Leading()
}

// A follower polls and records history, and nothing else: no move, no
// message, no decision; once elected it takes the shared state in, tells
// of the takeover and acts at once.
func TestFollowerRecordsOnlyThenLeads(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	require.NoError(t, h.w.Close())
	h.cfg.HA = &config.HA{Etcd: config.Etcd{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/qw/", LeaseTTL: 2 * time.Second}}
	h.cfg.HTTP.Listen = "127.0.0.1:0"
	h.cfg.Schedule = "@every 1h"
	fc := &fakeCoord{leader: ha.Member{ID: "hosta/1", Host: "hosta", URL: "http://hosta:9187"}}
	w, err := watcher.New(context.Background(), watcher.Options{Config: h.cfg, Now: h.clock.Now, NotifyRate: 1000,
		Registry: prometheus.NewRegistry(), Member: &ha.Member{ID: "hostb/2", Host: "hostb"},
		NewCoordinator: func(ha.Member, *store.Store) (watcher.Coordinator, error) { return fc, nil }})
	require.NoError(t, err)
	h.w = w
	t.Cleanup(func() { _ = w.Close() })

	rep := h.cycle()
	require.Empty(t, rep.Plan, "a follower plans nothing")
	require.Equal(t, alice, h.container("course_container").Project, "a follower moves nothing")
	require.Empty(t, h.slackTexts(), "a follower tells nothing")
	require.Zero(t, fc.mirrors.Load(), "a follower writes no shared state")
	ss, err := w.Store().Series(quota.Key{Account: "alice", Project: alice, Resource: quota.DiskSpace}, time.Time{}, h.clock.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, ss, 1, "a follower records what it polled")
	require.NoError(t, w.Store().Release())

	_, err = w.Decide(context.Background(), watcher.Decision{Op: watcher.OpApprove, ID: 1, By: "ops"})
	require.ErrorIs(t, err, watcher.ErrFollower)
	require.Contains(t, err.Error(), "hosta/1 (http://hosta:9187)", "a follower names the leader")

	d := h.runDaemon(t, watcher.RunOptions{})
	addr := <-d.addr
	var st watcher.HAStatus
	require.Eventually(t, func() bool {
		_, body := get(t, "http://"+addr+"/api/v1/ha")
		return json.Unmarshal([]byte(body), &st) == nil && st.Enabled
	}, 5*time.Second, 20*time.Millisecond)
	require.False(t, st.Leading)
	require.Equal(t, "hosta/1", st.Leader.ID)
	_, page := get(t, "http://"+addr+"/")
	require.Contains(t, page, "follower (hostb/2); leader: hosta/1")
	_, metrics := get(t, "http://"+addr+"/metrics")
	require.Contains(t, metrics, "quotawatch_ha_leader 0")

	// Elected: the takeover is told and a cycle runs at once, which moves.
	fc.elect(t, ha.Member{ID: "hosta/1", Host: "hosta"})
	require.Eventually(t, func() bool { return h.container("course_container").Project == cs333 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(strings.Join(h.slackTexts(), "\n"), "hostb/2 took over from hosta/1 (term 7)")
	}, 10*time.Second, 20*time.Millisecond)
	_, metrics = get(t, "http://"+addr+"/metrics")
	require.Contains(t, metrics, "quotawatch_ha_leader 1")
	require.Contains(t, metrics, "quotawatch_ha_term 7")
	require.Positive(t, fc.mirrors.Load(), "the leader's decisions are shared")
	require.NoError(t, d.stop(t))
}
