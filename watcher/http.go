package watcher

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
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

// Handler serves /metrics, /-/healthy, /-/ready and a plain-text status
// page on /. A nil h stands for a watcher driven one cycle at a time, with
// no main loop to stall: always healthy, ready once a cycle has finished.
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

// statusPage shows the last cycle: each account's poll, the rule instances
// that are not ok (the rows and columns of `status`, in brief) and the
// moves.
func (w *Watcher) statusPage(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rep := w.LastReport()
	fmt.Fprintln(rw, "quotawatch")
	if rep == nil {
		fmt.Fprintln(rw, "no cycle yet")
		return
	}
	fmt.Fprintf(rw, "last cycle: %s (%s)\n\n", view.Time(rep.Start), rep.End.Sub(rep.Start).Round(time.Millisecond))
	_ = view.WriteTable(rw, pollColumns(), rep.Polls)

	w.statusMu.RLock()
	active := w.active
	w.statusMu.RUnlock()
	fmt.Fprintf(rw, "\nrule instances not ok: %d\n", len(active))
	_ = view.WriteTable(rw, view.BriefRuleColumns(), view.RuleRows(active, w.names.name, nil))
	if sls := w.activeSilences(w.now()); len(sls) > 0 {
		fmt.Fprintf(rw, "\nsilences: %d\n", len(sls))
		_ = view.WriteTable(rw, silenceColumns(), sls)
	}
	if len(rep.Plan) > 0 {
		rows := append([]PlanRow(nil), rep.Plan...)
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Rule < rows[j].Rule })
		fmt.Fprintf(rw, "\nlast cycle's moves:\n")
		_ = view.WriteTable(rw, w.moveColumns(), rows)
	}
}

func pollColumns() []view.Column[PollResult] {
	return []view.Column[PollResult]{
		{Header: "ACCOUNT", Cell: func(p PollResult) string { return p.Account }},
		{Header: "POLL", Cell: func(p PollResult) string {
			if !p.OK {
				return "failed"
			}
			return "ok"
		}},
		{Header: "QUOTAS", Cell: func(p PollResult) string { return strconv.Itoa(p.Entries) }},
		{Header: "ERROR", Cell: func(p PollResult) string { return p.Error }},
	}
}

// moveColumns name the projects of a move as the watcher knows them now.
func (w *Watcher) moveColumns() []view.Column[PlanRow] {
	return []view.Column[PlanRow]{
		{Header: "RULE", Cell: func(r PlanRow) string { return r.Rule }},
		{Header: "KIND", Cell: func(r PlanRow) string { return string(r.Kind) }},
		{Header: "ITEM", Cell: func(r PlanRow) string { return r.ItemName }},
		{Header: "FROM", Cell: func(r PlanRow) string { return w.names.name(r.From) }},
		{Header: "TO", Cell: func(r PlanRow) string { return w.names.name(r.To) }},
		{Header: "STATE", Cell: func(r PlanRow) string {
			if r.Skipped {
				return "skipped: " + r.Reason
			}
			return string(r.State)
		}},
	}
}

func silenceColumns() []view.Column[store.Silence] {
	dash := func(s string) string { return view.Dash(s) }
	return []view.Column[store.Silence]{
		{Header: "ID", Cell: func(s store.Silence) string { return strconv.FormatUint(s.ID, 10) }},
		{Header: "RULE", Cell: func(s store.Silence) string { return dash(s.Rule) }},
		{Header: "PROJECT", Cell: func(s store.Silence) string { return dash(s.Project) }},
		{Header: "RESOURCE", Cell: func(s store.Silence) string { return dash(s.Resource) }},
		{Header: "ENDS", Cell: func(s store.Silence) string { return view.Time(s.Ends) }},
		{Header: "BY", Cell: func(s store.Silence) string { return dash(s.CreatedBy) }},
		{Header: "COMMENT", Cell: func(s store.Silence) string { return s.Comment }},
	}
}
