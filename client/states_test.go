package client_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/synnefosim"
)

// Ids of synnefosim/testdata/states.yaml.
const (
	stAlice  = "a11ce000-0000-4000-8000-000000000001"
	stBob    = "b0b00000-0000-4000-8000-000000000002"
	stAdmin  = "ad000000-0000-4000-8000-000000000009"
	stLab    = "1ab00000-0000-4000-8000-000000000010"
	stFormer = "f0000000-0000-4000-8000-000000000011"
	stPaused = "9a000000-0000-4000-8000-000000000014"
	stFrozen = "5a5e0000-0000-4000-8000-000000000015"
)

// newStates serves states.yaml (after mutate) and returns a client for alice.
func newStates(t *testing.T, mutate func(*synnefosim.Scenario)) (*synnefosim.Server, *client.Client) {
	t.Helper()
	sc, err := synnefosim.LoadScenario(filepath.Join("..", "synnefosim", "testdata", "states.yaml"))
	require.NoError(t, err)
	if mutate != nil {
		mutate(sc)
	}
	srv := synnefosim.NewServer(sc)
	t.Cleanup(srv.Close)
	return srv, simClient(t, srv, "alice-token", false)
}

func simState(srv *synnefosim.Server, kind quota.Kind, id string) (project string, shared bool) {
	st := srv.Cloud.State()
	switch kind {
	case quota.KindServer:
		for _, s := range st.Servers {
			if id == strconv.Itoa(s.ID) {
				return s.Project, s.Shared
			}
		}
	case quota.KindFloatingIP:
		for _, f := range st.FloatingIPs {
			if f.ID == id {
				return f.Project, f.Shared
			}
		}
	}
	return "", false
}

// Items carry the cloud's sharing and a reassign sends it back, so a move
// keeps an item shared; clearing it unshares
// (docs/synnefo-wire.md#sharing-on-reassign).
func TestSimSharingKept(t *testing.T) {
	ctx := context.Background()
	srv, c := newStates(t, nil)
	ips, err := c.Items(ctx, quota.KindFloatingIP, stLab)
	require.NoError(t, err)
	require.Len(t, ips, 1)
	require.True(t, ips[0].Shared)
	require.NoError(t, c.Reassign(ctx, ips[0], stAlice))
	p, shared := simState(srv, quota.KindFloatingIP, "17")
	require.Equal(t, stAlice, p)
	require.True(t, shared, "the move kept the sharing")

	vms, err := c.Items(ctx, quota.KindServer, stLab)
	require.NoError(t, err)
	require.Len(t, vms, 1)
	require.True(t, vms[0].Shared)
	vms[0].Shared = false
	require.NoError(t, c.Reassign(ctx, vms[0], stAlice))
	_, shared = simState(srv, quota.KindServer, "4250")
	require.False(t, shared, "cleared on purpose: unshared")

	srv.Cloud.SetSharing(false)
	err = c.ReassignFloatingIP(ctx, "17", stLab, true)
	require.True(t, client.IsForbidden(err), "%v", err)
	require.NoError(t, c.ReassignFloatingIP(ctx, "17", stLab, false))
}

// A VM whose flavor is retired is sized from GET /flavors/<id>, read once
// per listing (docs/synnefo-wire.md#retired-flavors).
func TestSimRetiredFlavor(t *testing.T) {
	ctx := context.Background()
	srv, c := newStates(t, func(sc *synnefosim.Scenario) {
		sc.Servers = append(sc.Servers, synnefosim.VM{ID: 4260, Owner: stAlice, Project: stLab, Flavor: 9})
	})
	vms, err := c.Items(ctx, quota.KindServer, stLab)
	require.NoError(t, err)
	require.Len(t, vms, 2)
	for _, it := range vms {
		require.Empty(t, it.Busy)
		require.Equal(t, int64(4), it.Quantities[quota.CPU])
		require.Equal(t, int64(4096)<<20, it.Quantities[quota.RAM])
	}
	n := 0
	for _, r := range srv.Cloud.Requests() {
		if r.Path == "/compute/v2.0/flavors/9" {
			n++
		}
	}
	require.Equal(t, 1, n)
	f, err := c.Flavor(ctx, 9)
	require.NoError(t, err)
	require.Equal(t, int64(40), f.Disk)
	_, err = c.Flavor(ctx, 99)
	require.True(t, client.IsNotFound(err), "%v", err)
}

