package synnefosim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// visibleResources are the api-visible resources Synnefo registers; /quotas,
// /resources and project resources show these (plus any other non-hidden
// resource a scenario gives limits for, as an admin-registered one).
var visibleResources = []string{
	quota.CPU, quota.Disk, quota.FloatingIP, quota.PrivateNetwork, quota.RAM, quota.VM, quota.DiskSpace,
}

// hiddenResources never appear in /quotas, /resources or project
// resources; the service API reports them (one component token sees all).
var hiddenResources = []string{quota.TotalCPU, quota.TotalRAM}

func hiddenResource(r string) bool { return r == quota.TotalCPU || r == quota.TotalRAM }

const defaultPageLimit = 10000

// Cloud is the in-memory cloud. It implements http.Handler and is safe for
// concurrent use.
type Cloud struct {
	// Now is the clock for timestamps; set it before serving. Defaults to a
	// fixed instant so output is deterministic.
	Now func() time.Time
	// BaseURL is the scheme://host the catalog advertises; empty means the
	// request's own host.
	BaseURL string

	mu           sync.Mutex
	serviceToken string
	components   map[string]string // component token -> component
	admins       map[string]bool
	actionDelay  time.Duration
	pageLimit    int
	users        map[string]*User // by uuid
	userOrder    []string
	tokens       map[string]*User
	expires      map[string]time.Time // user -> token expiry
	// started is when the cloud started serving; token lifetimes count
	// from it. Set by the first request (see clock).
	started      time.Time
	startOnce    sync.Once
	offset       atomic.Int64 // nanoseconds added to Now by AdvanceClock
	sharing      atomic.Bool  // CYCLADES_SHARED_RESOURCES_ENABLED
	settling     int          // servers with a status change under way
	drift        map[holding]int64
	projDrift    map[pholding]int64
	apps         map[int]*application
	nextApp      int
	nextMemb     int
	projects     map[string]*projectState
	projectOrder []string
	memberOf     map[string][]string // user -> project ids (sorted)
	containers   map[string]map[string]*containerState
	flavors      map[int]*Flavor
	servers      map[int]*VM
	serverOrder  []int
	volumes      map[string]*Volume
	volumeOrder  []string
	fips         map[string]*FloatingIP
	fipOrder     []string
	networks     map[string]*Network
	networkOrder []string
	resources    []string // api-visible, sorted

	usage     map[holding]int64 // derived: (owner user, project, resource)
	projUsage map[pholding]int64
	cache     map[string][]byte // encoded /quotas body per user

	faultMu sync.Mutex
	faults  []*faultState

	reqMu    sync.Mutex
	requests []Request
}

type holding struct{ user, project, resource string }

type pholding struct{ project, resource string }

type projectState struct {
	Project
	members map[string]*memberState
	created time.Time
	// deactivated is when the project was last suspended or terminated.
	deactivated time.Time
	lastApp     int // id of the last application, 0 if none
}

// memberState is a user's membership in a project.
type memberState struct {
	id    int
	state string
	// initialized says the membership was accepted once: the holding
	// exists (and is never deleted).
	initialized bool
	since       time.Time
}

// accepted reports whether the user is an accepted member (accepted or
// leave_requested): the states that grant quota.
func (p *projectState) accepted(user string) bool {
	m := p.members[user]
	return m != nil && (m.state == "accepted" || m.state == "leave_requested")
}

// related reports an accepted-type membership (accepted, leave_requested or
// suspended), which gives access to the project.
func (p *projectState) related(user string) bool {
	m := p.members[user]
	return m != nil && (m.state == "accepted" || m.state == "leave_requested" || m.state == "suspended")
}

// holds reports whether the user has a holding in the project: accepted
// once, in a project that is initialised and not deleted.
func (p *projectState) holds(user string) bool {
	m := p.members[user]
	return m != nil && m.initialized && p.State != "deleted" && p.State != "uninitialized"
}

// acceptedCount is the number of accepted members.
func (p *projectState) acceptedCount() int64 {
	n := int64(0)
	for u := range p.members {
		if p.accepted(u) {
			n++
		}
	}
	return n
}

