package watcher

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/view"
)

// The status page is server-rendered HTML with inline SVG and one style
// sheet of its own: it needs no script and nothing from elsewhere, so the
// policy can forbid both.
const contentSecurityPolicy = "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// What the status page shows and how often it reloads itself.
const (
	pageRefresh   = 60 // seconds
	pageTop       = 20 // the fullest series with a bar
	pageWindow    = 7 * 24 * time.Hour
	pagePlots     = 12 // incidents with a plot
	pageMoves     = 20 // recent moves listed
	projectWindow = 7 * 24 * time.Hour
	// apiMaxSeries bounds what one history request reads: the answer is
	// built in memory, and all 80,000 series over a week would not fit.
	apiMaxSeries = 1000
)

//go:embed web
var webFS embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"time":    view.Time,
	"amount":  quota.FormatAmount,
	"percent": func(f view.Float) string { return quota.FormatPercent(float64(f)) },
	"usage":   view.Usage,
	"nameOr":  view.NameOr,
	"dash":    view.Dash,
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return roughDuration(now.Sub(t)) + " ago"
	},
	"duration":  roughDuration,
	"stateText": view.StateText,
	"f1":        func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"add":       func(a, b float64) float64 { return a + b },
	"sub":       func(a, b float64) float64 { return a - b },
	"half":      func(a float64) float64 { return a / 2 },
	"int64":     func(f float64) int64 { return int64(f) },
	"level": func(r view.Float) string {
		switch {
		case r >= 0.95:
			return "crit"
		case r >= 0.8:
			return "warn"
		}
		return "ok"
	},
	"stateClass": func(s quota.ActionState) string {
		switch s {
		case quota.ActionVerified, quota.ActionApplied:
			return "ok"
		case quota.ActionFailed:
			return "crit"
		}
		return "warn"
	},
}).ParseFS(webFS, "web/*.html"))

// pageData is what the templates render.
type pageData struct {
	Title   string
	Refresh int
	Version string
	Now     time.Time
	Uptime  time.Duration
	// Schedule is the configured schedule; Next the next cycle by it.
	Schedule string
	Next     time.Time
	DryRun   bool
	// DryRunRules counts the rules that only plan whatever the global mode.
	DryRunRules, Rules int
	Approval           string
	// HA says, with ha, whether this instance leads and who does.
	HA       string
	Last     *Report
	Overview *view.Overview
	Project  *view.ProjectPage
	// Accounts is each account's last poll with its failure streak.
	Accounts []accountHealth
	// MaxPlots is how many incidents get a plot.
	MaxPlots int
}

// accountHealth is one account's poll health.
type accountHealth struct {
	Account string
	// Polled is set when the last cycle polled the account; OK and
	// Entries are its outcome.
	Polled, OK   bool
	Entries      int
	Failures     int
	FailingSince time.Time
	Error        string
}

// accountHealth joins the last cycle's polls with the failure streaks the
// store keeps, in the cycle's order; accounts only the store knows follow.
func (d *pageData) accountHealth(states []quota.AccountState) []accountHealth {
	byName := map[string]quota.AccountState{}
	for _, a := range states {
		byName[a.Account] = a
	}
	var out []accountHealth
	seen := map[string]bool{}
	if d.Last != nil {
		for _, p := range d.Last.Polls {
			st := byName[p.Account]
			out = append(out, accountHealth{Account: p.Account, Polled: true, OK: p.OK, Entries: p.Entries,
				Failures: st.Failures, FailingSince: st.FailingSince, Error: cmp.Or(p.Error, st.LastError)})
			seen[p.Account] = true
		}
	}
	for _, a := range states {
		if !seen[a.Account] {
			out = append(out, accountHealth{Account: a.Account, Failures: a.Failures, FailingSince: a.FailingSince, Error: a.LastError})
		}
	}
	return out
}

// page serves the status pages and the JSON API from the store, never
// waiting for a running cycle.
type page struct {
	w       *Watcher
	started time.Time
	version string
}

func (w *Watcher) pageRoutes(mux *http.ServeMux) {
	// Uptime is the process's, on the real clock.
	p := &page{w: w, started: time.Now(), version: w.buildVersion()}
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", p.status)
	mux.HandleFunc("GET /project/{id}", p.project)
	mux.HandleFunc("GET /api/v1/status", p.apiStatus)
	mux.HandleFunc("GET /api/v1/ha", p.apiHA)
	mux.HandleFunc("GET /api/v1/history", p.apiHistory)
	mux.HandleFunc("GET /api/v1/actions", p.apiActions)
}

