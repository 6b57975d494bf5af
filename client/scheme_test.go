package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
)

// TestTokenStaysOnTheAuthScheme: an https identity service whose catalog
// sends the account service to plain http must not lead the token there,
// whereas an https endpoint on another host is used and said once.
func TestTokenStaysOnTheAuthScheme(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(plain.Close)

	var tlsSrv *httptest.Server
	tlsSrv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/identity/v2.0/tokens":
			// The compute service on "localhost" rather than 127.0.0.1:
			// another host name for the same TLS server.
			other := strings.Replace(tlsSrv.URL, "127.0.0.1", "localhost", 1)
			fmt.Fprintf(w, `{"access": {"token": {"id": "x", "expires": "2030-01-01T00:00:00+00:00", "tenant": {"id": "u1"}},
			  "user": {"id": "u1", "name": "alice", "projects": ["u1"]},
			  "serviceCatalog": [
			    {"type": "account", "endpoints": [{"versionId": "v1.0", "publicURL": "%s/account/v1.0"}]},
			    {"type": "compute", "endpoints": [{"versionId": "v2.0", "publicURL": "%s/compute/v2.0"}]}
			  ]}}`, plain.URL, other)
		case "/compute/v2.0/flavors/detail":
			_, _ = io.WriteString(w, `{"flavors": []}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(tlsSrv.Close)

	var logs bytes.Buffer
	f := &fake{t: t, srv: tlsSrv}
	cfg := f.config(&logs)
	hc := tlsSrv.Client()
	// The test certificate names example.com; both host names reach it.
	hc.Transport.(*http.Transport).TLSClientConfig.ServerName = "example.com"
	cfg.HTTPClient = hc
	c, err := client.New(cfg)
	require.NoError(t, err)

	_, err = c.Quotas(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), `the catalog's "account" endpoint uses http while auth_url uses https; the token is not sent there`)
	require.Zero(t, plainHits.Load(), "no request may reach the http endpoint")
	require.NotContains(t, err.Error(), secret)

	_, err = c.Flavors(context.Background())
	require.NoError(t, err, "an https endpoint on another host is allowed")

	out := logs.String()
	require.Contains(t, out, "synnefo catalog entry refused: its scheme differs from auth_url's")
	require.Equal(t, 1, strings.Count(out, "synnefo catalog endpoint on another host than auth_url"), out)
	require.NotContains(t, out, secret)
}

// TestResponseCapOverHTTP: Config.MaxResponseBytes bounds what a call reads.
func TestResponseCapOverHTTP(t *testing.T) {
	f := newFake(t)
	cfg := f.config(nil)
	cfg.MaxResponseBytes = 64
	c, err := client.New(cfg)
	require.NoError(t, err)
	_, err = c.QuotaEntries(context.Background())
	require.ErrorContains(t, err, "response body larger than the cap (cloud.max_response_bytes)")
}
