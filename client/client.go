package client

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/internal/backoff"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultAttempts  = 3
	DefaultBase      = 200 * time.Millisecond
	DefaultMax       = 5 * time.Second
	DefaultPageLimit = 10000 // PITHOS_API_LIST_LIMIT
)

// DefaultMaxResponseBytes is the response size cap when none is set.
const DefaultMaxResponseBytes = 512 << 20

// Service types of the catalog that the client calls (docs/synnefo-wire.md#service-catalog).
const (
	ServiceIdentity    = "identity"
	ServiceAccount     = "account"
	ServiceObjectStore = "object-store"
	ServiceCompute     = "compute"
	ServiceNetwork     = "network"
	ServiceVolume      = "volume"
)

// maxErrorBody bounds how much of an error body is read; cloudFaults are
// small, and an HTML error page needs no more to be recognised.
const maxErrorBody = 64 << 10

// redacted replaces the token wherever it could otherwise surface.
const redacted = "[REDACTED]"

// Retry configures retries of idempotent requests (GET and HEAD).
type Retry struct {
	// Attempts is the total number of tries, the first included; 1 disables
	// retries. Zero means DefaultAttempts.
	Attempts int
	// Base is the backoff ceiling before the second try; it doubles per try
	// up to Max. The actual wait is uniform in [0, ceiling] (full jitter).
	Base time.Duration
	Max  time.Duration
}

// Config configures a Client.
type Config struct {
	// AuthURL is the identity endpoint, e.g.
	// https://accounts.example.org/identity/v2.0.
	AuthURL string
	// Token is the API token (or, with Service, the component token). It is
	// a secret: never part of an error, a log line or String().
	Token string `json:"-"`
	// TokenSource, if set, is called after a 401 to read the token again
	// (e.g. from the file an operator renews it in). When it returns a
	// token other than the refused one, the client re-authenticates with it
	// and retries the refused call once; it is never called twice for one
	// call. Its token is as secret as Token.
	TokenSource func() (string, error) `json:"-"`
	// Service marks Token as a component (service) token: the client reads
	// the public catalog and calls only service endpoints.
	Service bool
	// Component names the component a service token belongs to (astakos,
	// cyclades or pithos); it reads only that component's resources. Used
	// in messages only.
	Component string
	// HTTPClient is used for every request; nil: a client of our own with
	// Timeout. Redirects are refused unless its CheckRedirect says otherwise,
	// so the token is never forwarded to another host.
	HTTPClient *http.Client `json:"-"`
	// Timeout bounds each request attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// RequestsPerSecond is the token-bucket rate covering every request
	// (authentication, polling and acting alike); 0 means unlimited.
	RequestsPerSecond float64
	// Burst is the bucket size; zero means max(1, ceil(RequestsPerSecond)).
	Burst int
	// Limiter, if set, is the token bucket to use instead of one built from
	// RequestsPerSecond and Burst, so that several clients (accounts) can
	// share one budget.
	Limiter *rate.Limiter `json:"-"`
	// Retry configures retries of GET and HEAD requests.
	Retry Retry
	// PageLimit is the Pithos listing page size; zero means DefaultPageLimit.
	PageLimit int
	// MaxResponseBytes caps every response body; zero means
	// DefaultMaxResponseBytes. A larger body fails the call.
	MaxResponseBytes int64
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger `json:"-"`
	// Observe, if set, is called after every attempt with the catalog
	// service type, the method, the HTTP status (0 for a transport error)
	// and the time to the response headers.
	Observe func(service, method string, status int, d time.Duration) `json:"-"`
	// Now is the clock; nil means time.Now.
	Now func() time.Time `json:"-"`
	// Rand returns a uniform int64 in [0, n) for backoff jitter; nil means
	// math/rand/v2. Tests inject a deterministic one.
	Rand func(n int64) int64 `json:"-"`
}

// String describes the configuration without its secrets.
func (cfg Config) String() string {
	tok := "unset"
	if cfg.Token != "" {
		tok = redacted
	}
	return fmt.Sprintf("client.Config{AuthURL: %s, Token: %s, Service: %t, Component: %q, TokenSource: %t, Timeout: %s, RequestsPerSecond: %g, Burst: %d, Retry: %+v, PageLimit: %d}",
		redactURL(cfg.AuthURL), tok, cfg.Service, cfg.Component, cfg.TokenSource != nil, cfg.Timeout, cfg.RequestsPerSecond, cfg.Burst, cfg.Retry, cfg.PageLimit)
}

