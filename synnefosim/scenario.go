package synnefosim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/quota"
)

// Scenario is the initial state of a simulated cloud. Tests and benchmarks
// build it in code; `quotawatch sim` loads it from YAML (see LoadScenario).
type Scenario struct {
	// ServiceToken is a component token: not a user, but accepted by
	// service_project_quotas. Empty disables the service API.
	ServiceToken string `yaml:"service_token,omitempty" json:"-"`
	// PithosPageLimit is the default page size of Pithos listings (10000 when 0).
	PithosPageLimit int `yaml:"pithos_page_limit,omitempty" json:"pithos_page_limit,omitempty"`
	// Users are the Astakos users; Projects their projects and memberships.
	Users    []User    `yaml:"users" json:"users"`
	Projects []Project `yaml:"projects" json:"projects"`
	// Containers, Servers, Volumes, FloatingIPs and Networks are the items
	// charged to projects; usage is derived from them.
	Containers []Container `yaml:"containers,omitempty" json:"containers,omitempty"`
	// Flavors size the servers (and their generated system volumes).
	Flavors     []Flavor     `yaml:"flavors,omitempty" json:"flavors,omitempty"`
	Servers     []VM         `yaml:"servers,omitempty" json:"servers,omitempty"`
	Volumes     []Volume     `yaml:"volumes,omitempty" json:"volumes,omitempty"`
	FloatingIPs []FloatingIP `yaml:"floating_ips,omitempty" json:"floating_ips,omitempty"`
	Networks    []Network    `yaml:"networks,omitempty" json:"networks,omitempty"`
	// Faults are injected from the start (see Cloud.SetFaults).
	Faults []Fault `yaml:"faults,omitempty" json:"faults,omitempty"`
	// ComponentTokens are the tokens of the Astakos components, by
	// component (astakos, cyclades, pithos): each reads only its own
	// component's resources in service_quotas and service_project_quotas.
	// ServiceToken, by contrast, sees every resource.
	ComponentTokens map[string]string `yaml:"component_tokens,omitempty" json:"-"`
	// ProjectAdmins are the users listed in ASTAKOS_PROJECT_ADMINS: they see
	// every project and membership and decide applications.
	ProjectAdmins []string `yaml:"project_admins,omitempty" json:"project_admins,omitempty"`
	// SharingDisabled turns CYCLADES_SHARED_RESOURCES_ENABLED off: a
	// reassign asking for shared_to_project true is refused with 403.
	SharingDisabled bool `yaml:"sharing_disabled,omitempty" json:"sharing_disabled,omitempty"`
	// Drift makes the quotaholder's recorded usage lower than what the items
	// charge, so that releasing them fails (see Cloud.SetDrift).
	Drift []Drift `yaml:"drift,omitempty" json:"drift,omitempty"`
	// ActionDelay is how long a server shutdown or start takes on the
	// cloud's clock; 0 completes it by the next request.
	ActionDelay Duration `yaml:"action_delay,omitempty" json:"action_delay,omitempty"`
}

// Drift is an amount the quotaholder has lost for a user's holding in a
// project: /quotas shows usage lowered by Amount (at both levels), and a
// release larger than what is left fails with NoQuantityError.
type Drift struct {
	User     string `yaml:"user" json:"user"`
	Project  string `yaml:"project" json:"project"`
	Resource string `yaml:"resource" json:"resource"`
	Amount   int64  `yaml:"amount" json:"amount"`
}

// Membership is a membership in a state other than plain accepted (members
// lists those). Initialized says the user was accepted once, so a holding
// exists; suspended and removed memberships always have one.
type Membership struct {
	User        string `yaml:"user" json:"user"`
	State       string `yaml:"state" json:"state"`
	Initialized bool   `yaml:"initialized,omitempty" json:"initialized,omitempty"`
}

