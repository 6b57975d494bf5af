package synnefosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// --- memberships (docs/synnefo-wire.md#memberships) ---

type membershipObject struct {
	ID             int      `json:"id"`
	User           string   `json:"user"`
	Project        string   `json:"project"`
	State          string   `json:"state"`
	AllowedActions []string `json:"allowed_actions"`
	// dates holds one key per state, named like it; merged in MarshalJSON.
	dates map[string]string
}

// MarshalJSON adds the per-state date keys to the fixed fields.
func (m membershipObject) MarshalJSON() ([]byte, error) {
	type plain membershipObject
	b, err := json.Marshal(plain(m))
	if err != nil || len(m.dates) == 0 {
		return b, err
	}
	d, err := json.Marshal(m.dates)
	if err != nil {
		return nil, err
	}
	return append(append(b[:len(b)-1], ','), d[1:]...), nil
}

// membershipJSON renders a membership for a caller. Callers hold c.mu.
func (c *Cloud) membershipJSON(p *projectState, user string, m *memberState, caller string) membershipObject {
	o := membershipObject{ID: m.id, User: user, Project: p.ID, State: m.state, AllowedActions: []string{}}
	o.dates = map[string]string{"requested": c.timestamp(p.created)}
	o.dates[m.state] = c.timestamp(m.since)
	own := user == caller
	manager := c.admins[caller] || (!p.System && p.Owner == caller)
	switch m.state {
	case "accepted":
		if own && !p.System {
			o.AllowedActions = append(o.AllowedActions, "leave")
		}
		if manager && !p.System {
			o.AllowedActions = append(o.AllowedActions, "remove")
		}
	case "requested":
		if own {
			o.AllowedActions = append(o.AllowedActions, "cancel")
		}
		if manager {
			o.AllowedActions = append(o.AllowedActions, "accept", "reject")
		}
	case "leave_requested":
		if manager {
			o.AllowedActions = append(o.AllowedActions, "accept", "reject")
		}
	}
	return o
}

