package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
)

// requireNoSecret checks an error, every error in its chain, and the log.
func requireNoSecret(t *testing.T, err error, log string) {
	t.Helper()
	require.Error(t, err)
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), log} {
		require.NotContains(t, s, secret)
	}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		require.NotContains(t, e.Error(), secret, "%T in the chain", e)
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	// The fields callers may print on their own, where not even half of
	// the token may survive a truncation.
	var e *client.Error
	if errors.As(err, &e) {
		for _, s := range []string{e.Message, e.Details, e.Path} {
			require.NotContains(t, s, secret[:len(secret)/2])
		}
	}
}

// echo answers with the token inside the body, as a careless server might.
func echo(status int, contentType, format string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, format, secret)
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(f *fake, cfg *client.Config)
		call  func(ctx context.Context, c *client.Client) error
	}{
		{
			name: "auth refused, token echoed",
			setup: func(f *fake, _ *client.Config) {
				f.route("POST /identity/v2.0/tokens", echo(401, "application/json", `{"unauthorized": {"code": 401, "message": "Invalid token %s", "details": ""}}`))
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Authenticate(ctx); return err },
		},
		{
			name: "auth without user",
			setup: func(f *fake, _ *client.Config) {
				f.route("POST /identity/v2.0/tokens", echo(200, "application/json", `{"access": {"token": {"id": "%s"}, "serviceCatalog": []}}`))
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Quotas(ctx); return err },
		},
		{
			name: "auth answer is not JSON",
			setup: func(f *fake, _ *client.Config) {
				f.route("POST /identity/v2.0/tokens", echo(200, "application/json", `{"access": "%s`))
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Quotas(ctx); return err },
		},
		{
			name: "auth connection refused",
			setup: func(f *fake, cfg *client.Config) {
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close()
				cfg.AuthURL = srv.URL + "/identity/v2.0"
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Quotas(ctx); return err },
		},
		{
			name: "fault echoing the token in message and details",
			setup: func(f *fake, _ *client.Config) {
				f.route("GET /account/v1.0/quotas", func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(401)
					_, _ = fmt.Fprintf(w, `{"fault": {"code": 401, "message": "bad %s", "details": "{\"unauthorized\": {\"message\": \"%s\"}}"}}`, secret, secret)
				})
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Quotas(ctx); return err },
		},
		{
			name: "plain-text 502 echoing the token, retried",
			setup: func(f *fake, _ *client.Config) {
				f.route("GET /compute/v2.0/servers/detail", echo(502, "text/plain", "proxy saw X-Auth-Token: %s"))
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Servers(ctx); return err },
		},
		{
			name: "token straddling the point where details are cut",
			setup: func(f *fake, _ *client.Config) {
				f.route("GET /compute/v2.0/flavors/detail", echo(400, "text/plain", strings.Repeat("x", 500)+"%s"))
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Flavors(ctx); return err },
		},
		{
			name: "HTML 500 of a volume action",
			setup: func(f *fake, _ *client.Config) {
				f.route("POST /volume/v2.0/volumes/80/action", echo(500, "text/html", "<pre>token=%s</pre>"))
			},
			call: func(ctx context.Context, c *client.Client) error { return c.ReassignVolume(ctx, "80", "p", false) },
		},
		{
			name: "413 on a container reassign",
			setup: func(f *fake, _ *client.Config) {
				f.route("POST /object-store/v1/u-alice/course container", echo(413, "application/json", `{"fault": {"code": 413, "message": "%s", "details": ""}}`))
			},
			call: func(ctx context.Context, c *client.Client) error {
				return c.Reassign(ctx, quota.Item{Kind: quota.KindContainer, ID: "course container"}, "p")
			},
		},
		{
			name: "HEAD 404",
			setup: func(f *fake, _ *client.Config) {
				f.route("HEAD /object-store/v1/u-alice/gone", f.json(404, ""))
			},
			call: func(ctx context.Context, c *client.Client) error {
				_, err := c.Item(ctx, quota.KindContainer, "gone")
				return err
			},
		},
		{
			name: "connection dropped",
			setup: func(f *fake, cfg *client.Config) {
				f.route("GET /network/v2.0/networks", flaky(f, nil, 0, 0, 0))
				cfg.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Networks(ctx); return err },
		},
		{
			name: "timeout",
			setup: func(f *fake, cfg *client.Config) {
				f.route("GET /volume/v2.0/volumes/detail", flaky(f, nil, -1, -1))
				cfg.Timeout = 50 * time.Millisecond
				cfg.Retry.Attempts = 2
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Volumes(ctx); return err },
		},
		{
			name: "body is not JSON",
			setup: func(f *fake, _ *client.Config) {
				f.route("GET /network/v2.0/floatingips", echo(200, "application/json", `{"floatingips": [%q`))
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.FloatingIPs(ctx); return err },
		},
		{
			name: "body of the wrong shape",
			setup: func(f *fake, _ *client.Config) {
				f.route("GET /account/v1.0/quotas", echo(200, "application/json", `{"p": {"r": {"usage": "%s"}}}`))
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Quotas(ctx); return err },
		},
		{
			name: "redirect elsewhere is not followed",
			setup: func(f *fake, _ *client.Config) {
				other := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, _ *http.Request) {
					f.t.Error("the redirect was followed with the token")
				}))
				f.t.Cleanup(other.Close)
				f.route("GET /account/v1.0/projects", func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other.URL+"/steal?t="+secret, http.StatusFound)
				})
			},
			call: func(ctx context.Context, c *client.Client) error {
				_, err := c.Projects(ctx, client.ProjectFilter{})
				return err
			},
		},
		{
			name: "rate limiter refuses",
			setup: func(_ *fake, cfg *client.Config) {
				cfg.RequestsPerSecond = 1e-6
				cfg.Burst = 1
			},
			call: func(ctx context.Context, c *client.Client) error {
				ctx, cancel := context.WithTimeout(ctx, time.Hour)
				defer cancel()
				_, err := c.Quotas(ctx)
				return err
			},
		},
		{
			name:  "cancelled",
			setup: func(*fake, *client.Config) {},
			call: func(ctx context.Context, c *client.Client) error {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := c.Containers(ctx)
				return err
			},
		},
		{
			name: "token source fails, echoing the token",
			setup: func(f *fake, cfg *client.Config) {
				f.route("GET /account/v1.0/quotas", f.json(401, `{"unauthorized": {"code": 401, "message": "Invalid X-Auth-Token", "details": ""}}`))
				cfg.TokenSource = func() (string, error) { return "", fmt.Errorf("token file holds %q, not a token", secret) }
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Quotas(ctx); return err },
		},
		{
			name: "auth refused, token source fails",
			setup: func(f *fake, cfg *client.Config) {
				f.route("POST /identity/v2.0/tokens", echo(401, "application/json", `{"unauthorized": {"code": 401, "message": "Authentication expired %s", "details": ""}}`))
				cfg.TokenSource = func() (string, error) { return "", fmt.Errorf("reading %s failed", secret) }
			},
			call: func(ctx context.Context, c *client.Client) error { _, err := c.Authenticate(ctx); return err },
		},
		{
			name: "service token refused",
			setup: func(f *fake, cfg *client.Config) {
				cfg.Service = true
				f.route("GET /account/v1.0/service_project_quotas", echo(401, "application/json", `{"unauthorized": {"code": 401, "message": "Invalid X-Auth-Token %s", "details": ""}}`))
			},
			call: func(ctx context.Context, c *client.Client) error {
				_, err := c.ServiceProjectQuotas(ctx, "p")
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var buf bytes.Buffer
			cfg := f.config(&buf)
			tt.setup(f, &cfg)
			c, err := client.New(cfg)
			require.NoError(t, err)
			err = tt.call(ctx, c)
			requireNoSecret(t, err, buf.String())
		})
	}
}