// buildVersion is the running build as quotawatch_build_info on the
// registry tells it (the daemon registers it, with the version and
// revision set at build time), else as the binary's build information
// records it.
func (w *Watcher) buildVersion() string {
	if mfs, err := w.registry.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() != "quotawatch_build_info" || len(mf.GetMetric()) == 0 {
				continue
			}
			labels := map[string]string{}
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			v := cmp.Or(labels["version"], "(devel)")
			if r := labels["revision"]; r != "" {
				v += " " + r[:min(len(r), 12)]
			}
			return v
		}
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" {
		return "(devel)"
	}
	return bi.Main.Version
}

// read runs a query on the store, then lets the file go again unless a
// cycle holds it: read-only commands open it between cycles.
func (p *page) read(fn func() error) error {
	err := fn()
	if p.w.mu.TryLock() {
		if rerr := p.w.store.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("release store: %w", rerr)
		}
		p.w.mu.Unlock()
	}
	return err
}

func (p *page) base(title string) *pageData {
	e := p.w.env.Load()
	now := p.w.now().UTC()
	d := &pageData{Title: title, Refresh: pageRefresh, Version: p.version, Now: now, Uptime: time.Since(p.started).Round(time.Second),
		Schedule: e.cfg.Schedule, DryRun: e.cfg.DryRun || p.w.readOnly, Rules: len(e.cfg.Rules),
		Approval: approvalMode(e), Last: p.w.LastReport(), HA: p.w.haLine()}
	if spec, err := e.cfg.CronSchedule(); err == nil {
		d.Next = spec.Next(now)
	}
	for _, r := range e.cfg.Rules {
		if r.DryRun {
			d.DryRunRules++
		}
	}
	return d
}

// approvalMode says which rules' moves wait for an approver's decision
// (require_approval, globally or on a rule).
func approvalMode(e *env) string {
	var names []string
	for _, r := range e.cfg.Rules {
		if r.RequireApproval {
			names = append(names, r.Name)
		}
	}
	switch {
	case len(names) == 0:
		return "not required"
	case e.cfg.RequireApproval || len(names) == len(e.cfg.Rules):
		return "required for every rule"
	}
	return "required for rules " + strings.Join(names, ", ")
}

func (p *page) rules() []*rules.Rule { return p.w.env.Load().cfg.Rules }