// GoString is String, so that %#v cannot print the token either.
func (cfg Config) GoString() string { return cfg.String() }

// Format prints String for every verb, so no verb reaches the token field.
func (cfg Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, cfg.String()) }

// Client talks to one Synnefo cloud with one token. It is safe for
// concurrent use.
type Client struct {
	authURL string // without a trailing slash
	// tokMu guards token and retired: a renewal replaces the token, and
	// every token ever held stays scrubbed from errors.
	tokMu       sync.RWMutex
	token       string
	retired     []string
	tokenSource func() (string, error)
	service     bool
	component   string
	http        *http.Client
	timeout     time.Duration
	limiter     *rate.Limiter
	maxBody     int64
	// entriesHint is the number of quota entries of the last poll.
	entriesHint atomic.Int64
	retry       Retry
	pageLimit   int
	log         *slog.Logger
	observe     func(service, method string, status int, d time.Duration)
	now         func() time.Time
	rand        func(n int64) int64

	// authSem serialises authentication and token renewal (a one-slot
	// semaphore, so waiting callers still honour their context); sess is
	// guarded by it.
	authSem chan struct{}
	sess    *session
}

// session is what one authentication learnt; a renewed token starts a new one.
type session struct {
	ident *Identity
	bases map[string]*url.URL
	// refused says why a catalog service was left out (its scheme differs
	// from auth_url's), for the calls that would have used it.
	refused map[string]string
	// resumed: learnt from an earlier process's token request, not asked
	// for by this client (see Resume).
	resumed bool
}

// New checks cfg, applies its defaults and returns a Client. It makes no
// request: authentication happens on first use.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.AuthURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: auth URL %q must be an absolute http(s) URL", redactURL(cfg.AuthURL))
	}
	if cfg.Token == "" {
		return nil, errors.New("client: token is empty")
	}
	if cfg.Timeout < 0 || cfg.RequestsPerSecond < 0 || cfg.Burst < 0 || cfg.PageLimit < 0 ||
		cfg.Retry.Attempts < 0 || cfg.Retry.Base < 0 || cfg.Retry.Max < 0 {
		return nil, errors.New("client: negative timeout, rate, burst, page limit or retry setting")
	}
	switch cfg.Component {
	case "", "astakos", "cyclades", "pithos":
	default:
		return nil, fmt.Errorf("client: unknown component %q (astakos, cyclades or pithos)", cfg.Component)
	}
	if math.IsNaN(cfg.RequestsPerSecond) || math.IsInf(cfg.RequestsPerSecond, 0) {
		return nil, errors.New("client: requests per second must be finite")
	}
	c := &Client{
		authURL:     strings.TrimRight(cfg.AuthURL, "/"),
		token:       cfg.Token,
		tokenSource: cfg.TokenSource,
		service:     cfg.Service,
		component:   cfg.Component,
		timeout:     cmp.Or(cfg.Timeout, DefaultTimeout),
		retry:       cfg.Retry,
		pageLimit:   cfg.PageLimit,
		log:         cfg.Logger,
		observe:     cfg.Observe,
		now:         cfg.Now,
		rand:        cfg.Rand,
		authSem:     make(chan struct{}, 1),
	}
	c.retry.Attempts = cmp.Or(c.retry.Attempts, DefaultAttempts)
	c.retry.Base = cmp.Or(c.retry.Base, DefaultBase)
	c.retry.Max = max(cmp.Or(c.retry.Max, DefaultMax), c.retry.Base)
	c.pageLimit = cmp.Or(c.pageLimit, DefaultPageLimit)
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Int64N
	}
	if c.maxBody = cfg.MaxResponseBytes; c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	switch {
	case cfg.Limiter != nil:
		c.limiter = cfg.Limiter
	case cfg.RequestsPerSecond == 0:
		c.limiter = rate.NewLimiter(rate.Inf, 1)
	default:
		burst := cfg.Burst
		if burst == 0 {
			burst = max(1, int(math.Ceil(cfg.RequestsPerSecond)))
		}
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), burst)
	}
	if cfg.HTTPClient != nil {
		hc := *cfg.HTTPClient
		if hc.CheckRedirect == nil {
			hc.CheckRedirect = noRedirect
		}
		c.http = &hc
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		c.http = &http.Client{Transport: tr, Timeout: c.timeout, CheckRedirect: noRedirect}
	}
	return c, nil
}

