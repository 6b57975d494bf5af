package synnefosim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// resourceLabels are the names Cyclades puts in 413 details (docs/synnefo-wire.md#server-reassign);
// unmapped resources appear raw.
var resourceLabels = map[string]string{
	quota.Disk: "Disk", quota.VM: "Virtual Machine", quota.CPU: "CPU", quota.RAM: "RAM",
	quota.FloatingIP: "Floating IP address", quota.PrivateNetwork: "Private Network",
	quota.DiskSpace: "Storage space", quota.PendingApp: "Pending Applications",
}

func label(resource string) string {
	if l, ok := resourceLabels[resource]; ok {
		return l
	}
	return resource
}

type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

func links(base, path string) []link {
	return []link{{Href: base + path, Rel: "self"}, {Href: base + path, Rel: "bookmark"}}
}

// visible reports whether the caller sees an item: owned, or shared to one
// of the caller's active projects (docs/synnefo-wire.md#visibility-and-the-project-field). Callers hold c.mu.
func (c *Cloud) visible(u *User, owner, project string, shared bool) bool {
	if owner == u.UUID {
		return true
	}
	if !shared {
		return false
	}
	p := c.projects[project]
	return p != nil && p.State == "active" && p.accepted(u.UUID)
}

// --- action bodies ---

type actionError struct {
	status  int
	key     string
	msg     string
	details string
}

// parseAction reads a Cyclades reassign body: a JSON object with exactly
// one key (the action) whose value is an object.
func parseAction(r *http.Request) (string, map[string]json.RawMessage, *actionError) {
	return parseActionOf(r, "reassign")
}

