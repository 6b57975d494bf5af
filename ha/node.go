// Package ha lets several quotawatch instances share one cloud: they elect
// a leader through etcd, only the leader acts, and the state a successor
// needs to go on where the leader stopped (the shared buckets of the
// store) is written to etcd by the leader in the same step as it decides,
// in transactions that hold only while its election key does.
//
// Keys under the configured prefix:
//
//	leader/<lease>            the election (concurrency.Election); value: Member
//	last-leader               the member that last took the lead
//	state/seq                 the store's id counters
//	state/<bucket>/<shard>    one packed shard of a shared bucket
//
// History never goes to etcd; the journal is shared for a recent window
// only (open and proposed entries always).
package ha

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/quotawatch/quotawatch/store"
)

// ErrNotLeader: this instance does not lead (or can no longer be sure it
// does), so it may not decide.
var ErrNotLeader = errors.New("not the leader")

// Member is one instance, as the others see it.
type Member struct {
	ID   string `json:"id"` // host/pid
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// URL is where its status page is, if it serves one.
	URL   string    `json:"url,omitempty"`
	Since time.Time `json:"since"`
}

func (m Member) String() string {
	if m.URL != "" {
		return m.ID + " (" + m.URL + ")"
	}
	return m.ID
}

// Store is what the node needs of the local store.
type Store interface {
	SharedState() (store.SharedState, error)
	ApplyShared(updates []store.SharedUpdate, seq store.Sequences) error
}

// Config configures a Node.
type Config struct {
	Endpoints []string
	TLS       *tls.Config // nil: plain http:// endpoints
	Prefix    string      // ends with "/"
	TTL       time.Duration
	Self      Member
	Logger    *slog.Logger
	// JournalWindow is how far back settled journal entries are shared;
	// nil or shorter than a week means a week.
	JournalWindow func() time.Duration
	// Clock is the real clock the lease is timed on; nil means time.Now.
	Clock func() time.Time
}

// Takeover is what Elected is told.
type Takeover struct {
	Self Member
	// Prev is the member that led before, if any ever did.
	Prev    Member
	HasPrev bool
	Term    int64
}

// Hooks are called from Run's goroutine.
type Hooks struct {
	// Elected runs once this instance won the election. It must call load,
	// which takes the shared state into the store; store writes are
	// refused until load returns, and shared from then on. The caller
	// quiesces its own writers around load, so that nothing decided before
	// the term is written in it. Leading stays false until Elected returns;
	// an error ends the term. Nil means load alone.
	Elected func(load func() (Takeover, error)) error
	// Leading runs once Leading reports true.
	Leading func()
	// Deposed runs when this instance stops leading.
	Deposed func(reason string)
}

// Status is what the node knows, for metrics and the status page.
type Status struct {
	Leading bool
	// Leader is the current leader as last observed.
	Leader      Member
	LeaderKnown bool
	Term        int64
	// Changes counts the leader changes observed.
	Changes uint64
}

// Node is one instance's part in the election.
type Node struct {
	cfg   Config
	cli   *clientv3.Client
	st    Store
	log   *slog.Logger
	clock func() time.Time
	pk    *packer

	mu          sync.Mutex
	lead        *leadership
	leader      Member
	leaderKnown bool
	leaderRev   int64
	changes     uint64

	wmu  sync.Mutex                     // serialises shared writes and view
	view map[string][]map[string][]byte // bucket -> shard -> entries, as in etcd
}

// leadership is one term of this node's.
type leadership struct {
	key     string
	rev     int64
	lease   clientv3.LeaseID
	until   time.Time // the fence: acting stops here unless renewed
	loaded  bool      // the shared state is in the store: writes may be shared
	ready   bool      // Elected has returned: the instance may act
	deposed chan struct{}
	once    sync.Once
	reason  string // why it was deposed, once it was
	fails   int    // shared writes failed in a row (not refused)
}

// depose ends the term; the first reason stays.
func (l *leadership) depose(reason string) {
	l.once.Do(func() {
		l.reason = reason
		close(l.deposed)
	})
}

// failsBeforeResign is how many shared writes in a row may fail (etcd
// slow, full or refusing the request) before the leader gives the lead
// up: a leader that can decide nothing should let another try.
const failsBeforeResign = 3

