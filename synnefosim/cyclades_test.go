package synnefosim

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestCycladesLists(t *testing.T) {
	s := startFile(t, "multi.yaml")
	get := func(t *testing.T, path string, v any) {
		t.Helper()
		r := do(t, s, call{Path: path, Token: "alice-token"})
		require.Equal(t, 200, r.Status, r.Body)
		require.NoError(t, json.Unmarshal([]byte(r.Body), v))
	}
	t.Run("servers", func(t *testing.T) {
		var got struct {
			Servers []map[string]any `json:"servers"`
		}
		get(t, "/compute/v2.0/servers/detail", &got)
		var ids []any
		for _, s := range got.Servers {
			ids = append(ids, s["id"])
		}
		// Own servers plus bob's, shared to the lab alice is in.
		require.Equal(t, []any{float64(4242), float64(4243), float64(4244), float64(4245), float64(4300)}, ids)
		vm := got.Servers[0]
		require.Equal(t, alice, vm["user_id"])
		require.Equal(t, alice, vm["tenant_id"])
		require.Equal(t, false, vm["shared_to_project"])
		require.Equal(t, "ACTIVE", vm["status"])
		require.Equal(t, []any{float64(77), float64(78)}, vm["volumes"])
		require.Equal(t, float64(3), vm["flavor"].(map[string]any)["id"])
		require.Equal(t, "RESIZE", got.Servers[2]["SNF:task_state"])
		require.Equal(t, lab, got.Servers[4]["tenant_id"])

		var brief struct {
			Servers []map[string]any `json:"servers"`
		}
		get(t, "/compute/v2.0/servers/", &brief)
		require.Len(t, brief.Servers, 5)
		require.NotContains(t, brief.Servers[0], "tenant_id")
	})
	t.Run("flavors", func(t *testing.T) {
		var got struct {
			Flavors []map[string]any `json:"flavors"`
		}
		get(t, "/compute/v2.0/flavors/detail", &got)
		require.Len(t, got.Flavors, 2)
		require.Equal(t, float64(3), got.Flavors[0]["id"])
		require.Equal(t, float64(2), got.Flavors[0]["vcpus"])
		require.Equal(t, float64(2048), got.Flavors[0]["ram"])
		require.Equal(t, float64(20), got.Flavors[0]["disk"])
	})
	t.Run("floating ips", func(t *testing.T) {
		var got struct {
			FloatingIPs []map[string]any `json:"floatingips"`
		}
		get(t, "/network/v2.0/floatingips", &got)
		require.Len(t, got.FloatingIPs, 2)
		require.Equal(t, map[string]any{
			"id": "17", "floating_ip_address": "192.0.2.10", "fixed_ip_address": nil, "floating_network_id": "1",
			"port_id": "17", "instance_id": "4242", "user_id": alice, "tenant_id": alice,
			"shared_to_project": false, "deleted": false,
		}, got.FloatingIPs[0])
		require.Equal(t, "19", got.FloatingIPs[1]["id"])
	})
	t.Run("networks", func(t *testing.T) {
		var got struct {
			Networks []map[string]any `json:"networks"`
		}
		get(t, "/network/v2.0/networks/", &got)
		var ids []any
		for _, n := range got.Networks {
			ids = append(ids, n["id"])
		}
		require.Equal(t, []any{"1", "3", "5"}, ids)
		require.Equal(t, true, got.Networks[0]["public"])
		require.Nil(t, got.Networks[0]["tenant_id"])
		require.Equal(t, alice, got.Networks[1]["tenant_id"])
		require.Equal(t, false, got.Networks[1]["public"])
	})
	t.Run("volumes", func(t *testing.T) {
		var got struct {
			Volumes []map[string]any `json:"volumes"`
		}
		get(t, "/volume/v2.0/volumes/detail", &got)
		var ids []any
		for _, v := range got.Volumes {
			ids = append(ids, v["id"])
		}
		// 82-84 are the generated system volumes of 4243-4245 (85, of bob's
		// unshared 4300, is not visible).
		require.Equal(t, []any{"77", "78", "79", "81", "82", "83", "84"}, ids)
		v := got.Volumes[0]
		require.Equal(t, float64(20), v["size"])
		require.Equal(t, "in_use", v["status"])
		require.Equal(t, alice, v["tenant_id"])
		require.Equal(t, []any{map[string]any{"server_id": float64(4242), "volume_id": float64(77), "device_index": float64(0)}}, v["attachments"])
		require.Equal(t, "available", got.Volumes[2]["status"])
		require.Equal(t, float64(10), got.Volumes[4]["size"])
		require.Equal(t, []any{map[string]any{"server_id": float64(4243), "volume_id": float64(82), "device_index": float64(0)}}, got.Volumes[4]["attachments"])
		var v2 struct {
			Volumes []map[string]any `json:"volumes"`
		}
		get(t, "/volume/v2/volumes/detail", &v2)
		require.Len(t, v2.Volumes, 7)
	})
	errs := []struct {
		name   string
		call   call
		status int
		body   string
	}{
		{"servers/detail/ does not match", call{Path: "/compute/v2.0/servers/detail/", Token: "alice-token"}, 400, fault("badRequest", 400, "API endpoint not found", "")},
		{"volumes/detail/ does not match", call{Path: "/volume/v2.0/volumes/detail/", Token: "alice-token"}, 400, fault("badRequest", 400, "API endpoint not found", "")},
		{"unknown compute path", call{Path: "/compute/v2.0/images", Token: "alice-token"}, 400, fault("badRequest", 400, "API endpoint not found", "")},
		{"versionless network path", call{Path: "/network/floatingips", Token: "alice-token"}, 400, fault("badRequest", 400, "API endpoint not found", "")},
		{"unknown server", call{Path: "/compute/v2.0/servers/9999", Token: "alice-token"}, 404, fault("itemNotFound", 404, "Server not found.", "")},
		{"invisible server", call{Path: "/compute/v2.0/servers/4242", Token: "bob-token"}, 404, fault("itemNotFound", 404, "Server not found.", "")},
		{"servers wrong method", call{Method: "DELETE", Path: "/compute/v2.0/servers/detail", Token: "alice-token"}, 405, fault("notAllowed", 405, "Method not allowed", "")},
		{"volumes wrong method is bare", call{Method: "DELETE", Path: "/volume/v2.0/volumes", Token: "alice-token"}, 405, ""},
	}
	for _, e := range errs {
		t.Run(e.name, func(t *testing.T) {
			r := do(t, s, e.call)
			require.Equal(t, e.status, r.Status)
			if e.body == "" {
				require.Empty(t, r.Body)
				return
			}
			require.JSONEq(t, e.body, r.Body)
		})
	}
	t.Run("one server", func(t *testing.T) {
		var got struct {
			Server map[string]any `json:"server"`
		}
		get(t, "/compute/v2.0/servers/4245", &got)
		require.Equal(t, "STOPPED", got.Server["status"])
	})
}