// parseActionOf is parseAction accepting the given actions.
func parseActionOf(r *http.Request, actions ...string) (string, map[string]json.RawMessage, *actionError) {
	if msg := checkJSONContentType(r); msg != "" {
		return "", nil, &actionError{status: 400, msg: msg}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req map[string]json.RawMessage
	if err != nil || json.Unmarshal(body, &req) != nil {
		return "", nil, &actionError{status: 400, msg: "Could not decode request body as JSON"}
	}
	if len(req) == 0 {
		// Synnefo takes req.keys()[0] of an empty dict and crashes.
		return "", nil, &actionError{status: 500, msg: "Unexpected error"}
	}
	if len(req) != 1 {
		return "", nil, &actionError{status: 400, msg: "Malformed request."}
	}
	var action string
	var raw json.RawMessage
	for k, v := range req {
		action, raw = k, v
	}
	if !slices.Contains(actions, action) {
		return action, nil, &actionError{status: 400, msg: fmt.Sprintf("Action %s not supported.", action)}
	}
	var arg map[string]json.RawMessage
	if json.Unmarshal(raw, &arg) != nil || arg == nil {
		return action, nil, &actionError{status: 400, msg: "Invalid argument."}
	}
	return action, arg, nil
}

// sharedArg reads shared_to_project as the views do,
// args.get("shared_to_project", False) with Python truthiness (so "false"
// and 1 are true), and refuses true when sharing is disabled. It runs
// before the project and item lookups (docs/synnefo-wire.md#sharing-on-reassign).
func (c *Cloud) sharedArg(arg map[string]json.RawMessage) (bool, *actionError) {
	shared := truthy(arg["shared_to_project"])
	if shared && !c.sharingEnabled() {
		return false, &actionError{status: 403, msg: "Sharing resource to the members of the project is not permitted"}
	}
	return shared, nil
}

// truthy is Python's truth value of a JSON value (absent is false).
func truthy(raw json.RawMessage) bool {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// reassignArgs extracts the destination project.
func reassignArgs(arg map[string]json.RawMessage) (string, *actionError) {
	var project string
	if raw, ok := arg["project"]; !ok || json.Unmarshal(raw, &project) != nil {
		return "", &actionError{status: 400, msg: "Missing 'project' attribute."}
	}
	return project, nil
}

// checkMove applies Astakos's commission checks for moving provisions of
// owner from one project to another: the destination needs a holding
// (docs/synnefo-wire.md#membership-and-project-states) and room, the
// source must hold what it releases (docs/synnefo-wire.md#release-failures).
// Callers hold c.mu.
func (c *Cloud) checkMove(owner, src, dest string, ps []provision) *actionError {
	p := c.projects[dest]
	if p == nil || !p.holds(owner) {
		return &actionError{status: 400, msg: fmt.Sprintf("User %s not in project %s", owner, dest)}
	}
	if e := c.checkRelease(owner, src, ps, "overLimit"); e != nil {
		return e
	}
	for _, pr := range ps {
		if pr.n == 0 {
			continue
		}
		q := c.quotaOf(owner, p, pr.resource)
		if !q.Fits(pr.n) {
			return &actionError{status: 413, key: "overLimit", msg: "Resource Limit Exceeded for your account.",
				details: fmt.Sprintf("Limit for resource '%s' exceeded for your account. Available: %d, Requested: %d", label(pr.resource), available(q), pr.n)}
		}
	}
	return nil
}

// checkRelease fails a release of more than the quotaholder records as
// committed (usage_min) at the user or project level of the source, as
// Astakos's Release._prepare does: NoQuantityError, rendered as a 413 with
// negative Available and Requested. key is the fault key of the service.
// Callers hold c.mu.
func (c *Cloud) checkRelease(owner, src string, ps []provision, key string) *actionError {
	for _, pr := range ps {
		if pr.n <= 0 {
			continue
		}
		h, ph := holding{owner, src, pr.resource}, pholding{src, pr.resource}
		committed := min(c.usage[h]-c.drift[h], c.projUsage[ph]-c.projDrift[ph])
		if committed-pr.n < 0 {
			return &actionError{status: 413, key: key, msg: "Resource Limit Exceeded for your account.",
				details: fmt.Sprintf("Limit for resource '%s' exceeded for your account. Available: %d, Requested: %d", label(pr.resource), -committed, -pr.n)}
		}
	}
	return nil
}

func writeActionError(w http.ResponseWriter, e *actionError) {
	writeFault(w, e.status, e.key, e.msg, e.details)
}

func (c *Cloud) moveAll(owner, from, to string, ps []provision) {
	for _, pr := range ps {
		c.add(owner, from, pr.resource, -pr.n)
		c.add(owner, to, pr.resource, pr.n)
	}
}

// --- compute ---

type serverJSON struct {
	ID             int               `json:"id"`
	Name           string            `json:"name"`
	Links          []link            `json:"links"`
	UserID         string            `json:"user_id"`
	TenantID       string            `json:"tenant_id"`
	Shared         bool              `json:"shared_to_project"`
	Status         string            `json:"status"`
	TaskState      string            `json:"SNF:task_state"`
	Progress       int               `json:"progress"`
	HostID         string            `json:"hostId"`
	Created        string            `json:"created"`
	Updated        string            `json:"updated"`
	Flavor         idLinks           `json:"flavor"`
	Image          map[string]any    `json:"image"`
	Suspended      bool              `json:"suspended"`
	Metadata       map[string]string `json:"metadata"`
	Tags           []string          `json:"tags"`
	Attachments    []any             `json:"attachments"`
	Addresses      map[string]any    `json:"addresses"`
	Volumes        []int64           `json:"volumes"`
	Diagnostics    []any             `json:"diagnostics"`
	SecurityGroups []map[string]any  `json:"security_groups"`
	KeyName        *string           `json:"key_name"`
	KeyNames       []string          `json:"SNF:key_names"`
	ConfigDrive    string            `json:"config_drive"`
	AccessIPv4     string            `json:"accessIPv4"`
	AccessIPv6     string            `json:"accessIPv6"`
	FQDN           *string           `json:"SNF:fqdn"`
	PortForwarding map[string]any    `json:"SNF:port_forwarding"`
	Deleted        bool              `json:"deleted"`
	Rescue         bool              `json:"SNF:rescue"`
}

type idLinks struct {
	ID    int    `json:"id"`
	Links []link `json:"links"`
}

// serverObject renders a server. Callers hold c.mu.
func (c *Cloud) serverObject(base string, s *VM) serverJSON {
	var vols []int64
	for _, vid := range c.volumeOrder {
		if v := c.volumes[vid]; v.Server == s.ID {
			n, _ := strconv.ParseInt(v.ID, 10, 64)
			vols = append(vols, n)
		}
	}
	if vols == nil {
		vols = []int64{}
	}
	progress := 100
	if s.Status == "BUILD" {
		progress = 0
	}
	ts := c.timestamp(c.now())
	return serverJSON{
		ID: s.ID, Name: s.Name, Links: links(base, "/compute/v2.0/servers/"+strconv.Itoa(s.ID)),
		UserID: s.Owner, TenantID: s.Project, Shared: s.Shared, Status: s.Status, TaskState: s.Task,
		Progress: progress, Created: ts, Updated: ts,
		Flavor:   idLinks{ID: s.Flavor, Links: links(base, "/compute/v2.0/flavors/"+strconv.Itoa(s.Flavor))},
		Image:    map[string]any{"id": "", "links": []link{}},
		Metadata: map[string]string{}, Tags: []string{}, Attachments: []any{}, Addresses: map[string]any{},
		Volumes: vols, Diagnostics: []any{}, SecurityGroups: []map[string]any{{"name": "default"}},
		KeyNames: []string{}, PortForwarding: map[string]any{},
	}
}

func (c *Cloud) serveCompute(w http.ResponseWriter, r *http.Request, rest string) {
	base := c.baseURL(r)
	switch {
	case rest == "/servers" || rest == "/servers/":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.listServers(w, r, base, false)
	case rest == "/servers/detail":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.listServers(w, r, base, true)
	case rest == "/flavors" || rest == "/flavors/" || rest == "/flavors/detail":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.listFlavors(w, r, base, rest == "/flavors/detail")
	case strings.HasPrefix(rest, "/servers/") && strings.Count(rest, "/") == 2 && rest != "/servers/detail/":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.getServer(w, r, base, rest[len("/servers/"):])
	case strings.HasPrefix(rest, "/servers/") && strings.HasSuffix(rest, "/action") && strings.Count(rest, "/") == 3:
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		c.serverAction(w, r, strings.TrimSuffix(rest[len("/servers/"):], "/action"))
	case strings.HasPrefix(rest, "/flavors/") && strings.Count(rest, "/") == 2 && rest != "/flavors/detail/":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.getFlavor(w, r, base, rest[len("/flavors/"):])
	default:
		endpointNotFound(w)
	}
}

func (c *Cloud) listServers(w http.ResponseWriter, r *http.Request, base string, detail bool) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	c.lock()
	var out []any
	for _, id := range c.serverOrder {
		s := c.servers[id]
		if !c.visible(u, s.Owner, s.Project, s.Shared) {
			continue
		}
		if detail {
			out = append(out, c.serverObject(base, s))
		} else {
			out = append(out, map[string]any{"id": s.ID, "name": s.Name, "links": links(base, "/compute/v2.0/servers/"+strconv.Itoa(s.ID))})
		}
	}
	c.mu.Unlock()
	if out == nil {
		out = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"servers": out})
}