func (p *page) status(rw http.ResponseWriter, _ *http.Request) {
	d := p.base("quotawatch")
	err := p.read(func() (err error) {
		d.Overview, err = view.QueryOverview(pageSource{p.w.store, p.w}, view.OverviewQuery{Now: d.Now, Rules: p.rules(), Top: pageTop,
			Window: pageWindow, MaxPlots: pagePlots, MaxMoves: pageMoves})
		return err
	})
	if err != nil {
		p.w.log.Error("status page", "err", err)
		http.Error(rw, "reading the store failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	d.Accounts, d.MaxPlots = d.accountHealth(d.Overview.Accounts), pagePlots
	p.render(rw, "status.html", d)
}

func (p *page) project(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d := p.base("quotawatch: " + id)
	from, err := since(r.URL.Query().Get("since"), d.Now, projectWindow)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	err = p.read(func() (err error) {
		d.Project, err = view.QueryProject(p.w.store, id, from, d.Now, p.rules())
		return err
	})
	switch {
	case errors.Is(err, view.ErrNoProject):
		http.Error(rw, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		p.w.log.Error("project page", "project", id, "err", err)
		http.Error(rw, "reading the store failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	d.Title = "quotawatch: " + d.Project.Name
	p.render(rw, "project.html", d)
}

// render executes a template into memory first, so that a failure is an
// error page and not half a page.
func (p *page) render(rw http.ResponseWriter, name string, d *pageData) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, d); err != nil {
		p.w.log.Error("rendering the status page failed", "template", name, "err", err)
		http.Error(rw, "rendering failed", http.StatusInternalServerError)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	_, _ = rw.Write(buf.Bytes())
}

// since reads a since parameter: a duration back from now (such as 7d) or
// an RFC 3339 time; empty is def back from now.
func since(v string, now time.Time, def time.Duration) (time.Time, error) {
	if v == "" {
		return now.Add(-def), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := rules.ParseDuration(v)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("since %q: want a positive duration such as 12h or 7d, or an RFC 3339 time", v)
	}
	return now.Add(-d), nil
}

// roughDuration renders a duration to its two largest units.
func roughDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + roughDuration(-d)
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// The JSON API: the rows of the commands' --output json.

func (p *page) apiStatus(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := view.StatusFilter{Project: view.Glob(q.Get("project")), Rule: view.Glob(q.Get("rule")),
		State: view.Glob(q.Get("state")), Account: view.Glob(q.Get("account"))}
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			apiError(rw, http.StatusBadRequest, fmt.Errorf("top %q: want a number", v))
			return
		}
		f.Top = n
	}
	if err := f.Check(); err != nil {
		apiError(rw, http.StatusBadRequest, err)
		return
	}
	var st *view.Status
	if err := p.read(func() (err error) { st, err = view.QueryStatus(p.w.store); return err }); err != nil {
		apiError(rw, http.StatusInternalServerError, err)
		return
	}
	rows := st.Select(f).Rows()
	// The silences the daemon applies, as the page lists them.
	now := p.w.now().UTC()
	view.MarkSilenced(rows, NewSilencer(p.w.activeSilences(now), now).Reason)
	apiJSON(rw, rows)
}

func (p *page) apiHistory(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := p.w.now().UTC()
	from, err := since(q.Get("since"), now, 7*24*time.Hour)
	if err != nil {
		apiError(rw, http.StatusBadRequest, err)
		return
	}
	hq := view.HistoryQuery{Account: view.Glob(q.Get("account")), Project: view.Glob(q.Get("project")),
		Resource: view.Glob(q.Get("resource")), From: from, To: now, MaxSeries: apiMaxSeries}
	for _, g := range []view.Glob{hq.Account, hq.Project, hq.Resource} {
		if err := g.Check(); err != nil {
			apiError(rw, http.StatusBadRequest, err)
			return
		}
	}
	var series []view.Series
	err = p.read(func() (err error) { series, err = view.QueryHistory(p.w.store, hq); return err })
	switch {
	case errors.Is(err, view.ErrTooManySeries):
		apiError(rw, http.StatusBadRequest, fmt.Errorf("%w; narrow the query with account, project or resource", err))
		return
	case err != nil:
		apiError(rw, http.StatusInternalServerError, err)
		return
	}
	apiJSON(rw, view.HistoryRows(series))
}

func (p *page) apiActions(rw http.ResponseWriter, r *http.Request) {
	now := p.w.now().UTC()
	from, err := since(r.URL.Query().Get("since"), now, 7*24*time.Hour)
	if err != nil {
		apiError(rw, http.StatusBadRequest, err)
		return
	}
	var rows []view.ActionRow
	if err := p.read(func() (err error) { rows, err = view.QueryActions(p.w.store, from, now); return err }); err != nil {
		apiError(rw, http.StatusInternalServerError, err)
		return
	}
	apiJSON(rw, rows)
}

func apiJSON(rw http.ResponseWriter, v any) {
	var buf bytes.Buffer
	if err := view.WriteJSON(&buf, v); err != nil {
		apiError(rw, http.StatusInternalServerError, err)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = rw.Write(buf.Bytes())
}

// apiError answers {"error": "..."} with the status code.
func apiError(rw http.ResponseWriter, code int, err error) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	_ = view.WriteJSON(rw, map[string]string{"error": strings.TrimSpace(err.Error())})
}

// pageSource is the store seen with the silences the watcher holds, so the
// overview lists the silences in force.
type pageSource struct {
	*store.Store
	w *Watcher
}

// OpenProposals implements view.ProposalLister: the proposals still
// waiting for a decision, oldest first; one past its expiry is left out
// (the next cycle expires it).
func (s pageSource) OpenProposals(now time.Time) ([]view.ProposalRow, error) {
	list, err := s.Proposals()
	if err != nil {
		return nil, fmt.Errorf("open proposals: %w", err)
	}
	var out []view.ProposalRow
	for _, a := range list {
		if !a.Expires.IsZero() && !a.Expires.After(now) {
			continue
		}
		out = append(out, view.ProposalRow{ID: strconv.FormatUint(a.ID, 10), Time: a.Time, Expires: a.Expires,
			Rule: a.Rule, Account: a.Account, Kind: string(a.Kind), ItemName: a.ItemName,
			From: a.From, FromName: a.FromName, To: a.To, ToName: a.ToName})
	}
	return out, nil
}

// ActiveSilences implements view.SilenceLister.
func (s pageSource) ActiveSilences(now time.Time) ([]view.SilenceRow, error) {
	var out []view.SilenceRow
	for _, sl := range s.w.activeSilences(now) {
		out = append(out, view.SilenceRow{ID: strconv.FormatUint(sl.ID, 10), Rule: sl.Rule, Project: sl.Project,
			Resource: sl.Resource, Until: sl.Ends, Comment: sl.Comment})
	}
	return out, nil
}

func (p *page) apiHA(rw http.ResponseWriter, _ *http.Request) { apiJSON(rw, p.w.HA()) }
