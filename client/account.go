package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// getJSON GETs {service}/segs...?query and stream-decodes the body into v.
func (c *Client) getJSON(ctx context.Context, service, query string, v any, segs ...string) error {
	u, _, err := c.endpoint(ctx, service, segs...)
	if err != nil {
		return err
	}
	u.RawQuery = query
	return c.do(ctx, &request{service: service, method: http.MethodGet, url: u}, func(resp *http.Response) error {
		if resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
		return nil
	})
}

// getJSONList streams the JSON array a GET answers, one element at a
// time: a listing of 100,000 projects is then never held whole, neither
// as its body nor as every element decoded at once. begin runs before each
// attempt reads its first element (an attempt may fail part way and be
// retried); each receives every element in turn, in a value it may keep.
// A null or empty answer lists nothing.
func getJSONList[T any](ctx context.Context, c *Client, service, query string, begin func(), each func(*T) error, segs ...string) error {
	u, _, err := c.endpoint(ctx, service, segs...)
	if err != nil {
		return err
	}
	u.RawQuery = query
	return c.do(ctx, &request{service: service, method: http.MethodGet, url: u}, func(resp *http.Response) error {
		begin()
		if resp.StatusCode == http.StatusNoContent {
			return nil
		}
		dec := json.NewDecoder(resp.Body)
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
		if tok == nil {
			return nil
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf("decoding response: got %s, want a JSON array", jsonKind(tok))
		}
		for dec.More() {
			v := new(T)
			if err := dec.Decode(v); err != nil {
				return fmt.Errorf("decoding response: %w", err)
			}
			if err := each(v); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
		return nil
	})
}

// jsonKind names what a JSON token starts.
func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "a JSON object"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a JSON string"
	case bool:
		return "a JSON boolean"
	default:
		return "a JSON number"
	}
}

// collect is a list's elements, kept whole.
func collect[T any](out *[]T) (begin func(), each func(*T) error) {
	return func() { *out = (*out)[:0] }, func(v *T) error { *out = append(*out, *v); return nil }
}

// Resource describes one resource Synnefo accounts (GET {account}/resources).
type Resource struct {
	Service     string `json:"service"`
	Description string `json:"description"`
	// Unit is "bytes" or empty (a count).
	Unit       string `json:"unit"`
	UIVisible  bool   `json:"ui_visible"`
	APIVisible bool   `json:"api_visible"`
}

// Resources lists the api-visible resources by name.
func (c *Client) Resources(ctx context.Context) (map[string]Resource, error) {
	var rs map[string]Resource
	if err := c.getJSON(ctx, ServiceAccount, "", &rs, "resources"); err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	return rs, nil
}

// Quotas maps project UUID → resource name → quota.
type Quotas map[string]map[string]quota.Quota

// Entries flattens q into quota entries (in no particular order).
func (q Quotas) Entries() []quota.Entry {
	n := 0
	for _, rs := range q {
		n += len(rs)
	}
	es := make([]quota.Entry, 0, n)
	for p, rs := range q {
		for r, qq := range rs {
			es = append(es, quota.Entry{Project: p, Resource: r, Quota: qq})
		}
	}
	return es
}

