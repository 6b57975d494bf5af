package client_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
)

// wantReq pins one request. Headers map a name to its exact value; an empty
// value means the header must be absent.
type wantReq struct {
	method, path, query, body string
	headers                   map[string]string
}

// Standard header expectations.
var (
	getHeaders = map[string]string{
		"Accept": "application/json", "X-Auth-Token": secret, "Content-Type": "",
	}
	postJSONHeaders = map[string]string{
		"Accept": "application/json", "X-Auth-Token": secret, "Content-Type": "application/json",
	}
)

func checkReq(t *testing.T, want wantReq, got recorded) {
	t.Helper()
	require.Equal(t, want.method, got.Method)
	require.Equal(t, want.path, got.Path)
	require.Equal(t, want.query, got.Query)
	require.Equal(t, want.body, got.Body)
	for k, v := range want.headers {
		require.Equal(t, v, got.Header.Get(k), "header %s", k)
	}
	// Never chunked; a real Content-Length on every body.
	require.Empty(t, got.TransferEncoding)
	require.Equal(t, int64(len(got.Body)), got.ContentLength)
	require.NotContains(t, got.Query, secret)
}

func TestWire(t *testing.T) {
	ctx := context.Background()
	reassignBody := `{"reassign":{"project":"p-lab"}}`
	tests := []struct {
		name string
		call func(c *client.Client) error
		want []wantReq
	}{
		{
			name: "resources",
			call: func(c *client.Client) error { _, err := c.Resources(ctx); return err },
			want: []wantReq{{method: "GET", path: "/account/v1.0/resources", headers: getHeaders}},
		},
		{
			name: "quotas",
			call: func(c *client.Client) error { _, err := c.Quotas(ctx); return err },
			want: []wantReq{{method: "GET", path: "/account/v1.0/quotas", headers: getHeaders}},
		},
		{
			name: "projects with filter",
			call: func(c *client.Client) error {
				_, err := c.Projects(ctx, client.ProjectFilter{State: "active", Mode: "member", Name: "CS333 lab"})
				return err
			},
			want: []wantReq{{method: "GET", path: "/account/v1.0/projects", query: "mode=member&name=CS333+lab&state=active", headers: getHeaders}},
		},
		{
			name: "projects without filter",
			call: func(c *client.Client) error { _, err := c.Projects(ctx, client.ProjectFilter{}); return err },
			want: []wantReq{{method: "GET", path: "/account/v1.0/projects", headers: getHeaders}},
		},
		{
			name: "project",
			call: func(c *client.Client) error { _, err := c.Project(ctx, "p-lab"); return err },
			want: []wantReq{{method: "GET", path: "/account/v1.0/projects/p-lab", headers: getHeaders}},
		},
		{
			name: "service project quotas",
			call: func(c *client.Client) error { _, err := c.ServiceProjectQuotas(ctx, "p-lab", "p-2"); return err },
			want: []wantReq{{method: "GET", path: "/account/v1.0/service_project_quotas", query: "project=p-lab,p-2", headers: getHeaders}},
		},
		{
			name: "service quotas",
			call: func(c *client.Client) error {
				_, err := c.ServiceQuotas(ctx, client.ServiceQuotaFilter{Users: []string{"u-alice", "u-bob"}, Projects: []string{"p-lab"}})
				return err
			},
			want: []wantReq{{method: "GET", path: "/account/v1.0/service_quotas", query: "user=u-alice,u-bob&project=p-lab", headers: getHeaders}},
		},
		{
			name: "account info",
			call: func(c *client.Client) error { _, err := c.AccountInfo(ctx); return err },
			want: []wantReq{{method: "HEAD", path: "/object-store/v1/u-alice", headers: getHeaders}},
		},
		{
			name: "containers paginate with marker",
			call: func(c *client.Client) error { _, err := c.Containers(ctx); return err },
			want: []wantReq{
				{method: "GET", path: "/object-store/v1/u-alice", query: "format=json&limit=2", headers: getHeaders},
				{method: "GET", path: "/object-store/v1/u-alice", query: "format=json&limit=2&marker=course+container", headers: getHeaders},
			},
		},
		{
			name: "container info",
			call: func(c *client.Client) error { _, err := c.ContainerInfo(ctx, "course container"); return err },
			want: []wantReq{{method: "HEAD", path: "/object-store/v1/u-alice/course%20container", headers: getHeaders}},
		},
		{
			name: "reassign container",
			call: func(c *client.Client) error { return c.ReassignContainer(ctx, "course container", "p-lab") },
			want: []wantReq{{
				method: "POST", path: "/object-store/v1/u-alice/course%20container", query: "update&format=json",
				headers: map[string]string{
					"X-Container-Policy-Project": "p-lab", "X-Auth-Token": secret,
					"Accept": "application/json", "Content-Type": "", "Content-Length": "0",
				},
			}},
		},
		{
			name: "servers",
			call: func(c *client.Client) error { _, err := c.Servers(ctx); return err },
			want: []wantReq{{method: "GET", path: "/compute/v2.0/servers/detail", headers: getHeaders}},
		},
		{
			name: "flavors",
			call: func(c *client.Client) error { _, err := c.Flavors(ctx); return err },
			want: []wantReq{{method: "GET", path: "/compute/v2.0/flavors/detail", headers: getHeaders}},
		},
		{
			name: "floating IPs (versionless network endpoint)",
			call: func(c *client.Client) error { _, err := c.FloatingIPs(ctx); return err },
			want: []wantReq{{method: "GET", path: "/network/v2.0/floatingips", headers: getHeaders}},
		},
		{
			name: "networks",
			call: func(c *client.Client) error { _, err := c.Networks(ctx); return err },
			want: []wantReq{{method: "GET", path: "/network/v2.0/networks", headers: getHeaders}},
		},
		{
			name: "volumes (versionless volume endpoint with slash)",
			call: func(c *client.Client) error { _, err := c.Volumes(ctx); return err },
			want: []wantReq{{method: "GET", path: "/volume/v2.0/volumes/detail", headers: getHeaders}},
		},
		{
			name: "reassign server",
			call: func(c *client.Client) error { return c.ReassignServer(ctx, 4242, "p-lab", false) },
			want: []wantReq{{method: "POST", path: "/compute/v2.0/servers/4242/action", body: reassignBody, headers: postJSONHeaders}},
		},
		{
			name: "reassign floating IP",
			call: func(c *client.Client) error { return c.ReassignFloatingIP(ctx, "17", "p-lab", false) },
			want: []wantReq{{method: "POST", path: "/network/v2.0/floatingips/17/action", body: reassignBody, headers: postJSONHeaders}},
		},
		{
			name: "reassign network",
			call: func(c *client.Client) error { return c.ReassignNetwork(ctx, "3", "p-lab", false) },
			want: []wantReq{{method: "POST", path: "/network/v2.0/networks/3/action", body: reassignBody, headers: postJSONHeaders}},
		},
		{
			name: "reassign volume",
			call: func(c *client.Client) error { return c.ReassignVolume(ctx, "80", "p-lab", false) },
			want: []wantReq{{method: "POST", path: "/volume/v2.0/volumes/80/action", body: reassignBody, headers: postJSONHeaders}},
		},
		{
			name: "reassign dispatches by kind",
			call: func(c *client.Client) error {
				return c.Reassign(ctx, quota.Item{Kind: quota.KindServer, ID: "4242"}, "p-lab")
			},
			want: []wantReq{{method: "POST", path: "/compute/v2.0/servers/4242/action", body: reassignBody, headers: postJSONHeaders}},
		},
	}
	tokenReq := wantReq{
		method: "POST", path: "/identity/v2.0/tokens",
		body: `{"auth":{"token":{"id":"` + secret + `"}}}`,
		headers: map[string]string{
			"Content-Type": "application/json", "Accept": "application/json", "X-Auth-Token": "",
			"Content-Length": strconv.Itoa(len(`{"auth":{"token":{"id":"` + secret + `"}}}`)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			cfg := f.config(nil)
			cfg.PageLimit = 2
			c, err := client.New(cfg)
			require.NoError(t, err)
			require.NoError(t, tt.call(c))
			got := f.requests()
			require.Len(t, got, len(tt.want)+1, "the token request, then the call")
			checkReq(t, tokenReq, got[0])
			for i, w := range tt.want {
				checkReq(t, w, got[i+1])
			}
			// The identity is cached: a second call does not authenticate again.
			require.NoError(t, tt.call(c))
			require.Len(t, f.requests(), 2*len(tt.want)+1)
		})
	}
}