// lookupServer finds a visible server; it writes the error otherwise.
// Callers hold c.mu.
func (c *Cloud) lookupServer(u *User, id string) (*VM, *actionError) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return nil, &actionError{status: 400, msg: "Invalid server ID."}
	}
	s := c.servers[n]
	if s == nil || !c.visible(u, s.Owner, s.Project, s.Shared) {
		return nil, &actionError{status: 404, msg: "Server not found."}
	}
	return s, nil
}

func (c *Cloud) getServer(w http.ResponseWriter, r *http.Request, base, id string) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	c.lock()
	s, e := c.lookupServer(u, id)
	var obj serverJSON
	if e == nil {
		obj = c.serverObject(base, s)
	}
	c.mu.Unlock()
	if e != nil {
		writeActionError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": obj})
}

func (c *Cloud) flavorObject(base string, f *Flavor, detail bool) map[string]any {
	o := map[string]any{"id": f.ID, "name": f.Name, "links": links(base, "/compute/v2.0/flavors/"+strconv.Itoa(f.ID))}
	if detail {
		o["vcpus"], o["ram"], o["disk"] = f.VCPUs, f.RAM, f.Disk
		o["SNF:disk_template"], o["SNF:allow_create"], o["SNF:volume_type"] = "drbd", true, 1
	}
	return o
}