// Memberships and project states: what tells a good destination
// (docs/synnefo-wire.md#membership-and-project-states).
func TestSimMemberships(t *testing.T) {
	ctx := context.Background()
	_, c := newStates(t, nil)
	ms, err := c.Memberships(ctx, stLab)
	require.NoError(t, err)
	require.Len(t, ms, 1, "alice sees only her own in bob's project")
	require.Equal(t, client.Membership{ID: ms[0].ID, User: stAlice, Project: stLab, State: "accepted", AllowedActions: []string{"leave"}}, ms[0])
	require.True(t, ms[0].Accepted())

	ps, err := c.ProjectSummaries(ctx)
	require.NoError(t, err)
	require.Equal(t, quota.Project{ID: stLab, Name: "lab", State: "active", Owner: stBob, Membership: "accepted"}, ps[stLab])
	require.Equal(t, quota.Project{ID: stFrozen, Name: "frozen", State: "suspended", Owner: stAlice, Membership: "accepted"}, ps[stFrozen])
	require.Equal(t, "suspended", ps[stPaused].Membership)
	require.Equal(t, quota.Project{ID: stFormer, Membership: "removed"}, ps[stFormer], "a removed member knows the project by id only")
	require.Equal(t, "accepted", ps[stAlice].Membership)
	require.True(t, ps[stAlice].System)

	p, err := c.Project(ctx, stFrozen)
	require.NoError(t, err)
	require.False(t, p.Active())
	require.False(t, p.DeactivationDate.IsZero())
	require.Nil(t, p.LastApplication)

	// A former member's move is a 413, like a full project.
	err = c.ReassignFloatingIP(ctx, "18", stFormer, false)
	require.True(t, client.IsOverLimit(err))
	require.False(t, client.IsNotMember(err))
	require.False(t, client.IsReleaseFailure(err))
}

// A release failure is told from a full destination
// (docs/synnefo-wire.md#release-failures).
func TestSimReleaseFailure(t *testing.T) {
	ctx := context.Background()
	srv, c := newStates(t, nil)
	require.NoError(t, srv.Cloud.SetDrift(stAlice, stLab, quota.FloatingIP, 1))
	err := c.ReassignFloatingIP(ctx, "17", stAlice, true)
	require.True(t, client.IsReleaseFailure(err), "%v", err)
	require.True(t, client.IsOverLimit(err))
	var e *client.Error
	require.True(t, errors.As(err, &e))
	n, ok := e.Requested()
	require.True(t, ok)
	require.Equal(t, int64(-1), n)

	// Pithos: the same through a proxied fault.
	require.NoError(t, srv.Cloud.SetDrift(stAlice, stLab, quota.DiskSpace, 1))
	err = c.ReassignContainer(ctx, "data", stAlice)
	require.True(t, client.IsReleaseFailure(err), "%v", err)

	// A full destination is not one.
	err = c.ReassignFloatingIP(ctx, "18", stFrozen, false)
	require.True(t, client.IsOverLimit(err))
	require.False(t, client.IsReleaseFailure(err))
	require.True(t, errors.As(err, &e))
	n, ok = e.Requested()
	require.True(t, ok)
	require.Equal(t, int64(1), n)
	require.False(t, client.IsReleaseFailure(errors.New("Requested: -1")))
}