// User is an Astakos user. Token is its API token.
type User struct {
	UUID  string `yaml:"uuid" json:"uuid"`
	Name  string `yaml:"name,omitempty" json:"name"`
	Token string `yaml:"token" json:"-"`
	// Inactive users cannot authenticate ("User inactive").
	Inactive bool `yaml:"inactive,omitempty" json:"inactive,omitempty"`
	// TokenDuration is the token's lifetime from when the cloud starts
	// (ASTAKOS_AUTH_TOKEN_DURATION; default 30 days); TokenExpires, when set,
	// is the expiry itself. After it every call answers 401.
	TokenDuration Duration   `yaml:"token_duration,omitempty" json:"-"`
	TokenExpires  *time.Time `yaml:"token_expires,omitempty" json:"-"`
}

// Project is an Astakos project. A system project has ID == its user's UUID,
// name "system:<uuid>" (the default) and that user as its only member.
type Project struct {
	ID     string `yaml:"id" json:"id"`
	Name   string `yaml:"name,omitempty" json:"name"`
	System bool   `yaml:"system,omitempty" json:"system"`
	// Owner is the owner's UUID (ignored for system projects: null on the wire).
	Owner string `yaml:"owner,omitempty" json:"owner,omitempty"`
	// State is active (default), suspended, terminated, uninitialized or deleted.
	State   string `yaml:"state,omitempty" json:"state"`
	Private bool   `yaml:"private,omitempty" json:"private,omitempty"`
	// Members are the accepted members; Memberships the others.
	Members     []string     `yaml:"members,omitempty" json:"members"`
	Memberships []Membership `yaml:"memberships,omitempty" json:"memberships,omitempty"`
	// Limits per resource. A resource absent here has limit 0, except the
	// hidden cyclades.total_cpu/total_ram, which default to unlimited.
	Limits map[string]Limit `yaml:"limits,omitempty" json:"limits"`
}

// Limit is a project's member and project capacity for one resource.
// Pending, when set, is an in-flight allocation of every member: it is added
// to usage and reported as pending (and, summed, as project_pending).
type Limit struct {
	Member  int64 `yaml:"member" json:"member"`
	Project int64 `yaml:"project" json:"project"`
	Pending int64 `yaml:"pending,omitempty" json:"pending,omitempty"`
}

// Container is a Pithos container of Account (a user UUID), charged to Project.
type Container struct {
	Account    string `yaml:"account" json:"account"`
	Name       string `yaml:"name" json:"name"`
	Project    string `yaml:"project,omitempty" json:"project"` // default: the account's system project
	Bytes      int64  `yaml:"bytes,omitempty" json:"bytes"`
	Count      int64  `yaml:"count,omitempty" json:"count"`
	Quota      int64  `yaml:"quota,omitempty" json:"quota,omitempty"`           // container policy quota, bytes
	Versioning string `yaml:"versioning,omitempty" json:"versioning,omitempty"` // auto (default) | none
}

// Flavor is a Cyclades flavor: RAM in MiB, Disk in GiB.
type Flavor struct {
	ID    int    `yaml:"id" json:"id"`
	Name  string `yaml:"name,omitempty" json:"name"`
	VCPUs int64  `yaml:"vcpus" json:"vcpus"`
	RAM   int64  `yaml:"ram" json:"ram"`
	Disk  int64  `yaml:"disk" json:"disk"`
	// Deleted (retired) flavors are left out of /flavors/detail but still
	// served by /flavors/<id>.
	Deleted bool `yaml:"deleted,omitempty" json:"deleted,omitempty"`
}

// VM is a Cyclades server (scenario key `servers`).
type VM struct {
	ID      int    `yaml:"id" json:"id"`
	Name    string `yaml:"name,omitempty" json:"name"`
	Owner   string `yaml:"owner" json:"owner"`
	Project string `yaml:"project,omitempty" json:"project"` // default: the owner's system project
	Flavor  int    `yaml:"flavor" json:"flavor"`
	// Status is ACTIVE (default), BUILD, STOPPED, ERROR, ...
	Status string `yaml:"status,omitempty" json:"status"`
	// Task, when set, is a pending task that makes a reassign fail with 400.
	Task   string `yaml:"task,omitempty" json:"task,omitempty"`
	Shared bool   `yaml:"shared,omitempty" json:"shared,omitempty"`

	change *statusChange // a shutdown or start under way
}

