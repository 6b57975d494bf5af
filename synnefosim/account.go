package synnefosim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/quotawatch/quotawatch/quota"
)

var resourceInfo = map[string][2]string{ // service, description
	quota.VM:             {"cyclades_compute", "Number of virtual machines"},
	quota.CPU:            {"cyclades_compute", "Number of virtual machine processors of running servers"},
	quota.RAM:            {"cyclades_compute", "Virtual machine memory size of running servers"},
	quota.Disk:           {"cyclades_compute", "Virtual machine disk size"},
	quota.PrivateNetwork: {"cyclades_network", "Number of private networks"},
	quota.FloatingIP:     {"cyclades_network", "Number of Floating IP addresses"},
	quota.DiskSpace:      {"pithos_object-store", "Pithos account storage space"},
}

func (c *Cloud) serveAccount(w http.ResponseWriter, r *http.Request, rest string) {
	rest = strings.TrimSuffix(rest, "/")
	switch {
	case rest == "/resources":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.serveResources(w)
	case rest == "/quotas":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.serveQuotas(w, r)
	case rest == "/service_quotas":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.serveServiceQuotas(w, r)
	case rest == "/service_project_quotas":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.serveServiceProjectQuotas(w, r)
	case rest == "/projects":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.serveProjects(w, r)
	case rest == "/projects/memberships":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.serveMemberships(w, r, "")
	case strings.HasPrefix(rest, "/projects/memberships/") && !strings.Contains(rest[len("/projects/memberships/"):], "/"):
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.serveMemberships(w, r, rest[len("/projects/memberships/"):])
	case strings.HasPrefix(rest, "/projects/") && !strings.Contains(rest[len("/projects/"):], "/"):
		switch r.Method {
		case http.MethodGet:
			c.serveProject(w, r, rest[len("/projects/"):])
		case http.MethodPut:
			c.modifyProject(w, r, rest[len("/projects/"):])
		default:
			notAllowed(w, http.MethodGet, http.MethodPut)
		}
	case strings.HasPrefix(rest, "/projects/") && strings.HasSuffix(rest, "/action") && strings.Count(rest, "/") == 3:
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		c.projectAction(w, r, strings.TrimSuffix(rest[len("/projects/"):], "/action"))
	case rest == "/user_catalogs" || rest == "/service/user_catalogs":
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		c.serveUserCatalogs(w, r, rest == "/service/user_catalogs")
	default:
		endpointNotFound(w)
	}
}

func (c *Cloud) serveResources(w http.ResponseWriter) {
	c.mu.Lock()
	res := map[string]any{}
	for _, r := range c.resources {
		info, ok := resourceInfo[r]
		if !ok {
			info = [2]string{"unknown", r}
		}
		var unit any
		if quota.UnitOf(r) == quota.Bytes {
			unit = "bytes"
		}
		res[r] = map[string]any{"service": info[0], "description": info[1], "unit": unit, "ui_visible": true, "api_visible": true}
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, res)
}

func (c *Cloud) serveQuotas(w http.ResponseWriter, r *http.Request) {
	u, ok := c.authAstakos(w, r)
	if !ok {
		return
	}
	c.lock()
	body, ok := c.cache[u.UUID]
	if !ok {
		body = c.encodeQuotas(u.UUID)
		c.cache[u.UUID] = body
	}
	c.mu.Unlock()
	writeRaw(w, http.StatusOK, "application/json; charset=utf-8", body)
}