// New connects to etcd (lazily: it does not wait for a member to answer).
func New(cfg Config, st Store) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.TTL < 2*time.Second {
		return nil, fmt.Errorf("ha: lease TTL %s is below 2s", cfg.TTL)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		TLS:                  cfg.TLS,
		DialTimeout:          cfg.TTL / 3,
		DialKeepAliveTime:    cfg.TTL / 3,
		DialKeepAliveTimeout: cfg.TTL / 3,
		Logger:               zap.NewNop(),
		// gRPC's default reconnection backoff grows to two minutes: a
		// member back from an outage would be left alone that long.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: max(time.Second, cfg.TTL/5)},
			MinConnectTimeout: max(time.Second, cfg.TTL/5),
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("ha: etcd client: %w", err)
	}
	pk, err := newPacker()
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("ha: %w", err)
	}
	return &Node{cfg: cfg, cli: cli, st: st, log: cfg.Logger, clock: cfg.Clock, pk: pk}, nil
}

// Close disconnects from etcd.
func (n *Node) Close() error { return n.cli.Close() }

// Leading reports whether this instance may act now: it won the election,
// took in the shared state, and its lease is surely alive (renewed within
// two thirds of its TTL, so it stops acting before the lease can expire).
func (n *Node) Leading() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fenced() != nil && n.lead.ready
}

// fenced returns the term whose fence is open, or nil; n.mu is held.
func (n *Node) fenced() *leadership {
	l := n.lead
	if l == nil || !n.clock().Before(l.until) {
		return nil
	}
	select {
	case <-l.deposed:
		return nil
	default:
	}
	return l
}

// Status reports what the node knows.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Status{
		Leading:     n.fenced() != nil && n.lead.ready,
		Leader:      n.leader,
		LeaderKnown: n.leaderKnown,
		Term:        n.leaderRev,
		Changes:     n.changes,
	}
}

func (n *Node) ttlSeconds() int { return max(1, int(n.cfg.TTL/time.Second)) }