func (c *Cloud) listFlavors(w http.ResponseWriter, r *http.Request, base string, detail bool) {
	if _, ok := c.authUser(w, r); !ok {
		return
	}
	c.lock()
	ids := make([]int, 0, len(c.flavors))
	for id := range c.flavors {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		// Retired flavors leave the listing (docs/synnefo-wire.md#retired-flavors).
		if !c.flavors[id].Deleted {
			out = append(out, c.flavorObject(base, c.flavors[id], detail))
		}
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"flavors": out})
}

func (c *Cloud) getFlavor(w http.ResponseWriter, r *http.Request, base, id string) {
	if _, ok := c.authUser(w, r); !ok {
		return
	}
	n, err := strconv.Atoi(id)
	if err != nil {
		// The route only matches digits.
		endpointNotFound(w)
		return
	}
	c.lock()
	// Deleted flavors are served here, unlike in the listing.
	f := c.flavors[n]
	var obj map[string]any
	if f != nil {
		obj = c.flavorObject(base, f, true)
	}
	c.mu.Unlock()
	if obj == nil {
		writeFault(w, http.StatusNotFound, "", "Flavor not found.", "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": obj})
}

func (c *Cloud) serverAction(w http.ResponseWriter, r *http.Request, id string) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	action, arg, e := parseActionOf(r, "reassign", "shutdown", "start")
	if e != nil {
		writeActionError(w, e)
		return
	}
	if action != "reassign" {
		c.powerAction(w, u, id, action)
		return
	}
	shared, e := c.sharedArg(arg)
	if e != nil {
		writeActionError(w, e)
		return
	}
	c.lock()
	defer c.mu.Unlock()
	s, e := c.lookupServer(u, id)
	if e != nil {
		writeActionError(w, e)
		return
	}
	dest, e := reassignArgs(arg)
	if e != nil {
		writeActionError(w, e)
		return
	}
	switch {
	case s.Status == "BUILD":
		writeFault(w, http.StatusConflict, "buildInProgress", fmt.Sprintf("Server '%d' is being built.", s.ID), "")
		return
	case s.Task != "":
		writeFault(w, http.StatusBadRequest, "", fmt.Sprintf("Cannot perform 'REASSIGN' action while there is a pending '%s'.", s.Task), "")
		return
	}
	sys := c.systemVolume(s.ID)
	if dest == s.Project {
		// Same project: no commission, only the sharing flag changes.
		s.Shared = shared
		if sys != nil {
			sys.Shared = shared
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	ps := c.serverQuantities(s)
	if sys != nil {
		ps = append(ps, provision{quota.Disk, sys.Size << 30})
	}
	if e := c.checkMove(s.Owner, s.Project, dest, ps); e != nil {
		writeActionError(w, e)
		return
	}
	c.chargeServer(s, -1)
	s.Project, s.Shared = dest, shared
	c.chargeServer(s, 1)
	if sys != nil {
		// The system volume follows with the same project and flag.
		c.add(sys.Owner, sys.Project, quota.Disk, -sys.Size<<30)
		sys.Project, sys.Shared = dest, shared
		c.add(sys.Owner, sys.Project, quota.Disk, sys.Size<<30)
	}
	w.WriteHeader(http.StatusOK)
}

// powerAction is a server's shutdown or start: 202 at once, and the
// status changes when the action completes, ActionDelay later on the
// cloud's clock (by the next request when 0). Stopping releases the
// server's cpu and ram, so it needs them recorded at the source
// (docs/synnefo-wire.md#server-shutdown-and-start).
func (c *Cloud) powerAction(w http.ResponseWriter, u *User, id, action string) {
	c.lock()
	defer c.mu.Unlock()
	s, e := c.lookupServer(u, id)
	if e != nil {
		writeActionError(w, e)
		return
	}
	op, from, to := "STOP", "ACTIVE", "STOPPED"
	if action == "start" {
		op, from, to = "START", "STOPPED", "ACTIVE"
	}
	switch {
	case s.Status == "BUILD":
		writeFault(w, http.StatusConflict, "buildInProgress", fmt.Sprintf("Server '%d' is being built.", s.ID), "")
		return
	case s.Task != "":
		writeFault(w, http.StatusBadRequest, "", fmt.Sprintf("Cannot perform '%s' action while there is a pending '%s'.", op, s.Task), "")
		return
	case s.Status != from:
		writeFault(w, http.StatusConflict, "", fmt.Sprintf("Cannot perform '%s' action while server is in '%s' state.", op, s.Status), "")
		return
	}
	if op == "STOP" {
		f := c.flavors[s.Flavor]
		if e := c.checkRelease(s.Owner, s.Project, []provision{{quota.CPU, f.VCPUs}, {quota.RAM, f.RAM << 20}}, "overLimit"); e != nil {
			writeActionError(w, e)
			return
		}
	}
	s.Task = op
	s.change = &statusChange{to: to, at: c.now().Add(c.actionDelay)}
	c.settling++
	w.WriteHeader(http.StatusAccepted)
}

// --- network ---

type floatingIPJSON struct {
	ID                string  `json:"id"`
	FloatingIPAddress string  `json:"floating_ip_address"`
	FixedIPAddress    *string `json:"fixed_ip_address"`
	FloatingNetworkID *string `json:"floating_network_id"`
	PortID            *string `json:"port_id"`
	InstanceID        *string `json:"instance_id"`
	UserID            string  `json:"user_id"`
	TenantID          string  `json:"tenant_id"`
	Shared            bool    `json:"shared_to_project"`
	Deleted           bool    `json:"deleted"`
}

func fipObject(f *FloatingIP) floatingIPJSON {
	o := floatingIPJSON{ID: f.ID, FloatingIPAddress: f.Address, UserID: f.Owner, TenantID: f.Project, Shared: f.Shared}
	if f.Network != "" {
		n := f.Network
		o.FloatingNetworkID = &n
	}
	if f.Server != 0 {
		inst, port := strconv.Itoa(f.Server), f.ID
		o.InstanceID, o.PortID = &inst, &port
	}
	return o
}

type networkJSON struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Links        []link   `json:"links"`
	UserID       *string  `json:"user_id"`
	TenantID     *string  `json:"tenant_id"`
	Shared       bool     `json:"shared_to_project"`
	Type         string   `json:"type"`
	Status       string   `json:"status"`
	Public       bool     `json:"public"`
	SharedNet    bool     `json:"shared"`
	External     bool     `json:"router:external"`
	AdminStateUp bool     `json:"admin_state_up"`
	Subnets      []string `json:"subnets"`
	FloatingPool bool     `json:"SNF:floating_ip_pool"`
	Created      string   `json:"created"`
	Updated      string   `json:"updated"`
	Deleted      bool     `json:"deleted"`
}