func TestFormattingHidesToken(t *testing.T) {
	cfg := client.Config{AuthURL: "https://user:pw@accounts.example.org/identity/v2.0", Token: secret, Retry: client.Retry{Attempts: 2}}
	c, err := client.New(cfg)
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{cfg, &cfg, c} {
			s := fmt.Sprintf(verb, v)
			require.NotContains(t, s, secret, verb)
			require.NotContains(t, s, "pw", verb)
		}
	}
	require.Contains(t, cfg.String(), "[REDACTED]")
	require.Contains(t, c.String(), "accounts.example.org")

	_, err = client.New(client.Config{AuthURL: "ftp://user:" + secret + "@x/", Token: secret})
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
}

func TestDebugLogPerRequest(t *testing.T) {
	f := newFake(t)
	var buf bytes.Buffer
	c := f.client(&buf)
	_, err := c.ContainerInfo(context.Background(), "course container")
	require.NoError(t, err)
	log := buf.String()
	require.Contains(t, log, `msg="synnefo request" service=identity method=POST path=/identity/v2.0/tokens status=200`)
	require.Contains(t, log, `msg="synnefo request" service=object-store method=HEAD path=/object-store/v1/u-alice/course%20container status=204`)
	require.Contains(t, log, "attempt=1")
	require.Contains(t, log, "duration=")
	require.NotContains(t, log, secret)
}

func TestErrorsKeepTheirCause(t *testing.T) {
	f := newFake(t)
	f.route("GET /account/v1.0/quotas", echo(503, "application/json", `{"serviceUnavailable": {"code": 503, "message": "%s", "details": ""}}`))
	_, err := f.client(nil).Quotas(context.Background())
	var e *client.Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, 503, e.Status)
	require.Equal(t, "[REDACTED]", e.Message)
}

// renewedSecret is the token a TokenSource hands over after a 401.
const renewedSecret = "r3n3wed-T0ken-do-not-leak-either"

// Neither the refused token nor the renewed one surfaces, when the cloud
// echoes whichever it got in its 401s.
func TestRenewedTokenNeverLeaks(t *testing.T) {
	f := newFake(t)
	echoToken := func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Auth-Token")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		_, _ = fmt.Fprintf(w, `{"unauthorized": {"code": 401, "message": "Invalid X-Auth-Token %s", "details": "%s"}}`, tok, tok)
	}
	f.route("GET /account/v1.0/quotas", echoToken)
	var buf bytes.Buffer
	cfg := f.config(&buf)
	calls := 0
	cfg.TokenSource = func() (string, error) { calls++; return renewedSecret + "\n", nil }
	c, err := client.New(cfg)
	require.NoError(t, err)
	_, err = c.Quotas(context.Background())
	requireNoSecret(t, err, buf.String())
	require.True(t, client.IsUnauthorized(err))
	require.Equal(t, 1, calls, "read once for the one call")
	for _, s := range []string{err.Error(), fmt.Sprintf("%#v", err), buf.String(), fmt.Sprint(c), fmt.Sprint(cfg)} {
		require.NotContains(t, s, renewedSecret)
	}
	var saw []string
	for _, r := range f.requests() {
		if r.Path == "/account/v1.0/quotas" {
			saw = append(saw, r.Header.Get("X-Auth-Token"))
		}
	}
	require.Equal(t, []string{secret, renewedSecret}, saw, "retried once, with the renewed token")
}