// statusChange is a server action in progress: the status becomes to at at.
type statusChange struct {
	to string
	at time.Time
}

// Volume is a Cyclades volume of Size GiB. Server/Index attach it; index 0
// is the server's system volume.
type Volume struct {
	ID      string `yaml:"id" json:"id"` // numeric
	Name    string `yaml:"name,omitempty" json:"name"`
	Owner   string `yaml:"owner" json:"owner"`
	Project string `yaml:"project,omitempty" json:"project"`
	Size    int64  `yaml:"size" json:"size"`
	Server  int    `yaml:"server,omitempty" json:"server,omitempty"`
	Index   int    `yaml:"index,omitempty" json:"index"`
	Shared  bool   `yaml:"shared,omitempty" json:"shared,omitempty"`
}

// FloatingIP is a Cyclades floating IP.
type FloatingIP struct {
	ID      string `yaml:"id" json:"id"` // numeric
	Address string `yaml:"address" json:"address"`
	Owner   string `yaml:"owner" json:"owner"`
	Project string `yaml:"project,omitempty" json:"project"`
	Network string `yaml:"network,omitempty" json:"network,omitempty"` // floating_network_id
	Server  int    `yaml:"server,omitempty" json:"server,omitempty"`   // instance it is attached to
	Shared  bool   `yaml:"shared,omitempty" json:"shared,omitempty"`
}

// Network is a Cyclades network. Public networks are listed to everyone,
// count toward no quota and cannot be reassigned.
type Network struct {
	ID      string `yaml:"id" json:"id"` // numeric
	Name    string `yaml:"name,omitempty" json:"name"`
	Owner   string `yaml:"owner,omitempty" json:"owner,omitempty"`
	Project string `yaml:"project,omitempty" json:"project,omitempty"`
	Public  bool   `yaml:"public,omitempty" json:"public,omitempty"`
	Shared  bool   `yaml:"shared,omitempty" json:"shared,omitempty"`
}

// Fault makes matching API requests slow or fail. Path is a glob where `*`
// matches any run of characters (slashes included). Every N applies the
// fault to every Nth matching request (0 and 1: every one). Status 0 means
// latency (or hold) only; Body, when set, replaces the cloudFault body.
type Fault struct {
	Path    string   `yaml:"path" json:"path"`
	Method  string   `yaml:"method,omitempty" json:"method,omitempty"`
	Status  int      `yaml:"status,omitempty" json:"status,omitempty"`
	Every   int      `yaml:"every,omitempty" json:"every,omitempty"`
	Latency Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
	Body    string   `yaml:"body,omitempty" json:"body,omitempty"`
	Hold    Duration `yaml:"hold,omitempty" json:"hold,omitempty"` // see hold.go
}

// Duration is a time.Duration written as "50ms" in YAML and JSON (JSON also
// accepts a number of nanoseconds).
type Duration time.Duration

// UnmarshalYAML parses a Go duration string. The legacy signature keeps the
// decoder's strictness (see the yaml.v3 KnownFields pitfall).
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "50ms" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(n)
	return nil
}

// LoadScenario reads and validates a scenario file. Errors are
// "FILE:LINE: message", one per line; unknown keys are errors.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(path, data)
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// ParseScenario parses and validates a YAML scenario; name is used in error
// messages ("name:LINE: message").
func ParseScenario(name string, data []byte) (*Scenario, error) {
	var sc Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:1: empty scenario", name)
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, 0, len(te.Errors))
			for _, e := range te.Errors {
				msgs = append(msgs, located(name, e))
			}
			return nil, errors.New(strings.Join(msgs, "\n"))
		}
		return nil, errors.New(located(name, err.Error()))
	}
	if err := sc.Validate(); err != nil {
		var root yaml.Node
		// The document decoded once already, so this cannot fail.
		_ = yaml.Unmarshal(data, &root)
		var verrs ValidationErrors
		if !errors.As(err, &verrs) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		msgs := make([]string, 0, len(verrs))
		for _, v := range verrs {
			msgs = append(msgs, fmt.Sprintf("%s:%d: %s: %s", name, lineOf(&root, v.Path), pathString(v.Path), v.Msg))
		}
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	return &sc, nil
}

