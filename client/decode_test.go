package client_test

import (
	"context"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
)

func TestAuthenticateIdentity(t *testing.T) {
	f := newFake(t)
	c := f.client(nil)
	id, err := c.Authenticate(context.Background())
	require.NoError(t, err)
	require.Equal(t, &client.Identity{
		UserID:         "u-alice",
		UserName:       "Alice Example",
		DefaultProject: "p-default",
		Projects:       []string{"u-alice", "p-lab"},
		Endpoints: map[string]string{
			"account":      f.srv.URL + "/account/v1.0",
			"identity":     f.srv.URL + "/identity/v2.0",
			"compute":      f.srv.URL + "/compute/v2.0",
			"network":      f.srv.URL + "/network/v2.0",
			"volume":       f.srv.URL + "/volume/v2.0",
			"image":        f.srv.URL + "/image/v1.0",
			"object-store": f.srv.URL + "/object-store/v1",
		},
		Expires: time.Date(2026, 12, 19, 15, 23, 59, 975572000, time.UTC),
	}, normalizeTime(id))
	// The returned identity is a copy: changing it changes nothing.
	id.Endpoints["account"] = "http://elsewhere"
	again, err := c.Authenticate(context.Background())
	require.NoError(t, err)
	require.Equal(t, f.srv.URL+"/account/v1.0", again.Endpoints["account"])
}

func normalizeTime(id *client.Identity) *client.Identity {
	id.Expires = id.Expires.UTC()
	return id
}

func TestQuotasDecode(t *testing.T) {
	f := newFake(t)
	q, err := f.client(nil).Quotas(context.Background())
	require.NoError(t, err)
	require.Equal(t, client.Quotas{
		"u-alice": {
			quota.DiskSpace: {Limit: 21474836480, Usage: 20615843020, ProjectLimit: 21474836480, ProjectUsage: 20615843020},
			quota.VM:        {Limit: math.MaxInt64, Usage: 1, ProjectLimit: math.MaxInt64, ProjectUsage: 1},
		},
		"p-lab": {quota.VM: {Limit: 5, Usage: 2, Pending: 1, ProjectLimit: 10, ProjectUsage: 4, ProjectPending: 1}},
	}, q)
	require.True(t, q["u-alice"][quota.VM].IsUnlimited(), "2^63-1 round-trips exactly")
	require.Len(t, q.Entries(), 3)
}

func TestResourcesAndProjects(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(nil)

	rs, err := c.Resources(ctx)
	require.NoError(t, err)
	require.Equal(t, client.Resource{Service: "cyclades_compute", Description: "Number of virtual machines", UIVisible: true, APIVisible: true}, rs[quota.VM])
	require.Equal(t, "bytes", rs[quota.RAM].Unit)

	ps, err := c.Projects(ctx, client.ProjectFilter{})
	require.NoError(t, err)
	require.Len(t, ps, 2)
	require.Equal(t, quota.Project{ID: "u-alice", Name: "system:u-alice", System: true, State: "active"}, ps[0].Summary())
	require.Empty(t, ps[0].Owner, "null owner of a system project")
	require.True(t, ps[0].EndDate.IsZero())

	p, err := c.Project(ctx, "p-lab")
	require.NoError(t, err)
	require.Equal(t, "CS333 lab assignments", p.Name)
	require.Equal(t, "u-bob", p.Owner)
	require.Equal(t, int64(math.MaxInt64), p.MaxMembers)
	require.Equal(t, client.ProjectResource{MemberCapacity: 21474836480, ProjectCapacity: 107374182400}, p.Resources[quota.DiskSpace])
	require.Equal(t, time.Date(2027, 6, 26, 0, 0, 0, 0, time.UTC), p.EndDate.UTC())
}

func TestContainersDecode(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	cfg := f.config(nil)
	cfg.PageLimit = 2
	c, err := client.New(cfg)
	require.NoError(t, err)
	cs, err := c.Containers(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 3)
	lm := time.Date(2011, 12, 2, 8, 10, 41, 565891000, time.UTC)
	for i := range cs {
		require.True(t, cs[i].LastModified.Equal(lm))
		cs[i].LastModified = time.Time{}
	}
	require.Equal(t, []client.Container{
		{Name: "a", Count: 1, Bytes: 10, Policy: client.ContainerPolicy{Quota: 0, Versioning: "auto", Project: "u-alice"}},
		{Name: "course container", Count: 120, Bytes: 20615843020, Policy: client.ContainerPolicy{Quota: 1048576, Versioning: "auto", Project: "p-lab"}},
		{Name: "z", Policy: client.ContainerPolicy{Versioning: "none", Project: "u-alice"}}, // no project: the account's
	}, cs)

	info, err := c.ContainerInfo(ctx, "course container")
	require.NoError(t, err)
	require.Equal(t, &client.Container{
		Name: "course container", Count: 120, Bytes: 20615843020,
		LastModified: time.Date(2011, 12, 2, 8, 10, 41, 0, time.UTC),
		Policy:       client.ContainerPolicy{Versioning: "auto", Project: "p-lab"}, // percent-decoded
	}, info)
}

