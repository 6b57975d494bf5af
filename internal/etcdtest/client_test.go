package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/quotawatch/quotawatch/internal/etcdtest"
)

// TestClientAgainstServer runs the parts of the client that high
// availability uses against the etcd binary installed (Debian's 3.4), so a
// client upgrade that breaks with that server fails here.
func TestClientAgainstServer(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// KV and Txn: a compare-and-swap on the revision of a key.
	put, err := cli.Put(ctx, "/t/kv", "a")
	require.NoError(t, err)
	resp, err := cli.Get(ctx, "/t/kv")
	require.NoError(t, err)
	require.Equal(t, "a", string(resp.Kvs[0].Value))
	txn, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision("/t/kv"), "=", put.Header.Revision)).
		Then(clientv3.OpPut("/t/kv", "b")).
		Else(clientv3.OpGet("/t/kv")).Commit()
	require.NoError(t, err)
	require.True(t, txn.Succeeded)
	txn, err = cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision("/t/kv"), "=", put.Header.Revision)).
		Then(clientv3.OpPut("/t/kv", "c")).
		Else(clientv3.OpGet("/t/kv")).Commit()
	require.NoError(t, err)
	require.False(t, txn.Succeeded, "the revision moved on")
	require.Equal(t, "b", string(txn.Responses[0].GetResponseRange().Kvs[0].Value))

	// Watch sees a put.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, "/t/w/", clientv3.WithPrefix())
	_, err = cli.Put(ctx, "/t/w/x", "1")
	require.NoError(t, err)
	select {
	case w := <-wch:
		require.NoError(t, w.Err())
		require.Len(t, w.Events, 1)
		require.Equal(t, "/t/w/x", string(w.Events[0].Kv.Key))
	case <-ctx.Done():
		t.Fatal("no watch event")
	}

	// A lease kept alive outlives its TTL; revoked, its key goes.
	lease, err := cli.Grant(ctx, 2)
	require.NoError(t, err)
	_, err = cli.Put(ctx, "/t/lease", "x", clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	ka, err := cli.KeepAlive(ctx, lease.ID)
	require.NoError(t, err)
	deadline := time.After(3 * time.Second)
	for alive := true; alive; {
		select {
		case r := <-ka:
			require.NotNil(t, r, "keepalive ended")
		case <-deadline:
			alive = false
		}
	}
	resp, err = cli.Get(ctx, "/t/lease")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the lease outlived its TTL")
	once, err := cli.KeepAliveOnce(ctx, lease.ID)
	require.NoError(t, err)
	require.Positive(t, once.TTL)
	_, err = cli.Revoke(ctx, lease.ID)
	require.NoError(t, err)
	resp, err = cli.Get(ctx, "/t/lease")
	require.NoError(t, err)
	require.Empty(t, resp.Kvs)

	// Election: one leader at a time; Resign hands over, Observe follows.
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(2))
	require.NoError(t, err)
	defer s1.Close()
	s2, err := concurrency.NewSession(c.Client(), concurrency.WithTTL(2))
	require.NoError(t, err)
	defer s2.Close()
	e1 := concurrency.NewElection(s1, "/t/election/")
	e2 := concurrency.NewElection(s2, "/t/election/")
	require.NoError(t, e1.Campaign(ctx, "one"))
	obs := e2.Observe(ctx)
	require.Equal(t, "one", string((<-obs).Kvs[0].Value))

	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx, "two") }()
	select {
	case err := <-won:
		t.Fatalf("a second leader while the first holds: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, e1.Resign(ctx))
	require.NoError(t, <-won)
	require.Equal(t, "two", string((<-obs).Kvs[0].Value))
	leader, err := e1.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "two", string(leader.Kvs[0].Value))

	// A leader whose session ends (its lease expires or is revoked) is
	// replaced.
	go func() { won <- e1.Campaign(ctx, "one again") }()
	require.NoError(t, s2.Close())
	require.NoError(t, <-won)
	require.Equal(t, "one again", string((<-obs).Kvs[0].Value))
}