// unknownFieldRe is how yaml.v3 words an unknown key under KnownFields,
// naming the Go type it decodes into.
var unknownFieldRe = regexp.MustCompile(`^field (.*) not found in type \S+$`)

// located turns yaml's "line N: msg" into "name:N: msg", saying "unknown
// field" for an unknown key rather than naming a Go type.
func located(name, msg string) string {
	line, msg := "1", strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, msg = m[1], m[2]
	}
	if m := unknownFieldRe.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("unknown field %q", m[1])
	}
	return name + ":" + line + ": " + msg
}

// lineOf finds the line of the node at path (keys and indices), falling back
// to the deepest node found.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			b.WriteString("[" + strconv.Itoa(k) + "]")
		}
	}
	return b.String()
}

// ValidationError is one problem in a scenario, at Path (YAML keys as
// strings, list indices as ints).
type ValidationError struct {
	Path []any
	Msg  string
}

// ValidationErrors is every problem Validate found.
type ValidationErrors []ValidationError

// Error lists the problems, one per line, as "path: message".
func (v ValidationErrors) Error() string {
	msgs := make([]string, len(v))
	for i, e := range v {
		msgs[i] = pathString(e.Path) + ": " + e.Msg
	}
	return strings.Join(msgs, "\n")
}

var projectStates = map[string]bool{"": true, "uninitialized": true, "active": true, "suspended": true, "terminated": true, "deleted": true}

var membershipStates = map[string]bool{
	"accepted": true, "leave_requested": true, "suspended": true, "removed": true,
	"requested": true, "rejected": true, "cancelled": true,
}

// components are the Astakos components that hold a token.
var components = map[string]bool{"astakos": true, "cyclades": true, "pithos": true}

var vmStatuses = map[string]bool{"": true, "BUILD": true, "ACTIVE": true, "STOPPED": true, "ERROR": true, "RESIZE": true, "REBOOT": true, "UNKNOWN": true}

// Validate checks that the scenario is consistent: unique ids, and every
// reference (members, owners, projects, flavors, servers) exists.
func (sc *Scenario) Validate() error {
	v := &validator{
		users: map[string]bool{}, tokens: map[string]bool{}, projects: map[string]bool{},
		flavors: map[int]Flavor{}, servers: map[int]string{},
	}
	if sc.PithosPageLimit < 0 {
		v.add("must not be negative", "pithos_page_limit")
	}
	// In this order: each section may refer to those before it.
	v.checkUsers(sc.Users, sc.ServiceToken)
	v.checkProjects(sc.Projects)
	v.checkContainers(sc.Containers)
	v.checkFlavors(sc.Flavors)
	v.checkServers(sc.Servers)
	v.checkVolumes(sc.Volumes)
	v.checkFloatingIPs(sc.FloatingIPs)
	v.checkNetworks(sc.Networks)
	v.checkFaults(sc.Faults)
	v.checkOperators(sc)
	v.checkDrift(sc.Drift)
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}

// validator collects the problems of a scenario and what its sections
// declare, for the references of later sections.
type validator struct {
	errs     ValidationErrors
	users    map[string]bool // uuid
	tokens   map[string]bool
	projects map[string]bool // id
	flavors  map[int]Flavor
	servers  map[int]string // id → owner
}

func (v *validator) add(msg string, path ...any) {
	v.errs = append(v.errs, ValidationError{Path: path, Msg: msg})
}

