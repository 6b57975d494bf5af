package client_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/synnefosim"
)

const (
	alice   = "0f2c6a1e-4b7d-4e21-9c3a-5d8e7f6a1b2c"
	cs333   = "c5333a1b-2f4e-4d6a-8b9c-0e1f2a3b4c5d"
	bob     = "b0b00000-0000-4000-8000-000000000001"
	outside = "0d0d0d0d-0000-4000-8000-000000000002" // bob's project; alice is no member
)

// newSim serves the seed scenario plus bob and his project, and returns a
// client for alice.
func newSim(t *testing.T, mutate func(*synnefosim.Scenario)) (*synnefosim.Server, *client.Client) {
	t.Helper()
	sc, err := synnefosim.LoadScenario(filepath.Join("..", "synnefosim", "testdata", "seed.yaml"))
	require.NoError(t, err)
	sc.Users = append(sc.Users, synnefosim.User{UUID: bob, Name: "bob@example.org", Token: "bob-token"})
	sc.Projects = append(sc.Projects, synnefosim.Project{
		ID: outside, Name: "Bob's lab", Owner: bob, Members: []string{bob},
		Limits: map[string]synnefosim.Limit{
			quota.DiskSpace: {Member: 1 << 40, Project: 1 << 40},
			quota.VM:        {Member: 10, Project: 10},
		},
	})
	if mutate != nil {
		mutate(sc)
	}
	srv := synnefosim.NewServer(sc)
	t.Cleanup(srv.Close)
	return srv, simClient(t, srv, "alice-token", false)
}

func simClient(t *testing.T, srv *synnefosim.Server, token string, service bool) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		AuthURL: srv.AuthURL(), Token: token, Service: service,
		Retry: client.Retry{Attempts: 3, Base: time.Nanosecond, Max: time.Nanosecond},
	})
	require.NoError(t, err)
	return c
}

func TestSimReads(t *testing.T) {
	ctx := context.Background()
	srv, c := newSim(t, nil)

	id, err := c.Authenticate(ctx)
	require.NoError(t, err)
	require.Equal(t, alice, id.UserID)
	require.Equal(t, srv.URL+"/network/v2.0", id.Endpoints["network"])
	require.Equal(t, srv.URL+"/volume/v2.0", id.Endpoints["volume"])
	require.ElementsMatch(t, []string{alice, cs333}, id.Projects)

	q, err := c.Quotas(ctx)
	require.NoError(t, err)
	sys := q[alice][quota.DiskSpace]
	require.Equal(t, int64(21474836480), sys.Limit)
	require.Equal(t, int64(20615843020+10485760), sys.Usage)
	require.Greater(t, sys.Ratio(), 0.95)
	require.Equal(t, int64(107374182400), q[cs333][quota.DiskSpace].Limit)
	require.NotContains(t, q, outside)

	rs, err := c.Resources(ctx)
	require.NoError(t, err)
	require.Contains(t, rs, quota.DiskSpace)
	require.NotContains(t, rs, quota.TotalCPU, "hidden resources are not listed")

	ps, err := c.Projects(ctx, client.ProjectFilter{})
	require.NoError(t, err)
	names := map[string]string{}
	for _, p := range ps {
		names[p.ID] = p.Name
	}
	require.Equal(t, "CS333 lab assignments", names[cs333])
	require.Equal(t, "system:"+alice, names[alice])

	ps, err = c.Projects(ctx, client.ProjectFilter{Name: "CS333 lab assignments"})
	require.NoError(t, err)
	require.Len(t, ps, 1)

	p, err := c.Project(ctx, alice)
	require.NoError(t, err)
	require.True(t, p.SystemProject)
	require.Empty(t, p.Owner)
	require.Equal(t, quota.Project{ID: alice, Name: "system:" + alice, System: true, State: "active"}, p.Summary())

	_, err = c.Projects(ctx, client.ProjectFilter{Mode: "everything"})
	require.Error(t, err)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 400, e.Status)

	_, err = c.Project(ctx, "00000000-0000-4000-8000-00000000dead")
	require.True(t, client.IsNotFound(err), "%v", err)

	info, err := c.ContainerInfo(ctx, "course_container")
	require.NoError(t, err)
	require.Equal(t, int64(20615843020), info.Bytes)
	require.Equal(t, int64(120), info.Count)
	require.Equal(t, alice, info.Policy.Project)

	_, err = c.ContainerInfo(ctx, "nope")
	require.True(t, client.IsNotFound(err), "%v", err)

	srvs, err := c.Servers(ctx)
	require.NoError(t, err)
	require.Len(t, srvs, 1)
	require.Equal(t, int64(4242), srvs[0].ID)
	require.Equal(t, alice, srvs[0].TenantID)

	fls, err := c.Flavors(ctx)
	require.NoError(t, err)
	require.Equal(t, []client.Flavor{{ID: 3, Name: "C2R2048D20", VCPUs: 2, RAM: 2048, Disk: 20}}, stripTemplate(fls))

	ips, err := c.FloatingIPs(ctx)
	require.NoError(t, err)
	require.Len(t, ips, 1)
	require.Equal(t, "192.0.2.10", ips[0].FloatingIPAddress)

	nets, err := c.Networks(ctx)
	require.NoError(t, err)
	require.Len(t, nets, 2, "the public network is listed too")

	vols, err := c.Volumes(ctx)
	require.NoError(t, err)
	require.Len(t, vols, 1)
	srvID, ok := vols[0].SystemOf()
	require.True(t, ok)
	require.Equal(t, int64(4242), srvID)
}

