package watcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// AdminCloud is what raising limits needs of a project admin's client.
type AdminCloud interface {
	Project(ctx context.Context, id string) (*client.Project, error)
	ModifyProject(ctx context.Context, id string, resources map[string]client.ProjectResource) (int64, error)
	ProjectAction(ctx context.Context, id, action string, appID int64, reason string) error
}

// adminAccount names the admin token in logs and metrics.
const adminAccount = "admin"

// adminCloud builds the client of cloud.admin_token.
func (w *Watcher) adminCloud(cfg *config.Config) (AdminCloud, error) {
	httpc := w.httpc
	if httpc == nil && cfg.Cloud.CAFile != "" {
		c, err := caClient(cfg.Cloud.CAFile, cfg.Cloud.Timeout)
		if err != nil {
			return nil, err
		}
		httpc = c
	}
	limiter := rate.NewLimiter(rate.Limit(cfg.Cloud.RequestsPerSecond), max(1, int(cfg.Cloud.RequestsPerSecond)))
	return client.New(w.clientConfig(cfg, httpc, limiter, adminAccount, cfg.Cloud.AdminToken.Reveal(), false))
}

// raiseTarget reads the project a raise would touch: its state and current
// capacities of the resource, as the admin sees them.
func (w *Watcher) raiseTarget(ctx context.Context, e *env, project, resource string) rules.RaiseTarget {
	if e.admin == nil {
		return rules.RaiseTarget{Err: errors.New("no admin token is configured")}
	}
	p, err := e.admin.Project(ctx, project)
	if err != nil {
		return rules.RaiseTarget{Err: err}
	}
	r := p.Resources[resource]
	return rules.RaiseTarget{State: p.State, Member: r.MemberCapacity, Project: r.ProjectCapacity}
}

// applyRaise submits the modification application of m's raise for that
// resource only and, when the rule says so, approves it with the same
// token. It records the application's id and approval in m.Raise. A raise
// submitted but not approved is applied: the application waits for a
// project admin. An answer lost leaves the outcome unknown, read back by
// reconcile.
func (w *Watcher) applyRaise(ctx context.Context, e *env, m *quota.Move) (quota.ActionState, string) {
	if e.admin == nil {
		return quota.ActionFailed, "no admin token is configured"
	}
	rz := *m.Raise
	res := map[string]client.ProjectResource{m.Resource: {MemberCapacity: rz.MemberTo, ProjectCapacity: rz.ProjectTo}}
	app, err := e.admin.ModifyProject(ctx, m.From, res)
	if err != nil {
		return refusedOrUnknown(ctx, err)
	}
	rz.Application = app
	m.Raise = &rz
	if !rz.SelfApprove {
		return quota.ActionApplied, ""
	}
	reason := fmt.Sprintf("quotawatch rule %s: %s", m.Rule, m.ItemName)
	if err := e.admin.ProjectAction(ctx, m.From, client.ActionApprove, app, reason); err != nil {
		st, text := refusedOrUnknown(ctx, err)
		return st, fmt.Sprintf("application %d submitted, approval failed: %s", app, cmpOr(text, "answer lost"))
	}
	rz.Approved = true
	m.Raise = &rz
	return quota.ActionApplied, ""
}

func refusedOrUnknown(ctx context.Context, err error) (quota.ActionState, string) {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status < 500 && ce.Status != http.StatusRequestTimeout {
		return quota.ActionFailed, err.Error()
	}
	// No answer (or a 5xx): the application may exist.
	return quota.ActionUnknown, ""
}

// reconcileRaise reads an open raise back: the capacities raised, it is
// applied; otherwise it is waited for within the settle window, and then
// failed (interrupted). wait says to leave it open; err says to try again
// next time.
func (w *Watcher) reconcileRaise(ctx context.Context, e *env, a quota.Action, now time.Time, window time.Duration) (up store.ActionUpdate, wait bool, err error) {
	up = store.ActionUpdate{ID: a.ID, Time: now}
	ok, err := w.raised(ctx, e, a.Move)
	switch {
	case err != nil:
		return up, true, err
	case ok:
		up.State = quota.ActionApplied
	case now.Sub(sentAt(a)) < window:
		return up, true, nil
	default:
		up.State, up.Interrupted = quota.ActionFailed, true
		up.Error = "interrupted; the limit is not raised (an application may be pending)"
	}
	return up, false, nil
}

// raised reports whether the project's capacities are what the raise
// asked for: how an open raise is read back.
func (w *Watcher) raised(ctx context.Context, e *env, m quota.Move) (bool, error) {
	if e.admin == nil {
		return false, errors.New("no admin token is configured")
	}
	p, err := e.admin.Project(ctx, m.From)
	if err != nil {
		return false, err
	}
	r := p.Resources[m.Resource]
	return r.MemberCapacity == m.Raise.MemberTo && r.ProjectCapacity == m.Raise.ProjectTo, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
