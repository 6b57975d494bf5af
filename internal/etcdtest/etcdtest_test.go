package etcdtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quotawatch/quotawatch/internal/etcdtest"
)

func put(cli *clientv3.Client, timeout time.Duration, key, val string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := cli.Put(ctx, key, val)
	return err
}

// putRetrying puts until a put succeeds or timeout passes, each attempt
// bounded: a put whose member dies under it fails (Unavailable) rather than
// being sent again, since the client cannot know whether it was applied,
// and one that reaches a member without a leader waits for the server's
// own request timeout (6 s here) unless its context ends first.
func putRetrying(cli *clientv3.Client, timeout time.Duration, key, val string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := put(cli, time.Second, key, val)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// timedOut reports an error of a request that got no answer in time, as
// across a partition (not a refused or reset connection).
// timedOut reports a write that no quorum took: the client's deadline, or
// the member's own answer when it gave up first.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) ||
		errors.Is(err, rpctypes.ErrNoLeader)
}

// TestQuorum: three members serve; losing one keeps a quorum, losing two
// loses it, and restarted members rejoin with what was written meanwhile.
func TestQuorum(t *testing.T) {
	c := etcdtest.Start(t, 3)
	require.Equal(t, 3, c.Len())
	require.Len(t, c.Endpoints(), 3)
	for i, e := range c.Endpoints() {
		require.Equal(t, c.Endpoint(i), e)
		require.Regexp(t, `^http://127\.0\.0\.1:\d+$`, e)
	}
	cli := c.Client()
	require.NoError(t, put(cli, 5*time.Second, "k", "v1"))
	require.Equal(t, "v1", get(t, cli, "k"))
	// Every member serves on its own.
	for i := range c.Len() {
		require.Equal(t, "v1", get(t, c.Client(c.Endpoint(i)), "k"), "member %d", i)
	}

	c.Stop(0)
	require.False(t, c.Running(0))
	require.NoError(t, put(cli, 5*time.Second, "k", "v2"), "two of three members are a quorum")

	c.Stop(1)
	err := put(cli, time.Second, "k", "v3")
	require.Error(t, err, "one of three members is no quorum")
	require.True(t, timedOut(err), "%v", err)

	c.Start(1)
	require.NoError(t, put(cli, 5*time.Second, "k", "v4"))
	c.Start(0)
	require.Equal(t, "v4", get(t, c.Client(c.Endpoint(0)), "k"), "a restarted member has what was written while it was down")

	// A killed leader is replaced, and comes back as a follower.
	old := c.Leader()
	c.Kill(old)
	require.NoError(t, putRetrying(cli, 5*time.Second, "k", "v5"))
	now := c.Leader()
	require.NotEqual(t, old, now)
	c.Start(old)
	require.Equal(t, "v5", get(t, c.Client(c.Endpoint(old)), "k"))
}

// TestRestartWithoutQuorum: members stopped all at once come back one by
// one; the cluster serves once a quorum of them runs.
func TestRestartWithoutQuorum(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := c.Client()
	require.NoError(t, put(cli, 5*time.Second, "k", "v1"))
	for i := range c.Len() {
		c.Stop(i)
	}
	c.Start(2) // alone: it listens, but cannot serve
	require.Error(t, put(cli, time.Second, "k", "v2"))
	c.Start(0)
	c.WaitReady()
	require.NoError(t, put(cli, 5*time.Second, "k", "v2"))
	require.Equal(t, "v2", get(t, c.Client(c.Endpoint(2)), "k"))
}

// TestProxyPartition: a client through a Proxy works; blocked, its reads
// time out; unblocked, new clients work and the old one carries on.
func TestProxyPartition(t *testing.T) {
	c := etcdtest.Start(t, 1)
	p := etcdtest.NewProxy(t, c.Endpoint(0))
	require.Equal(t, "http://"+p.Addr(), p.Endpoint())
	cli := etcdtest.NewClient(t, p.Endpoint())
	require.NoError(t, put(cli, 5*time.Second, "k", "v1"))
	require.Equal(t, "v1", get(t, cli, "k"))

	p.Block()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	start := time.Now()
	_, err := cli.Get(ctx, "k")
	cancel()
	require.Error(t, err, "a Get across a partition")
	require.True(t, timedOut(err), "a partition times out rather than fails fast: %v", err)
	require.GreaterOrEqual(t, time.Since(start), 1900*time.Millisecond)

	// A new client cannot get through either.
	cfg := etcdtest.ClientConfig(p.Endpoint())
	cfg.DialTimeout = time.Second
	blocked, err := clientv3.New(cfg)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = blocked.Get(ctx, "k")
		cancel()
		blocked.Close()
	}
	require.Error(t, err)

	// The member itself is fine: only the path through the proxy is cut.
	require.NoError(t, put(c.Client(c.Endpoint(0)), 5*time.Second, "k", "v2"))

	p.Unblock()
	require.Equal(t, "v2", get(t, etcdtest.NewClient(t, p.Endpoint()), "k"))
	require.Equal(t, "v2", get(t, cli, "k"), "the old client carries on once the partition heals")
}

// TestTLS: a TLS cluster serves clients with its client certificate, also
// through a proxy, and no others.
func TestTLS(t *testing.T) {
	c := etcdtest.StartTLS(t, 1)
	require.Regexp(t, `^https://127\.0\.0\.1:\d+$`, c.Endpoint(0))
	f := c.TLS()
	require.NotNil(t, f)
	for _, p := range []string{f.CA, f.Cert, f.Key} {
		require.FileExists(t, p)
	}
	require.NoError(t, put(c.Client(), 5*time.Second, "k", "v"))

	p := etcdtest.NewProxy(t, c.Endpoint(0))
	require.Equal(t, "https://"+p.Addr(), p.Endpoint())
	require.Equal(t, "v", get(t, c.Client(p.Endpoint()), "k"))

	// Without a client certificate, or without TLS, nothing is served.
	cfg := etcdtest.ClientConfig(c.Endpoint(0))
	cfg.TLS = f.Config()
	cfg.TLS.Certificates = nil
	cfg.DialTimeout = time.Second
	if cli, err := clientv3.New(cfg); err == nil {
		require.Error(t, put(cli, time.Second, "k", "w"), "no client certificate")
		cli.Close()
	}
	plain := etcdtest.NewClient(t, "http://"+p.Addr())
	require.Error(t, put(plain, time.Second, "k", "w"), "no TLS")
	require.Equal(t, "v", get(t, c.Client(), "k"))
}