// serveMemberships is GET projects/memberships[?project=] (or one
// membership by id): admins see every membership, others their own and
// those of projects they own.
func (c *Cloud) serveMemberships(w http.ResponseWriter, r *http.Request, id string) {
	u, ok := c.authAstakos(w, r)
	if !ok {
		return
	}
	filter := r.URL.Query().Get("project")
	c.mu.Lock()
	var out []membershipObject
	for _, pid := range c.projectOrder {
		p := c.projects[pid]
		if filter != "" && pid != filter {
			continue
		}
		owner := !p.System && p.Owner == u.UUID
		for _, user := range slices.Sorted(maps.Keys(p.members)) {
			if !c.admins[u.UUID] && !owner && user != u.UUID {
				continue
			}
			out = append(out, c.membershipJSON(p, user, p.members[user], u.UUID))
		}
	}
	var all []int
	if id != "" {
		for _, p := range c.projects {
			for _, m := range p.members {
				all = append(all, m.id)
			}
		}
	}
	c.mu.Unlock()
	if id == "" {
		if out == nil {
			out = []membershipObject{}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	n, err := strconv.Atoi(id)
	for _, m := range out {
		if err == nil && m.ID == n {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	if err == nil && slices.Contains(all, n) {
		writeFault(w, http.StatusForbidden, "", "You do not have the permissions to perform this action.", "")
		return
	}
	writeFault(w, http.StatusNotFound, "", fmt.Sprintf("There is no membership with id %s.", id), "")
}

// --- applications (docs/synnefo-wire.md#raising-limits) ---

// application is a project modification application.
type application struct {
	id        int
	project   string
	applicant string
	state     string // pending, approved, replaced, denied, dismissed, cancelled
	resources map[string]Limit
	comments  string
}

// appStateLabels are the names Astakos uses in "Cannot <action> application
// <id> in state '<label>'".
var appStateLabels = map[string]string{
	"pending": "Pending review", "approved": "Approved", "replaced": "Replaced",
	"denied": "Denied", "dismissed": "Dismissed", "cancelled": "Cancelled",
}

type applicationObject struct {
	ID          int                 `json:"id"`
	State       string              `json:"state"`
	Name        *string             `json:"name"`
	Owner       *string             `json:"owner"`
	Applicant   string              `json:"applicant"`
	Homepage    *string             `json:"homepage"`
	Description *string             `json:"description"`
	StartDate   *string             `json:"start_date"`
	EndDate     *string             `json:"end_date"`
	Comments    string              `json:"comments"`
	JoinPolicy  *string             `json:"join_policy"`
	LeavePolicy *string             `json:"leave_policy"`
	MaxMembers  *int64              `json:"max_members"`
	Private     *bool               `json:"private"`
	Resources   map[string]capacity `json:"resources"`
}

// applicationJSON renders a modification: fields it does not change are
// null, and resources holds only the requested entries.
func (c *Cloud) applicationJSON(a *application) applicationObject {
	o := applicationObject{ID: a.id, State: a.state, Applicant: a.applicant, Comments: a.comments, Resources: map[string]capacity{}}
	for r, l := range a.resources {
		o.Resources[r] = capacity{MemberCapacity: l.Member, ProjectCapacity: l.Project}
	}
	return o
}

// pendingAppLimit is the caller's limit of pending applications: its
// system project's astakos.pending_app member limit, unlimited when the
// scenario gives none.
func (c *Cloud) pendingAppLimit(user string) int64 {
	if p := c.projects[user]; p != nil {
		if l, ok := p.Limits[quota.PendingApp]; ok {
			return l.Member
		}
	}
	return quota.Unlimited
}

// modifyProject is PUT projects/<id>: it submits a modification
// application, which changes nothing until a project admin approves it.
func (c *Cloud) modifyProject(w http.ResponseWriter, r *http.Request, id string) {
	u, ok := c.authAstakos(w, r)
	if !ok {
		return
	}
	if msg := checkJSONContentType(r); msg != "" {
		writeFault(w, http.StatusBadRequest, "", msg, "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req map[string]json.RawMessage
	if err != nil || json.Unmarshal(body, &req) != nil || req == nil {
		writeFault(w, http.StatusBadRequest, "", "Could not decode request body as JSON", "")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.projects[id]
	admin := c.admins[u.UUID]
	switch {
	case p == nil:
		writeFault(w, http.StatusNotFound, "", fmt.Sprintf("There is no project identified by %s.", id), "")
		return
	case !admin && (p.System || p.Owner != u.UUID):
		writeFault(w, http.StatusForbidden, "", "You do not have the permissions to perform this action.", "")
		return
	case p.State == "uninitialized" || p.State == "deleted":
		writeFault(w, http.StatusConflict, "", "Cannot modify an uninitialized project.", "")
		return
	}
	res := map[string]Limit{}
	if raw, ok := req["resources"]; ok {
		var e *actionError
		if res, e = c.parsePolicies(raw); e != nil {
			writeActionError(w, e)
			return
		}
	}
	if p.System {
		for _, k := range []string{"owner", "name", "homepage", "description"} {
			if _, ok := req[k]; ok {
				writeFault(w, http.StatusConflict, "", "Cannot modify fields 'owner', 'name', 'homepage', and 'description' of a system project.", "")
				return
			}
		}
	}
	if !admin {
		if n := c.usage[holding{u.UUID, u.UUID, quota.PendingApp}]; n+1 > c.pendingAppLimit(u.UUID) {
			writeFault(w, http.StatusConflict, "", fmt.Sprintf("You have reached the maximum number of pending project applications: %d.", c.pendingAppLimit(u.UUID)), "")
			return
		}
	}
	if old := c.apps[p.lastApp]; old != nil && old.state == "pending" {
		old.state = "replaced"
		c.add(old.applicant, old.applicant, quota.PendingApp, -1)
	}
	c.nextApp++
	a := &application{id: c.nextApp, project: id, applicant: u.UUID, state: "pending", resources: res}
	if raw, ok := req["comments"]; ok {
		_ = json.Unmarshal(raw, &a.comments)
	}
	c.apps[a.id] = a
	p.lastApp = a.id
	c.add(u.UUID, u.UUID, quota.PendingApp, 1)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "application": a.id})
}

var maxLimit = big.NewInt(quota.Unlimited)

// parsePolicies validates the resources of an application as Astakos's
// validate_resource_policies does. Callers hold c.mu.
func (c *Cloud) parsePolicies(raw json.RawMessage) (map[string]Limit, *actionError) {
	malformed := &actionError{status: 400, msg: "Malformed resource policies"}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, malformed
	}
	out := map[string]Limit{}
	for _, r := range slices.Sorted(maps.Keys(m)) {
		if hiddenResource(r) || !slices.Contains(c.resources, r) {
			return nil, malformed
		}
		var caps map[string]json.RawMessage
		if json.Unmarshal(m[r], &caps) != nil || caps == nil {
			// Astakos indexes the entry as a dict and crashes.
			return nil, &actionError{status: 500, msg: "Unexpected error"}
		}
		var vals [2]*big.Int
		for i, k := range []string{"member_capacity", "project_capacity"} {
			v, ok := caps[k]
			n, isInt := new(big.Int).SetString(string(bytes.TrimSpace(v)), 10)
			if !ok || !isInt {
				return nil, malformed
			}
			vals[i] = n
		}
		for _, n := range vals {
			if n.Cmp(maxLimit) > 0 {
				return nil, &actionError{status: 400, msg: "Quota limit exceeds max value 9223372036854775807"}
			}
			if n.Sign() < 0 {
				return nil, &actionError{status: 400, msg: "Negative quota limit is not allowed"}
			}
		}
		if vals[1].Cmp(vals[0]) < 0 {
			return nil, &actionError{status: 400, msg: fmt.Sprintf("Project quota limit is less than member limit for resource '%s'", r)}
		}
		out[r] = Limit{Member: vals[0].Int64(), Project: vals[1].Int64()}
	}
	return out, nil
}

// projectAction is POST projects/<id>/action: a decision on an application
// (approve, deny, dismiss, cancel) or an admin's change of the project's
// state (suspend, unsuspend, terminate, reinstate).
func (c *Cloud) projectAction(w http.ResponseWriter, r *http.Request, id string) {
	u, ok := c.authAstakos(w, r)
	if !ok {
		return
	}
	if msg := checkJSONContentType(r); msg != "" {
		writeFault(w, http.StatusBadRequest, "", msg, "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req map[string]json.RawMessage
	if err != nil || json.Unmarshal(body, &req) != nil || req == nil {
		writeFault(w, http.StatusBadRequest, "", "Invalid input data", "")
		return
	}
	var action string
	n := 0
	for k := range req {
		if projectActions[k] || appActions[k] {
			action = k
			n++
		}
	}
	switch {
	case n == 0:
		writeFault(w, http.StatusBadRequest, "", "No recognized action", "")
		return
	case n > 1:
		writeFault(w, http.StatusBadRequest, "", "Multiple actions not supported", "")
		return
	}
	var arg map[string]json.RawMessage
	if json.Unmarshal(req[action], &arg) != nil || arg == nil {
		writeFault(w, http.StatusInternalServerError, "", "Unexpected error", "")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.projects[id]
	if p == nil {
		writeFault(w, http.StatusNotFound, "", fmt.Sprintf("There is no project identified by %s.", id), "")
		return
	}
	if projectActions[action] {
		if e := c.changeProjectState(p, u.UUID, action); e != nil {
			writeActionError(w, e)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	appID, ok := appIDOf(arg["app_id"])
	if !ok {
		writeFault(w, http.StatusInternalServerError, "", "Unexpected error", "")
		return
	}
	if e := c.decide(p, u.UUID, action, appID); e != nil {
		writeActionError(w, e)
		return
	}
	w.WriteHeader(http.StatusOK)
}

var (
	projectActions = map[string]bool{"suspend": true, "unsuspend": true, "terminate": true, "reinstate": true}
	appActions     = map[string]bool{"approve": true, "deny": true, "dismiss": true, "cancel": true}
)

// appIDOf reads app_id, a JSON int or a numeric string (kamaki sends one).
func appIDOf(raw json.RawMessage) (int, bool) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil {
			return n, true
		}
	}
	return 0, false
}

// decide applies a decision on an application, in Astakos's check order.
// Callers hold c.mu.
func (c *Cloud) decide(p *projectState, caller, action string, appID int) *actionError {
	a := c.apps[appID]
	if a == nil {
		return &actionError{status: 404, msg: fmt.Sprintf("There is no project application identified by %d.", appID)}
	}
	if a.project != p.ID || p.lastApp != a.id {
		return &actionError{status: 409, msg: fmt.Sprintf("%d is not a pending application for project %s.", appID, p.ID)}
	}
	admin := c.admins[caller]
	if (action == "approve" || action == "deny") && !admin ||
		(action == "dismiss" || action == "cancel") && !admin && caller != a.applicant {
		return &actionError{status: 403, msg: "You do not have the permissions to perform this action."}
	}
	want := "pending"
	if action == "dismiss" {
		want = "denied"
	}
	if a.state != want {
		return &actionError{status: 409, msg: fmt.Sprintf("Cannot %s application %d in state '%s'", action, appID, appStateLabels[a.state])}
	}
	switch action {
	case "approve":
		a.state = "approved"
		for r, l := range a.resources {
			old := p.Limits[r]
			old.Member, old.Project = l.Member, l.Project
			p.Limits[r] = old
		}
		// Project.activate: an approved modification reactivates a
		// suspended or terminated project.
		p.State = "active"
	case "deny":
		a.state = "denied"
	case "dismiss":
		a.state = "dismissed"
	case "cancel":
		a.state = "cancelled"
	}
	if action != "dismiss" {
		c.add(a.applicant, a.applicant, quota.PendingApp, -1)
	}
	clear(c.cache)
	return nil
}

// changeProjectState is an admin's suspend, unsuspend, terminate or
// reinstate. Limits follow the state (a suspended or terminated project's
// limits read 0); nothing is released. Callers hold c.mu.
func (c *Cloud) changeProjectState(p *projectState, caller, action string) *actionError {
	if !c.admins[caller] {
		return &actionError{status: 403, msg: "You do not have the permissions to perform this action."}
	}
	alive := p.State == "active" || p.State == "suspended"
	var to string
	switch action {
	case "terminate":
		if p.System {
			return &actionError{status: 409, msg: fmt.Sprintf("Cannot terminate: %s is a system project.", p.ID)}
		}
		if !alive {
			return &actionError{status: 409, msg: fmt.Sprintf("Project %s is not alive.", p.ID)}
		}
		to = "terminated"
	case "suspend":
		if !alive {
			return &actionError{status: 409, msg: fmt.Sprintf("Project %s is not alive.", p.ID)}
		}
		if p.State == "suspended" {
			return &actionError{status: 409, msg: fmt.Sprintf("Project %s is suspended.", p.ID)}
		}
		to = "suspended"
	case "unsuspend":
		if p.State != "suspended" {
			return &actionError{status: 409, msg: fmt.Sprintf("Project %s is not suspended.", p.ID)}
		}
		to = "active"
	case "reinstate":
		if p.State != "terminated" {
			return &actionError{status: 409, msg: fmt.Sprintf("Project %s is not terminated.", p.ID)}
		}
		to = "active"
	}
	if to != "active" {
		p.deactivated = c.now()
	}
	p.State = to
	clear(c.cache)
	return nil
}

// Applications returns the state of every application by id, for tests.
func (c *Cloud) Applications() map[int]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]string, len(c.apps))
	for id, a := range c.apps {
		out[id] = a.state
	}
	return out
}

// --- user catalogs (docs/synnefo-wire.md#user-catalogs) ---

// serveUserCatalogs is POST user_catalogs (user token) or
// service/user_catalogs (component token): uuids to display names (the
// lower-cased e-mail) and back. Unknown entries are left out.
func (c *Cloud) serveUserCatalogs(w http.ResponseWriter, r *http.Request, service bool) {
	if service {
		if _, ok := c.authService(w, r); !ok {
			return
		}
	} else if _, ok := c.authAstakos(w, r); !ok {
		return
	}
	// The body is decoded without looking at Content-Type.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var raw any
	if err != nil || json.Unmarshal(body, &raw) != nil {
		writeFault(w, http.StatusBadRequest, "", "Request body should be json formatted.", "")
		return
	}
	req, ok := raw.(map[string]any)
	if !ok {
		writeFault(w, http.StatusBadRequest, "", "Request body should be a json formatted dictionary", "")
		return
	}
	var names []string
	if v, present := req["displaynames"]; present {
		list, ok := v.([]any)
		if !ok {
			writeFault(w, http.StatusBadRequest, "", fmt.Sprintf("Invalid displaynames: %v", pyRepr(v)), "")
			return
		}
		for _, n := range list {
			s, ok := n.(string)
			if !ok {
				writeFault(w, http.StatusBadRequest, "", "Items in 'displaynames' must be strings", "")
				return
			}
			names = append(names, s)
		}
	}
	var uuids []string
	allUsers := false
	switch v := req["uuids"].(type) {
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				uuids = append(uuids, s)
			}
		}
	case nil:
		// null: every user on the service endpoint, none for a user.
		_, present := req["uuids"]
		allUsers = present && service
	}
	c.mu.Lock()
	uc, dc := map[string]string{}, map[string]string{}
	if allUsers {
		uuids = slices.Clone(c.userOrder)
	}
	for _, id := range uuids {
		if u := c.users[id]; u != nil {
			uc[id] = strings.ToLower(u.Name)
		}
	}
	for _, n := range names {
		for _, id := range c.userOrder {
			if strings.EqualFold(c.users[id].Name, n) {
				dc[n] = id
				break
			}
		}
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"uuid_catalog": uc, "displayname_catalog": dc})
}

// pyRepr renders a JSON value as Python prints it in Astakos's message.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}