func TestWireServiceToken(t *testing.T) {
	f := newFake(t)
	cfg := f.config(nil)
	cfg.Service = true
	c, err := client.New(cfg)
	require.NoError(t, err)
	q, err := c.ServiceProjectQuotas(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(10), q["p-lab"][quota.VM].ProjectLimit)
	got := f.requests()
	require.Len(t, got, 2)
	// The public catalog: an empty body with Content-Length 0 and no token.
	checkReq(t, wantReq{
		method: "POST", path: "/identity/v2.0/tokens",
		headers: map[string]string{"X-Auth-Token": "", "Content-Length": "0", "Accept": "application/json"},
	}, got[0])
	checkReq(t, wantReq{method: "GET", path: "/account/v1.0/service_project_quotas", headers: getHeaders}, got[1])

	id, err := c.Authenticate(context.Background())
	require.NoError(t, err)
	require.Empty(t, id.UserID)
	require.Equal(t, map[string]string{"account": f.srv.URL + "/account/v1.0"}, id.Endpoints)
}

func TestReassignWithoutProjectSendsNothing(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(nil)
	for _, k := range quota.Kinds() {
		err := c.Reassign(ctx, quota.Item{Kind: k, ID: "17"}, "")
		require.ErrorContains(t, err, "empty destination project", "%s", k)
	}
	require.Empty(t, f.requests())
}
