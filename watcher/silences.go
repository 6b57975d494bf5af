package watcher

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// SilenceSpec is a silence to add: globs on the rule, the project (id or
// name) and the resource, at least one of them, for a duration.
type SilenceSpec struct {
	Rule, Project, Resource string
	For                     time.Duration
	Comment                 string
	// By is who asks, for the record; the daemon puts the user the kernel
	// names instead.
	By string
}

// MaxSilence is the longest a silence may last: longer is a rule to
// change, not a silence.
const MaxSilence = 90 * 24 * time.Hour

// Check reports what is wrong with the spec.
func (s SilenceSpec) Check() error {
	if s.Rule == "" && s.Project == "" && s.Resource == "" {
		return errors.New("a silence needs at least one of --rule, --project, --resource (use --rule '*' to silence every rule)")
	}
	for _, g := range []struct{ flag, glob string }{{"rule", s.Rule}, {"project", s.Project}, {"resource", s.Resource}} {
		if _, err := path.Match(g.glob, ""); err != nil {
			return fmt.Errorf("--%s %q: not a valid glob", g.flag, g.glob)
		}
	}
	switch {
	case s.For <= 0:
		return errors.New("--for must be a positive duration such as 2h or 1d")
	case s.For > MaxSilence:
		return fmt.Errorf("--for %s: at most %s", s.For, MaxSilence)
	case strings.TrimSpace(s.Comment) == "":
		return errors.New("--comment is required: say why, for whoever finds the silence")
	}
	return nil
}

// silence builds the stored silence of the spec, starting at now.
func (s SilenceSpec) silence(now time.Time) store.Silence {
	return store.Silence{
		Rule: s.Rule, Project: s.Project, Resource: s.Resource,
		Comment: strings.TrimSpace(s.Comment), CreatedBy: s.By,
		Created: now, Ends: now.Add(s.For),
	}
}

// SilenceMatches reports whether sl matches the incident of k in the
// project named projectName: every matcher set matches (the project one
// by id or by name).
func SilenceMatches(sl store.Silence, k quota.InstanceKey, projectName string) bool {
	if k.Rule == "" {
		return false // poll events are never silenced
	}
	match := func(glob, s string) bool {
		ok, _ := path.Match(glob, s)
		return ok
	}
	if sl.Rule != "" && !match(sl.Rule, k.Rule) {
		return false
	}
	if sl.Resource != "" && !match(sl.Resource, k.Resource) {
		return false
	}
	if sl.Project != "" && !match(sl.Project, k.Project) && (projectName == "" || !match(sl.Project, projectName)) {
		return false
	}
	return true
}

// SilenceReason is how a silence is named where it holds an incident.
func SilenceReason(sl store.Silence) string {
	return "silenced by " + strconv.FormatUint(sl.ID, 10) + ": " + sl.Comment
}

// Silencer answers, for one moment, which silence holds an incident.
type Silencer struct {
	active []store.Silence
}

// NewSilencer keeps the silences of list that hold at now.
func NewSilencer(list []store.Silence, now time.Time) *Silencer {
	s := &Silencer{}
	for _, sl := range list {
		if sl.Active(now) {
			s.active = append(s.active, sl)
		}
	}
	return s
}

// Silenced returns the first active silence that matches the incident.
func (s *Silencer) Silenced(k quota.InstanceKey, projectName string) (store.Silence, bool) {
	for _, sl := range s.active {
		if SilenceMatches(sl, k, projectName) {
			return sl, true
		}
	}
	return store.Silence{}, false
}

// Reason names the first active silence that matches the incident, as
// plan and status show it.
func (s *Silencer) Reason(k quota.InstanceKey, projectName string) (string, bool) {
	sl, ok := s.Silenced(k, projectName)
	if !ok {
		return "", false
	}
	return SilenceReason(sl), true
}