func stripTemplate(fs []client.Flavor) []client.Flavor {
	for i := range fs {
		fs[i].DiskTemplate = ""
	}
	return fs
}

func TestSimContainerPagination(t *testing.T) {
	srv, _ := newSim(t, nil)
	c, err := client.New(client.Config{AuthURL: srv.AuthURL(), Token: "alice-token", PageLimit: 1})
	require.NoError(t, err)
	cs, err := c.Containers(context.Background())
	require.NoError(t, err)
	require.Len(t, cs, 2)
	require.Equal(t, "course_container", cs[0].Name)
	require.Equal(t, "notes", cs[1].Name)
	var queries []string
	for _, r := range srv.Cloud.Requests() {
		if r.Path == "/object-store/v1/"+alice {
			queries = append(queries, r.Query)
		}
	}
	require.Equal(t, []string{
		"format=json&limit=1",
		"format=json&limit=1&marker=course_container",
		"format=json&limit=1&marker=notes",
	}, queries)
}

func TestSimItems(t *testing.T) {
	tests := []struct {
		kind    quota.Kind
		project string
		want    []quota.Item
	}{
		{kind: quota.KindContainer, project: alice, want: []quota.Item{
			{Kind: quota.KindContainer, ID: "course_container", Name: "course_container", Owner: alice, Project: alice, Quantities: quota.ContainerQuantities(20615843020)},
			{Kind: quota.KindContainer, ID: "notes", Name: "notes", Owner: alice, Project: alice, Quantities: quota.ContainerQuantities(10485760)},
		}},
		{kind: quota.KindServer, project: alice, want: []quota.Item{
			{Kind: quota.KindServer, ID: "4242", Name: "vm1", Owner: alice, Project: alice, Quantities: quota.ServerQuantities(2, 2048, 20, true)},
		}},
		{kind: quota.KindFloatingIP, project: alice, want: []quota.Item{
			{Kind: quota.KindFloatingIP, ID: "17", Name: "192.0.2.10", Owner: alice, Project: alice, Quantities: quota.FloatingIPQuantities()},
		}},
		{kind: quota.KindNetwork, project: alice, want: []quota.Item{
			{Kind: quota.KindNetwork, ID: "3", Name: "net1", Owner: alice, Project: alice, Quantities: quota.NetworkQuantities()},
		}},
		{kind: quota.KindVolume, project: alice, want: []quota.Item{
			{Kind: quota.KindVolume, ID: "77", Name: "vol1", Owner: alice, Project: alice, Quantities: quota.VolumeQuantities(20), Busy: "system volume of server 4242 (moves with it)"},
		}},
		{kind: quota.KindContainer, project: cs333},
	}
	_, c := newSim(t, nil)
	for _, tt := range tests {
		t.Run(string(tt.kind)+" in "+tt.project, func(t *testing.T) {
			items, err := c.Items(context.Background(), tt.kind, tt.project)
			require.NoError(t, err)
			if tt.want == nil {
				require.Empty(t, items)
				return
			}
			require.Equal(t, tt.want, items)
		})
	}
}