func (c *Cloud) networkObject(base string, n *Network) networkJSON {
	ts := c.timestamp(c.now())
	o := networkJSON{
		ID: n.ID, Name: n.Name, Links: links(base, "/network/v2.0/networks/"+n.ID), Shared: n.Shared,
		Type: "MAC_FILTERED", Status: "ACTIVE", Public: n.Public, SharedNet: n.Public, External: n.Public,
		AdminStateUp: true, Subnets: []string{}, FloatingPool: n.Public, Created: ts, Updated: ts,
	}
	if n.Public {
		o.Type = "IP_LESS_ROUTED"
	} else {
		owner, project := n.Owner, n.Project
		o.UserID, o.TenantID = &owner, &project
	}
	return o
}

func (c *Cloud) serveNetwork(w http.ResponseWriter, r *http.Request, rest string) {
	base := c.baseURL(r)
	seg := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case (seg[0] == "floatingips" || seg[0] == "networks") && (len(seg) == 1 || (len(seg) == 2 && (seg[1] == "" || seg[1] == "detail"))):
		if r.Method != http.MethodGet {
			// Only what this cloud serves: it creates nothing.
			notAllowed(w, http.MethodGet)
			return
		}
		c.listNetwork(w, r, base, seg[0])
	case (seg[0] == "floatingips" || seg[0] == "networks") && len(seg) == 2:
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		c.getNetworkItem(w, r, base, seg[0], seg[1])
	case (seg[0] == "floatingips" || seg[0] == "networks") && len(seg) == 3 && seg[2] == "action":
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		c.networkAction(w, r, seg[0], seg[1])
	default:
		endpointNotFound(w)
	}
}