// Run takes part in the election until ctx ends: it follows (takes in
// what the leader shares) until it wins, then leads until it loses its
// lease or a shared write is refused, then campaigns again.
func (n *Node) Run(ctx context.Context, h Hooks) {
	for ctx.Err() == nil {
		err := n.term(ctx, h)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("etcd session ended; campaigning again", "err", err)
		t := time.NewTimer(max(time.Second, n.cfg.TTL/4))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// term is one lease: follow, campaign, lead.
func (n *Node) term(ctx context.Context, h Hooks) error {
	sess, err := concurrency.NewSession(n.cli, concurrency.WithTTL(n.ttlSeconds()), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("etcd lease: %w", err)
	}
	// Revoking the lease on the way out hands over at once on a clean
	// stop; it is bounded, since etcd may be what failed.
	defer func() {
		sess.Orphan()
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = n.cli.Revoke(rctx, sess.Lease())
	}()
	sctx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	// Stopped before the lease is revoked: whatever ends the term, its
	// goroutines end with it.
	defer func() {
		cancel()
		bg.Wait()
	}()
	bg.Go(func() {
		select {
		case <-sess.Done():
			cancel()
		case <-sctx.Done():
		}
	})
	pfx := n.cfg.Prefix + keyLeader
	bg.Go(func() { n.observe(sctx, concurrency.NewElection(sess, pfx)) })

	fctx, stopFollow := context.WithCancel(sctx)
	var fw sync.WaitGroup
	fw.Go(func() { n.follow(fctx) })
	self, err := json.Marshal(n.cfg.Self)
	if err != nil {
		stopFollow()
		fw.Wait()
		return err
	}
	el := concurrency.NewElection(sess, pfx)
	err = el.Campaign(sctx, string(self))
	stopFollow()
	fw.Wait()
	if err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	l := &leadership{key: el.Key(), rev: el.Rev(), lease: sess.Lease(), deposed: make(chan struct{})}
	// The lease may have run out while campaigning: renewing proves it
	// did not, and opens the fence.
	if err := n.renew(sctx, l); err != nil {
		return fmt.Errorf("renew the lease after winning: %w", err)
	}
	n.mu.Lock()
	n.lead = l
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.lead = nil
		n.mu.Unlock()
	}()
	// The lease is renewed from now on, however long taking the lead takes.
	held := make(chan string, 1)
	bg.Go(func() { held <- n.hold(sctx, l) })

	load := func() (Takeover, error) {
		tk, err := n.takeLead(sctx, l)
		if err == nil {
			n.log.Info("leading", "self", n.cfg.Self.ID, "term", l.rev, "previous", prevID(tk))
		}
		return tk, err
	}
	if h.Elected != nil {
		err = h.Elected(load)
	} else {
		_, err = load()
	}
	n.mu.Lock()
	if err == nil && !l.loaded {
		err = errors.New("the shared state was not loaded")
	}
	l.ready = err == nil
	n.mu.Unlock()
	if err != nil {
		l.depose("taking the lead failed")
		<-held
		return fmt.Errorf("take the lead: %w", err)
	}
	if h.Leading != nil {
		h.Leading()
	}
	reason := <-held
	n.mu.Lock()
	n.lead = nil
	n.mu.Unlock()
	n.log.Warn("no longer leading", "reason", reason)
	if h.Deposed != nil {
		h.Deposed(reason)
	}
	return errors.New(reason)
}

func prevID(t Takeover) string {
	if !t.HasPrev {
		return "none"
	}
	return t.Prev.ID
}

// renew sends one keepalive and moves the fence: the lease lives at least
// TTL from when the renewal was sent, and acting stops a third of it
// earlier.
func (n *Node) renew(ctx context.Context, l *leadership) error {
	sent := n.clock()
	rctx, cancel := context.WithTimeout(ctx, n.cfg.TTL/4)
	defer cancel()
	resp, err := n.cli.KeepAliveOnce(rctx, l.lease)
	if err != nil {
		return err
	}
	if resp.TTL <= 0 {
		l.depose("the lease expired")
		return errors.New("the lease expired")
	}
	n.mu.Lock()
	l.until = sent.Add(time.Duration(resp.TTL)*time.Second - n.cfg.TTL/3)
	n.mu.Unlock()
	return nil
}

// hold keeps the lead until it is lost; it returns why.
func (n *Node) hold(ctx context.Context, l *leadership) string {
	tick := time.NewTicker(n.cfg.TTL / 4)
	defer tick.Stop()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gone := n.cli.Watch(wctx, l.key, clientv3.WithRev(l.rev))
	failing := false
	for {
		select {
		case <-ctx.Done():
			return "stopping or the etcd session ended"
		case <-l.deposed:
			return l.reason
		case wr, ok := <-gone:
			if !ok {
				gone = n.cli.Watch(wctx, l.key, clientv3.WithRev(l.rev))
				continue
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					l.depose("the election key was deleted")
				}
			}
		case <-tick.C:
			err := n.renew(ctx, l)
			switch {
			case err != nil && !failing:
				failing = true
				n.log.Warn("renewing the etcd lease failed; acting stops when the fence closes", "err", err)
			case err == nil && failing:
				failing = false
				n.log.Info("renewing the etcd lease works again")
			}
		}
	}
}

// observe follows the election, for the status and the metrics.
func (n *Node) observe(ctx context.Context, el *concurrency.Election) {
	for resp := range el.Observe(ctx) {
		if len(resp.Kvs) == 0 {
			continue
		}
		kv := resp.Kvs[0]
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			n.log.Warn("the election holds a leader this version cannot read", "key", string(kv.Key), "err", err)
			continue
		}
		n.mu.Lock()
		if kv.CreateRevision != n.leaderRev {
			if n.leaderKnown {
				n.changes++
			}
			n.leaderRev = kv.CreateRevision
		}
		n.leader, n.leaderKnown = m, true
		n.mu.Unlock()
	}
}