func TestSimReassign(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*synnefosim.Cloud)
		item  quota.Item
		to    string
		check func(t *testing.T, err error)
	}{
		{name: "container", item: quota.Item{Kind: quota.KindContainer, ID: "course_container"}, to: cs333},
		{name: "server", item: quota.Item{Kind: quota.KindServer, ID: "4242"}, to: cs333},
		{name: "floating IP", item: quota.Item{Kind: quota.KindFloatingIP, ID: "17"}, to: cs333},
		{name: "network", item: quota.Item{Kind: quota.KindNetwork, ID: "3"}, to: cs333},
		{name: "data volume", item: quota.Item{Kind: quota.KindVolume, ID: "78"}, to: cs333},
		{
			name: "floating IP over limit", item: quota.Item{Kind: quota.KindFloatingIP, ID: "17"}, to: cs333,
			setup: func(c *synnefosim.Cloud) { require.NoError(t, c.SetLimit(cs333, quota.FloatingIP, 0, 0)) },
			check: func(t *testing.T, err error) { require.True(t, client.IsOverLimit(err), "%v", err) },
		},
		{
			name: "network over limit", item: quota.Item{Kind: quota.KindNetwork, ID: "3"}, to: cs333,
			setup: func(c *synnefosim.Cloud) { require.NoError(t, c.SetLimit(cs333, quota.PrivateNetwork, 0, 4)) },
			check: func(t *testing.T, err error) { require.True(t, client.IsOverLimit(err), "%v", err) },
		},
		{
			name: "volume over limit", item: quota.Item{Kind: quota.KindVolume, ID: "78"}, to: cs333,
			setup: func(c *synnefosim.Cloud) { require.NoError(t, c.SetLimit(cs333, quota.Disk, 1<<30, 1<<40)) },
			check: func(t *testing.T, err error) { require.True(t, client.IsOverLimit(err), "%v", err) },
		},
		{
			name: "network to a project the owner is not in", item: quota.Item{Kind: quota.KindNetwork, ID: "3"}, to: outside,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotMember(err), "%v", err) },
		},
		{
			name: "volume to a project the owner is not in", item: quota.Item{Kind: quota.KindVolume, ID: "78"}, to: outside,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotMember(err), "%v", err) },
		},
		{
			name: "missing floating IP", item: quota.Item{Kind: quota.KindFloatingIP, ID: "999"}, to: cs333,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotFound(err), "%v", err) },
		},
		{
			name: "missing network", item: quota.Item{Kind: quota.KindNetwork, ID: "999"}, to: cs333,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotFound(err), "%v", err) },
		},
		{
			name: "missing volume", item: quota.Item{Kind: quota.KindVolume, ID: "999"}, to: cs333,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotFound(err), "%v", err) },
		},
		{
			name: "unknown project", item: quota.Item{Kind: quota.KindServer, ID: "4242"}, to: "00000000-0000-4000-8000-00000000dead",
			check: func(t *testing.T, err error) { require.Error(t, err) },
		},
		{
			name: "container over limit", item: quota.Item{Kind: quota.KindContainer, ID: "course_container"}, to: cs333,
			setup: func(c *synnefosim.Cloud) { require.NoError(t, c.SetLimit(cs333, quota.DiskSpace, 1<<30, 1<<30)) },
			check: func(t *testing.T, err error) { require.True(t, client.IsOverLimit(err), "%v", err) },
		},
		{
			name: "server over limit", item: quota.Item{Kind: quota.KindServer, ID: "4242"}, to: cs333,
			setup: func(c *synnefosim.Cloud) { require.NoError(t, c.SetLimit(cs333, quota.CPU, 1, 1)) },
			check: func(t *testing.T, err error) { require.True(t, client.IsOverLimit(err), "%v", err) },
		},
		{
			name: "container to a project the owner is not in", item: quota.Item{Kind: quota.KindContainer, ID: "course_container"}, to: outside,
			check: func(t *testing.T, err error) {
				require.True(t, client.IsNotMember(err), "%v", err)
				require.False(t, client.IsNotFound(err))
			},
		},
		{
			name: "server to a project the owner is not in", item: quota.Item{Kind: quota.KindServer, ID: "4242"}, to: outside,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotMember(err), "%v", err) },
		},
		{
			name: "floating IP to a project the owner is not in", item: quota.Item{Kind: quota.KindFloatingIP, ID: "17"}, to: outside,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotMember(err), "%v", err) },
		},
		{
			name: "system volume", item: quota.Item{Kind: quota.KindVolume, ID: "77"}, to: cs333,
			check: func(t *testing.T, err error) { requireStatus(t, err, 409, "conflict") },
		},
		{
			name: "public network", item: quota.Item{Kind: quota.KindNetwork, ID: "1"}, to: cs333,
			check: func(t *testing.T, err error) { requireStatus(t, err, 403, "forbidden") },
		},
		{
			name: "server being built", item: quota.Item{Kind: quota.KindServer, ID: "4242"}, to: cs333,
			setup: func(c *synnefosim.Cloud) { require.NoError(t, c.SetServerStatus(4242, "BUILD")) },
			check: func(t *testing.T, err error) { requireStatus(t, err, 409, "buildInProgress") },
		},
		{
			name: "missing server", item: quota.Item{Kind: quota.KindServer, ID: "999"}, to: cs333,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotFound(err), "%v", err) },
		},
		{
			name: "missing container", item: quota.Item{Kind: quota.KindContainer, ID: "nope"}, to: cs333,
			check: func(t *testing.T, err error) { require.True(t, client.IsNotFound(err), "%v", err) },
		},
		{
			name: "unknown kind", item: quota.Item{Kind: "bucket", ID: "x"}, to: cs333,
			check: func(t *testing.T, err error) { require.ErrorContains(t, err, `unknown item kind "bucket"`) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv, c := newSim(t, func(sc *synnefosim.Scenario) {
				sc.Volumes = append(sc.Volumes, synnefosim.Volume{ID: "78", Name: "data", Owner: alice, Size: 5})
			})
			if tt.setup != nil {
				tt.setup(srv.Cloud)
			}
			before, err := c.Quotas(ctx)
			require.NoError(t, err)
			err = c.Reassign(ctx, tt.item, tt.to)
			after, qerr := c.Quotas(ctx)
			require.NoError(t, qerr)
			if tt.check != nil {
				require.Error(t, err)
				tt.check(t, err)
				require.Equal(t, before, after, "a refused move changes no quota")
				return
			}
			require.NoError(t, err)
			it, err := c.Item(ctx, tt.item.Kind, tt.item.ID)
			require.NoError(t, err)
			require.Equal(t, tt.to, it.Project, "read back in the destination")
			for r, n := range it.Quantities {
				if quota.Hidden(r) {
					continue
				}
				require.Equal(t, before[tt.to][r].Usage+n, after[tt.to][r].Usage, "%s arrives", r)
				require.Equal(t, before[alice][r].Usage-n, after[alice][r].Usage, "%s leaves", r)
			}
			if tt.item.Kind == quota.KindServer {
				vol, err := c.Item(ctx, quota.KindVolume, "77")
				require.NoError(t, err)
				require.Equal(t, tt.to, vol.Project, "the system volume follows its server")
			}
		})
	}
}

