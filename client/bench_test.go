package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
)

// quotasBody is a /quotas answer for projects x the 8 api-visible resources.
func quotasBody(projects int) []byte {
	resources := []string{quota.VM, quota.CPU, quota.RAM, quota.Disk, quota.PrivateNetwork, quota.FloatingIP, quota.DiskSpace, "astakos.pending_app"}
	var b bytes.Buffer
	b.WriteByte('{')
	for p := range projects {
		if p > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%08x-0000-4000-8000-%012x": {`, p, p)
		for i, r := range resources {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%s": {"limit": %d, "usage": %d, "pending": 0, "project_limit": 9223372036854775807, "project_usage": %d, "project_pending": 0}`,
				r, int64(p+1)<<30, int64(p*i)<<20, int64(p*i)<<21)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes()
}

// memTransport answers every request from memory, so a benchmark measures
// the client and the decoding, not the loopback network.
type memTransport struct {
	token, quotas []byte
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body := m.quotas
	if strings.HasSuffix(r.URL.Path, "/tokens") {
		body = m.token
	}
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}, nil
}

func benchToken(base string) []byte {
	return []byte(`{"access": {"user": {"id": "u"}, "serviceCatalog": [{"type": "account", "endpoints": [{"versionId": "v1.0", "publicURL": "` + base + `/account/v1.0"}]}]}}`)
}

// BenchmarkQuotas10k decodes a 10,000-project x 8-resource /quotas answer
// through Client.Quotas and reports its cost relative to a bare
// encoding/json decode of the same body.
func BenchmarkQuotas10k(b *testing.B) {
	body := quotasBody(10000)
	for _, mode := range []string{"memory", "loopback"} {
		b.Run(mode, func(b *testing.B) {
			cfg := client.Config{Token: "bench-token"}
			switch mode {
			case "memory":
				cfg.AuthURL = "http://cloud.invalid/identity/v2.0"
				cfg.HTTPClient = &http.Client{Transport: &memTransport{token: benchToken("http://cloud.invalid"), quotas: body}}
			case "loopback":
				var srv *httptest.Server
				srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					if strings.HasSuffix(r.URL.Path, "/tokens") {
						_, _ = w.Write(benchToken(srv.URL))
						return
					}
					_, _ = w.Write(body)
				}))
				b.Cleanup(srv.Close)
				cfg.AuthURL = srv.URL + "/identity/v2.0"
			}
			c, err := client.New(cfg)
			require.NoError(b, err)
			ctx := context.Background()
			_, err = c.Authenticate(ctx)
			require.NoError(b, err)

			var clientTime, bareTime time.Duration
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				q, err := c.Quotas(ctx)
				clientTime += time.Since(start)
				if err != nil || len(q) != 10000 {
					b.Fatalf("quotas: %d projects, %v", len(q), err)
				}
				b.StopTimer()
				start = time.Now()
				var bare client.Quotas
				if err := json.Unmarshal(body, &bare); err != nil {
					b.Fatal(err)
				}
				bareTime += time.Since(start)
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(clientTime.Milliseconds())/n, "client-ms/op")
			b.ReportMetric(float64(bareTime.Milliseconds())/n, "bare-ms/op")
			b.ReportMetric(float64(clientTime)/float64(bareTime), "x-bare")
		})
	}
}

// BenchmarkQuotasBareDecode is the reference: json.Unmarshal of the same
// body into the same type.
func BenchmarkQuotasBareDecode(b *testing.B) {
	body := quotasBody(10000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var q client.Quotas
		if err := json.Unmarshal(body, &q); err != nil {
			b.Fatal(err)
		}
	}
}

func TestQuotasBodyFixture(t *testing.T) {
	// The benchmark's body decodes to what it claims, unlimited included.
	var q client.Quotas
	require.NoError(t, json.Unmarshal(quotasBody(3), &q))
	require.Len(t, q, 3)
	require.Len(t, q["00000002-0000-4000-8000-000000000002"], 8)
	require.Equal(t, quota.Unlimited, q["00000002-0000-4000-8000-000000000002"][quota.VM].ProjectLimit)
}