// takeLead makes the store's shared state etcd's (or, when no leader ever
// shared one, etcd's the store's) and records this member as the last
// leader, guarded by the election key.
func (n *Node) takeLead(ctx context.Context, l *leadership) (Takeover, error) {
	tk := Takeover{Self: n.cfg.Self, Term: l.rev}
	resp, err := n.cli.Get(ctx, n.cfg.Prefix+keyState, clientv3.WithPrefix())
	if err != nil {
		return tk, err
	}
	last, err := n.cli.Get(ctx, n.cfg.Prefix+keyLastLeader)
	if err != nil {
		return tk, err
	}
	if len(last.Kvs) == 1 && json.Unmarshal(last.Kvs[0].Value, &tk.Prev) == nil {
		tk.HasPrev = true
	}
	// No lock is held while the store takes the state in: a store write
	// holds the store's lock and then asks Mirror, which refuses until
	// loaded is set below.
	view, seq, have, err := n.decode(resp.Kvs)
	if err != nil {
		return tk, err
	}
	var ops []clientv3.Op
	if have {
		if err := n.st.ApplyShared(fullUpdates(view), seq); err != nil {
			return tk, err
		}
	} else {
		// The first leader ever: what its store holds is the shared state.
		full, err := n.st.SharedState()
		if err != nil {
			return tk, err
		}
		view = map[string][]map[string][]byte{}
		for b, cnt := range shardCount {
			view[b] = make([]map[string][]byte, cnt)
			for i := range view[b] {
				view[b][i] = map[string][]byte{}
			}
			for k, v := range full.Buckets[b] {
				view[b][shardOf([]byte(k), cnt)][k] = v
			}
			for i := range view[b] {
				if b == store.JournalBucket {
					n.prune(view[b][i])
				}
				ops = append(ops, clientv3.OpPut(stateKey(n.cfg.Prefix, b, i), string(n.pk.pack(view[b][i]))))
			}
		}
		seqv, err := json.Marshal(full.Seq)
		if err != nil {
			return tk, err
		}
		ops = append(ops, clientv3.OpPut(n.cfg.Prefix+keySeq, string(seqv)))
	}
	self, err := json.Marshal(n.cfg.Self)
	if err != nil {
		return tk, err
	}
	ops = append(ops, clientv3.OpPut(n.cfg.Prefix+keyLastLeader, string(self)))
	if err := n.guarded(ctx, l, ops); err != nil {
		return tk, err
	}
	n.wmu.Lock()
	n.view = view
	n.wmu.Unlock()
	n.mu.Lock()
	l.loaded = true
	n.mu.Unlock()
	return tk, nil
}

// decode unpacks the state keys; have is false when no leader ever wrote
// them. A shard that cannot be read fails the whole: a successor must not
// act on part of the state.
func (n *Node) decode(kvs []*mvccpb.KeyValue) (map[string][]map[string][]byte, store.Sequences, bool, error) {
	view := map[string][]map[string][]byte{}
	for b, cnt := range shardCount {
		view[b] = make([]map[string][]byte, cnt)
		for i := range view[b] {
			view[b][i] = map[string][]byte{}
		}
	}
	var seq store.Sequences
	have := false
	for _, kv := range kvs {
		key := string(kv.Key)
		if key == n.cfg.Prefix+keySeq {
			if err := json.Unmarshal(kv.Value, &seq); err != nil {
				return nil, seq, false, fmt.Errorf("etcd key %s: %w", key, err)
			}
			have = true
			continue
		}
		b, i, ok := parseStateKey(n.cfg.Prefix, key)
		if !ok {
			continue
		}
		m, err := n.pk.unpack(kv.Value)
		if err != nil {
			return nil, seq, false, fmt.Errorf("etcd key %s: %w", key, err)
		}
		view[b][i] = m
	}
	return view, seq, have, nil
}

// fullUpdates makes every shared bucket exactly what view holds.
func fullUpdates(view map[string][]map[string][]byte) []store.SharedUpdate {
	var ups []store.SharedUpdate
	for _, b := range store.SharedBuckets() {
		all := map[string][]byte{}
		for _, m := range view[b] {
			maps.Copy(all, m)
		}
		ups = append(ups, store.SharedUpdate{Bucket: b, Entries: all})
	}
	return ups
}