func (c *Cloud) listNetwork(w http.ResponseWriter, r *http.Request, base, kind string) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	c.lock()
	out := []any{}
	if kind == "floatingips" {
		for _, id := range c.fipOrder {
			if f := c.fips[id]; c.visible(u, f.Owner, f.Project, f.Shared) {
				out = append(out, fipObject(f))
			}
		}
	} else {
		for _, id := range c.networkOrder {
			if n := c.networks[id]; n.Public || c.visible(u, n.Owner, n.Project, n.Shared) {
				out = append(out, c.networkObject(base, n))
			}
		}
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{kind: out})
}

func (c *Cloud) getNetworkItem(w http.ResponseWriter, r *http.Request, base, kind, id string) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	c.lock()
	var obj any
	if kind == "floatingips" {
		if f := c.fips[id]; f != nil && c.visible(u, f.Owner, f.Project, f.Shared) {
			obj = map[string]any{"floatingip": fipObject(f)}
		}
	} else if n := c.networks[id]; n != nil && (n.Public || c.visible(u, n.Owner, n.Project, n.Shared)) {
		obj = map[string]any{"network": c.networkObject(base, n)}
	}
	c.mu.Unlock()
	if obj == nil {
		if kind == "floatingips" {
			writeFault(w, http.StatusNotFound, "", fmt.Sprintf("Floating IP with ID %s does not exist.", id), "")
		} else {
			writeFault(w, http.StatusNotFound, "", fmt.Sprintf("Network with ID %s does not exist.", id), "")
		}
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

func (c *Cloud) networkAction(w http.ResponseWriter, r *http.Request, kind, id string) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	_, arg, e := parseAction(r)
	if e != nil {
		writeActionError(w, e)
		return
	}
	sharedTo, e := c.sharedArg(arg)
	if e != nil {
		writeActionError(w, e)
		return
	}
	c.lock()
	defer c.mu.Unlock()
	var owner, project, resource string
	var shared *bool
	var setProject func(string)
	if kind == "floatingips" {
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			writeFault(w, http.StatusBadRequest, "", "Invalid Floating IP ID "+id, "")
			return
		}
		f := c.fips[id]
		if f == nil || !c.visible(u, f.Owner, f.Project, f.Shared) {
			writeFault(w, http.StatusNotFound, "", fmt.Sprintf("Floating IP with ID %s does not exist.", id), "")
			return
		}
		if f.Owner != u.UUID {
			writeFault(w, http.StatusForbidden, "", "Action 'reassign' is allowed only to the owner of the floating IP.", "")
			return
		}
		owner, project, resource, shared = f.Owner, f.Project, quota.FloatingIP, &f.Shared
		setProject = func(p string) { f.Project = p }
	} else {
		n := c.networks[id]
		if n == nil || !(n.Public || c.visible(u, n.Owner, n.Project, n.Shared)) {
			writeFault(w, http.StatusNotFound, "", fmt.Sprintf("Network with ID %s does not exist.", id), "")
			return
		}
		if n.Public {
			writeFault(w, http.StatusForbidden, "", "Cannot reassign public network", "")
			return
		}
		if n.Owner != u.UUID {
			writeFault(w, http.StatusForbidden, "", "Action 'reassign' is allowed only to the owner of the network.", "")
			return
		}
		owner, project, resource, shared = n.Owner, n.Project, quota.PrivateNetwork, &n.Shared
		setProject = func(p string) { n.Project = p }
	}
	dest, e := reassignArgs(arg)
	if e != nil {
		writeActionError(w, e)
		return
	}
	if dest != project {
		ps := []provision{{resource, 1}}
		if e := c.checkMove(owner, project, dest, ps); e != nil {
			writeActionError(w, e)
			return
		}
		c.moveAll(owner, project, dest, ps)
		setProject(dest)
	}
	*shared = sharedTo
	w.WriteHeader(http.StatusOK)
}