func (v *validator) needProject(id string, path ...any) {
	if id != "" && !v.projects[id] {
		v.add(fmt.Sprintf("unknown project %q", id), path...)
	}
}

func (v *validator) needUser(id string, path ...any) {
	if !v.users[id] {
		v.add(fmt.Sprintf("unknown user %q", id), path...)
	}
}

// needSystemProject checks that an item with no project has an owner whose
// system project it can default to; what names the owner in the message.
func (v *validator) needSystemProject(project, owner, what, section string, i int) {
	if project == "" && !v.projects[owner] {
		v.add("no project given and the "+what+" has no system project", section, i)
	}
}

func (v *validator) checkUsers(users []User, serviceToken string) {
	for i, u := range users {
		switch {
		case u.UUID == "":
			v.add("uuid is required", "users", i)
		case v.users[u.UUID]:
			v.add(fmt.Sprintf("duplicate user uuid %q", u.UUID), "users", i, "uuid")
		}
		v.users[u.UUID] = true
		switch {
		case u.Token == "":
			v.add("token is required", "users", i)
		case v.tokens[u.Token] || u.Token == serviceToken:
			v.add("duplicate token", "users", i, "token")
		}
		v.tokens[u.Token] = true
	}
}

func (v *validator) checkProjects(projects []Project) {
	for i, p := range projects {
		switch {
		case p.ID == "":
			v.add("id is required", "projects", i)
		case v.projects[p.ID]:
			v.add(fmt.Sprintf("duplicate project id %q", p.ID), "projects", i, "id")
		}
		v.projects[p.ID] = true
		if p.System {
			v.checkSystemProject(i, p)
		} else if p.Owner != "" && !v.users[p.Owner] {
			v.add(fmt.Sprintf("unknown owner %q", p.Owner), "projects", i, "owner")
		}
		if !projectStates[p.State] {
			v.add(fmt.Sprintf("unknown state %q", p.State), "projects", i, "state")
		}
		v.checkMembers(i, p.Members, p.Memberships)
		for r, l := range p.Limits {
			if r == "" {
				v.add("empty resource name", "projects", i, "limits")
			}
			if l.Member < 0 || l.Project < 0 || l.Pending < 0 {
				v.add("limits must not be negative", "projects", i, "limits", r)
			}
		}
	}
}

// checkSystemProject checks that system project i is its user's alone.
func (v *validator) checkSystemProject(i int, p Project) {
	if !v.users[p.ID] {
		v.add(fmt.Sprintf("system project %q is not a user's uuid", p.ID), "projects", i, "id")
	}
	if p.Name != "" && p.Name != "system:"+p.ID {
		v.add(fmt.Sprintf("system project name must be %q", "system:"+p.ID), "projects", i, "name")
	}
	for j, m := range p.Members {
		if m != p.ID {
			v.add(fmt.Sprintf("system project member %q is not its user", m), "projects", i, "members", j)
		}
	}
	if len(p.Memberships) > 0 {
		v.add("a system project has only its user", "projects", i, "memberships")
	}
}

func (v *validator) checkMembers(i int, members []string, memberships []Membership) {
	seen := map[string]bool{}
	for j, m := range members {
		if !v.users[m] {
			v.add(fmt.Sprintf("unknown member %q", m), "projects", i, "members", j)
		}
		if seen[m] {
			v.add(fmt.Sprintf("duplicate member %q", m), "projects", i, "members", j)
		}
		seen[m] = true
	}
	for j, m := range memberships {
		if !v.users[m.User] {
			v.add(fmt.Sprintf("unknown member %q", m.User), "projects", i, "memberships", j, "user")
		}
		if seen[m.User] {
			v.add(fmt.Sprintf("duplicate member %q", m.User), "projects", i, "memberships", j, "user")
		}
		seen[m.User] = true
		if !membershipStates[m.State] {
			v.add(fmt.Sprintf("unknown membership state %q", m.State), "projects", i, "memberships", j, "state")
		}
	}
}