// On a 401 the client reads its token again, re-authenticates and retries
// once; Expires follows the renewed token (docs/synnefo-wire.md#token-lifetime).
func TestSimTokenRenewal(t *testing.T) {
	ctx := context.Background()
	srv, _ := newStates(t, nil)
	var mu sync.Mutex
	current, reads := "bob-token", 0
	source := func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		return current, nil
	}
	var logs bytes.Buffer
	c, err := client.New(client.Config{
		AuthURL: srv.AuthURL(), Token: "bob-token", TokenSource: source,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	id, err := c.Authenticate(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), id.Expires.UTC())
	_, err = c.Quotas(ctx)
	require.NoError(t, err)

	srv.Cloud.AdvanceClock(49 * time.Hour)
	// Expired and not renewed yet: one read, the same token, no retry.
	_, err = c.Quotas(ctx)
	require.True(t, client.IsUnauthorized(err), "%v", err)
	require.Contains(t, err.Error(), "Authentication expired")
	require.Equal(t, 1, reads)

	// The operator renews it and puts the new one where the source reads.
	tok, exp, err := srv.Cloud.RenewToken(stBob, "bob-renewed-token")
	require.NoError(t, err)
	mu.Lock()
	current = tok
	mu.Unlock()
	srv.Cloud.ResetRequests()
	q, err := c.Quotas(ctx)
	require.NoError(t, err)
	require.Contains(t, q, stLab)
	require.Equal(t, 2, reads)
	var paths []string
	for _, r := range srv.Cloud.Requests() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	require.Equal(t, []string{"GET /account/v1.0/quotas", "POST /identity/v2.0/tokens", "GET /account/v1.0/quotas"}, paths)
	id, err = c.Authenticate(ctx)
	require.NoError(t, err)
	require.Equal(t, exp, id.Expires.UTC())
	for _, s := range []string{logs.String(), c.String()} {
		require.NotContains(t, s, "bob-renewed-token")
		require.NotContains(t, s, "bob-token")
	}

	// A token refused at authentication is renewed the same way.
	c2, err := client.New(client.Config{AuthURL: srv.AuthURL(), Token: "bob-token", TokenSource: source})
	require.NoError(t, err)
	_, err = c2.Servers(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, reads)

	// Without a source, a 401 is final.
	c3, err := client.New(client.Config{AuthURL: srv.AuthURL(), Token: "bob-token"})
	require.NoError(t, err)
	_, err = c3.Quotas(ctx)
	require.True(t, client.IsUnauthorized(err))
	require.NotContains(t, err.Error(), "bob-token")
}

// Each component token reads its own component's resources
// (docs/synnefo-wire.md#component-tokens).
func TestSimComponentTokens(t *testing.T) {
	ctx := context.Background()
	srv, _ := newStates(t, nil)
	for comp, want := range map[string][]string{
		"pithos":  {quota.DiskSpace},
		"astakos": {quota.PendingApp},
	} {
		c, err := client.New(client.Config{AuthURL: srv.AuthURL(), Token: comp + "-token", Service: true, Component: comp})
		require.NoError(t, err)
		require.Contains(t, c.String(), "Component: "+comp)
		q, err := c.ServiceProjectQuotas(ctx, stLab)
		require.NoError(t, err)
		var got []string
		for r := range q[stLab] {
			got = append(got, r)
		}
		require.ElementsMatch(t, want, got, comp)
	}
	_, err := client.New(client.Config{AuthURL: srv.AuthURL(), Token: "x", Service: true, Component: "nova"})
	require.EqualError(t, err, `client: unknown component "nova" (astakos, cyclades or pithos)`)
	c, err := client.New(client.Config{AuthURL: srv.AuthURL(), Token: "cyclades-token", Service: true, Component: "cyclades"})
	require.NoError(t, err)
	q, err := c.ServiceProjectQuotas(ctx, stLab)
	require.NoError(t, err)
	require.Contains(t, q[stLab], quota.TotalCPU)
	require.NotContains(t, q[stLab], quota.DiskSpace)
	names, err := c.UserCatalog(ctx, []string{stAlice})
	require.NoError(t, err, "a component token uses the service catalogs")
	require.Equal(t, map[string]string{stAlice: "alice@example.org"}, names)
}

// An owner submits, an admin approves, and the limits change
// (docs/synnefo-wire.md#raising-limits).
func TestSimRaiseLimit(t *testing.T) {
	ctx := context.Background()
	srv, c := newStates(t, nil)
	adminC := simClient(t, srv, "admin-token", false)

	_, err := c.ModifyProject(ctx, stLab, map[string]client.ProjectResource{quota.VM: {MemberCapacity: 9, ProjectCapacity: 20}})
	require.True(t, client.IsForbidden(err), "not the owner: %v", err)
	_, err = c.ModifyProject(ctx, stFrozen, map[string]client.ProjectResource{quota.VM: {MemberCapacity: 9, ProjectCapacity: 1}})
	var e *client.Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, 400, e.Status)
	require.Equal(t, "Project quota limit is less than member limit for resource 'cyclades.vm'", e.Message)

	app, err := adminC.ModifyProject(ctx, stLab, map[string]client.ProjectResource{quota.VM: {MemberCapacity: 9, ProjectCapacity: 20}})
	require.NoError(t, err)
	require.Positive(t, app)
	p, err := adminC.Project(ctx, stLab)
	require.NoError(t, err)
	require.Equal(t, &client.Application{ID: app, State: "pending", Applicant: stAdmin,
		Resources: map[string]client.ProjectResource{quota.VM: {MemberCapacity: 9, ProjectCapacity: 20}}}, p.LastApplication)

	err = c.ProjectAction(ctx, stLab, client.ActionApprove, app, "please")
	require.True(t, client.IsForbidden(err))
	err = adminC.ProjectAction(ctx, stLab, client.ActionApprove, 1, "")
	require.True(t, client.IsNotFound(err))
	require.NoError(t, adminC.ProjectAction(ctx, stLab, client.ActionApprove, app, "ok"))
	q, err := c.Quotas(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(9), q[stLab][quota.VM].Limit)
	require.Equal(t, int64(20), q[stLab][quota.VM].ProjectLimit)
	err = adminC.ProjectAction(ctx, stLab, client.ActionApprove, app, "")
	require.True(t, errors.As(err, &e))
	require.Equal(t, 409, e.Status)

	// Admin state changes.
	require.NoError(t, adminC.ProjectAction(ctx, stLab, client.ActionSuspend, 0, "audit"))
	p, err = c.Project(ctx, stLab)
	require.NoError(t, err)
	require.Equal(t, "suspended", p.State)
	require.Error(t, adminC.ProjectAction(ctx, stLab, client.ActionApprove, 0, ""))
	require.Error(t, adminC.ProjectAction(ctx, stLab, "frobnicate", 0, ""))
	_, err = adminC.ModifyProject(ctx, stLab, nil)
	require.Error(t, err)
}

