// Package etcdtest runs real etcd clusters on loopback for tests: Debian's
// etcd-server binary, N members with their own data directories, members
// that can be stopped, killed and restarted, and a TCP proxy that can
// partition a client from its member. Only _test.go files import it.
package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Timings of the members and of waiting for them.
const (
	// HeartbeatInterval and ElectionTimeout make elections take well under
	// a second, so failover tests stay short.
	HeartbeatInterval = 50 * time.Millisecond
	ElectionTimeout   = 500 * time.Millisecond
	// ReadyTimeout bounds the wait for a cluster, or a restarted member,
	// to serve.
	ReadyTimeout = 20 * time.Second
	// stopTimeout is how long a member has to exit after SIGTERM before it
	// gets SIGKILL; cleanupTimeout the same at the end of the test.
	stopTimeout    = 5 * time.Second
	cleanupTimeout = 2 * time.Second
	stopPause      = 200 * time.Millisecond
	// logTail is how much of each member's log a failing test prints.
	logTail = 32 << 10
)

// Binary returns the path of the etcd binary. Without one the test is
// skipped, except in CI (CI=true), where it fails.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("etcd")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("etcd not found: install Debian's etcd-server (apt-get install etcd-server); .ci/run installs it")
	}
	t.Skipf("etcd not found: install Debian's etcd-server (apt-get install etcd-server); CI runs this test")
	return ""
}

// Cluster is a running etcd cluster whose members listen on 127.0.0.1.
// Its methods are meant for the test goroutine; t.Cleanup stops every
// member.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	token   string
	initial string // --initial-cluster
	members []*member
	tls     *TLS // nil for plain http://
}

type member struct {
	name    string
	client  string // host:port
	peer    string // host:port
	dataDir string
	logPath string

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of a member.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, once done
}

// Start starts a cluster of the given number of members and waits until
// every member serves a linearizable read. Members log to files in the
// test's temporary directory, printed when the test fails.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	return start(t, members, false)
}

func start(t testing.TB, members int, withTLS bool) *Cluster {
	t.Helper()
	if members < 1 {
		t.Fatalf("etcdtest.Start: %d members", members)
	}
	c := &Cluster{t: t, bin: Binary(t), dir: t.TempDir()}
	if withTLS {
		tf, err := newTLS(c.dir)
		if err != nil {
			t.Fatalf("etcdtest: certificates: %v", err)
		}
		c.tls = tf
	}
	t.Cleanup(c.cleanup)
	// Another process may take a port between its reservation and etcd's
	// bind; a new set of ports is tried then.
	var err error
	for attempt := range 3 {
		if err = c.boot(attempt, members); err == nil {
			return c
		}
		if !c.portTaken() {
			break
		}
		t.Logf("etcdtest: a port was taken, trying others: %v", err)
		c.stopAll()
	}
	t.Fatalf("etcdtest: start %d members: %v", members, err)
	return nil
}