func TestContainersEmptyAndExactPage(t *testing.T) {
	tests := []struct {
		name  string
		pages map[string]string // marker → body
		want  int
		calls int
	}{
		{name: "empty account", pages: map[string]string{"": `[]`}, want: 0, calls: 1},
		{name: "exactly one full page", pages: map[string]string{"": `[{"name":"a","bytes":0},{"name":"b","bytes":0}]`, "b": `[]`}, want: 2, calls: 2},
		{name: "short second page", pages: map[string]string{"": `[{"name":"a","bytes":0},{"name":"b","bytes":0}]`, "b": `[{"name":"c","bytes":0}]`}, want: 3, calls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.route("GET /object-store/v1/u-alice", func(w http.ResponseWriter, r *http.Request) {
				f.json(200, tt.pages[r.URL.Query().Get("marker")])(w, r)
			})
			cfg := f.config(nil)
			cfg.PageLimit = 2
			c, err := client.New(cfg)
			require.NoError(t, err)
			cs, err := c.Containers(context.Background())
			require.NoError(t, err)
			require.Len(t, cs, tt.want)
			require.Len(t, f.requests(), tt.calls+1)
		})
	}
}

func TestCycladesDecode(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(nil)

	srvs, err := c.Servers(ctx)
	require.NoError(t, err)
	require.Len(t, srvs, 6)
	require.Equal(t, client.Server{
		ID: 4242, Name: "vm1", UserID: "u-alice", TenantID: "u-alice", Status: "ACTIVE",
		Flavor: client.FlavorRef{ID: 3}, Volumes: []int64{77, 78},
	}, srvs[0])
	require.Equal(t, "BUILDING", srvs[2].TaskState)

	fls, err := c.Flavors(ctx)
	require.NoError(t, err)
	require.Equal(t, client.Flavor{ID: 3, Name: "C2R2048D20", VCPUs: 2, RAM: 2048, Disk: 20, DiskTemplate: "drbd"}, fls[0])

	ips, err := c.FloatingIPs(ctx)
	require.NoError(t, err)
	require.Equal(t, client.FloatingIP{
		ID: "17", FloatingIPAddress: "192.0.2.10", FloatingNetworkID: "3", PortID: "55", InstanceID: "4242",
		UserID: "u-alice", TenantID: "u-alice",
	}, ips[0])
	require.Empty(t, ips[1].PortID, "null port")

	nets, err := c.Networks(ctx)
	require.NoError(t, err)
	require.True(t, nets[0].Public)
	require.True(t, nets[0].RouterExternal)
	require.Empty(t, nets[0].UserID)
	require.Equal(t, "MAC_FILTERED", nets[1].Type)

	vols, err := c.Volumes(ctx)
	require.NoError(t, err)
	require.Equal(t, client.Volume{
		ID: "77", DisplayName: "vol1", Status: "in_use", Size: 30,
		Attachments: []client.Attachment{{ServerID: 4242, VolumeID: 77, DeviceIndex: 0}},
		UserID:      "u-alice", TenantID: "u-alice", DeleteOnTermination: true,
	}, vols[0])
	srv, ok := vols[0].SystemOf()
	require.True(t, ok)
	require.Equal(t, int64(4242), srv)
	_, ok = vols[1].SystemOf()
	require.False(t, ok)
}

