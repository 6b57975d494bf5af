package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quotawatch/quotawatch/internal/etcdtest"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

const testTTL = 2 * time.Second

// instance is one quotawatch's store and node.
type instance struct {
	name  string
	st    *store.Store
	node  *Node
	stop  context.CancelFunc
	done  chan struct{}
	mu    sync.Mutex
	terms []Takeover
	lost  []string
}

func newInstance(t *testing.T, name string, endpoints []string, prefix string) *instance {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), name+".db"), store.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	n, err := New(Config{Endpoints: endpoints, Prefix: prefix, TTL: testTTL,
		Self: Member{ID: name, Host: name, PID: 1}}, st)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	st.SetMirror(n)
	return &instance{name: name, st: st, node: n}
}

func (in *instance) start() {
	ctx, cancel := context.WithCancel(context.Background())
	in.stop, in.done = cancel, make(chan struct{})
	go func() {
		defer close(in.done)
		in.node.Run(ctx, Hooks{
			Elected: func(load func() (Takeover, error)) error {
				t, err := load()
				if err == nil {
					in.mu.Lock()
					in.terms = append(in.terms, t)
					in.mu.Unlock()
				}
				return err
			},
			Deposed: func(r string) { in.mu.Lock(); in.lost = append(in.lost, r); in.mu.Unlock() },
		})
	}()
}

func (in *instance) halt() {
	in.stop()
	<-in.done
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func intent(item string) quota.Action {
	return quota.Action{Time: time.Now().UTC(), Move: quota.Move{Rule: "spill", Account: "alice", Kind: quota.KindContainer, ItemID: item, ItemName: item}}
}

func TestLeaderSharesFollowerTakesOver(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a := newInstance(t, "a", c.Endpoints(), "/qw/")
	a.start()
	waitFor(t, 5*time.Second, "a leads", a.node.Leading)
	b := newInstance(t, "b", c.Endpoints(), "/qw/")
	b.start()
	defer b.halt()

	// The leader decides; every decision is shared as it is made.
	id, err := a.st.Intent(intent("c1"))
	require.NoError(t, err)
	in := quota.Instance{Key: quota.InstanceKey{Rule: "spill", Account: "alice", Project: "p1", Resource: quota.DiskSpace},
		State: quota.StateFiring, Since: time.Now().UTC()}
	require.NoError(t, a.st.Commit(&store.Batch{Instances: []quota.Instance{in},
		Outbox: []store.Outgoing{{Notifier: "ops", Event: quota.Event{Kind: quota.EventFiring, Key: in.Key}}}}))
	_, err = a.st.AddSilence(store.Silence{Rule: "spill", Project: "p2", Ends: time.Now().Add(time.Hour)})
	require.NoError(t, err)

	// The follower takes it in, and may not decide.
	waitFor(t, 5*time.Second, "b has a's intent", func() bool {
		open, err := b.st.Unfinished()
		return err == nil && len(open) == 1 && open[0].ID == id
	})
	require.False(t, b.node.Leading())
	_, err = b.st.Intent(intent("c2"))
	require.ErrorIs(t, err, ErrNotLeader)
	waitFor(t, 5*time.Second, "b sees who leads", func() bool { return b.node.Status().LeaderKnown })
	require.Equal(t, "a", b.node.Status().Leader.ID)

	// A clean stop hands over at once (the lease is revoked).
	a.halt()
	took := waitFor(t, 2*testTTL, "b leads after a stops", b.node.Leading)
	t.Logf("takeover after a clean stop: %s", took)
	b.mu.Lock()
	require.Len(t, b.terms, 1)
	tk := b.terms[0]
	b.mu.Unlock()
	require.True(t, tk.HasPrev)
	require.Equal(t, "a", tk.Prev.ID)

	insts, err := b.st.Instances()
	require.NoError(t, err)
	require.Len(t, insts, 1)
	pending, _, err := b.st.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	sl, err := b.st.Silences()
	require.NoError(t, err)
	require.Len(t, sl, 1)
	// Ids go on where the last leader stopped.
	next, err := b.st.Intent(intent("c2"))
	require.NoError(t, err)
	require.Equal(t, id+1, next)

	// The old leader's store, opened again, cannot write.
	_, err = a.st.Intent(intent("c3"))
	require.ErrorIs(t, err, ErrNotLeader)
}

// A leader cut off from etcd stops acting before its lease can expire; a
// follower takes over after it expired, and the old leader's writes fail.
func TestPartitionedLeaderStopsFirst(t *testing.T) {
	c := etcdtest.Start(t, 3)
	proxy := etcdtest.NewProxy(t, strings.TrimPrefix(c.Endpoint(0), "http://"))
	a := newInstance(t, "a", []string{proxy.Endpoint()}, "/qw/")
	a.start()
	defer a.halt()
	waitFor(t, 5*time.Second, "a leads", a.node.Leading)
	b := newInstance(t, "b", c.Endpoints()[1:], "/qw/")
	b.start()
	defer b.halt()
	waitFor(t, 5*time.Second, "b sees a lead", func() bool { return b.node.Status().LeaderKnown })

	cut := time.Now()
	proxy.Block()
	stopped := waitFor(t, testTTL, "a stops acting", func() bool { return !a.node.Leading() })
	tookOver := waitFor(t, 2*testTTL+time.Second, "b leads", b.node.Leading) + stopped
	t.Logf("partition: a stopped acting after %s, b led after %s (TTL %s)", stopped, tookOver, testTTL)
	require.Less(t, stopped, testTTL, "a stops acting within the lease TTL")
	require.Less(t, stopped, tookOver, "a stops acting before b may act")
	require.GreaterOrEqual(t, time.Since(cut), testTTL*3/4)

	// a's writes are refused locally (its fence is closed) and would be by
	// etcd (its election key is gone).
	_, err := a.st.Intent(intent("late"))
	require.ErrorIs(t, err, ErrNotLeader)
	proxy.Unblock()
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/qw/leader/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "one election key: b's")
	require.Contains(t, string(resp.Kvs[0].Value), `"id":"b"`)
	waitFor(t, 10*time.Second, "a follows again", func() bool {
		st := a.node.Status()
		return st.LeaderKnown && st.Leader.ID == "b"
	})
	require.False(t, a.node.Leading())
}