func requireStatus(t *testing.T, err error, status int, key string) {
	t.Helper()
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, status, e.Status, "%v", err)
	require.Equal(t, key, e.Key, "%v", err)
}

func TestSimItemNotFound(t *testing.T) {
	_, c := newSim(t, nil)
	for _, k := range quota.Kinds() {
		_, err := c.Item(context.Background(), k, "424242")
		require.True(t, client.IsNotFound(err), "%s: %v", k, err)
	}
}

func TestSimBusyServer(t *testing.T) {
	srv, c := newSim(t, nil)
	require.NoError(t, srv.Cloud.SetServerTask(4242, "REBOOTING"))
	items, err := c.Items(context.Background(), quota.KindServer, alice)
	require.NoError(t, err)
	require.Len(t, items, 1)
	require.Equal(t, "pending task REBOOTING", items[0].Busy)
	err = c.ReassignServer(context.Background(), 4242, cs333, false)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 400, e.Status)
}

func TestSimAuthFailures(t *testing.T) {
	ctx := context.Background()
	srv, _ := newSim(t, nil)

	_, err := simClient(t, srv, "wrong-token", false).Quotas(ctx)
	require.True(t, client.IsUnauthorized(err), "%v", err)

	// A component token is not a user: as a user client it fails.
	_, err = simClient(t, srv, "svc-token", false).Quotas(ctx)
	require.True(t, client.IsUnauthorized(err), "%v", err)

	// A user token cannot read the service view.
	_, err = simClient(t, srv, "alice-token", false).ServiceProjectQuotas(ctx)
	require.True(t, client.IsUnauthorized(err), "%v", err)

	// A service client with a wrong token is refused by the service call.
	_, err = simClient(t, srv, "wrong-token", true).ServiceProjectQuotas(ctx)
	require.True(t, client.IsUnauthorized(err), "%v", err)
}