func TestItems(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		kind    quota.Kind
		project string
		want    []quota.Item
	}{
		{
			kind: quota.KindContainer, project: "p-lab",
			want: []quota.Item{{Kind: quota.KindContainer, ID: "course container", Name: "course container", Owner: "u-alice", Project: "p-lab",
				Quantities: quota.ContainerQuantities(20615843020)}},
		},
		{
			kind: quota.KindContainer, project: "u-alice",
			want: []quota.Item{
				{Kind: quota.KindContainer, ID: "a", Name: "a", Owner: "u-alice", Project: "u-alice", Quantities: quota.ContainerQuantities(10)},
				{Kind: quota.KindContainer, ID: "z", Name: "z", Owner: "u-alice", Project: "u-alice", Quantities: quota.ContainerQuantities(0)},
			},
		},
		{
			kind: quota.KindServer, project: "u-alice",
			want: []quota.Item{
				// Running: CPU and RAM too; the system volume's size, not the flavor's disk.
				{Kind: quota.KindServer, ID: "4242", Name: "vm1", Owner: "u-alice", Project: "u-alice", Quantities: quota.ServerQuantities(2, 2048, 30, true)},
				{Kind: quota.KindServer, ID: "4243", Name: "vm2", Owner: "u-alice", Project: "u-alice", Quantities: quota.ServerQuantities(2, 2048, 20, false)},
				{Kind: quota.KindServer, ID: "4244", Name: "building", Owner: "u-alice", Project: "u-alice", Quantities: quota.ServerQuantities(4, 4096, 40, true), Busy: "being built"},
				{Kind: quota.KindServer, ID: "4245", Name: "busy", Owner: "u-alice", Project: "u-alice", Quantities: quota.ServerQuantities(2, 2048, 20, true), Busy: "pending task REBOOTING"},
				// 4246 is Bob's (shared to the project): not ours to move.
			},
		},
		{
			kind: quota.KindFloatingIP, project: "p-lab",
			want: []quota.Item{{Kind: quota.KindFloatingIP, ID: "18", Name: "192.0.2.11", Owner: "u-alice", Project: "p-lab", Quantities: quota.FloatingIPQuantities()}},
		},
		{
			kind: quota.KindNetwork, project: "u-alice",
			want: []quota.Item{{Kind: quota.KindNetwork, ID: "3", Name: "net1", Owner: "u-alice", Project: "u-alice", Quantities: quota.NetworkQuantities()}},
		},
		{
			kind: quota.KindVolume, project: "u-alice",
			want: []quota.Item{
				{Kind: quota.KindVolume, ID: "77", Name: "vol1", Owner: "u-alice", Project: "u-alice", Quantities: quota.VolumeQuantities(30), Busy: "system volume of server 4242 (moves with it)"},
				{Kind: quota.KindVolume, ID: "78", Name: "data", Owner: "u-alice", Project: "u-alice", Quantities: quota.VolumeQuantities(50)},
				{Kind: quota.KindVolume, ID: "79", Name: "vm2 root", Owner: "u-alice", Project: "u-alice", Quantities: quota.VolumeQuantities(20), Busy: "system volume of server 4243 (moves with it)"},
				{Kind: quota.KindVolume, ID: "80", Name: "loose", Owner: "u-alice", Project: "u-alice", Quantities: quota.VolumeQuantities(5)},
			},
		},
		{kind: quota.KindVolume, project: "p-nothing", want: []quota.Item{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+" in "+tt.project, func(t *testing.T) {
			f := newFake(t)
			items, err := f.client(nil).Items(ctx, tt.kind, tt.project)
			require.NoError(t, err)
			if len(tt.want) == 0 {
				require.Empty(t, items)
				return
			}
			require.Equal(t, tt.want, items)
		})
	}
}

func TestItemsPublicNetworkIsBusy(t *testing.T) {
	f := newFake(t)
	f.route("GET /network/v2.0/networks", f.json(200, `{"networks": [{"id": "9", "name": "pub", "user_id": "u-alice", "tenant_id": "u-alice", "public": true}]}`))
	items, err := f.client(nil).Items(context.Background(), quota.KindNetwork, "u-alice")
	require.NoError(t, err)
	require.Len(t, items, 1)
	require.Equal(t, "public network", items[0].Busy)
}