// boot starts a fresh cluster on new ports and waits until it serves.
func (c *Cluster) boot(attempt, n int) error {
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	c.token = fmt.Sprintf("etcdtest-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), attempt)
	c.members = make([]*member, n)
	var initial []string
	for i := range c.members {
		m := &member{
			name:   fmt.Sprintf("m%d", i),
			client: ports[2*i],
			peer:   ports[2*i+1],
		}
		base := filepath.Join(c.dir, fmt.Sprintf("try%d-%s", attempt, m.name))
		m.dataDir = base + ".data"
		m.logPath = base + ".log"
		c.members[i] = m
		initial = append(initial, m.name+"=http://"+m.peer)
	}
	c.initial = strings.Join(initial, ",")
	for _, m := range c.members {
		if err := c.run(m, "new"); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	for i := range c.members {
		if err := c.waitServing(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// run starts the process of m.
func (c *Cluster) run(m *member, state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		return fmt.Errorf("%s is running", m.name)
	}
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: log: %w", m.name, err)
	}
	args := []string{
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", c.scheme() + m.client,
		"--advertise-client-urls", c.scheme() + m.client,
		"--listen-peer-urls", "http://" + m.peer,
		"--initial-advertise-peer-urls", "http://" + m.peer,
		"--initial-cluster", c.initial,
		"--initial-cluster-token", c.token,
		"--initial-cluster-state", state,
		"--heartbeat-interval", strconv.Itoa(int(HeartbeatInterval / time.Millisecond)),
		"--election-timeout", strconv.Itoa(int(ElectionTimeout / time.Millisecond)),
		"--logger", "zap",
		"--log-outputs", "stderr",
	}
	if c.tls != nil {
		args = append(args, "--cert-file", c.tls.serverCert, "--key-file", c.tls.serverKey,
			"--trusted-ca-file", c.tls.CA, "--client-cert-auth")
	}
	fmt.Fprintf(log, "=== %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = cleanEnv()
	// Should the test binary die without its cleanups, the member goes
	// with it instead of outliving it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: start %s: %w", m.name, c.bin, err)
	}
	p := &process{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	m.proc = p
	return nil
}

// cleanEnv is the environment without ETCD_* variables, which etcd would
// read as flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD") {
			env = append(env, kv)
		}
	}
	return env
}

// waitServing waits until member i answers a linearizable read, which
// needs a leader and the member's part in the cluster.
func (c *Cluster) waitServing(ctx context.Context, i int) error {
	m := c.members[i]
	cli, err := clientv3.New(c.Config(c.Endpoint(i)))
	if err != nil {
		return err
	}
	defer cli.Close()
	var last error
	for {
		if p := m.running(); p == nil {
			return fmt.Errorf("%s is not running", m.name)
		} else if exited(p) {
			return fmt.Errorf("%s exited: %v", m.name, p.err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, last = cli.Get(rctx, "etcdtest-ready")
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not serve within %s: %v", m.name, ReadyTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitListening waits until member i accepts connections on its client
// port, all a member can show while the cluster has no quorum.
func (c *Cluster) waitListening(ctx context.Context, i int) error {
	m := c.members[i]
	for {
		if p := m.running(); p == nil {
			return fmt.Errorf("%s is not running", m.name)
		} else if exited(p) {
			return fmt.Errorf("%s exited: %v", m.name, p.err)
		}
		conn, err := net.DialTimeout("tcp", m.client, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not listen on %s within %s: %v", m.name, m.client, ReadyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func exited(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (m *member) running() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// Len is the number of members.
func (c *Cluster) Len() int { return len(c.members) }

// Endpoints returns the client URLs of every member (http://127.0.0.1:PORT),
// running or not.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i := range c.members {
		out[i] = c.Endpoint(i)
	}
	return out
}

// Endpoint returns the client URL of member i.
func (c *Cluster) Endpoint(i int) string { return c.scheme() + c.member(i).client }

func (c *Cluster) scheme() string {
	if c.tls != nil {
		return "https://"
	}
	return "http://"
}

// Running reports whether member i's process is running.
func (c *Cluster) Running(i int) bool {
	p := c.member(i).running()
	return p != nil && !exited(p)
}

func (c *Cluster) member(i int) *member {
	if i < 0 || i >= len(c.members) {
		c.t.Fatalf("etcdtest: no member %d in a cluster of %d", i, len(c.members))
	}
	return c.members[i]
}

// Stop stops member i (SIGTERM, then SIGKILL after a few seconds) and
// waits until it has exited.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.signal(c.member(i), syscall.SIGTERM, stopTimeout); err != nil {
		c.t.Fatalf("etcdtest: stop: %v", err)
	}
}

// Kill kills member i with SIGKILL, as a crash would, and waits until it
// has exited.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if err := c.signal(c.member(i), syscall.SIGKILL, stopTimeout); err != nil {
		c.t.Fatalf("etcdtest: kill: %v", err)
	}
}

// signal ends m's process with sig (SIGKILL too once timeout passes) and
// waits for its exit.
func (c *Cluster) signal(m *member, sig syscall.Signal, timeout time.Duration) error {
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s is not running", m.name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	c.t.Logf("etcdtest: %s did not exit within %s of %s: killing it", m.name, timeout, sig)
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	<-p.done
	return nil
}

// Start restarts member i, stopped or killed before, on its data directory
// and ports. When the members running with it make a quorum it waits until
// the member serves a linearizable read again; otherwise only until it
// listens (it cannot serve before a quorum is back).
func (c *Cluster) Start(i int) {
	c.t.Helper()
	m := c.member(i)
	if err := c.run(m, "existing"); err != nil {
		c.t.Fatalf("etcdtest: restart: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	running := 0
	for j := range c.members {
		if c.Running(j) {
			running++
		}
	}
	var err error
	if running > len(c.members)/2 {
		err = c.waitServing(ctx, i)
	} else {
		err = c.waitListening(ctx, i)
	}
	if err != nil {
		c.t.Fatalf("etcdtest: restart: %v", err)
	}
}

// WaitReady waits until every running member serves a linearizable read:
// after restarting members one by one into a quorum, for instance.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	for i := range c.members {
		if !c.Running(i) {
			continue
		}
		if err := c.waitServing(ctx, i); err != nil {
			c.t.Fatalf("etcdtest: %v", err)
		}
	}
}

// Leader returns the index of the member that is the Raft leader now, as
// the running members see it; it fails the test if none is within
// ReadyTimeout.
func (c *Cluster) Leader() int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	var last error
	for {
		i, err := c.leader(ctx)
		if err == nil {
			return i
		}
		last = err
		select {
		case <-ctx.Done():
			c.t.Fatalf("etcdtest: no leader within %s: %v", ReadyTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) leader(ctx context.Context) (int, error) {
	ids := map[uint64]int{}
	var leader uint64
	for i := range c.members {
		if !c.Running(i) {
			continue
		}
		cli, err := clientv3.New(c.Config(c.Endpoint(i)))
		if err != nil {
			return 0, err
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, c.Endpoint(i))
		cancel()
		cli.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: status: %w", c.members[i].name, err)
		}
		ids[st.Header.MemberId] = i
		if st.Leader == 0 {
			return 0, fmt.Errorf("%s knows no leader", c.members[i].name)
		}
		if leader != 0 && st.Leader != leader {
			return 0, errors.New("the members disagree on the leader")
		}
		leader = st.Leader
	}
	i, ok := ids[leader]
	if !ok {
		return 0, errors.New("the leader is not among the running members")
	}
	return i, nil
}

// Client returns a client of the given endpoints (every member's when
// none is given: members or proxies to them), closed when the test ends.
func (c *Cluster) Client(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cli, err := clientv3.New(c.Config(endpoints...))
	if err != nil {
		c.t.Fatalf("etcdtest: client of %v: %v", endpoints, err)
	}
	c.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Config is ClientConfig with the cluster's client certificate when it
// has TLS.
func (c *Cluster) Config(endpoints ...string) clientv3.Config {
	cfg := ClientConfig(endpoints...)
	if c.tls != nil {
		cfg.TLS = c.tls.Config()
	}
	return cfg
}

// NewClient returns a client of the given plain http:// endpoints, with
// ClientConfig, closed when the test ends.
func NewClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(ClientConfig(endpoints...))
	if err != nil {
		t.Fatalf("etcdtest: client of %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// ClientConfig is the configuration of the clients the package makes: no
// logs, and reconnection attempts at least every second. gRPC's default
// backoff grows to two minutes, so a client whose members were down for a
// while would otherwise stay away from them long after they are back.
func ClientConfig(endpoints ...string) clientv3.Config {
	return clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		})},
	}
}

// cleanup stops every member and, when the test failed, prints their logs.
func (c *Cluster) cleanup() {
	c.stopAll()
	if !c.t.Failed() {
		return
	}
	for _, m := range c.members {
		c.t.Logf("etcdtest: log of %s (%s):\n%s", m.name, m.logPath, tail(m.logPath))
	}
}

// stopAll stops the members one at a time. A leader told to stop hands
// its role to a follower it believes alive, and waits seconds for one that
// is stopping too; a follower that exited is seen gone within some tens of
// milliseconds, hence the pause before the next.
func (c *Cluster) stopAll() {
	stopped := false
	for _, m := range c.members {
		if m.running() == nil {
			continue
		}
		if stopped {
			time.Sleep(stopPause)
		}
		if err := c.signal(m, syscall.SIGTERM, cleanupTimeout); err != nil {
			c.t.Logf("etcdtest: %v", err)
		}
		stopped = true
	}
}

// portTaken reports whether a member failed because its port was in use.
func (c *Cluster) portTaken() bool {
	for _, m := range c.members {
		data, err := os.ReadFile(m.logPath)
		if err == nil && bytes.Contains(data, []byte("address already in use")) {
			return true
		}
	}
	return false
}

// tail returns the end of a log file.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > logTail {
		data = append([]byte("...\n"), data[len(data)-logTail:]...)
	}
	return string(data)
}

// freePorts reserves n distinct loopback ports and releases them for the
// caller to bind; another process may still take one in between.
func freePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]string, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a port: %w", err)
		}
		ls = append(ls, l)
		out[i] = l.Addr().String()
	}
	return out, nil
}