// change is an expected change of a user's usage in a project.
type change struct {
	token    string
	project  string
	resource string
	delta    int64
}

func TestReassignActions(t *testing.T) {
	reassign := func(project string) string { return `{"reassign": {"project": "` + project + `"}}` }
	over := func(label string, avail, req int64) string {
		return fault("overLimit", 413, "Resource Limit Exceeded for your account.",
			fmt.Sprintf("Limit for resource '%s' exceeded for your account. Available: %d, Requested: %d", label, avail, req))
	}
	bad := func(msg string) string { return fault("badRequest", 400, msg, "") }
	const srv, fip, net, vol = "/compute/v2.0/servers/", "/network/v2.0/floatingips/", "/network/v2.0/networks/", "/volume/v2.0/volumes/"
	tests := []struct {
		name    string
		path    string
		token   string
		header  map[string]string
		body    string
		status  int
		want    string // exact JSON body; "" = empty; "html" = the HTML 500
		changes []change
	}{
		// Servers.
		{"server to the lab", srv + "4242/action", "", nil, reassign(lab), 200, "", []change{
			{"alice-token", alice, quota.VM, -1}, {"alice-token", lab, quota.VM, 1},
			{"alice-token", alice, quota.CPU, -2}, {"alice-token", lab, quota.CPU, 2},
			{"alice-token", alice, quota.RAM, -2 * gib}, {"alice-token", lab, quota.RAM, 2 * gib},
			{"alice-token", alice, quota.Disk, -20 * gib}, {"alice-token", lab, quota.Disk, 20 * gib},
		}},
		{"server whose RAM fits but CPU does not", srv + "4242/action", "", nil, reassign(team), 413, over("CPU", 1, 2), nil},
		{"stopped server carries no cpu or ram", srv + "4245/action", "", nil, reassign(team), 200, "", []change{
			{"alice-token", alice, quota.VM, -1}, {"alice-token", team, quota.VM, 1},
			{"alice-token", alice, quota.Disk, -20 * gib}, {"alice-token", team, quota.Disk, 20 * gib},
		}},
		{"server into a suspended project", srv + "4242/action", "", nil, reassign(susp), 413, over("Virtual Machine", 0, 1), nil},
		{"server to a non-member project", srv + "4242/action", "", nil, reassign(other), 400, bad("User " + alice + " not in project " + other), nil},
		{"server to an unknown project", srv + "4242/action", "", nil, reassign("nope"), 400, bad("User " + alice + " not in project nope"), nil},
		{"server being built", srv + "4243/action", "", nil, reassign(lab), 409, fault("buildInProgress", 409, "Server '4243' is being built.", ""), nil},
		{"server with a pending task", srv + "4244/action", "", nil, reassign(lab), 400, bad("Cannot perform 'REASSIGN' action while there is a pending 'RESIZE'."), nil},
		{"server to its own project", srv + "4242/action", "", nil, reassign(alice), 200, "", nil},
		{"shared server of another owner", srv + "4300/action", "", nil, reassign(team), 200, "", []change{
			{"bob-token", lab, quota.VM, -1}, {"bob-token", team, quota.VM, 1},
			{"bob-token", lab, quota.CPU, -1}, {"bob-token", team, quota.CPU, 1},
			{"bob-token", lab, quota.RAM, -gib}, {"bob-token", team, quota.RAM, gib},
			{"bob-token", lab, quota.Disk, -10 * gib}, {"bob-token", team, quota.Disk, 10 * gib},
		}},
		{"unknown server", srv + "9999/action", "", nil, reassign(lab), 404, fault("itemNotFound", 404, "Server not found.", ""), nil},
		{"invalid server id", srv + "abc/action", "", nil, reassign(lab), 400, bad("Invalid server ID."), nil},
		{"missing project", srv + "4242/action", "", nil, `{"reassign": {}}`, 400, bad("Missing 'project' attribute."), nil},
		{"unknown action", srv + "4242/action", "", nil, `{"reboot": {}}`, 400, bad("Action reboot not supported."), nil},
		{"argument not an object", srv + "4242/action", "", nil, `{"reassign": "x"}`, 400, bad("Invalid argument."), nil},
		{"two keys", srv + "4242/action", "", nil, `{"reassign": {}, "reboot": {}}`, 400, bad("Malformed request."), nil},
		{"bad json", srv + "4242/action", "", nil, `{"reassign"`, 400, bad("Could not decode request body as JSON"), nil},
		{"no content type", srv + "4242/action", "", map[string]string{"Content-Type": "-"}, reassign(lab), 400, bad("Missing Content-Type header field"), nil},
		{"action wrong method", srv + "4242/action", "", nil, "", 405, fault("notAllowed", 405, "Method not allowed", ""), nil},

		// Floating IPs.
		{"floating ip to the lab", fip + "17/action", "", nil, reassign(lab), 200, "", []change{
			{"alice-token", alice, quota.FloatingIP, -1}, {"alice-token", lab, quota.FloatingIP, 1},
		}},
		{"floating ip over limit", fip + "17/action", "", nil, reassign(susp), 413, over("Floating IP address", 0, 1), nil},
		{"floating ip of another owner", fip + "19/action", "", nil, reassign(team), 403,
			fault("forbidden", 403, "Action 'reassign' is allowed only to the owner of the floating IP.", ""), nil},
		{"invisible floating ip", fip + "18/action", "", nil, reassign(lab), 404, fault("itemNotFound", 404, "Floating IP with ID 18 does not exist.", ""), nil},
		{"invalid floating ip id", fip + "x/action", "", nil, reassign(lab), 400, bad("Invalid Floating IP ID x"), nil},

		// Networks.
		{"network to the team", net + "3/action", "", nil, reassign(team), 200, "", []change{
			{"alice-token", alice, quota.PrivateNetwork, -1}, {"alice-token", team, quota.PrivateNetwork, 1},
		}},
		{"public network", net + "1/action", "", nil, reassign(lab), 403, fault("forbidden", 403, "Cannot reassign public network", ""), nil},
		{"network of another owner", net + "5/action", "", nil, reassign(team), 403,
			fault("forbidden", 403, "Action 'reassign' is allowed only to the owner of the network.", ""), nil},
		{"unknown network", net + "99/action", "", nil, reassign(lab), 404, fault("itemNotFound", 404, "Network with ID 99 does not exist.", ""), nil},
		{"empty body object", net + "3/action", "", nil, `{}`, 500, fault("internalServerError", 500, "Unexpected error", ""), nil},

		// Volumes.
		{"volume to the lab", vol + "79/action", "", nil, reassign(lab), 200, "", []change{
			{"alice-token", alice, quota.Disk, -5 * gib}, {"alice-token", lab, quota.Disk, 5 * gib},
		}},
		{"attached data volume", "/volume/v2/volumes/78/action", "", nil, reassign(team), 200, "", []change{
			{"alice-token", alice, quota.Disk, -10 * gib}, {"alice-token", team, quota.Disk, 10 * gib},
		}},
		{"volume over limit", vol + "79/action", "", nil, reassign(susp), 413, over("Disk", 0, 5*gib), nil},
		{"volume to a non-member project", vol + "79/action", "", nil, reassign(other), 400, bad("User " + alice + " not in project " + other), nil},
		{"system volume", vol + "77/action", "", nil, reassign(lab), 409, fault("conflict", 409, "Cannot reassign: 77 is a system volume", ""), nil},
		{"volume of another owner", vol + "81/action", "", nil, reassign(team), 403,
			fault("forbidden", 403, "Action 'reassign' is allowed only to the owner of the volume.", ""), nil},
		{"unknown volume", vol + "999/action", "", nil, reassign(lab), 404, fault("itemNotFound", 404, "Volume 999 not found.", ""), nil},
		{"volume missing project", vol + "79/action", "", nil, `{"reassign": {}}`, 400, bad("Missing 'project' attribute."), nil},
		{"volume bad json", vol + "79/action", "", nil, `{`, 500, "html", nil},
		{"volume no content type", vol + "79/action", "", map[string]string{"Content-Type": "-"}, reassign(lab), 500, "html", nil},
		{"volume unknown action", vol + "79/action", "", nil, `{"extend": {}}`, 500, "html", nil},
		{"volume argument not an object", vol + "79/action", "", nil, `{"reassign": 1}`, 500, "html", nil},
		{"volume bad body before auth", vol + "79/action", "wrong", nil, `{`, 500, "html", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFile(t, "multi.yaml")
			before := map[string]map[string]map[string]quota.Quota{
				"alice-token": quotas(t, s, "alice-token"), "bob-token": quotas(t, s, "bob-token"),
			}
			token := tt.token
			if token == "" {
				token = "alice-token"
			}
			method := "POST"
			if tt.status == 405 {
				method = "GET"
			}
			r := do(t, s, call{Method: method, Path: tt.path, Token: token, Header: tt.header, Body: tt.body})
			require.Equal(t, tt.status, r.Status, r.Body)
			switch tt.want {
			case "":
				require.Empty(t, r.Body)
			case "html":
				require.Equal(t, html500, r.Body)
				require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
			default:
				require.JSONEq(t, tt.want, r.Body)
			}
			for _, c := range tt.changes {
				// Usage changes for the owner, project usage for every member.
				for tok, qs := range before {
					q, ok := qs[c.project][c.resource]
					if !ok {
						continue
					}
					if tok == c.token {
						q.Usage += c.delta
					}
					q.ProjectUsage += c.delta
					qs[c.project][c.resource] = q
				}
			}
			require.Equal(t, before["alice-token"], quotas(t, s, "alice-token"))
			require.Equal(t, before["bob-token"], quotas(t, s, "bob-token"))
		})
	}
}