// encodeQuotas builds the /quotas body by hand: it is the daemon's hot path
// (10,000 projects x 8 resources) and encoding/json with maps is several
// times slower. Callers hold c.mu.
func (c *Cloud) encodeQuotas(user string) []byte {
	ids := c.memberOf[user]
	b := make([]byte, 0, 64+len(ids)*len(c.resources)*160)
	b = append(b, '{')
	first := true
	for _, id := range ids {
		p := c.projects[id]
		if !p.holds(user) || !p.accepted(user) {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = appendJSONString(b, id)
		b = append(b, ": {"...)
		for i, res := range c.resources {
			if i > 0 {
				b = append(b, ", "...)
			}
			q := c.quotaOf(user, p, res)
			b = appendJSONString(b, res)
			b = append(b, `: {"limit": `...)
			b = strconv.AppendInt(b, q.Limit, 10)
			b = append(b, `, "usage": `...)
			b = strconv.AppendInt(b, q.Usage, 10)
			b = append(b, `, "pending": `...)
			b = strconv.AppendInt(b, q.Pending, 10)
			b = append(b, `, "project_limit": `...)
			b = strconv.AppendInt(b, q.ProjectLimit, 10)
			b = append(b, `, "project_usage": `...)
			b = strconv.AppendInt(b, q.ProjectUsage, 10)
			b = append(b, `, "project_pending": `...)
			b = strconv.AppendInt(b, q.ProjectPending, 10)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONString quotes s as JSON, taking the fast path for plain ASCII.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < 0x20 || ch == '"' || ch == '\\' || ch >= utf8.RuneSelf || ch == '<' || ch == '>' || ch == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

type projectQuota struct {
	ProjectLimit   int64 `json:"project_limit"`
	ProjectUsage   int64 `json:"project_usage"`
	ProjectPending int64 `json:"project_pending"`
}

// authService accepts only a component (service) token. It returns the
// resources that token reads: a component token its component's own
// (astakos.pending_app, every cyclades.* including the hidden ones, or
// pithos.diskspace), the scenario's service token all of them.
func (c *Cloud) authService(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	t := token(r)
	if t == "" {
		writeFault(w, http.StatusUnauthorized, "", "Access denied. No authentication token", "")
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	all := append(slices.Clone(c.resources), hiddenResources...)
	if t == c.serviceToken && t != "" {
		return all, true
	}
	comp, ok := c.components[t]
	if !ok {
		writeFault(w, http.StatusUnauthorized, "", "Invalid X-Auth-Token", "")
		return nil, false
	}
	if comp == "astakos" {
		return []string{quota.PendingApp}, true
	}
	var own []string
	for _, res := range all {
		if strings.HasPrefix(res, comp+".") {
			own = append(own, res)
		}
	}
	return own, true
}

// listFilter parses a comma-separated query parameter into a set.
func listFilter(raw string) map[string]bool {
	filter := map[string]bool{}
	for _, id := range strings.Split(raw, ",") {
		if id != "" {
			filter[id] = true
		}
	}
	return filter
}

// serveServiceQuotas is GET /service_quotas (docs/synnefo-wire.md#service-quotas): user → project →
// resource, every resource including hidden ones.
func (c *Cloud) serveServiceQuotas(w http.ResponseWriter, r *http.Request) {
	resources, ok := c.authService(w, r)
	if !ok {
		return
	}
	rawUser := r.URL.Query().Get("user")
	users, projects := listFilter(rawUser), listFilter(r.URL.Query().Get("project"))
	c.lock()
	out := map[string]map[string]map[string]quota.Quota{}
	for _, u := range c.userOrder {
		if len(users) > 0 && !users[u] {
			continue
		}
		m := map[string]map[string]quota.Quota{}
		for _, id := range c.memberOf[u] {
			p := c.projects[id]
			// Every holding, former members' included (unlike /quotas).
			if !p.holds(u) || (len(projects) > 0 && !projects[id]) {
				continue
			}
			qs := make(map[string]quota.Quota, len(resources))
			for _, res := range resources {
				qs[res] = c.quotaOf(u, p, res)
			}
			m[id] = qs
		}
		out[u] = m
	}
	c.mu.Unlock()
	if len(users) > 0 && len(out) == 0 {
		writeFault(w, http.StatusNotFound, "", fmt.Sprintf("No user with UUID '%s'", rawUser), "")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Cloud) serveServiceProjectQuotas(w http.ResponseWriter, r *http.Request) {
	resources, ok := c.authService(w, r)
	if !ok {
		return
	}
	raw := r.URL.Query().Get("project")
	filter := listFilter(raw)
	c.lock()
	out := map[string]map[string]projectQuota{}
	for _, id := range c.projectOrder {
		p := c.projects[id]
		if p.State == "deleted" || p.State == "uninitialized" || (len(filter) > 0 && !filter[id]) {
			continue
		}
		m := make(map[string]projectQuota, len(resources))
		for _, res := range resources {
			q := c.quotaOf("", p, res)
			m[res] = projectQuota{ProjectLimit: q.ProjectLimit, ProjectUsage: q.ProjectUsage, ProjectPending: q.ProjectPending}
		}
		out[id] = m
	}
	c.mu.Unlock()
	if len(filter) > 0 && len(out) == 0 {
		writeFault(w, http.StatusNotFound, "", fmt.Sprintf("No project with UUID '%s'", raw), "")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type capacity struct {
	MemberCapacity  int64 `json:"member_capacity"`
	ProjectCapacity int64 `json:"project_capacity"`
}

// projectObject is a project as GET /projects/<id> renders it (docs/synnefo-wire.md#project-object).
type projectObject struct {
	ID            string              `json:"id"`
	State         string              `json:"state"`
	CreationDate  string              `json:"creation_date"`
	Name          string              `json:"name"`
	Owner         *string             `json:"owner"`
	Homepage      string              `json:"homepage"`
	Description   string              `json:"description"`
	EndDate       string              `json:"end_date"`
	JoinPolicy    string              `json:"join_policy"`
	LeavePolicy   string              `json:"leave_policy"`
	MaxMembers    int64               `json:"max_members"`
	Private       bool                `json:"private"`
	SystemProject bool                `json:"system_project"`
	Resources     map[string]capacity `json:"resources"`
	// Shown to project admins and the owner only.
	LastApplication  *applicationObject `json:"last_application,omitempty"`
	DeactivationDate string             `json:"deactivation_date,omitempty"`
}

// projectJSON renders a project as the caller sees it. Callers hold c.mu.
func (c *Cloud) projectJSON(p *projectState, caller string) projectObject {
	o := projectObject{
		ID: p.ID, State: p.State, CreationDate: c.timestamp(p.created), Name: p.Name,
		EndDate:    c.timestamp(p.created.AddDate(10, 0, 0)),
		JoinPolicy: "moderated", LeavePolicy: "auto", MaxMembers: quota.Unlimited,
		Private: p.Private, SystemProject: p.System, Resources: map[string]capacity{},
	}
	if c.admins[caller] || (!p.System && p.Owner == caller) {
		if a := c.apps[p.lastApp]; a != nil {
			ao := c.applicationJSON(a)
			o.LastApplication = &ao
		}
		if (p.State == "suspended" || p.State == "terminated") && !p.deactivated.IsZero() {
			o.DeactivationDate = c.timestamp(p.deactivated)
		}
	}
	if p.System {
		// Astakos's make_base_project: a closed, private, one-member
		// project described after its user, ending in 100 years.
		o.JoinPolicy, o.LeavePolicy, o.MaxMembers = "closed", "closed", 1
		o.Description = "system project for user " + strings.ToLower(c.users[p.ID].Name)
		o.EndDate = c.timestamp(p.created.AddDate(100, 0, 0))
	} else if p.Owner != "" {
		owner := p.Owner
		o.Owner = &owner
	}
	for _, r := range c.resources {
		l := p.Limits[r] // capacities, whatever the state (docs/synnefo-wire.md#project-object)
		o.Resources[r] = capacity{MemberCapacity: l.Member, ProjectCapacity: l.Project}
	}
	return o
}

func (c *Cloud) serveProjects(w http.ResponseWriter, r *http.Request) {
	u, ok := c.authAstakos(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state, owner, name, mode := q.Get("state"), q.Get("owner"), q.Get("name"), q.Get("mode")
	if state != "" && (!projectStates[state]) {
		writeFault(w, http.StatusBadRequest, "", "Unrecognized state "+state, "")
		return
	}
	switch mode {
	case "", "default", "related", "member", "active":
	default:
		writeFault(w, http.StatusBadRequest, "", fmt.Sprintf("Unrecognized mode '%s'.", mode), "")
		return
	}
	c.mu.Lock()
	out := []projectObject{}
	admin := c.admins[u.UUID]
	for _, id := range c.projectOrder {
		p := c.projects[id]
		var in bool
		switch mode {
		case "member":
			in = p.accepted(u.UUID) && p.State == "active"
		case "active":
			in = admin || (p.State == "active" && !p.Private)
		default:
			in = admin || p.related(u.UUID) || (p.Owner == u.UUID && !p.System)
		}
		if !in || (state != "" && p.State != state) || (owner != "" && (p.System || p.Owner != owner)) || (name != "" && p.Name != name) {
			continue
		}
		out = append(out, c.projectJSON(p, u.UUID))
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (c *Cloud) serveProject(w http.ResponseWriter, r *http.Request, id string) {
	u, ok := c.authAstakos(w, r)
	if !ok {
		return
	}
	c.mu.Lock()
	p := c.projects[id]
	var o projectObject
	allowed := p != nil && (c.admins[u.UUID] || p.related(u.UUID) || (!p.System && p.Owner == u.UUID) || (p.State == "active" && !p.Private))
	if allowed {
		o = c.projectJSON(p, u.UUID)
	}
	c.mu.Unlock()
	switch {
	case p == nil:
		writeFault(w, http.StatusNotFound, "", fmt.Sprintf("Project %s does not exist.", id), "")
	case !allowed:
		writeFault(w, http.StatusForbidden, "", "You do not have access to this project.", "")
	default:
		writeJSON(w, http.StatusOK, o)
	}
}