// Display names for uuids, in batches (docs/synnefo-wire.md#user-catalogs).
func TestSimUserCatalog(t *testing.T) {
	ctx := context.Background()
	srv, c := newStates(t, nil)
	uuids := []string{stBob, "nobody"}
	for i := 0; i < 250; i++ {
		uuids = append(uuids, "unknown-"+strconv.Itoa(i))
	}
	uuids = append(uuids, stAdmin)
	_, err := c.Authenticate(ctx)
	require.NoError(t, err)
	srv.Cloud.ResetRequests()
	names, err := c.UserCatalog(ctx, uuids)
	require.NoError(t, err)
	require.Equal(t, map[string]string{stBob: "bob@example.org", stAdmin: "admin@example.org"}, names)
	require.Len(t, srv.Cloud.Requests(), 2, "two batches")
	ids, err := c.DisplayNameCatalog(ctx, []string{"ALICE@example.org", "ghost@example.org"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"ALICE@example.org": stAlice}, ids)
	names, err = c.UserCatalog(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, names)
}

// The bodies the new calls send, byte for byte.
func TestNewCallBodies(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	f.route("POST /network/v2.0/floatingips/17/action", f.json(200, ""))
	f.route("PUT /account/v1.0/projects/p-lab", f.json(201, `{"id": "p-lab", "application": 57}`))
	f.route("POST /account/v1.0/projects/p-lab/action", f.json(200, ""))
	f.route("POST /account/v1.0/user_catalogs", f.json(200, `{"uuid_catalog": {"u-bob": "bob@example.org"}, "displayname_catalog": {}}`))
	c := f.client(nil)
	require.NoError(t, c.ReassignFloatingIP(ctx, "17", "p-lab", true))
	app, err := c.ModifyProject(ctx, "p-lab", map[string]client.ProjectResource{quota.VM: {MemberCapacity: 4, ProjectCapacity: 20}})
	require.NoError(t, err)
	require.Equal(t, int64(57), app)
	require.NoError(t, c.ProjectAction(ctx, "p-lab", client.ActionApprove, 57, "ok"))
	require.NoError(t, c.ProjectAction(ctx, "p-lab", client.ActionSuspend, 0, "audit"))
	names, err := c.UserCatalog(ctx, []string{"u-bob"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"u-bob": "bob@example.org"}, names)
	var bodies []string
	for _, r := range f.requests() {
		if r.Path != "/identity/v2.0/tokens" {
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			bodies = append(bodies, r.Method+" "+r.Path+" "+r.Body)
		}
	}
	require.Equal(t, []string{
		`POST /network/v2.0/floatingips/17/action {"reassign":{"project":"p-lab","shared_to_project":true}}`,
		`PUT /account/v1.0/projects/p-lab {"resources":{"cyclades.vm":{"member_capacity":4,"project_capacity":20}}}`,
		`POST /account/v1.0/projects/p-lab/action {"approve":{"app_id":57,"reason":"ok"}}`,
		`POST /account/v1.0/projects/p-lab/action {"suspend":{"reason":"audit"}}`,
		`POST /account/v1.0/user_catalogs {"uuids":["u-bob"]}`,
	}, bodies)
}