// --- volume ---

type attachmentJSON struct {
	ServerID    int   `json:"server_id"`
	VolumeID    int64 `json:"volume_id"`
	DeviceIndex int   `json:"device_index"`
}

type volumeJSON struct {
	ID                  string            `json:"id"`
	DisplayName         string            `json:"display_name"`
	Links               []link            `json:"links"`
	Status              string            `json:"status"`
	Size                int64             `json:"size"`
	DisplayDescription  string            `json:"display_description"`
	CreatedAt           string            `json:"created_at"`
	Metadata            map[string]string `json:"metadata"`
	SnapshotID          *string           `json:"snapshot_id"`
	SourceVolID         *string           `json:"source_volid"`
	ImageID             *string           `json:"image_id"`
	Attachments         []attachmentJSON  `json:"attachments"`
	VolumeType          int               `json:"volume_type"`
	Deleted             bool              `json:"deleted"`
	DeleteOnTermination bool              `json:"delete_on_termination"`
	UserID              string            `json:"user_id"`
	TenantID            string            `json:"tenant_id"`
	Shared              bool              `json:"shared_to_project"`
}

func (c *Cloud) volumeObject(base string, v *Volume) volumeJSON {
	n, _ := strconv.ParseInt(v.ID, 10, 64)
	o := volumeJSON{
		ID: v.ID, DisplayName: v.Name, Links: links(base, "/volume/v2.0/volumes/"+v.ID), Status: "available",
		Size: v.Size, CreatedAt: c.timestamp(c.now()), Metadata: map[string]string{},
		Attachments: []attachmentJSON{}, VolumeType: 1, DeleteOnTermination: true,
		UserID: v.Owner, TenantID: v.Project, Shared: v.Shared,
	}
	if v.Server != 0 {
		o.Status = "in_use"
		o.Attachments = append(o.Attachments, attachmentJSON{ServerID: v.Server, VolumeID: n, DeviceIndex: v.Index})
	}
	return o
}

const html500 = "<!DOCTYPE html>\n<html><head><title>Server Error (500)</title></head><body><h1>Server Error (500)</h1></body></html>\n"

