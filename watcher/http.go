package watcher

import (
	"fmt"
	"net/http"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quotawatch/quotawatch/quota"
)

// Handler serves /metrics, /-/healthy, /-/ready and a plain-text status
// page on /.
func (w *Watcher) Handler(cs *cycleState) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.registry, promhttp.HandlerOpts{Registry: w.registry}))
	mux.HandleFunc("GET /-/healthy", func(rw http.ResponseWriter, _ *http.Request) {
		// Healthy while the main loop turns.
		if time.Since(time.Unix(0, cs.alive.Load())) > time.Minute {
			http.Error(rw, "main loop stalled", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "OK")
	})
	mux.HandleFunc("GET /-/ready", func(rw http.ResponseWriter, _ *http.Request) {
		// Ready once the configuration is loaded, the store open and the
		// first cycle attempted.
		if !cs.ready.Load() {
			http.Error(rw, "first cycle not done", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "OK")
	})
	mux.HandleFunc("GET /{$}", w.statusPage)
	return mux
}

// setLast publishes a finished cycle for the status page, which must never
// wait for a running cycle.
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

func (w *Watcher) statusPage(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rep := w.LastReport()
	fmt.Fprintln(rw, "quotawatch")
	if rep == nil {
		fmt.Fprintln(rw, "no cycle yet")
		return
	}
	fmt.Fprintf(rw, "last cycle: %s (%s)\n\n", rep.Start.Format(time.RFC3339), rep.End.Sub(rep.Start).Round(time.Millisecond))
	tw := tabwriter.NewWriter(rw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tPOLL\tQUOTAS\tERROR")
	for _, p := range rep.Polls {
		st := "ok"
		if !p.OK {
			st = "failed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", p.Account, st, p.Entries, p.Error)
	}
	tw.Flush()

	w.statusMu.RLock()
	active := w.active
	w.statusMu.RUnlock()
	fmt.Fprintf(rw, "\nrule instances not ok: %d\n", len(active))
	tw = tabwriter.NewWriter(rw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tACCOUNT\tPROJECT\tRESOURCE\tSTATE\tSINCE")
	for _, in := range active {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Key.Rule, in.Key.Account, w.names.name(in.Key.Project),
			in.Key.Resource, in.State, in.Since.Format(time.RFC3339))
	}
	tw.Flush()
	if len(rep.Plan) > 0 {
		rows := append([]PlanRow(nil), rep.Plan...)
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Rule < rows[j].Rule })
		fmt.Fprintf(rw, "\nlast cycle's moves:\n")
		tw = tabwriter.NewWriter(rw, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tKIND\tITEM\tFROM\tTO\tSTATE")
		for _, r := range rows {
			st := string(r.State)
			if r.Skipped {
				st = "skipped: " + r.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Rule, r.Kind, r.ItemName, w.names.name(r.From), w.names.name(r.To), st)
		}
		tw.Flush()
	}
}