// Quotas returns the caller's quotas in every project it is a member of
// (GET {account}/quotas). Keys are bare project UUIDs; the system project's
// is the user's UUID. The body is decoded straight into quota.Quota.
func (c *Client) Quotas(ctx context.Context) (Quotas, error) {
	u, _, err := c.endpoint(ctx, ServiceAccount, "quotas")
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	var q Quotas
	err = c.do(ctx, &request{service: ServiceAccount, method: http.MethodGet, url: u}, func(resp *http.Response) error {
		var err error
		q, err = decodeQuotas(resp.Body)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	return q, nil
}

// decodeQuotas decodes a /quotas body as strictly as decodeEntries.
func decodeQuotas(r io.Reader) (Quotas, error) { return scanQuotas(r, userFields) }

// scanQuotas decodes strictly into the nested map, keeping projects that
// list no resources.
func scanQuotas(r io.Reader, required uint8) (Quotas, error) {
	q := Quotas{}
	s := newQuotaScanner(r, required, 0)
	s.project = func(p string) { q[p] = map[string]quota.Quota{} }
	es, err := s.entries(nil)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		q[e.Project][e.Resource] = e.Quota
	}
	return q, nil
}

// ServiceProjectQuotas returns project-level quotas of the given projects
// (all initialised projects when none is given), for the resources of the
// component whose token the client holds (GET
// {account}/service_project_quotas). Only the Project* fields are set.
func (c *Client) ServiceProjectQuotas(ctx context.Context, projects ...string) (Quotas, error) {
	var query string
	if len(projects) > 0 {
		query = "project=" + commaList(projects)
	}
	u, _, err := c.endpoint(ctx, ServiceAccount, "service_project_quotas")
	if err != nil {
		return nil, fmt.Errorf("service project quotas: %w", err)
	}
	u.RawQuery = query
	var q Quotas
	err = c.do(ctx, &request{service: ServiceAccount, method: http.MethodGet, url: u}, func(resp *http.Response) error {
		var err error
		q, err = scanQuotas(resp.Body, projectFields)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("service project quotas: %w", err)
	}
	return q, nil
}

// ServiceQuotaFilter narrows ServiceQuotas; empty lists are not sent.
type ServiceQuotaFilter struct {
	Users    []string
	Projects []string
}

// ServiceQuotas returns user → project → resource → quota for the
// resources of the component whose token the client holds, hidden ones
// included (GET {account}/service_quotas). Without Users the cloud returns
// every user, which can be huge.
func (c *Client) ServiceQuotas(ctx context.Context, f ServiceQuotaFilter) (map[string]Quotas, error) {
	var parts []string
	for _, kv := range []struct {
		k  string
		vs []string
	}{{"user", f.Users}, {"project", f.Projects}} {
		if len(kv.vs) > 0 {
			parts = append(parts, kv.k+"="+commaList(kv.vs))
		}
	}
	var q map[string]Quotas
	if err := c.getJSON(ctx, ServiceAccount, strings.Join(parts, "&"), &q, "service_quotas"); err != nil {
		return nil, fmt.Errorf("service quotas: %w", err)
	}
	return q, nil
}

// commaList renders a comma-separated query value, each item escaped.
func commaList(vs []string) string {
	esc := make([]string, len(vs))
	for i, v := range vs {
		esc[i] = url.QueryEscape(v)
	}
	return strings.Join(esc, ",")
}

// ProjectFilter selects projects in Projects; empty fields are not sent.
type ProjectFilter struct {
	// State is uninitialized, active, suspended, terminated or deleted.
	State string
	// Owner is the owner's user UUID.
	Owner string
	// Name is the exact project name.
	Name string
	// Mode is member, default (= related), related or active.
	Mode string
}

func (f ProjectFilter) query() string {
	v := url.Values{}
	for _, kv := range [][2]string{{"state", f.State}, {"owner", f.Owner}, {"name", f.Name}, {"mode", f.Mode}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v.Encode()
}

// Project is an Astakos project (docs/synnefo-wire.md#project-object).
type Project struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
	// Owner is the owner's UUID; empty for a system project.
	Owner         string    `json:"owner"`
	Homepage      string    `json:"homepage"`
	Description   string    `json:"description"`
	CreationDate  time.Time `json:"creation_date"`
	EndDate       time.Time `json:"end_date"`
	JoinPolicy    string    `json:"join_policy"`
	LeavePolicy   string    `json:"leave_policy"`
	MaxMembers    int64     `json:"max_members"`
	Private       bool      `json:"private"`
	SystemProject bool      `json:"system_project"`
	// Resources are capacities (not usage), per resource name.
	Resources map[string]ProjectResource `json:"resources"`
	// LastApplication is shown only to the owner and project admins, and
	// DeactivationDate only to them for a suspended or terminated project.
	LastApplication  *Application `json:"last_application"`
	DeactivationDate time.Time    `json:"deactivation_date"`
}

// Application is a project application (last_application of a project).
// For a modification, Resources holds only the requested entries.
type Application struct {
	ID int64 `json:"id"`
	// State is pending, approved, replaced, denied, dismissed or cancelled.
	State     string                     `json:"state"`
	Applicant string                     `json:"applicant"`
	Comments  string                     `json:"comments"`
	Resources map[string]ProjectResource `json:"resources"`
}

// Active reports whether the project grants quota: state active.
func (p *Project) Active() bool { return p.State == "active" }

// ProjectResource is a project's capacity for one resource.
type ProjectResource struct {
	MemberCapacity  int64 `json:"member_capacity"`
	ProjectCapacity int64 `json:"project_capacity"`
}

// Summary returns the project as the domain type (without the caller's
// membership, which only Memberships tells; see ProjectSummaries).
func (p *Project) Summary() quota.Project {
	return quota.Project{ID: p.ID, Name: p.Name, System: p.SystemProject, State: p.State, Owner: p.Owner}
}

// Projects lists projects (GET {account}/projects). Without a Mode the
// cloud returns the projects the caller is related to.
func (c *Client) Projects(ctx context.Context, f ProjectFilter) ([]Project, error) {
	var ps []Project
	begin, each := collect(&ps)
	if err := getJSONList(ctx, c, ServiceAccount, f.query(), begin, each, "projects"); err != nil {
		return nil, fmt.Errorf("projects: %w", err)
	}
	return ps, nil
}

// Project returns one project (GET {account}/projects/<id>).
func (c *Client) Project(ctx context.Context, id string) (*Project, error) {
	var p Project
	if err := c.getJSON(ctx, ServiceAccount, "", &p, "projects", id); err != nil {
		return nil, fmt.Errorf("project %s: %w", id, err)
	}
	return &p, nil
}

// Membership is a user's membership in a project (GET
// {account}/projects/memberships).
type Membership struct {
	ID      int64  `json:"id"`
	User    string `json:"user"`
	Project string `json:"project"`
	// State is requested, accepted, leave_requested, suspended, rejected,
	// cancelled or removed. Only accepted and leave_requested grant quota
	// (and only in an active project).
	State string `json:"state"`
	// AllowedActions are what the caller may do: leave, cancel, accept,
	// reject, remove.
	AllowedActions []string `json:"allowed_actions"`
}

// Accepted reports an accepted membership. leave_requested still grants
// quota but ends as soon as the leave is accepted, so it does not count.
func (m Membership) Accepted() bool { return m.State == "accepted" }

// Memberships lists memberships (GET {account}/projects/memberships), of
// one project when project is not empty. A non-admin sees its own and
// those of the projects it owns; an unknown project gives none.
func (c *Client) Memberships(ctx context.Context, project string) ([]Membership, error) {
	var query string
	if project != "" {
		query = "project=" + url.QueryEscape(project)
	}
	var ms []Membership
	begin, each := collect(&ms)
	if err := getJSONList(ctx, c, ServiceAccount, query, begin, each, "projects", "memberships"); err != nil {
		return nil, fmt.Errorf("memberships: %w", err)
	}
	return ms, nil
}

// ProjectSummaries returns the projects the caller is related to (member,
// former member of record, or owner), by id, with their state and the
// caller's own membership state: what a planner needs to tell "an active
// project where the owner is an accepted member" (docs/synnefo-wire.md#memberships).
func (c *Client) ProjectSummaries(ctx context.Context) (map[string]quota.Project, error) {
	id, err := c.user(ctx)
	if err != nil {
		return nil, fmt.Errorf("project summaries: %w", err)
	}
	// Streamed, keeping only what a summary holds: the full listings of
	// 100,000 projects and their memberships would be the daemon's
	// largest allocation.
	var out map[string]quota.Project
	if err := getJSONList(ctx, c, ServiceAccount, ProjectFilter{}.query(), func() { out = map[string]quota.Project{} }, func(p *Project) error {
		out[p.ID] = p.Summary()
		return nil
	}, "projects"); err != nil {
		return nil, fmt.Errorf("project summaries: projects: %w", err)
	}
	var mine map[string]string
	if err := getJSONList(ctx, c, ServiceAccount, "", func() { mine = map[string]string{} }, func(m *Membership) error {
		if m.User == id.UserID {
			mine[m.Project] = m.State
		}
		return nil
	}, "projects", "memberships"); err != nil {
		return nil, fmt.Errorf("project summaries: memberships: %w", err)
	}
	for project, state := range mine {
		p, ok := out[project]
		if !ok {
			// Listed memberships of projects the default mode leaves out
			// (a removed member's): known by id only.
			p = quota.Project{ID: project}
		}
		p.Membership = state
		out[project] = p
	}
	return out, nil
}

// ModifyProject submits a modification application that replaces the
// capacities of the given resources only (PUT {account}/projects/<id>;
// 201), and returns the application's id. Nothing changes until a project
// admin approves it (ProjectAction "approve"). Never retried.
func (c *Client) ModifyProject(ctx context.Context, id string, resources map[string]ProjectResource) (int64, error) {
	if len(resources) == 0 {
		return 0, fmt.Errorf("modify project %s: no resources", id)
	}
	u, _, err := c.endpoint(ctx, ServiceAccount, "projects", id)
	if err != nil {
		return 0, fmt.Errorf("modify project %s: %w", id, err)
	}
	body, err := json.Marshal(map[string]any{"resources": resources})
	if err != nil {
		return 0, fmt.Errorf("modify project %s: encoding request: %w", id, err)
	}
	var r struct {
		Application *int64 `json:"application"`
	}
	err = c.do(ctx, &request{service: ServiceAccount, method: http.MethodPut, url: u, body: body}, func(resp *http.Response) error {
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
		if r.Application == nil {
			return errors.New("no application id in the response")
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("modify project %s: %w", id, err)
	}
	return *r.Application, nil
}

// Project actions (POST {account}/projects/<id>/action). The first four
// decide an application and need its id; the others are a project
// admin's and take none.
const (
	ActionApprove   = "approve"
	ActionDeny      = "deny"
	ActionDismiss   = "dismiss"
	ActionCancel    = "cancel"
	ActionSuspend   = "suspend"
	ActionUnsuspend = "unsuspend"
	ActionTerminate = "terminate"
	ActionReinstate = "reinstate"
)

// ProjectAction decides application appID of project id (approve, deny,
// dismiss, cancel) or, with appID 0, changes the project's state (suspend,
// unsuspend, terminate, reinstate; project admins only). Approval applies
// the limits at once and reactivates a suspended or terminated project
// (docs/synnefo-wire.md#raising-limits). Never retried.
func (c *Client) ProjectAction(ctx context.Context, id, action string, appID int64, reason string) error {
	arg := map[string]any{"reason": reason}
	switch action {
	case ActionApprove, ActionDeny, ActionDismiss, ActionCancel:
		if appID <= 0 {
			return fmt.Errorf("project %s: %s needs an application id", id, action)
		}
		arg["app_id"] = appID
	case ActionSuspend, ActionUnsuspend, ActionTerminate, ActionReinstate:
	default:
		return fmt.Errorf("project %s: unknown action %q", id, action)
	}
	u, _, err := c.endpoint(ctx, ServiceAccount, "projects", id, "action")
	if err != nil {
		return fmt.Errorf("project %s %s: %w", id, action, err)
	}
	body, err := json.Marshal(map[string]any{action: arg})
	if err != nil {
		return fmt.Errorf("project %s %s: encoding request: %w", id, action, err)
	}
	if err := c.do(ctx, &request{service: ServiceAccount, method: http.MethodPost, url: u, body: body}, nil); err != nil {
		return fmt.Errorf("project %s %s: %w", id, action, err)
	}
	return nil
}

// catalogBatch bounds the uuids of one user_catalogs request: the server
// sets no limit, but proxies and the database do.
const catalogBatch = 200

// UserCatalog maps user UUIDs to display names, which Astakos keeps as the
// lower-cased e-mail (POST {account}/user_catalogs, or
// service/user_catalogs with a component token). Unknown UUIDs are left
// out. Lists longer than a batch are sent in several requests.
func (c *Client) UserCatalog(ctx context.Context, uuids []string) (map[string]string, error) {
	out := make(map[string]string, len(uuids))
	for start := 0; start < len(uuids); start += catalogBatch {
		batch := uuids[start:min(start+catalogBatch, len(uuids))]
		cat, err := c.userCatalogs(ctx, map[string][]string{"uuids": batch})
		if err != nil {
			return nil, fmt.Errorf("user catalog: %w", err)
		}
		for k, v := range cat.UUIDs {
			out[k] = v
		}
	}
	return out, nil
}

// DisplayNameCatalog maps display names (e-mails, matched without regard
// to case) to user UUIDs; keys keep the caller's spelling and unknown names
// are left out.
func (c *Client) DisplayNameCatalog(ctx context.Context, names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for start := 0; start < len(names); start += catalogBatch {
		batch := names[start:min(start+catalogBatch, len(names))]
		cat, err := c.userCatalogs(ctx, map[string][]string{"displaynames": batch})
		if err != nil {
			return nil, fmt.Errorf("display name catalog: %w", err)
		}
		for k, v := range cat.DisplayNames {
			out[k] = v
		}
	}
	return out, nil
}

type catalogs struct {
	UUIDs        map[string]string `json:"uuid_catalog"`
	DisplayNames map[string]string `json:"displayname_catalog"`
}

// userCatalogs posts one catalog request (a POST: not retried).
func (c *Client) userCatalogs(ctx context.Context, req map[string][]string) (*catalogs, error) {
	segs := []string{"user_catalogs"}
	if c.service {
		segs = []string{"service", "user_catalogs"}
	}
	u, _, err := c.endpoint(ctx, ServiceAccount, segs...)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	var cat catalogs
	err = c.do(ctx, &request{service: ServiceAccount, method: http.MethodPost, url: u, body: body}, func(resp *http.Response) error {
		if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cat, nil
}