// silenceFunc is the cycle's view of the silences, for the engine: nil
// when none holds. A store that cannot be read silences nothing (a
// message too many is better than a missed one), and says so.
func (w *Watcher) silenceFunc(now time.Time) rules.SilenceFunc {
	list, err := w.store.Silences()
	if err != nil {
		w.log.Error("reading silences failed; nothing is silenced this cycle", "err", err)
		return nil
	}
	w.showSilences(list)
	s := NewSilencer(list, now)
	if len(s.active) == 0 {
		return nil
	}
	return s.Reason
}

// silencedRows are the plan's rows for firing instances a silence keeps
// from acting: refusals that name the silence.
func silencedRows(fs []rules.SilencedFiring, dryRun bool) []PlanRow {
	rows := make([]PlanRow, 0, len(fs))
	for _, f := range fs {
		k := f.Instance.Key
		kind := quota.KindLimit // a raise_limit rule has no reassign
		if f.Rule.Action != nil {
			kind = f.Rule.Action.Kind
		}
		rows = append(rows, PlanRow{
			Move: quota.Move{
				Rule: k.Rule, Account: k.Account, Kind: kind,
				From: k.Project, FromName: f.ProjectName, Resource: k.Resource, SourceBefore: f.Quota,
			},
			DryRun: dryRun || f.Rule.DryRun, Skipped: true, Reason: f.Reason,
		})
	}
	return rows
}

// AddSilence records a silence: through the running daemon's control
// socket when it answers, else in the store directly.
func AddSilence(ctx context.Context, cfg *config.Config, spec SilenceSpec, now time.Time) (store.Silence, error) {
	if err := spec.Check(); err != nil {
		return store.Silence{}, err
	}
	var resp controlResponse
	ok, err := callControl(ctx, cfg.Store.Path, controlRequest{Op: opSilenceAdd, Silence: &spec}, &resp)
	if ok {
		return resp.silence(err)
	}
	if cfg.HA != nil {
		return store.Silence{}, errNoLeaderHere(cfg.Store.Path)
	}
	st, err := openForControl(cfg.Store.Path)
	if err != nil {
		return store.Silence{}, err
	}
	defer st.Close()
	return st.AddSilence(spec.silence(now))
}

// ListSilences returns every silence kept, through the daemon when it
// answers, else from the store.
func ListSilences(ctx context.Context, cfg *config.Config) ([]store.Silence, error) {
	var resp controlResponse
	ok, err := callControl(ctx, cfg.Store.Path, controlRequest{Op: opSilenceList}, &resp)
	if ok {
		if err != nil {
			return nil, err
		}
		return resp.Silences, nil
	}
	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true, LockTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	return st.Silences()
}

// ExpireSilence ends a silence now, through the daemon when it answers,
// else in the store.
func ExpireSilence(ctx context.Context, cfg *config.Config, id uint64, now time.Time) (store.Silence, error) {
	var resp controlResponse
	ok, err := callControl(ctx, cfg.Store.Path, controlRequest{Op: opSilenceExpire, ID: id}, &resp)
	if ok {
		return resp.silence(err)
	}
	if cfg.HA != nil {
		return store.Silence{}, errNoLeaderHere(cfg.Store.Path)
	}
	st, err := openForControl(cfg.Store.Path)
	if err != nil {
		return store.Silence{}, err
	}
	defer st.Close()
	return st.ExpireSilence(id, now)
}

// openForControl opens the store for writing when no daemon answers on
// its control socket.
func openForControl(path string) (*store.Store, error) {
	st, err := store.Open(path, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w; the process holding it does not answer on %s (is it `quotawatch once` or `run` of an older version?)", err, ControlSocket(path))
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

// showSilences publishes the silences for the status page.
func (w *Watcher) showSilences(list []store.Silence) {
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	w.silences = list
}

// activeSilences returns the silences shown on the status page that hold
// at now.
func (w *Watcher) activeSilences(now time.Time) []store.Silence {
	w.statusMu.RLock()
	defer w.statusMu.RUnlock()
	var out []store.Silence
	for _, sl := range w.silences {
		if sl.Active(now) {
			out = append(out, sl)
		}
	}
	return out
}