type containerState struct {
	Container
	// charged is the project the bytes are charged to; it differs from the
	// policy's Project after a POST without ?update (docs/synnefo-wire.md#pithos-container-reassign).
	charged      string
	lastModified time.Time
	meta         map[string]string
}

type faultState struct {
	Fault
	seen int
	held int // matching requests counted by hold
}

// New builds a cloud from a scenario (which it validates and does not keep).
func New(sc *Scenario) (*Cloud, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Cloud{
		Now:          func() time.Time { return epoch },
		serviceToken: sc.ServiceToken,
		components:   map[string]string{},
		admins:       map[string]bool{},
		actionDelay:  time.Duration(sc.ActionDelay),
		pageLimit:    sc.PithosPageLimit,
		users:        map[string]*User{},
		tokens:       map[string]*User{},
		expires:      map[string]time.Time{},
		drift:        map[holding]int64{},
		projDrift:    map[pholding]int64{},
		apps:         map[int]*application{},
		nextApp:      100,
		projects:     map[string]*projectState{},
		memberOf:     map[string][]string{},
		containers:   map[string]map[string]*containerState{},
		flavors:      map[int]*Flavor{},
		servers:      map[int]*VM{},
		volumes:      map[string]*Volume{},
		fips:         map[string]*FloatingIP{},
		networks:     map[string]*Network{},
		usage:        map[holding]int64{},
		projUsage:    map[pholding]int64{},
		cache:        map[string][]byte{},
	}
	if c.pageLimit <= 0 {
		c.pageLimit = defaultPageLimit
	}
	c.sharing.Store(!sc.SharingDisabled)
	for comp, tok := range sc.ComponentTokens {
		c.components[tok] = comp
	}
	for _, a := range sc.ProjectAdmins {
		c.admins[a] = true
	}
	for _, u := range sc.Users {
		u := u
		if u.Name == "" {
			u.Name = u.UUID
		}
		if u.TokenDuration == 0 {
			u.TokenDuration = Duration(DefaultTokenDuration)
		}
		c.users[u.UUID] = &u
		c.tokens[u.Token] = &u
		c.userOrder = append(c.userOrder, u.UUID)
	}
	sort.Strings(c.userOrder)
	res := map[string]bool{}
	for _, r := range visibleResources {
		res[r] = true
	}
	for _, p := range sc.Projects {
		ps := &projectState{Project: p, members: map[string]*memberState{}, created: epoch}
		ps.Limits = maps.Clone(p.Limits)
		if ps.Limits == nil {
			ps.Limits = map[string]Limit{}
		}
		ps.Members = slices.Clone(p.Members)
		if p.System {
			ps.Name = "system:" + p.ID
			ps.Owner = ""
			ps.Private = true
			ps.Members = []string{p.ID}
		}
		if ps.State == "" {
			ps.State = "active"
		}
		if ps.State == "suspended" || ps.State == "terminated" {
			ps.deactivated = epoch
		}
		for _, m := range ps.Members {
			c.nextMemb++
			ps.members[m] = &memberState{id: c.nextMemb, state: "accepted", initialized: true, since: epoch}
			c.memberOf[m] = append(c.memberOf[m], p.ID)
		}
		if !p.System {
			for _, m := range p.Memberships {
				c.nextMemb++
				init := m.Initialized || m.State == "suspended" || m.State == "removed" ||
					m.State == "accepted" || m.State == "leave_requested"
				ps.members[m.User] = &memberState{id: c.nextMemb, state: m.State, initialized: init, since: epoch}
				c.memberOf[m.User] = append(c.memberOf[m.User], p.ID)
			}
		}
		for r := range ps.Limits {
			// total_cpu/total_ram stay hidden; any other resource given a
			// limit is shown, as if an admin made it api-visible (this is
			// how astakos.pending_app can appear).
			if !hiddenResource(r) {
				res[r] = true
			}
		}
		c.projects[p.ID] = ps
		c.projectOrder = append(c.projectOrder, p.ID)
	}
	sort.Strings(c.projectOrder)
	for _, ids := range c.memberOf {
		sort.Strings(ids)
	}
	c.resources = slices.Sorted(maps.Keys(res))

	for _, ct := range sc.Containers {
		cs := &containerState{Container: ct, lastModified: epoch}
		if cs.Project == "" {
			cs.Project = ct.Account
		}
		if cs.Versioning == "" {
			cs.Versioning = "auto"
		}
		cs.charged = cs.Project
		if c.containers[ct.Account] == nil {
			c.containers[ct.Account] = map[string]*containerState{}
		}
		c.containers[ct.Account][ct.Name] = cs
		c.add(ct.Account, cs.charged, quota.DiskSpace, cs.Bytes)
	}
	for _, d := range sc.Drift {
		c.setDrift(d.User, d.Project, d.Resource, d.Amount)
	}
	for _, f := range sc.Flavors {
		f := f
		c.flavors[f.ID] = &f
	}
	maxVol := int64(0)
	system := map[int]bool{}
	for _, v := range sc.Volumes {
		n, _ := strconv.ParseInt(v.ID, 10, 64)
		maxVol = max(maxVol, n)
		if v.Server != 0 && v.Index == 0 {
			system[v.Server] = true
		}
	}
	for _, s := range sc.Servers {
		s := s
		if s.Project == "" {
			s.Project = s.Owner
		}
		if s.Status == "" {
			s.Status = "ACTIVE"
		}
		if s.Name == "" {
			s.Name = "server-" + strconv.Itoa(s.ID)
		}
		c.servers[s.ID] = &s
		c.serverOrder = append(c.serverOrder, s.ID)
		c.chargeServer(&s, 1)
	}
	sort.Ints(c.serverOrder)
	vols := slices.Clone(sc.Volumes)
	for _, id := range c.serverOrder {
		s := c.servers[id]
		if system[id] {
			continue
		}
		// A server without a system volume gets one of its flavor's disk size.
		maxVol++
		vols = append(vols, Volume{
			ID: strconv.FormatInt(maxVol, 10), Name: s.Name + "-root", Owner: s.Owner,
			Project: s.Project, Size: c.flavors[s.Flavor].Disk, Server: id, Index: 0,
		})
	}
	for _, v := range vols {
		v := v
		if v.Project == "" {
			v.Project = v.Owner
		}
		if v.Name == "" {
			v.Name = "volume-" + v.ID
		}
		c.volumes[v.ID] = &v
		c.volumeOrder = append(c.volumeOrder, v.ID)
		c.add(v.Owner, v.Project, quota.Disk, v.Size<<30)
	}
	sortNumeric(c.volumeOrder)
	for _, f := range sc.FloatingIPs {
		f := f
		if f.Project == "" {
			f.Project = f.Owner
		}
		c.fips[f.ID] = &f
		c.fipOrder = append(c.fipOrder, f.ID)
		c.add(f.Owner, f.Project, quota.FloatingIP, 1)
	}
	sortNumeric(c.fipOrder)
	for _, n := range sc.Networks {
		n := n
		if n.Public {
			n.Owner, n.Project = "", ""
		} else if n.Project == "" {
			n.Project = n.Owner
		}
		if n.Name == "" {
			n.Name = "network-" + n.ID
		}
		c.networks[n.ID] = &n
		c.networkOrder = append(c.networkOrder, n.ID)
		if !n.Public {
			c.add(n.Owner, n.Project, quota.PrivateNetwork, 1)
		}
	}
	sortNumeric(c.networkOrder)
	c.SetFaults(sc.Faults)
	return c, nil
}

