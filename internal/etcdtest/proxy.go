package etcdtest

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections from a loopback port to a target, and can
// partition them: Block stops every byte in both directions without
// closing anything, so a client sees timeouts as across a real network
// partition, not resets; Unblock heals it.
type Proxy struct {
	t      testing.TB
	target string
	scheme string // of the target's URL, for Endpoint
	ln     net.Listener

	mu      sync.Mutex
	open    chan struct{} // closed while bytes may pass
	blocked bool
	closed  bool
	conns   map[net.Conn]struct{}
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// proxyDialTimeout bounds the proxy's dial of its target.
const proxyDialTimeout = 2 * time.Second

// NewProxy starts a proxy to target (host:port, or an http:// or https://
// URL such as an Endpoint) on a free loopback port; t.Cleanup closes it.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	scheme := "http://"
	if strings.HasPrefix(target, "https://") {
		scheme = "https://"
	}
	target = strings.TrimPrefix(strings.TrimPrefix(target, "http://"), "https://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: proxy listen: %v", err)
	}
	p := &Proxy{
		t: t, target: target, scheme: scheme, ln: ln,
		open:  make(chan struct{}),
		conns: map[net.Conn]struct{}{},
		done:  make(chan struct{}),
	}
	close(p.open)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Endpoint is the proxy's address as an etcd endpoint, with the target's
// scheme (http://host:port when it had none).
func (p *Proxy) Endpoint() string { return p.scheme + p.Addr() }

// Block partitions the proxy: bytes of existing connections stop passing
// either way (held, not dropped), and new connections are accepted but not
// forwarded.
func (p *Proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.blocked {
		p.blocked = true
		p.open = make(chan struct{})
	}
}

// Unblock heals the partition: new connections are forwarded again, and
// held ones carry on with the bytes they held, as TCP does once a
// partition heals (a client that gave up has closed them by then).
func (p *Proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked {
		p.blocked = false
		close(p.open)
	}
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// wait returns once bytes may pass, false if the proxy closed first.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	select {
	case <-open:
		return true
	case <-p.done:
		return false
	}
}

// track records c so that Close closes it; false when already closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Logf("etcdtest: proxy accept: %v", err)
			}
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve forwards one connection, dialling the target only once bytes may
// pass.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	if !p.wait() {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, proxyDialTimeout)
	if err != nil {
		// As a refused connection would be: the client sees it closed.
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(up, c) })
	wg.Go(func() { p.pipe(c, up) })
	wg.Wait()
}

// pipe copies src to dst, holding each chunk while the proxy is blocked;
// either side ending closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			// Read may have waited across a Block: check again before
			// anything passes.
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