func TestServerReassignMovesSystemVolume(t *testing.T) {
	s := startFile(t, "multi.yaml")
	r := do(t, s, call{Method: "POST", Path: "/compute/v2.0/servers/4242/action", Token: "alice-token", Body: `{"reassign": {"project": "` + lab + `"}}`})
	require.Equal(t, 200, r.Status)
	tenants := map[string]string{}
	for _, v := range s.Cloud.State().Volumes {
		tenants[v.ID] = v.Project
	}
	require.Equal(t, lab, tenants["77"])   // the system volume follows
	require.Equal(t, alice, tenants["78"]) // other attached volumes do not
	var got struct {
		Server map[string]any `json:"server"`
	}
	r = do(t, s, call{Path: "/compute/v2.0/servers/4242", Token: "alice-token"})
	require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
	require.Equal(t, lab, got.Server["tenant_id"])
}

func TestServerStatusControls(t *testing.T) {
	s := startFile(t, "multi.yaml")
	before := s.Cloud.Quota(alice, alice, quota.CPU).Usage
	require.NoError(t, s.Cloud.SetServerStatus(4245, "ACTIVE"))
	require.Equal(t, before+2, s.Cloud.Quota(alice, alice, quota.CPU).Usage)
	require.NoError(t, s.Cloud.SetServerTask(4244, ""))
	r := do(t, s, call{Method: "POST", Path: "/compute/v2.0/servers/4244/action", Token: "alice-token", Body: `{"reassign": {"project": "` + lab + `"}}`})
	require.Equal(t, 200, r.Status, r.Body)
	require.Error(t, s.Cloud.SetServerStatus(1, "ACTIVE"))
	require.Error(t, s.Cloud.SetServerStatus(4242, "FLYING"))
	require.NoError(t, s.Cloud.SetPending(lab, quota.VM, 1))
	q := s.Cloud.Quota(alice, lab, quota.VM)
	require.Equal(t, int64(1), q.Pending)
	require.Equal(t, int64(2), q.ProjectPending) // alice and bob
	require.NoError(t, s.Cloud.SetProjectState(lab, "suspended"))
	require.Equal(t, int64(0), s.Cloud.Quota(alice, lab, quota.VM).Limit)
}