func TestItemReadBack(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(nil)
	tests := []struct {
		kind     quota.Kind
		id       string
		project  string
		notFound bool
	}{
		{kind: quota.KindContainer, id: "course container", project: "p-lab"},
		{kind: quota.KindContainer, id: "gone", notFound: true},
		{kind: quota.KindServer, id: "4247", project: "p-lab"},
		{kind: quota.KindServer, id: "1", notFound: true},
		{kind: quota.KindFloatingIP, id: "17", project: "u-alice"},
		{kind: quota.KindNetwork, id: "3", project: "u-alice"},
		{kind: quota.KindVolume, id: "81", project: "u-alice"},
		{kind: quota.KindVolume, id: "99", notFound: true},
	}
	f.route("HEAD /object-store/v1/u-alice/gone", f.json(404, ""))
	for _, tt := range tests {
		t.Run(string(tt.kind)+" "+tt.id, func(t *testing.T) {
			it, err := c.Item(ctx, tt.kind, tt.id)
			if tt.notFound {
				require.Error(t, err)
				require.True(t, client.IsNotFound(err), "%v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.id, it.ID)
			require.Equal(t, tt.kind, it.Kind)
			require.Equal(t, tt.project, it.Project)
		})
	}
}

func TestQuotasStreamDecodeEdges(t *testing.T) {
	tests := []struct {
		name string
		body string
		want client.Quotas
		err  string
	}{
		{name: "empty object", body: `{}`, want: client.Quotas{}},
		{name: "null", body: `null`, want: client.Quotas{}},
		{name: "project without resources", body: `{"p": {}}`, want: client.Quotas{"p": {}}},
		{name: "unlimited", body: `{"p": {"r": {"limit": 9223372036854775807, "usage": 0, "pending": 0, "project_limit": 9223372036854775807, "project_usage": 0, "project_pending": 0}}}`,
			want: client.Quotas{"p": {"r": {Limit: math.MaxInt64, ProjectLimit: math.MaxInt64}}}},
		{name: "beyond int64", body: `{"p": {"r": {"limit": 9223372036854775808}}}`, err: "project p, resource r, field limit: beyond the int64 range"},
		{name: "float", body: `{"p": {"r": {"usage": 1.5}}}`, err: "project p, resource r, field usage: not an integer"},
		{name: "array", body: `[]`, err: "want an object"},
		{name: "truncated", body: `{"p": {"r": {"usage": 1, "limit": 1, "pending": 0, "project_usage": 1, "project_limit": 1, "project_pending": 0}}`, err: "decoding response"},
		{name: "empty body", body: ``, err: "decoding response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.route("GET /account/v1.0/quotas", f.json(200, tt.body))
			q, err := f.client(nil).Quotas(context.Background())
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, q)
		})
	}
}

func TestAccountInfo(t *testing.T) {
	f := newFake(t)
	a, err := f.client(nil).AccountInfo(context.Background())
	require.NoError(t, err)
	require.Equal(t, &client.Account{
		ContainerCount: 3,
		BytesUsed:      20615843030,
		ProjectQuotas: map[string]int64{
			"u-alice":                              21474836480,
			"c18088be-16b1-4263-8180-043c54e22903": math.MaxInt64,
		},
		QuotaTotal:   math.MaxInt64,
		LastModified: time.Date(2011, 12, 2, 8, 10, 41, 0, time.UTC),
	}, a)
}

func TestServiceQuotasDecode(t *testing.T) {
	f := newFake(t)
	cfg := f.config(nil)
	cfg.Service = true
	c, err := client.New(cfg)
	require.NoError(t, err)
	q, err := c.ServiceQuotas(context.Background(), client.ServiceQuotaFilter{})
	require.NoError(t, err)
	require.Equal(t, map[string]client.Quotas{"u-alice": {"p-lab": {
		quota.VM:       {Limit: 2, Usage: 2, ProjectLimit: 2, ProjectUsage: 2},
		quota.TotalCPU: {Limit: math.MaxInt64, Usage: 4, ProjectLimit: math.MaxInt64, ProjectUsage: 4},
	}}}, q)
	require.Equal(t, "", f.requests()[1].Query)
}

func TestConcurrentFirstCallsAuthenticateOnce(t *testing.T) {
	f := newFake(t)
	c := f.client(nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := c.Quotas(context.Background())
			require.NoError(t, err)
		})
	}
	wg.Wait()
	tokens := 0
	for _, r := range f.requests() {
		if r.Path == "/identity/v2.0/tokens" {
			tokens++
		}
	}
	require.Equal(t, 1, tokens)
	require.Len(t, f.requests(), 9)
}

func TestItemsUnknownKind(t *testing.T) {
	f := newFake(t)
	_, err := f.client(nil).Items(context.Background(), "bucket", "p")
	require.ErrorContains(t, err, `unknown item kind "bucket"`)
}

func TestItemsVolumeOfBusyServer(t *testing.T) {
	f := newFake(t)
	f.route("GET /volume/v2.0/volumes/detail", f.json(200, `{"volumes": [
		{"id": "90", "display_name": "scratch", "size": 5, "user_id": "u-alice", "tenant_id": "u-alice",
		 "attachments": [{"server_id": 4245, "volume_id": 90, "device_index": 1}]},
		{"id": "91", "display_name": "data", "size": 5, "user_id": "u-alice", "tenant_id": "u-alice",
		 "attachments": [{"server_id": 4242, "volume_id": 91, "device_index": 1}]}]}`))
	items, err := f.client(nil).Items(context.Background(), quota.KindVolume, "u-alice")
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.Equal(t, "attached to server 4245, which is busy with REBOOTING", items[0].Busy)
	require.Empty(t, items[1].Busy)
}
