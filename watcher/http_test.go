package watcher_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

// health is a main loop as a test wants it.
type health struct {
	last  time.Time
	ready bool
}

func (h health) LastTurn() time.Time { return h.last }
func (h health) Ready() bool         { return h.ready }

func serve(t *testing.T, hd http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	hd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHandlerHealth(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	now := time.Now()
	tests := []struct {
		name   string
		health watcher.Health
		cycled bool
		path   string
		want   int
	}{
		{"turning", health{last: now}, false, "/-/healthy", 200},
		{"stalled", health{last: now.Add(-2 * time.Minute), ready: true}, true, "/-/healthy", 503},
		{"first cycle not attempted", health{last: now}, true, "/-/ready", 503},
		{"first cycle attempted", health{last: now, ready: true}, false, "/-/ready", 200},
		{"no main loop: healthy", nil, false, "/-/healthy", 200},
		{"no main loop: not ready before a cycle", nil, false, "/-/ready", 503},
		{"no main loop: ready after a cycle", nil, true, "/-/ready", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cycled && h.w.LastReport() == nil {
				h.cycle()
			}
			if !tt.cycled && h.w.LastReport() != nil {
				h.restart()
			}
			code, _ := serve(t, h.w.Handler(tt.health), tt.path)
			require.Equal(t, tt.want, code)
		})
	}
	code, body := serve(t, h.w.Handler(nil), "/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "quotawatch_cycles_total")
}

func serveFull(t *testing.T, hd http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	hd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestStatusPage(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed+`
  - name: ips-exhausted
    resource: cyclades.floating_ip
    when: ratio >= 1
`)
	hd := h.w.Handler(nil)
	rec := serveFull(t, hd, "/")
	require.Equal(t, 200, rec.Code)
	require.Contains(t, rec.Body.String(), "none yet", "no cycle yet")

	rep := h.cycle()
	h.cycle()
	rec = serveFull(t, hd, "/")
	require.Equal(t, 200, rec.Code)
	require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	csp := rec.Header().Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'self'")
	require.Contains(t, csp, "script-src 'none'")
	require.NotContains(t, csp, "unsafe")
	body := rec.Body.String()
	for _, want := range []string{
		`<meta http-equiv="refresh" content="60">`,
		`<link rel="stylesheet" href="/static/style.css">`,
		`<dd id="version">(devel)</dd>`, // no build info registered, none stamped
		`<dd id="schedule">@every 5m</dd>`,
		`<dd id="next-cycle">2026-03-02 10:15:00Z</dd>`,
		`<td>alice</td>`,
		`<span class="badge ok">live</span>`,
		// The move of the first cycle, and the rule still firing.
		`container course_container`,
		`ips-exhausted`,
		`<polyline class="usage"`,
		`data-samples="2"`,
		`data-points="3"`,
		`container-rebalance at 95.0%`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "<script")
	require.NotContains(t, body, "style=", "inline styles would need 'unsafe-inline'")
	require.NotContains(t, body, tokenA)
	require.Contains(t, body, view.Time(rep.Start))

	// The page lets the file go, as a cycle does: read-only commands can
	// open it between cycles.
	ro, err := store.Open(h.w.Store().Path(), store.Options{ReadOnly: true, LockTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, ro.Close())

	rec = serveFull(t, hd, "/static/style.css")
	require.Equal(t, 200, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "text/css")
	rec = serveFull(t, hd, "/static/favicon.svg")
	require.Equal(t, 200, rec.Code)
}

func TestProjectPage(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	hd := h.w.Handler(nil)
	h.cycle()
	h.cycle()
	rec := serveFull(t, hd, "/project/"+cs333)
	require.Equal(t, 200, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, "<h2>CS333 lab assignments</h2>")
	require.Equal(t, 7, strings.Count(body, `<svg class="plot"`), "one plot per resource with a limit")
	require.Equal(t, 1, strings.Count(body, `<g class="move in">`), "the move in, on the diskspace plot")
	require.NotEmpty(t, rec.Header().Get("Content-Security-Policy"))

	require.Equal(t, 404, serveFull(t, hd, "/project/nope").Code)
	require.Equal(t, 400, serveFull(t, hd, "/project/"+cs333+"?since=soon").Code)
	require.Equal(t, 200, serveFull(t, hd, "/project/"+cs333+"?since=1h").Code)
}

func TestAPI(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	hd := h.w.Handler(nil)
	h.cycle()
	h.cycle()
	get := func(path string, v any) int {
		t.Helper()
		rec := serveFull(t, hd, path)
		if rec.Code == 200 {
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), v), rec.Body.String())
		return rec.Code
	}

	var status []map[string]any
	require.Equal(t, 200, get("/api/v1/status", &status))
	require.Len(t, status, 14, "the rule instance, then the 13 series it does not cover")
	for _, f := range []string{"rule", "account", "project", "project_name", "resource", "state", "since", "usage", "limit", "ratio"} {
		require.Contains(t, status[0], f)
	}
	require.Equal(t, 200, get("/api/v1/status?project=CS333*&top=2", &status))
	require.Len(t, status, 2, "the lab's two fullest series (the rule instance is of the system project)")
	require.Equal(t, "pithos.diskspace", status[0]["resource"], "fullest first")
	require.Equal(t, 200, get("/api/v1/status?state=firing", &status))
	require.Empty(t, status, "resolved after the move")

	var hist []view.HistoryRow
	require.Equal(t, 200, get("/api/v1/history?project=CS333*&resource=pithos.*&since=1h", &hist))
	require.Len(t, hist, 2, "one row per sample as stored")
	require.Equal(t, cs333, hist[0].Project)
	require.Equal(t, 200, get("/api/v1/history?account=alice&resource=pithos.diskspace&since=2026-03-02T10:09:00Z", &hist))
	require.Len(t, hist, 2, "the second poll of each project")

	var acts []view.ActionRow
	require.Equal(t, 200, get("/api/v1/actions", &acts))
	require.Len(t, acts, 1)
	require.Equal(t, "course_container", acts[0].ItemName)

	var e map[string]string
	for _, bad := range []string{"/api/v1/history?since=soon", "/api/v1/status?top=x", "/api/v1/status?rule=[", "/api/v1/actions?since=-1h"} {
		require.Equal(t, 400, get(bad, &e), bad)
		require.NotEmpty(t, e["error"], bad)
	}
}

func TestStatusPageVersion(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	require.NoError(t, h.w.Close())
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "quotawatch_build_info", Help: "build",
		ConstLabels: prometheus.Labels{"version": "v1.2.3", "revision": "0123456789abcdef0123"}})
	info.Set(1)
	reg.MustRegister(info)
	w, err := watcher.New(context.Background(), watcher.Options{Config: h.cfg, Now: h.clock.Now, Registry: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	_, body := serve(t, w.Handler(nil), "/")
	require.Contains(t, body, `<dd id="version">v1.2.3 0123456789ab</dd>`, "the build the daemon registered")
}
