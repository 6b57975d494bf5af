package client

import (
	"context"
	"encoding/json"
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

// Project is an Astakos project (synnefo-api.md §3.2).
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
}

// ProjectResource is a project's capacity for one resource.
type ProjectResource struct {
	MemberCapacity  int64 `json:"member_capacity"`
	ProjectCapacity int64 `json:"project_capacity"`
}

// Summary returns the project as the domain type.
func (p *Project) Summary() quota.Project {
	return quota.Project{ID: p.ID, Name: p.Name, System: p.SystemProject, State: p.State}
}

// Projects lists projects (GET {account}/projects). Without a Mode the
// cloud returns the projects the caller is related to.
func (c *Client) Projects(ctx context.Context, f ProjectFilter) ([]Project, error) {
	var ps []Project
	if err := c.getJSON(ctx, ServiceAccount, f.query(), &ps, "projects"); err != nil {
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

// userCatalogBatch bounds the UUIDs of one user_catalogs call: the cloud sets
// no limit, but its proxy and database do.
const userCatalogBatch = 200

// UserCatalog maps user UUIDs to display names (POST {account}/user_catalogs).
// Astakos sets the display name to the user's lower-cased e-mail address.
// UUIDs the cloud does not know are left out, not an error.
func (c *Client) UserCatalog(ctx context.Context, uuids []string) (map[string]string, error) {
	out := make(map[string]string, len(uuids))
	for start := 0; start < len(uuids); start += userCatalogBatch {
		batch := uuids[start:min(start+userCatalogBatch, len(uuids))]
		u, _, err := c.endpoint(ctx, ServiceAccount, "user_catalogs")
		if err != nil {
			return nil, fmt.Errorf("user catalogs: %w", err)
		}
		body, err := json.Marshal(map[string][]string{"uuids": batch})
		if err != nil {
			return nil, fmt.Errorf("user catalogs: encoding request: %w", err)
		}
		var resp struct {
			UUIDCatalog map[string]string `json:"uuid_catalog"`
		}
		rq := &request{service: ServiceAccount, method: http.MethodPost, url: u, body: body}
		err = c.do(ctx, rq, func(r *http.Response) error {
			if err := json.NewDecoder(r.Body).Decode(&resp); err != nil {
				return fmt.Errorf("decoding response: %w", err)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("user catalogs: %w", err)
		}
		for id, name := range resp.UUIDCatalog {
			out[id] = name
		}
	}
	return out, nil
}