// guarded commits ops if and only if this term's election key still
// stands; a refusal deposes the term.
func (n *Node) guarded(ctx context.Context, l *leadership, ops []clientv3.Op) error {
	n.mu.Lock()
	until := l.until
	n.mu.Unlock()
	tctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	resp, err := n.cli.Txn(tctx).If(clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if !resp.Succeeded {
		l.depose("a shared write was refused: another instance leads")
		return ErrNotLeader
	}
	return nil
}

// Mirror shares one store write: it is the store's Mirror while this node
// runs. Only the leader's writes go through; the store rolls back any
// other.
func (n *Node) Mirror(ops []store.Op, seq store.Sequences) error {
	n.mu.Lock()
	l := n.fenced()
	if l != nil && !l.loaded {
		l = nil // a write from before this term took the state in
	}
	n.mu.Unlock()
	if l == nil {
		return ErrNotLeader
	}
	n.wmu.Lock()
	defer n.wmu.Unlock()
	touched := map[string]map[int]map[string][]byte{}
	for _, op := range ops {
		cnt, ok := shardCount[op.Bucket]
		if !ok {
			continue
		}
		i := shardOf(op.Key, cnt)
		if touched[op.Bucket] == nil {
			touched[op.Bucket] = map[int]map[string][]byte{}
		}
		m, ok := touched[op.Bucket][i]
		if !ok {
			m = maps.Clone(n.view[op.Bucket][i])
			touched[op.Bucket][i] = m
		}
		if op.Value == nil {
			delete(m, string(op.Key))
		} else {
			m[string(op.Key)] = op.Value
		}
	}
	var txn []clientv3.Op
	for b, shards := range touched {
		for i, m := range shards {
			if b == store.JournalBucket {
				n.prune(m)
			}
			txn = append(txn, clientv3.OpPut(stateKey(n.cfg.Prefix, b, i), string(n.pk.pack(m))))
		}
	}
	seqv, err := json.Marshal(seq)
	if err != nil {
		return err
	}
	txn = append(txn, clientv3.OpPut(n.cfg.Prefix+keySeq, string(seqv)))
	if err := n.guarded(context.Background(), l, txn); err != nil {
		if !errors.Is(err, ErrNotLeader) {
			n.mu.Lock()
			l.fails++
			fails := l.fails
			n.mu.Unlock()
			if fails >= failsBeforeResign {
				l.depose(fmt.Sprintf("%d shared writes in a row failed; the lead is given up so another instance may try", fails))
			}
		}
		return err
	}
	n.mu.Lock()
	l.fails = 0
	n.mu.Unlock()
	for b, shards := range touched {
		for i, m := range shards {
			n.view[b][i] = m
		}
	}
	return nil
}

// prune drops settled journal entries older than the window from a shard.
func (n *Node) prune(m map[string][]byte) {
	window := 7 * 24 * time.Hour
	if n.cfg.JournalWindow != nil {
		window = max(window, n.cfg.JournalWindow())
	}
	cut := n.clock().Add(-window)
	for k, v := range m {
		var a struct {
			State   string    `json:"state"`
			Time    time.Time `json:"time"`
			Updated time.Time `json:"updated"`
		}
		if json.Unmarshal(v, &a) != nil {
			continue
		}
		switch a.State {
		case "intent", "unknown", "proposed":
			continue // open or waiting: always shared
		}
		if a.Time.Before(cut) && a.Updated.Before(cut) {
			delete(m, k)
		}
	}
}

// follow takes in what the leader shares, until ctx ends: the whole state
// once, then each change as etcd tells it.
func (n *Node) follow(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.Warn("following the shared state failed; reading it whole again", "err", err)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (n *Node) followOnce(ctx context.Context) error {
	resp, err := n.cli.Get(ctx, n.cfg.Prefix+keyState, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	view, seq, have, err := n.decode(resp.Kvs)
	if err != nil {
		return err
	}
	if have {
		if err := n.st.ApplyShared(fullUpdates(view), seq); err != nil {
			return err
		}
	}
	wch := n.cli.Watch(ctx, n.cfg.Prefix+keyState, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		var ups []store.SharedUpdate
		var seq store.Sequences
		for _, ev := range wr.Events {
			key := string(ev.Kv.Key)
			if key == n.cfg.Prefix+keySeq {
				if ev.Type == clientv3.EventTypePut {
					if err := json.Unmarshal(ev.Kv.Value, &seq); err != nil {
						return fmt.Errorf("etcd key %s: %w", key, err)
					}
				}
				continue
			}
			b, i, ok := parseStateKey(n.cfg.Prefix, key)
			if !ok {
				continue
			}
			m := map[string][]byte{}
			if ev.Type == clientv3.EventTypePut {
				if m, err = n.pk.unpack(ev.Kv.Value); err != nil {
					return fmt.Errorf("etcd key %s: %w", key, err)
				}
			}
			cnt := shardCount[b]
			ups = append(ups, store.SharedUpdate{Bucket: b, Entries: m,
				Scope: func(k []byte) bool { return shardOf(k, cnt) == i }})
		}
		if len(ups) > 0 || seq != (store.Sequences{}) {
			if err := n.st.ApplyShared(ups, seq); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}