// String describes the client without its token.
func (c *Client) String() string {
	if c.component != "" {
		return fmt.Sprintf("client.Client{AuthURL: %s, Service: %t, Component: %s}", redactURL(c.authURL), c.service, c.component)
	}
	return fmt.Sprintf("client.Client{AuthURL: %s, Service: %t}", redactURL(c.authURL), c.service)
}

// GoString is String, so that %#v cannot print the token either.
func (c *Client) GoString() string { return c.String() }

// Format prints String for every verb, so no verb reaches the token field.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// noRedirect returns a redirect as the response: following it would send
// the X-Auth-Token header to wherever the redirect points.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redactURL drops user info from a URL meant for display.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<invalid URL>"
	}
	return u.Redacted()
}

// request is one call to the cloud.
type request struct {
	service string // catalog type, for Observe and logs
	method  string
	url     *url.URL
	header  http.Header
	body    []byte // JSON body; nil sends none
	noToken bool   // the token request carries its token in the body
}

// do sends rq, retrying idempotent requests, and hands a 2xx response to
// handle (nil: the body is discarded). Any other status becomes an *Error.
// On a 401 it renews the token through TokenSource and, when that gives a
// new one, re-authenticates and sends rq once more. Every error it returns
// is scrubbed of the token.
func (c *Client) do(ctx context.Context, rq *request, handle func(*http.Response) error) error {
	used := c.currentToken()
	err := c.send(ctx, rq, handle)
	if err != nil && !rq.noToken && IsUnauthorized(err) && c.dropResumed(ctx) {
		// The resumed session may be what is stale: ask the identity
		// service, then try once more.
		c.log.LogAttrs(ctx, slog.LevelInfo, "synnefo token refused with a resumed session; authenticating",
			slog.String("method", rq.method), slog.String("path", rq.url.EscapedPath()))
		if _, serr := c.session(ctx); serr != nil {
			return serr
		}
		used = c.currentToken()
		err = c.send(ctx, rq, handle)
	}
	if err == nil || rq.noToken || c.tokenSource == nil || !IsUnauthorized(err) {
		return err
	}
	renewed, rerr := c.renew(ctx, used)
	if rerr != nil {
		return &scrubbedError{msg: c.scrub(fmt.Sprintf("%v (%v)", err, rerr)), err: err}
	}
	if !renewed {
		return err
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "synnefo token refused; retrying once with the token read again",
		slog.String("method", rq.method), slog.String("path", rq.url.EscapedPath()))
	if _, err := c.session(ctx); err != nil {
		return err
	}
	return c.send(ctx, rq, handle)
}

// currentToken is the token calls send now.
func (c *Client) currentToken() string {
	c.tokMu.RLock()
	defer c.tokMu.RUnlock()
	return c.token
}

// renew reads the token again after used was refused. It reports whether
// calls now have another token, which a concurrent call may have brought.
func (c *Client) renew(ctx context.Context, used string) (bool, error) {
	select {
	case c.authSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.authSem }()
	return c.renewLocked(used)
}

// renewLocked is renew for a caller that holds authSem. A new token drops
// the session, so the next call authenticates with it.
func (c *Client) renewLocked(used string) (bool, error) {
	if c.currentToken() != used {
		return true, nil
	}
	t, err := c.tokenSource()
	if err != nil {
		return false, c.scrubErr(fmt.Errorf("re-reading the token: %w", err))
	}
	t = strings.TrimSpace(t)
	if t == "" || t == used {
		return false, nil
	}
	c.tokMu.Lock()
	c.retired = append(c.retired, c.token)
	c.token = t
	c.tokMu.Unlock()
	c.sess = nil
	return true, nil
}

