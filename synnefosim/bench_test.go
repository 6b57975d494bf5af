package synnefosim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// BenchmarkQuotas10k serves /quotas for a user in 10,000 projects x 8
// resources: from the cache, rebuilt after a change, and, for scale, a
// bare encoding/json decode of the same body.
func BenchmarkQuotas10k(b *testing.B) {
	c, err := New(LargeScenario(10000))
	require.NoError(b, err)
	const user = "00000000-0000-4000-8000-000000000000"
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/account/v1.0/quotas", nil)
		req.Header.Set("X-Auth-Token", "bench-token")
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec
	}
	rec := serve()
	require.Equal(b, http.StatusOK, rec.Code)
	body := rec.Body.Bytes()
	var check map[string]map[string]quota.Quota
	require.NoError(b, json.Unmarshal(body, &check))
	require.Len(b, check, 10000)
	require.Len(b, check[user], 8)

	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve()
		}
		b.ReportMetric(float64(len(body)), "body_bytes")
	})
	b.Run("rebuild", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			// Any change invalidates the cached body.
			if err := c.GrowContainer(user, "container-00000", 1); err != nil {
				b.Fatal(err)
			}
			serve()
		}
		b.ReportMetric(float64(len(body)), "body_bytes")
	})
	b.Run("json-decode-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]map[string]quota.Quota
			if err := json.Unmarshal(body, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	c.ResetRequests()
}