// DefaultTokenDuration is ASTAKOS_AUTH_TOKEN_DURATION's default, 30 days.
const DefaultTokenDuration = 30 * 24 * time.Hour

// now is the cloud's clock: Now, moved on by AdvanceClock.
func (c *Cloud) now() time.Time { return c.Now().Add(time.Duration(c.offset.Load())) }

// AdvanceClock moves the cloud's clock on by d, for token expiry and
// server actions in progress.
func (c *Cloud) AdvanceClock(d time.Duration) { c.offset.Add(int64(d)) }

// startTime is when the cloud started serving: tokens are issued then.
func (c *Cloud) startTime() time.Time {
	c.startOnce.Do(func() { c.started = c.now() })
	return c.started
}

// tokenExpiry is when a user's current token expires. Callers hold c.mu.
func (c *Cloud) tokenExpiry(u *User) time.Time {
	if t, ok := c.expires[u.UUID]; ok {
		return t
	}
	if u.TokenExpires != nil {
		return *u.TokenExpires
	}
	return c.startTime().Add(time.Duration(u.TokenDuration))
}

// expired reports whether a user's token has expired (Astakos compares
// expires < now on every request). Callers hold c.mu.
func (c *Cloud) expired(u *User) bool { return c.tokenExpiry(u).Before(c.now()) }