func TestSimServiceProjectQuotas(t *testing.T) {
	ctx := context.Background()
	srv, _ := newSim(t, nil)
	svc := simClient(t, srv, "svc-token", true)

	all, err := svc.ServiceProjectQuotas(ctx)
	require.NoError(t, err)
	require.Contains(t, all, alice)
	require.Contains(t, all, cs333)
	require.Contains(t, all, outside)
	ds := all[alice][quota.DiskSpace]
	require.Equal(t, int64(21474836480), ds.ProjectLimit)
	require.Equal(t, int64(20615843020+10485760), ds.ProjectUsage)
	require.Zero(t, ds.Usage, "no user level in the service view")

	some, err := svc.ServiceProjectQuotas(ctx, cs333, outside)
	require.NoError(t, err)
	require.Len(t, some, 2)

	_, err = svc.ServiceProjectQuotas(ctx, "00000000-0000-4000-8000-00000000dead")
	require.True(t, client.IsNotFound(err), "%v", err)

	// The service client took the public catalog: no user.
	id, err := svc.Authenticate(ctx)
	require.NoError(t, err)
	require.Empty(t, id.UserID)
	require.Equal(t, srv.URL+"/account/v1.0", id.Endpoints["account"])
}

func TestSimRetriesFaults(t *testing.T) {
	ctx := context.Background()
	srv, c := newSim(t, nil)
	srv.Cloud.SetFaults([]synnefosim.Fault{{Path: "/account/v1.0/quotas", Status: 503, Every: 2}})
	for range 2 {
		_, err := c.Quotas(ctx)
		require.NoError(t, err)
	}
	var statuses []int
	for _, r := range srv.Cloud.Requests() {
		if r.Path == "/account/v1.0/quotas" {
			statuses = append(statuses, r.Status)
		}
	}
	require.Equal(t, []int{200, 503, 200}, statuses, "the second poll was retried once")
}

func TestSimPostNotRetried(t *testing.T) {
	ctx := context.Background()
	srv, c := newSim(t, nil)
	srv.Cloud.SetFaults([]synnefosim.Fault{{Path: "*/action", Method: http.MethodPost, Status: 503}})
	err := c.ReassignServer(ctx, 4242, cs333, false)
	requireStatus(t, err, 503, "serviceUnavailable")
	n := 0
	for _, r := range srv.Cloud.Requests() {
		if r.Method == http.MethodPost && r.Path == "/compute/v2.0/servers/4242/action" {
			n++
		}
	}
	require.Equal(t, 1, n)
}

func TestSimAccountInfo(t *testing.T) {
	_, c := newSim(t, nil)
	a, err := c.AccountInfo(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(2), a.ContainerCount)
	require.Equal(t, int64(20615843020+10485760), a.BytesUsed)
	require.Equal(t, map[string]int64{alice: 21474836480, cs333: 107374182400}, a.ProjectQuotas)
	require.Equal(t, int64(21474836480+107374182400), a.QuotaTotal)
}

func TestSimServiceClientCannotActAsUser(t *testing.T) {
	srv, _ := newSim(t, nil)
	svc := simClient(t, srv, "svc-token", true)
	ctx := context.Background()
	_, err := svc.Containers(ctx)
	require.ErrorContains(t, err, "needs a user token")
	_, err = svc.Items(ctx, quota.KindContainer, alice)
	require.ErrorContains(t, err, "needs a user token")
	require.ErrorContains(t, svc.ReassignContainer(ctx, "course_container", cs333), "needs a user token")
	for _, r := range srv.Cloud.Requests() {
		require.Equal(t, "/identity/v2.0/tokens", r.Path, "nothing but the catalog was requested")
	}
}

func TestSimVolumeOfBusyServer(t *testing.T) {
	ctx := context.Background()
	srv, c := newSim(t, func(sc *synnefosim.Scenario) {
		sc.Volumes = append(sc.Volumes, synnefosim.Volume{ID: "78", Name: "data", Owner: alice, Size: 5, Server: 4242, Index: 1})
	})
	items, err := c.Items(ctx, quota.KindVolume, alice)
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.Empty(t, items[1].Busy, "a data volume of an idle server can move")

	require.NoError(t, srv.Cloud.SetServerTask(4242, "REBOOTING"))
	items, err = c.Items(ctx, quota.KindVolume, alice)
	require.NoError(t, err)
	require.Equal(t, "attached to server 4242, which is busy with REBOOTING", items[1].Busy)
	err = c.ReassignVolume(ctx, "78", cs333, false)
	require.Error(t, err, "the cloud refuses it too")
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 409, e.Status)
}

func TestSimQuotaEntriesInAStableOrder(t *testing.T) {
	_, c := newSim(t, nil)
	ctx := context.Background()
	q, err := c.Quotas(ctx)
	require.NoError(t, err)
	first, err := c.QuotaEntries(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, q.Entries(), first)
	second, err := c.QuotaEntries(ctx)
	require.NoError(t, err)
	require.Equal(t, first, second, "the same order poll after poll")
}