func (c *Cloud) serveVolume(w http.ResponseWriter, r *http.Request, rest string) {
	base := c.baseURL(r)
	seg := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if seg[0] != "volumes" {
		endpointNotFound(w)
		return
	}
	switch {
	case len(seg) == 1 || (len(seg) == 2 && seg[1] == "") || (len(seg) == 2 && seg[1] == "detail"):
		if r.Method != http.MethodGet {
			// The /volumes demuxer answers with a bare 405 (docs/synnefo-wire.md#volume-action-quirk).
			w.Header().Set("Allow", "GET")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		c.listVolumes(w, r, base, len(seg) == 2 && seg[1] == "detail")
	case len(seg) == 2:
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		c.getVolume(w, r, base, seg[1])
	case len(seg) == 3 && seg[2] == "action":
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		c.volumeAction(w, r, seg[1])
	default:
		endpointNotFound(w)
	}
}

func (c *Cloud) listVolumes(w http.ResponseWriter, r *http.Request, base string, detail bool) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	c.lock()
	out := []any{}
	for _, id := range c.volumeOrder {
		v := c.volumes[id]
		if !c.visible(u, v.Owner, v.Project, v.Shared) {
			continue
		}
		if detail {
			out = append(out, c.volumeObject(base, v))
		} else {
			out = append(out, map[string]any{"id": v.ID, "display_name": v.Name, "links": links(base, "/volume/v2.0/volumes/"+v.ID)})
		}
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"volumes": out})
}

func (c *Cloud) getVolume(w http.ResponseWriter, r *http.Request, base, id string) {
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	c.lock()
	var obj any
	if v := c.volumes[id]; v != nil && c.visible(u, v.Owner, v.Project, v.Shared) {
		obj = map[string]any{"volume": c.volumeObject(base, v)}
	}
	c.mu.Unlock()
	if obj == nil {
		writeFault(w, http.StatusNotFound, "", fmt.Sprintf("Volume %s not found.", id), "")
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

func (c *Cloud) volumeAction(w http.ResponseWriter, r *http.Request, id string) {
	// The volume demuxer parses the body before authentication and outside
	// the API error handler: its failures are Django's HTML 500 (docs/synnefo-wire.md#volume-action-quirk).
	_, arg, e := parseAction(r)
	if e != nil && (e.status != 400 || e.msg != "Malformed request.") {
		writeRaw(w, http.StatusInternalServerError, "text/html; charset=utf-8", []byte(html500))
		return
	}
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	if e != nil {
		writeActionError(w, e)
		return
	}
	sharedTo, e := c.sharedArg(arg)
	if e != nil {
		writeActionError(w, e)
		return
	}
	c.lock()
	defer c.mu.Unlock()
	v := c.volumes[id]
	if v == nil || !c.visible(u, v.Owner, v.Project, v.Shared) {
		writeFault(w, http.StatusNotFound, "", fmt.Sprintf("Volume %s not found.", id), "")
		return
	}
	if v.Owner != u.UUID {
		writeFault(w, http.StatusForbidden, "", "Action 'reassign' is allowed only to the owner of the volume.", "")
		return
	}
	if v.Server != 0 && v.Index == 0 {
		writeFault(w, http.StatusConflict, "", fmt.Sprintf("Cannot reassign: %s is a system volume", v.ID), "")
		return
	}
	dest, e := reassignArgs(arg)
	if e != nil {
		writeActionError(w, e)
		return
	}
	if s := c.servers[v.Server]; s != nil && s.Task != "" {
		writeFault(w, http.StatusConflict, "", fmt.Sprintf("Cannot perform 'REASSIGN' action while there is a pending '%s'.", s.Task), "")
		return
	}
	if dest != v.Project {
		ps := []provision{{quota.Disk, v.Size << 30}}
		if e := c.checkMove(v.Owner, v.Project, dest, ps); e != nil {
			writeActionError(w, e)
			return
		}
		c.moveAll(v.Owner, v.Project, dest, ps)
		v.Project = dest
	}
	v.Shared = sharedTo
	w.WriteHeader(http.StatusOK)
}