// RenewToken gives a user a new token, as an operator's
// `snf-manage user-modify --renew-token` would: the old one is invalid at
// once and the new one lasts the user's token duration from now. An empty
// token picks a random one. It returns the new token and its expiry.
func (c *Cloud) RenewToken(user, token string) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[user]
	if u == nil {
		return "", time.Time{}, fmt.Errorf("renew token: unknown user %q", user)
	}
	if token == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		token = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if _, taken := c.tokens[token]; taken || c.components[token] != "" || token == c.serviceToken {
		return "", time.Time{}, fmt.Errorf("renew token: token already in use")
	}
	delete(c.tokens, u.Token)
	u.Token = token
	c.tokens[token] = u
	exp := c.now().Add(time.Duration(u.TokenDuration))
	c.expires[u.UUID] = exp
	return token, exp, nil
}

// setDrift sets how much usage the quotaholder has lost for a holding.
// Callers hold c.mu (or own c, as New does).
func (c *Cloud) setDrift(user, project, resource string, n int64) {
	h := holding{user, project, resource}
	c.projDrift[pholding{project, resource}] += n - c.drift[h]
	c.drift[h] = n
	clear(c.cache)
}

// SetDrift makes the quotaholder record n less usage for (user, project,
// resource) than the items charge, at both levels: a later release of more
// than what remains recorded fails with NoQuantityError (413, negative
// Requested). 0 repairs it.
func (c *Cloud) SetDrift(user, project, resource string, n int64) error {
	if n < 0 {
		return fmt.Errorf("set drift: negative amount %d", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users[user] == nil || c.projects[project] == nil {
		return fmt.Errorf("set drift: unknown user %q or project %q", user, project)
	}
	c.setDrift(user, project, resource, n)
	return nil
}

// SetMembership sets a user's membership state in a project (accepted,
// leave_requested, suspended, removed, requested, rejected, cancelled).
// Accepting initialises the holding, which later states keep.
func (c *Cloud) SetMembership(project, user, state string) error {
	if !membershipStates[state] {
		return fmt.Errorf("set membership: unknown state %q", state)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.projects[project]
	if p == nil || c.users[user] == nil {
		return fmt.Errorf("set membership: unknown project %q or user %q", project, user)
	}
	if p.System {
		return fmt.Errorf("set membership: %q is a system project", project)
	}
	m := p.members[user]
	if m == nil {
		c.nextMemb++
		m = &memberState{id: c.nextMemb}
		p.members[user] = m
		c.memberOf[user] = append(c.memberOf[user], project)
		sort.Strings(c.memberOf[user])
	}
	m.state, m.since = state, c.now()
	if state == "accepted" || state == "leave_requested" {
		m.initialized = true
	}
	syncMembers(p)
	clear(c.cache)
	return nil
}

// syncMembers rewrites a project's Members and Memberships from its
// membership states, for State.
func syncMembers(p *projectState) {
	p.Members, p.Memberships = nil, nil
	for _, u := range slices.Sorted(maps.Keys(p.members)) {
		m := p.members[u]
		if m.state == "accepted" {
			p.Members = append(p.Members, u)
			continue
		}
		p.Memberships = append(p.Memberships, Membership{User: u, State: m.state, Initialized: m.initialized})
	}
}

// lock takes c.mu and completes the server actions that are due.
func (c *Cloud) lock() {
	c.mu.Lock()
	if c.settling == 0 {
		return
	}
	now := c.now()
	for _, id := range c.serverOrder {
		s := c.servers[id]
		if s.change == nil || s.change.at.After(now) {
			continue
		}
		c.chargeServer(s, -1)
		s.Status, s.Task = s.change.to, ""
		c.chargeServer(s, 1)
		s.change = nil
		c.settling--
	}
}

func sortNumeric(ids []string) {
	sort.Slice(ids, func(i, j int) bool {
		a, _ := strconv.ParseInt(ids[i], 10, 64)
		b, _ := strconv.ParseInt(ids[j], 10, 64)
		return a < b
	})
}

// add changes derived usage; every state change goes through it so the
// aggregates and the /quotas cache stay consistent. Callers hold c.mu
// (or own c exclusively, as New does).
func (c *Cloud) add(user, project, resource string, n int64) {
	if n == 0 {
		return
	}
	c.usage[holding{user, project, resource}] += n
	c.projUsage[pholding{project, resource}] += n
	clear(c.cache)
}

// running reports whether a server's cpu and ram are charged.
func running(status string) bool {
	return status == "ACTIVE" || status == "BUILD" || status == "ERROR"
}

// serverQuantities is what a server itself charges (its system volume is
// charged separately, as a volume).
func (c *Cloud) serverQuantities(s *VM) []provision {
	f := c.flavors[s.Flavor]
	ps := []provision{
		{quota.VM, 1},
		{quota.TotalCPU, f.VCPUs},
	}
	if running(s.Status) {
		ps = append(ps, provision{quota.CPU, f.VCPUs})
	}
	ps = append(ps, provision{quota.TotalRAM, f.RAM << 20})
	if running(s.Status) {
		ps = append(ps, provision{quota.RAM, f.RAM << 20})
	}
	return ps
}

type provision struct {
	resource string
	n        int64
}

func (c *Cloud) chargeServer(s *VM, sign int64) {
	for _, p := range c.serverQuantities(s) {
		c.add(s.Owner, s.Project, p.resource, sign*p.n)
	}
}

// systemVolume returns the index-0 volume of a server.
func (c *Cloud) systemVolume(id int) *Volume {
	for _, vid := range c.volumeOrder {
		if v := c.volumes[vid]; v.Server == id && v.Index == 0 {
			return v
		}
	}
	return nil
}

// limit returns the member and project limit of a resource in a project as
// /quotas reports them: 0 unless the project is active.
func (p *projectState) limit(resource string) Limit {
	l, ok := p.Limits[resource]
	if !ok {
		l, _ = hiddenDefault(resource)
	}
	if p.State != "active" {
		l.Member, l.Project = 0, 0
	}
	return l
}

// quotaOf computes a user's quota in a project, as the quotaholder records
// it (derived usage less any drift). Callers hold c.mu.
func (c *Cloud) quotaOf(user string, p *projectState, resource string) quota.Quota {
	l := p.limit(resource)
	member := p.accepted(user)
	q := quota.Quota{
		Usage:        c.usage[holding{user, p.ID, resource}] - c.drift[holding{user, p.ID, resource}],
		ProjectLimit: l.Project,
		ProjectUsage: c.projUsage[pholding{p.ID, resource}] - c.projDrift[pholding{p.ID, resource}],
	}
	if l.Pending != 0 {
		// Counted only when needed: this is the /quotas hot path.
		q.ProjectPending = l.Pending * p.acceptedCount()
	}
	if member {
		q.Limit = l.Member
		q.Pending = l.Pending
		q.Usage += l.Pending
	}
	q.ProjectUsage += q.ProjectPending
	return q
}

// Quota returns a user's quota for a resource in a project, as /quotas
// would report it (zero when the project does not exist).
func (c *Cloud) Quota(user, project, resource string) quota.Quota {
	c.lock()
	defer c.mu.Unlock()
	p, ok := c.projects[project]
	if !ok {
		return quota.Quota{}
	}
	return c.quotaOf(user, p, resource)
}

// GrowContainer adds bytes (negative shrinks, not below 0) to a container,
// charging its project. Growth is not quota-checked, as data already
// written in a real cloud is not.
func (c *Cloud) GrowContainer(account, name string, bytes int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.containers[account][name]
	if ct == nil {
		return fmt.Errorf("grow %s/%s: container not found", account, name)
	}
	if ct.Bytes+bytes < 0 {
		bytes = -ct.Bytes
	}
	ct.Bytes += bytes
	ct.lastModified = c.now()
	c.add(account, ct.charged, quota.DiskSpace, bytes)
	return nil
}

// AddContainer creates a container (charged to its project, which defaults
// to the account's system project).
func (c *Cloud) AddContainer(ct Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.users[ct.Account]; !ok {
		return fmt.Errorf("add container: unknown account %q", ct.Account)
	}
	if ct.Project == "" {
		ct.Project = ct.Account
	}
	if _, ok := c.projects[ct.Project]; !ok {
		return fmt.Errorf("add container: unknown project %q", ct.Project)
	}
	if c.containers[ct.Account][ct.Name] != nil || ct.Name == "" {
		return fmt.Errorf("add container: %q exists or is invalid", ct.Name)
	}
	if ct.Versioning == "" {
		ct.Versioning = "auto"
	}
	if c.containers[ct.Account] == nil {
		c.containers[ct.Account] = map[string]*containerState{}
	}
	cs := &containerState{Container: ct, charged: ct.Project, lastModified: c.now()}
	c.containers[ct.Account][ct.Name] = cs
	c.add(ct.Account, ct.Project, quota.DiskSpace, ct.Bytes)
	return nil
}

// SetServerStatus changes a server's status (ACTIVE, STOPPED, BUILD, ...);
// cpu and ram charges follow whether it runs.
func (c *Cloud) SetServerStatus(id int, status string) error {
	if !vmStatuses[status] || status == "" {
		return fmt.Errorf("set server %d status: unknown status %q", id, status)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[id]
	if s == nil {
		return fmt.Errorf("set server %d status: server not found", id)
	}
	c.chargeServer(s, -1)
	s.Status = status
	c.chargeServer(s, 1)
	if s.change != nil {
		s.change, s.Task = nil, ""
		c.settling--
	}
	return nil
}

// SetServerTask sets (or, with "", clears) a server's pending task.
func (c *Cloud) SetServerTask(id int, task string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[id]
	if s == nil {
		return fmt.Errorf("set server %d task: server not found", id)
	}
	s.Task = task
	return nil
}

// SetPending sets the pending allocation of every member of a project for a
// resource (see Limit.Pending).
func (c *Cloud) SetPending(project, resource string, n int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.projects[project]
	if p == nil {
		return fmt.Errorf("set pending: unknown project %q", project)
	}
	l, ok := p.Limits[resource]
	if !ok {
		l, _ = hiddenDefault(resource)
	}
	l.Pending = n
	p.Limits[resource] = l
	clear(c.cache)
	return nil
}

// SetLimit sets a project's member and project limit for a resource
// (keeping its pending allocation).
func (c *Cloud) SetLimit(project, resource string, member, projectLimit int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.projects[project]
	if p == nil {
		return fmt.Errorf("set limit: unknown project %q", project)
	}
	l := p.Limits[resource]
	l.Member, l.Project = member, projectLimit
	p.Limits[resource] = l
	if !hiddenResource(resource) && !slices.Contains(c.resources, resource) {
		c.resources = append(c.resources, resource)
		sort.Strings(c.resources)
	}
	clear(c.cache)
	return nil
}

// SetSharing turns CYCLADES_SHARED_RESOURCES_ENABLED on or off.
func (c *Cloud) SetSharing(enabled bool) { c.sharing.Store(enabled) }

func (c *Cloud) sharingEnabled() bool { return c.sharing.Load() }

// SetProjectState changes a project's state (active, suspended, ...).
func (c *Cloud) SetProjectState(project, state string) error {
	if !projectStates[state] || state == "" {
		return fmt.Errorf("set project state: unknown state %q", state)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.projects[project]
	if p == nil {
		return fmt.Errorf("set project state: unknown project %q", project)
	}
	if (state == "suspended" || state == "terminated") && p.State != state {
		p.deactivated = c.now()
	}
	p.State = state
	clear(c.cache)
	return nil
}

// Request is one logged API request.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query"`
	Status int    `json:"status"`
}

// Requests returns the API requests served so far (not /_sim/ ones), in
// order; a log past 2^20 entries keeps only the newest half.
func (c *Cloud) Requests() []Request {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	return slices.Clone(c.requests)
}

// ResetRequests empties the request log.
func (c *Cloud) ResetRequests() {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	c.requests = nil
}

// maxRequests bounds the request log of a long-running simulator; the
// oldest half is dropped when it is full.
const maxRequests = 1 << 20

func (c *Cloud) logRequest(r Request) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if len(c.requests) >= maxRequests {
		c.requests = append(c.requests[:0], c.requests[maxRequests/2:]...)
	}
	c.requests = append(c.requests, r)
}

// SetFaults replaces the fault list (and resets its counters).
func (c *Cloud) SetFaults(faults []Fault) {
	fs := make([]*faultState, len(faults))
	for i, f := range faults {
		fs[i] = &faultState{Fault: f}
	}
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.faults = fs
}

// Faults returns the current fault list.
func (c *Cloud) Faults() []Fault {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	out := make([]Fault, len(c.faults))
	for i, f := range c.faults {
		out[i] = f.Fault
	}
	return out
}

// State is the whole cloud, with usage derived per user, project and resource.
// Items appear as the cloud holds them now (after reassignments), in id order.
type State struct {
	Users       []User           `json:"users"`
	Projects    []ProjectUsage   `json:"projects"`
	Containers  []ContainerState `json:"containers"`
	Flavors     []Flavor         `json:"flavors"`
	Servers     []VM             `json:"servers"`
	Volumes     []Volume         `json:"volumes"`
	FloatingIPs []FloatingIP     `json:"floating_ips"`
	Networks    []Network        `json:"networks"`
	Faults      []Fault          `json:"faults"`
}

// ProjectUsage is a project with its derived usage: Usage per resource for
// the whole project, MemberUsage per member and resource (non-zero only).
type ProjectUsage struct {
	Project
	Usage       map[string]int64            `json:"usage"`
	MemberUsage map[string]map[string]int64 `json:"member_usage"`
}

// ContainerState is a container as the cloud holds it: Project is its
// policy, Charged the project its bytes are charged to.
type ContainerState struct {
	Container
	Charged string `json:"charged"`
}

// State returns a snapshot of the whole cloud.
func (c *Cloud) State() State {
	c.lock()
	defer c.mu.Unlock()
	st := State{Faults: c.Faults()}
	for _, id := range c.userOrder {
		st.Users = append(st.Users, *c.users[id])
	}
	memberUsage := map[string]map[string]map[string]int64{}
	for h, n := range c.usage {
		if n == 0 {
			continue
		}
		if memberUsage[h.project] == nil {
			memberUsage[h.project] = map[string]map[string]int64{}
		}
		if memberUsage[h.project][h.user] == nil {
			memberUsage[h.project][h.user] = map[string]int64{}
		}
		memberUsage[h.project][h.user][h.resource] = n
	}
	for _, id := range c.projectOrder {
		p := c.projects[id]
		pu := ProjectUsage{Project: p.Project, Usage: map[string]int64{}, MemberUsage: memberUsage[id]}
		pu.Limits = maps.Clone(p.Limits)
		pu.Members = slices.Clone(p.Members)
		for _, r := range append(slices.Clone(c.resources), hiddenResources...) {
			if n := c.projUsage[pholding{id, r}]; n != 0 {
				pu.Usage[r] = n
			}
		}
		st.Projects = append(st.Projects, pu)
	}
	for _, acct := range c.userOrder {
		for _, name := range slices.Sorted(maps.Keys(c.containers[acct])) {
			ct := c.containers[acct][name]
			st.Containers = append(st.Containers, ContainerState{Container: ct.Container, Charged: ct.charged})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.flavors)) {
		st.Flavors = append(st.Flavors, *c.flavors[id])
	}
	for _, id := range c.serverOrder {
		st.Servers = append(st.Servers, *c.servers[id])
	}
	for _, id := range c.volumeOrder {
		st.Volumes = append(st.Volumes, *c.volumes[id])
	}
	for _, id := range c.fipOrder {
		st.FloatingIPs = append(st.FloatingIPs, *c.fips[id])
	}
	for _, id := range c.networkOrder {
		st.Networks = append(st.Networks, *c.networks[id])
	}
	return st
}
