package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/client"
)

// flaky answers with the given statuses in turn (0 drops the connection,
// -1 hangs until the request is cancelled), then with ok.
func flaky(f *fake, ok http.HandlerFunc, statuses ...int) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(statuses) {
			ok(w, r)
			return
		}
		switch s := statuses[i]; s {
		case 0:
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(f.t, err)
			_ = conn.Close()
		case -1:
			<-r.Context().Done()
		default:
			f.json(s, `{"serviceUnavailable": {"code": 503, "message": "try later", "details": ""}}`)(w, r)
		}
	}
}

type observed struct {
	service, method string
	status          int
}

func TestRetry(t *testing.T) {
	quotas := `{"p": {"cyclades.vm": {"limit": 1, "usage": 0, "pending": 0, "project_limit": 1, "project_usage": 0, "project_pending": 0}}}`
	tests := []struct {
		name     string
		post     bool
		statuses []int
		timeout  time.Duration
		ok       bool
		tries    int
		observed []int
	}{
		{name: "5xx then success", statuses: []int{503, 500}, ok: true, tries: 3, observed: []int{503, 500, 200}},
		{name: "5xx until attempts run out", statuses: []int{503, 502, 503, 503}, tries: 3, observed: []int{503, 502, 503}},
		{name: "4xx is not retried", statuses: []int{404}, tries: 1, observed: []int{404}},
		{name: "connection error then success", statuses: []int{0}, ok: true, tries: 2, observed: []int{0, 200}},
		{name: "timeout then success", statuses: []int{-1}, timeout: 200 * time.Millisecond, ok: true, tries: 2, observed: []int{0, 200}},
		{name: "POST 5xx is not retried", post: true, statuses: []int{503}, tries: 1, observed: []int{503}},
		{name: "POST connection error is not retried", post: true, statuses: []int{0}, tries: 1, observed: []int{0}},
		{name: "POST timeout is not retried", post: true, statuses: []int{-1}, timeout: 200 * time.Millisecond, tries: 1, observed: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			key := "GET /account/v1.0/quotas"
			if tt.post {
				key = "POST /compute/v2.0/servers/4242/action"
			}
			f.route(key, flaky(f, f.json(200, quotas), tt.statuses...))
			var mu sync.Mutex
			var obs []observed
			cfg := f.config(nil)
			cfg.Timeout = tt.timeout
			// A fresh connection per request, so that the transport's own
			// retry of a dropped idle connection stays out of the picture.
			cfg.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			cfg.Observe = func(service, method string, status int, _ time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				obs = append(obs, observed{service, method, status})
			}
			c, err := client.New(cfg)
			require.NoError(t, err)
			if tt.post {
				err = c.ReassignServer(context.Background(), 4242, "p", false)
			} else {
				_, err = c.Quotas(context.Background())
			}
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
			require.Len(t, f.requests(), 1+tt.tries)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, observed{"identity", "POST", 200}, obs[0])
			var statuses []int
			for _, o := range obs[1:] {
				statuses = append(statuses, o.status)
				if tt.post {
					require.Equal(t, observed{"compute", "POST", o.status}, o)
				} else {
					require.Equal(t, observed{"account", "GET", o.status}, o)
				}
			}
			require.Equal(t, tt.observed, statuses)
		})
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	f := newFake(t)
	f.route("GET /account/v1.0/quotas", f.json(503, ""))
	cfg := f.config(nil)
	cfg.Retry = client.Retry{Attempts: 5, Base: time.Hour, Max: time.Hour}
	waiting := make(chan struct{}, 1)
	cfg.Rand = func(n int64) int64 {
		waiting <- struct{}{}
		return n - 1 // the full hour
	}
	c, err := client.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-waiting
		cancel()
	}()
	_, err = c.Quotas(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, f.requests(), 2, "token and one attempt; the hour-long wait was cut short")
}

func TestCancelledContextSendsNothing(t *testing.T) {
	f := newFake(t)
	c := f.client(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Quotas(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, f.requests())
}

func TestRateLimitCoversEveryCall(t *testing.T) {
	f := newFake(t)
	cfg := f.config(nil)
	cfg.RequestsPerSecond = 1e-6 // no refill within the test
	cfg.Burst = 4
	c, err := client.New(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Authenticate(ctx) // 1: the token request counts
	require.NoError(t, err)
	_, err = c.Quotas(ctx) // 2
	require.NoError(t, err)
	_, err = c.Servers(ctx) // 3
	require.NoError(t, err)
	require.NoError(t, c.ReassignServer(ctx, 4242, "p-lab", false)) // 4: actions share the budget

	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	_, err = c.Networks(ctx)
	require.Error(t, err, "the bucket is empty and would not refill before the deadline")
	require.ErrorContains(t, err, "rate limiter")
	require.Len(t, f.requests(), 4)
}

func TestTimeoutErrorIsATimeout(t *testing.T) {
	f := newFake(t)
	f.route("GET /account/v1.0/quotas", flaky(f, nil, -1, -1, -1))
	cfg := f.config(nil)
	cfg.Timeout = 100 * time.Millisecond
	cfg.Retry.Attempts = 2
	c, err := client.New(cfg)
	require.NoError(t, err)
	_, err = c.Quotas(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var te interface{ Timeout() bool }
	if errors.As(err, &te) {
		require.True(t, te.Timeout())
	}
	require.Len(t, f.requests(), 3)
}

func TestSharedLimiter(t *testing.T) {
	f := newFake(t)
	shared := rate.NewLimiter(rate.Limit(1e-6), 3)
	var cs []*client.Client
	for range 2 {
		cfg := f.config(nil)
		cfg.Limiter = shared
		cfg.RequestsPerSecond = 1000 // ignored: the shared bucket wins
		c, err := client.New(cfg)
		require.NoError(t, err)
		cs = append(cs, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := cs[0].Quotas(ctx) // token + quotas
	require.NoError(t, err)
	_, err = cs[1].Authenticate(ctx) // the third and last token of the bucket
	require.NoError(t, err)
	_, err = cs[1].Quotas(ctx)
	require.ErrorContains(t, err, "rate limiter")
	require.Len(t, f.requests(), 3)
}
