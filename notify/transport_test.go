package notify

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scripted answers chosen requests (counted from 1) itself and passes the
// others to the real transport, so a test can fail the second message of a
// batch or the reply after a parent update.
type scripted struct {
	mu      sync.Mutex
	n       int
	answers map[int]scriptedAnswer
}

type scriptedAnswer struct {
	status int
	body   string
}

func (s *scripted) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.n++
	a, ok := s.answers[s.n]
	s.mu.Unlock()
	if !ok {
		return http.DefaultTransport.RoundTrip(r)
	}
	if r.Body != nil {
		_ = r.Body.Close()
	}
	ct := "text/plain"
	if strings.HasPrefix(a.body, "{") {
		ct = "application/json"
	}
	return &http.Response{
		StatusCode: a.status, Status: http.StatusText(a.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(strings.NewReader(a.body)), Request: r,
	}, nil
}

// refusedURL returns a base URL on which nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	return u
}

// hangingURL returns a base URL whose server never answers until the test
// ends.
func hangingURL(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

// shortTimeout is the client timeout of the tests that hit hangingURL; it
// only bounds how long they wait, nothing asserts on it.
const shortTimeout = 200 * time.Millisecond

// ctxWithin returns a context that ends after d.
func ctxWithin(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
