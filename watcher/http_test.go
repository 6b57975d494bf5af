package watcher_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

func TestStatusPageDump(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	hd := h.w.Handler(nil)
	h.cycle()
	h.cycle()
	_, body := serve(t, hd, "/")
	t.Log(body)
	_, body = serve(t, hd, "/project/"+cs333)
	t.Log(body)
}