// checkOperators checks component tokens and project admins.
func (v *validator) checkOperators(sc *Scenario) {
	for comp, tok := range sc.ComponentTokens {
		if !components[comp] {
			v.add(fmt.Sprintf("unknown component %q (astakos, cyclades or pithos)", comp), "component_tokens", comp)
		}
		if tok == "" || v.tokens[tok] || tok == sc.ServiceToken {
			v.add("empty or duplicate token", "component_tokens", comp)
		}
		v.tokens[tok] = true
	}
	for i, a := range sc.ProjectAdmins {
		v.needUser(a, "project_admins", i)
	}
	for i, u := range sc.Users {
		if u.TokenDuration < 0 {
			v.add("token_duration must not be negative", "users", i, "token_duration")
		}
	}
	if sc.ActionDelay < 0 {
		v.add("must not be negative", "action_delay")
	}
}

func (v *validator) checkDrift(drift []Drift) {
	for i, d := range drift {
		v.needUser(d.User, "drift", i, "user")
		if !v.projects[d.Project] {
			v.add(fmt.Sprintf("unknown project %q", d.Project), "drift", i, "project")
		}
		if d.Resource == "" {
			v.add("resource is required", "drift", i)
		}
		if d.Amount < 0 {
			v.add("amount must not be negative", "drift", i, "amount")
		}
	}
}

func (v *validator) checkContainers(containers []Container) {
	seen := map[[2]string]bool{} // account, name
	for i, c := range containers {
		v.needUser(c.Account, "containers", i, "account")
		if c.Name == "" {
			v.add("name is required", "containers", i)
		} else if strings.Contains(c.Name, "/") || len(c.Name) > 256 {
			v.add("invalid container name", "containers", i, "name")
		}
		k := [2]string{c.Account, c.Name}
		if seen[k] {
			v.add(fmt.Sprintf("duplicate container %q", c.Name), "containers", i, "name")
		}
		seen[k] = true
		v.needProject(c.Project, "containers", i, "project")
		v.needSystemProject(c.Project, c.Account, "account", "containers", i)
		if c.Bytes < 0 || c.Count < 0 || c.Quota < 0 {
			v.add("bytes, count and quota must not be negative", "containers", i)
		}
		if c.Versioning != "" && c.Versioning != "auto" && c.Versioning != "none" {
			v.add("versioning must be auto or none", "containers", i, "versioning")
		}
	}
}

func (v *validator) checkFlavors(flavors []Flavor) {
	for i, f := range flavors {
		if f.ID <= 0 {
			v.add("id must be positive", "flavors", i)
		} else if _, dup := v.flavors[f.ID]; dup {
			v.add(fmt.Sprintf("duplicate flavor id %d", f.ID), "flavors", i, "id")
		}
		if f.VCPUs < 0 || f.RAM < 0 || f.Disk < 0 {
			v.add("vcpus, ram and disk must not be negative", "flavors", i)
		}
		v.flavors[f.ID] = f
	}
}

func (v *validator) checkServers(servers []VM) {
	for i, s := range servers {
		if s.ID <= 0 {
			v.add("id must be positive", "servers", i)
		} else if _, dup := v.servers[s.ID]; dup {
			v.add(fmt.Sprintf("duplicate server id %d", s.ID), "servers", i, "id")
		}
		v.servers[s.ID] = s.Owner
		v.needUser(s.Owner, "servers", i, "owner")
		v.needProject(s.Project, "servers", i, "project")
		v.needSystemProject(s.Project, s.Owner, "owner", "servers", i)
		if _, ok := v.flavors[s.Flavor]; !ok {
			v.add(fmt.Sprintf("unknown flavor %d", s.Flavor), "servers", i, "flavor")
		}
		if !vmStatuses[s.Status] {
			v.add(fmt.Sprintf("unknown status %q", s.Status), "servers", i, "status")
		}
	}
}

