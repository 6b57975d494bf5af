package watcher

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quotawatch/quotawatch/quota"
)

// stallAfter is how long the main loop may go without a turn before
// /-/healthy fails.
const stallAfter = time.Minute

// Health is how the daemon's main loop is doing, as /-/healthy and
// /-/ready report it.
type Health interface {
	// LastTurn is when the main loop last turned.
	LastTurn() time.Time
	// Ready reports whether the first cycle has been attempted.
	Ready() bool
}

// LastTurn implements Health for Run's main loop.
func (cs *cycleState) LastTurn() time.Time { return time.Unix(0, cs.alive.Load()) }

// Ready implements Health for Run's main loop.
func (cs *cycleState) Ready() bool { return cs.ready.Load() }

// Handler serves /metrics, /-/healthy, /-/ready, the status page on / with
// a page per project on /project/{id}, and the JSON API under /api/v1/. A
// nil h stands for a watcher driven one cycle at a time, with no main loop
// to stall: always healthy, ready once a cycle has finished.
func (w *Watcher) Handler(h Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.registry, promhttp.HandlerOpts{Registry: w.registry}))
	mux.HandleFunc("GET /-/healthy", func(rw http.ResponseWriter, _ *http.Request) {
		// Healthy while the main loop turns.
		if h != nil && time.Since(h.LastTurn()) > stallAfter {
			http.Error(rw, "main loop stalled", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "OK")
	})
	mux.HandleFunc("GET /-/ready", func(rw http.ResponseWriter, _ *http.Request) {
		// Ready once the configuration is loaded, the store open and the
		// first cycle attempted.
		ready := w.LastReport() != nil
		if h != nil {
			ready = h.Ready()
		}
		if !ready {
			http.Error(rw, "first cycle not done", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "OK")
	})
	w.pageRoutes(mux)
	return mux
}

// setLast publishes a finished cycle and the rule instances not ok after
// it, for readers that must never wait for a running cycle.
func (w *Watcher) setLast(r *Report) {
	var active []quota.Instance
	for _, in := range w.states {
		if in.State != quota.StateOK {
			active = append(active, in)
		}
	}
	sortInstances(active)
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	w.lastRep, w.active = r, active
}

// LastReport returns the report of the last cycle, or nil.
func (w *Watcher) LastReport() *Report {
	w.statusMu.RLock()
	defer w.statusMu.RUnlock()
	return w.lastRep
}