// A deposed leader that still thinks it leads cannot write: the guard is
// its election key, not its belief.
func TestGuardRefusesDeposedTerm(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := newInstance(t, "a", c.Endpoints(), "/qw/")
	a.start()
	defer a.halt()
	waitFor(t, 5*time.Second, "a leads", a.node.Leading)
	// Someone deletes the election key behind a's back (an operator, or a
	// lease revoked): its next shared write must fail, not land.
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.node.mu.Lock()
	l := a.node.lead
	a.node.mu.Unlock()
	require.NotNil(t, l)
	_, err := cli.Delete(ctx, l.key)
	require.NoError(t, err)
	// Write before a's watch can notice: the guard alone refuses it.
	err = a.node.guarded(ctx, l, []clientv3.Op{clientv3.OpPut("/qw/state/seq", "{}")})
	require.ErrorIs(t, err, ErrNotLeader)
	resp, err := cli.Get(ctx, "/qw/state/seq")
	require.NoError(t, err)
	require.NotEqual(t, "{}", string(resp.Kvs[0].Value))
	waitFor(t, 5*time.Second, "a no longer leads", func() bool { return !a.node.Leading() })
}

// The journal in etcd keeps open, applied and proposed moves and the
// settled ones of the window; the store keeps everything.
func TestJournalWindow(t *testing.T) {
	pk, err := newPacker()
	require.NoError(t, err)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	n := &Node{cfg: Config{JournalWindow: func() time.Duration { return 10 * 24 * time.Hour }}, clock: func() time.Time { return now }, pk: pk}
	entry := func(state quota.ActionState, age time.Duration) []byte {
		return fmt.Appendf(nil, `{"state":%q,"time":%q,"updated":%q}`, state, now.Add(-age).Format(time.RFC3339), now.Add(-age).Format(time.RFC3339))
	}
	m := map[string][]byte{
		"old-verified": entry(quota.ActionVerified, 11*24*time.Hour),
		"old-failed":   entry(quota.ActionFailed, 30*24*time.Hour),
		"old-applied":  entry(quota.ActionApplied, 30*24*time.Hour),
		"old-unknown":  entry(quota.ActionUnknown, 30*24*time.Hour),
		"old-proposed": entry(quota.ActionProposed, 30*24*time.Hour),
		"new-verified": entry(quota.ActionVerified, 9*24*time.Hour),
	}
	n.prune(m)
	require.ElementsMatch(t, []string{"old-unknown", "old-proposed", "new-verified"}, keys(m))
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPackRoundTripAndMalformed(t *testing.T) {
	pk, err := newPacker()
	require.NoError(t, err)
	m := map[string][]byte{"a": []byte("1"), "": []byte(""), "long": make([]byte, 10000)}
	got, err := pk.unpack(pk.pack(m))
	require.NoError(t, err)
	require.Equal(t, m, got)
	empty, err := pk.unpack(nil)
	require.NoError(t, err)
	require.Empty(t, empty)

	for name, v := range map[string][]byte{
		"version":   {9, 1, 2},
		"not zstd":  {packVersion, 'x', 'y'},
		"truncated": pk.pack(m)[:10],
		"length":    append([]byte{packVersion}, pk.enc.EncodeAll([]byte{200, 'a'}, nil)...),
		"duplicate": append([]byte{packVersion}, pk.enc.EncodeAll([]byte{1, 'a', 0, 1, 'a', 0}, nil)...),
	} {
		_, err := pk.unpack(v)
		require.Error(t, err, name)
		require.True(t, errors.Is(err, errShard), "%s: %v", name, err)
	}

	for key, want := range map[string]bool{
		"/p/state/rule_instances/1f": true,
		"/p/state/rule_instances/20": false, // 32 shards
		"/p/state/projects/00":       false,
		"/p/state/seq":               false,
		"/p/state/actions/zz":        false,
	} {
		_, _, ok := parseStateKey("/p/", key)
		require.Equal(t, want, ok, key)
	}
}

// A cycle that changes every rule instance of a large cloud still fits one
// etcd transaction (1.5 MiB by default).
func TestShardsOfManyInstancesFitOneTransaction(t *testing.T) {
	pk, err := newPacker()
	require.NoError(t, err)
	const n = 20000
	cnt := shardCount["rule_instances"]
	shards := make([]map[string][]byte, cnt)
	for i := range shards {
		shards[i] = map[string][]byte{}
	}
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range n {
		in := quota.Instance{Key: quota.InstanceKey{Rule: fmt.Sprintf("rule-%d", i%20), Account: "alice",
			Project: fmt.Sprintf("%08x-0000-4000-8000-%012d", i, i), Resource: quota.DiskSpace},
			State: quota.StateFiring, Since: since.Add(time.Duration(i) * time.Second), LastNotified: since}
		v, err := json.Marshal(in)
		require.NoError(t, err)
		k := in.Key.Rule + "\x00" + in.Key.Account + "\x00" + in.Key.Project + "\x00" + in.Key.Resource
		shards[shardOf([]byte(k), cnt)][k] = v
	}
	total := 0
	for _, m := range shards {
		total += len(pk.pack(m))
	}
	t.Logf("%d firing instances: %d bytes packed in %d shards", n, total, cnt)
	require.Less(t, total, 1536*1024)
}

// A term that ends without its session ending (its key deleted, a write
// refused) campaigns again: the node never sits on an election it no
// longer takes part in.
func TestCampaignsAgainAfterDeposition(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := newInstance(t, "a", c.Endpoints(), "/qw/")
	a.start()
	defer a.halt()
	waitFor(t, 5*time.Second, "a leads", a.node.Leading)
	first := a.node.Status().Term
	a.node.mu.Lock()
	key := a.node.lead.key
	a.node.mu.Unlock()
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cli.Delete(ctx, key)
	require.NoError(t, err)
	waitFor(t, 5*time.Second, "a stops leading", func() bool { return !a.node.Leading() })
	waitFor(t, 10*time.Second, "a leads again, in a new term", func() bool {
		return a.node.Leading() && a.node.Status().Term > first
	})
	a.mu.Lock()
	require.Len(t, a.lost, 1)
	require.Equal(t, "the election key was deleted", a.lost[0])
	a.mu.Unlock()
}

// A shared state that cannot be read fails the takeover, and the lead is
// let go rather than held: once the state is readable, an instance leads.
func TestUnreadableStateLetsTheLeadGo(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cli.Put(ctx, "/qw/state/seq", `{"actions":3}`)
	require.NoError(t, err)
	_, err = cli.Put(ctx, "/qw/state/actions/00", "\x09not a shard")
	require.NoError(t, err)
	a := newInstance(t, "a", c.Endpoints(), "/qw/")
	a.start()
	defer a.halt()
	// It wins, fails to load, and lets go: the election key comes and goes.
	waitFor(t, 10*time.Second, "a lets the lead go after a failed takeover", func() bool {
		resp, err := cli.Get(ctx, "/qw/leader/", clientv3.WithPrefix())
		return err == nil && len(resp.Kvs) == 0 && a.node.Status().LeaderKnown
	})
	require.False(t, a.node.Leading())
	_, err = cli.Delete(ctx, "/qw/state/actions/00")
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "a leads once the state is readable", a.node.Leading)
	seq, err := a.st.Intent(intent("c1"))
	require.NoError(t, err)
	require.Equal(t, uint64(4), seq, "ids go on from the shared counters")
}

// Taking the lead may wait (the watcher waits for a cycle to end): the
// lease is renewed meanwhile, so the term survives a long wait.
func TestSlowTakeoverKeepsTheLease(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := newInstance(t, "a", c.Endpoints(), "/qw/")
	st, n := a.st, a.node
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var deposed []string
	go func() {
		defer close(done)
		n.Run(ctx, Hooks{
			Elected: func(load func() (Takeover, error)) error {
				// Writes from before the state is loaded are refused.
				if _, err := st.Intent(intent("early")); !errors.Is(err, ErrNotLeader) {
					return fmt.Errorf("a write before the load: %v", err)
				}
				time.Sleep(2 * testTTL)
				_, err := load()
				return err
			},
			Deposed: func(r string) { deposed = append(deposed, r) },
		})
	}()
	waitFor(t, 5*testTTL, "a leads after a slow takeover", n.Leading)
	_, err := st.Intent(intent("late"))
	require.NoError(t, err)
	cancel()
	<-done
	require.Len(t, deposed, 1, "one term: the slow takeover did not lose it")
}