func (v *validator) checkVolumes(volumes []Volume) {
	ids := map[string]bool{}
	attached := map[[2]int]bool{} // server, index
	for i, vol := range volumes {
		checkID(vol.ID, ids, func(m string) { v.add(m, "volumes", i, "id") })
		v.needUser(vol.Owner, "volumes", i, "owner")
		v.needProject(vol.Project, "volumes", i, "project")
		v.needSystemProject(vol.Project, vol.Owner, "owner", "volumes", i)
		if vol.Size < 0 {
			v.add("size must not be negative", "volumes", i, "size")
		}
		if vol.Server != 0 {
			v.checkAttachment(i, vol, attached)
		}
		if vol.Index < 0 {
			v.add("index must not be negative", "volumes", i, "index")
		}
	}
}

// checkAttachment checks volume i's server, and that no other volume sits
// at its index there.
func (v *validator) checkAttachment(i int, vol Volume, attached map[[2]int]bool) {
	owner, ok := v.servers[vol.Server]
	if !ok {
		v.add(fmt.Sprintf("unknown server %d", vol.Server), "volumes", i, "server")
	} else if vol.Index == 0 && owner != vol.Owner {
		v.add("a system volume must have its server's owner", "volumes", i, "owner")
	}
	k := [2]int{vol.Server, vol.Index}
	if attached[k] {
		v.add(fmt.Sprintf("server %d already has a volume at index %d", vol.Server, vol.Index), "volumes", i, "index")
	}
	attached[k] = true
}

func (v *validator) checkFloatingIPs(ips []FloatingIP) {
	ids := map[string]bool{}
	for i, f := range ips {
		checkID(f.ID, ids, func(m string) { v.add(m, "floating_ips", i, "id") })
		v.needUser(f.Owner, "floating_ips", i, "owner")
		v.needProject(f.Project, "floating_ips", i, "project")
		v.needSystemProject(f.Project, f.Owner, "owner", "floating_ips", i)
		if _, ok := v.servers[f.Server]; f.Server != 0 && !ok {
			v.add(fmt.Sprintf("unknown server %d", f.Server), "floating_ips", i, "server")
		}
	}
}

func (v *validator) checkNetworks(networks []Network) {
	ids := map[string]bool{}
	for i, n := range networks {
		checkID(n.ID, ids, func(m string) { v.add(m, "networks", i, "id") })
		if n.Public {
			continue
		}
		v.needUser(n.Owner, "networks", i, "owner")
		v.needProject(n.Project, "networks", i, "project")
		v.needSystemProject(n.Project, n.Owner, "owner", "networks", i)
	}
}

func (v *validator) checkFaults(faults []Fault) {
	for i, f := range faults {
		if f.Path == "" {
			v.add("path is required", "faults", i)
		}
		if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
			v.add("status must be 4xx or 5xx", "faults", i, "status")
		}
		if f.Every < 0 {
			v.add("every must not be negative", "faults", i, "every")
		}
		if f.Latency < 0 {
			v.add("latency must not be negative", "faults", i, "latency")
		}
		if f.Hold < 0 {
			v.add("hold must not be negative", "faults", i, "hold")
		}
		if f.Status == 0 && f.Latency == 0 && f.Hold == 0 {
			v.add("a fault needs a status or a latency", "faults", i)
		}
	}
}

func checkID(id string, seen map[string]bool, add func(string)) {
	n, err := strconv.ParseInt(id, 10, 64)
	switch {
	case id == "":
		add("id is required")
	case err != nil || n <= 0:
		add(fmt.Sprintf("id %q must be a positive integer", id))
	case seen[id]:
		add(fmt.Sprintf("duplicate id %q", id))
	}
	seen[id] = true
}

// hiddenDefault is the limit of a hidden resource with no entry in a project.
func hiddenDefault(resource string) (Limit, bool) {
	if resource == quota.TotalCPU || resource == quota.TotalRAM {
		return Limit{Member: quota.Unlimited, Project: quota.Unlimited}, true
	}
	return Limit{}, false
}