// send is one call: rq with its retries.
func (c *Client) send(ctx context.Context, rq *request, handle func(*http.Response) error) error {
	attempts := 1
	if rq.method == http.MethodGet || rq.method == http.MethodHead {
		attempts = c.retry.Attempts
	}
	path := rq.url.EscapedPath()
	for attempt := 1; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return c.scrubErr(fmt.Errorf("%s %s: waiting for the rate limiter: %w", rq.method, path, err))
		}
		retryable, err := c.attempt(ctx, rq, path, attempt, handle)
		if err == nil {
			return nil
		}
		if !retryable || attempt >= attempts || ctx.Err() != nil {
			return err
		}
		wait := c.backoff(attempt)
		c.log.LogAttrs(ctx, slog.LevelDebug, "synnefo request retry",
			slog.String("method", rq.method), slog.String("path", path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("err", err.Error()))
		if werr := backoff.Sleep(ctx, wait); werr != nil {
			return fmt.Errorf("%s %s: %w (last attempt: %w)", rq.method, path, werr, err)
		}
	}
}

// attempt makes one try. It reports whether a failure is worth retrying
// (for idempotent requests): 5xx, timeouts and connection errors.
func (c *Client) attempt(ctx context.Context, rq *request, path string, n int, handle func(*http.Response) error) (retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body) // sets a real Content-Length: never chunked
	}
	req, err := http.NewRequestWithContext(actx, rq.method, rq.url.String(), body)
	if err != nil {
		return false, c.scrubErr(fmt.Errorf("%s %s: building request: %w", rq.method, path, err))
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !rq.noToken {
		req.Header.Set("X-Auth-Token", c.currentToken())
	}
	start := c.now()
	resp, err := c.http.Do(req)
	d := c.now().Sub(start)
	if err != nil {
		c.record(ctx, rq, path, n, 0, d)
		// A parent context that ended is the caller's decision, not a fault.
		return ctx.Err() == nil, c.transportErr(rq.method, path, err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
	}()
	c.record(ctx, rq, path, n, resp.StatusCode, d)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode >= 500, c.parseError(resp, rq.method, path)
	}
	if handle == nil {
		return false, nil
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: c.maxBody}
	if err := handle(resp); err != nil {
		// A body cut short by the attempt's own timeout is a timeout too.
		return actx.Err() != nil && ctx.Err() == nil, c.scrubErr(fmt.Errorf("%s %s: %w", rq.method, path, err))
	}
	return false, nil
}

// cappedBody fails a read past the response size cap, so a runaway body
// cannot hold the poll or the memory hostage.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the cap from a longer one.
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n == 0 {
			return 0, io.EOF
		}
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// errBodyTooLarge is returned by a read past the response size cap.
var errBodyTooLarge = errors.New("response body larger than the cap (cloud.max_response_bytes)")

func (c *Client) record(ctx context.Context, rq *request, path string, attempt, status int, d time.Duration) {
	if c.observe != nil {
		c.observe(rq.service, rq.method, status, d)
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "synnefo request",
		slog.String("service", rq.service), slog.String("method", rq.method), slog.String("path", path),
		slog.Int("status", status), slog.Duration("duration", d), slog.Int("attempt", attempt))
}

// backoff is the wait after the given failed attempt: uniform in
// [0, min(Max, Base*2^(attempt-1))].
func (c *Client) backoff(attempt int) time.Duration {
	return backoff.FullJitter(backoff.Exp(c.retry.Base, c.retry.Max, attempt-1), c.rand)
}

// scrub removes every token the client has held from a text.
func (c *Client) scrub(s string) string {
	c.tokMu.RLock()
	defer c.tokMu.RUnlock()
	if c.token != "" {
		s = strings.ReplaceAll(s, c.token, redacted)
	}
	for _, t := range c.retired {
		if t != "" {
			s = strings.ReplaceAll(s, t, redacted)
		}
	}
	return s
}

// scrubErr keeps err's chain for errors.Is/As but scrubs its text.
func (c *Client) scrubErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if s := c.scrub(msg); s != msg {
		return &scrubbedError{msg: s, err: err}
	}
	return err
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// transportErr replaces a *url.Error (whose text carries the full URL) by
// the method and path, keeping the cause for errors.Is (timeouts,
// context.Canceled, net errors).
func (c *Client) transportErr(method, path string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &scrubbedError{msg: c.scrub(fmt.Sprintf("%s %s: %v", method, path, err)), err: err}
}
