package synnefosim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// Ids of testdata/states.yaml (alice and bob as in multi.yaml, lab too).
const (
	admin   = "ad000000-0000-4000-8000-000000000009"
	former  = "f0000000-0000-4000-8000-000000000011"
	asked   = "a5000000-0000-4000-8000-000000000012"
	rejoin  = "4e000000-0000-4000-8000-000000000013"
	paused  = "9a000000-0000-4000-8000-000000000014"
	frozen  = "5a5e0000-0000-4000-8000-000000000015"
	ended   = "7e300000-0000-4000-8000-000000000016"
	mib     = int64(1) << 20
	reasgn  = `{"reassign": {"project": "%s"}}`
	reasgnS = `{"reassign": {"project": "%s", "shared_to_project": %s}}`
)

func overBody(label string, avail, req int64) string {
	return fault("overLimit", 413, "Resource Limit Exceeded for your account.",
		fmt.Sprintf("Limit for resource '%s' exceeded for your account. Available: %d, Requested: %d", label, avail, req))
}

func post(t *testing.T, s *Server, token, path, body string) reply {
	t.Helper()
	return do(t, s, call{Method: "POST", Path: path, Token: token, Body: body})
}

// Sharing follows the request on a cross-project reassign, and a server's
// system volume gets the same flag (docs/synnefo-wire.md#sharing-on-reassign).
func TestSharingOnReassign(t *testing.T) {
	shared := func(s *Server) map[string]bool {
		st := s.Cloud.State()
		out := map[string]bool{}
		for _, v := range st.Servers {
			out[fmt.Sprint("server ", v.ID)] = v.Shared
		}
		for _, v := range st.Volumes {
			out["volume "+v.ID] = v.Shared
		}
		for _, f := range st.FloatingIPs {
			out["fip "+f.ID] = f.Shared
		}
		for _, n := range st.Networks {
			out["network "+n.ID] = n.Shared
		}
		return out
	}
	t.Run("true keeps sharing, the system volume follows", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		r := post(t, s, "alice-token", "/compute/v2.0/servers/4250/action", fmt.Sprintf(reasgnS, alice, "true"))
		require.Equal(t, 200, r.Status, r.Body)
		st := shared(s)
		require.True(t, st["server 4250"])
		sys := s.Cloud.State().Volumes
		for _, v := range sys {
			if v.Server == 4250 && v.Index == 0 {
				require.True(t, v.Shared, "the system volume is shared with its server")
				require.Equal(t, alice, v.Project)
			}
		}
	})
	t.Run("omitted unshares", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		r := post(t, s, "alice-token", "/network/v2.0/floatingips/17/action", fmt.Sprintf(reasgn, alice))
		require.Equal(t, 200, r.Status, r.Body)
		require.False(t, shared(s)["fip 17"])
		// Bob, a member of the lab, no longer sees it.
		r = do(t, s, call{Path: "/network/v2.0/floatingips/17", Token: "bob-token"})
		require.Equal(t, 404, r.Status)
	})
	t.Run("shares an unshared item into the new project", func(t *testing.T) {
		s := startFile(t, "multi.yaml")
		r := post(t, s, "alice-token", "/volume/v2.0/volumes/79/action", fmt.Sprintf(reasgnS, lab, "true"))
		require.Equal(t, 200, r.Status, r.Body)
		require.True(t, shared(s)["volume 79"])
		r = do(t, s, call{Path: "/volume/v2.0/volumes/79", Token: "bob-token"})
		require.Equal(t, 200, r.Status, "a member of the lab sees it now")
		r = post(t, s, "alice-token", "/network/v2.0/networks/3/action", fmt.Sprintf(reasgnS, team, "true"))
		require.Equal(t, 200, r.Status, r.Body)
		require.True(t, shared(s)["network 3"])
	})
	t.Run("same project only changes the flag", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		before := quotas(t, s, "alice-token")
		r := post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", fmt.Sprintf(reasgnS, alice, "true"))
		require.Equal(t, 200, r.Status, r.Body)
		require.True(t, shared(s)["server 4242"])
		require.Equal(t, before, quotas(t, s, "alice-token"))
	})
	t.Run("the value is not type-checked", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		s.Cloud.SetSharing(false)
		// "false" is a non-empty string: true to Python.
		r := post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", fmt.Sprintf(reasgnS, lab, `"false"`))
		require.Equal(t, 403, r.Status, r.Body)
		r = post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", fmt.Sprintf(reasgnS, lab, `0`))
		require.Equal(t, 200, r.Status, r.Body)
	})
	t.Run("sharing disabled", func(t *testing.T) {
		s := startFile(t, "multi.yaml")
		s.Cloud.SetSharing(false)
		forbidden := fault("forbidden", 403, "Sharing resource to the members of the project is not permitted", "")
		for _, path := range []string{
			"/compute/v2.0/servers/4242/action", "/compute/v2.0/servers/9999/action",
			"/network/v2.0/floatingips/17/action", "/network/v2.0/networks/3/action", "/volume/v2.0/volumes/79/action",
		} {
			r := post(t, s, "alice-token", path, fmt.Sprintf(reasgnS, lab, "true"))
			require.Equal(t, 403, r.Status, path)
			require.JSONEq(t, forbidden, r.Body, path)
		}
		// Checked before the project: a missing project still gets the 403.
		r := post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", `{"reassign": {"shared_to_project": true}}`)
		require.JSONEq(t, forbidden, r.Body)
	})
}

// Retired flavors leave /flavors/detail and stay at /flavors/<id>
// (docs/synnefo-wire.md#retired-flavors).
func TestRetiredFlavors(t *testing.T) {
	s := startFile(t, "states.yaml")
	r := do(t, s, call{Path: "/compute/v2.0/flavors/detail", Token: "alice-token"})
	require.Equal(t, 200, r.Status)
	require.NotContains(t, r.Body, `"id":9`)
	require.Contains(t, r.Body, `"id":3`)
	r = do(t, s, call{Path: "/compute/v2.0/flavors/9", Token: "alice-token"})
	require.Equal(t, 200, r.Status, r.Body)
	var got struct {
		Flavor map[string]any `json:"flavor"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
	require.Equal(t, float64(4), got.Flavor["vcpus"])
	require.Equal(t, float64(4096), got.Flavor["ram"])
	require.NotContains(t, got.Flavor, "deleted", "the wire has no deleted field")
	r = do(t, s, call{Path: "/compute/v2.0/flavors/77", Token: "alice-token"})
	require.JSONEq(t, fault("itemNotFound", 404, "Flavor not found.", ""), r.Body)
	r = do(t, s, call{Path: "/compute/v2.0/flavors/x", Token: "alice-token"})
	require.JSONEq(t, fault("badRequest", 400, "API endpoint not found", ""), r.Body)
	// A VM of a retired flavor is still charged and can be moved.
	require.Equal(t, int64(4), s.Cloud.Quota(alice, lab, quota.CPU).Usage)
	r = post(t, s, "alice-token", "/compute/v2.0/servers/4250/action", fmt.Sprintf(reasgn, alice))
	require.Equal(t, 200, r.Status, r.Body)
}

// Memberships are listed with their states, and the states decide what
// /quotas shows and how a reassign into the project fails
// (docs/synnefo-wire.md#memberships, #membership-and-project-states).
func TestMembershipStates(t *testing.T) {
	s := startFile(t, "states.yaml")
	t.Run("listing", func(t *testing.T) {
		r := do(t, s, call{Path: "/account/v1.0/projects/memberships", Token: "alice-token"})
		require.Equal(t, 200, r.Status, r.Body)
		var ms []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.Body), &ms))
		states := map[string]string{}
		for _, m := range ms {
			require.Equal(t, alice, m["user"], "a non-admin sees only its own, and those of projects it owns")
			require.IsType(t, float64(0), m["id"])
			require.Contains(t, m, "requested")
			require.Contains(t, m, m["state"], "a date key named like the state")
			states[m["project"].(string)] = m["state"].(string)
		}
		require.Equal(t, map[string]string{
			alice: "accepted", lab: "accepted", former: "removed", asked: "requested", rejoin: "requested",
			paused: "suspended", frozen: "accepted", ended: "accepted",
		}, states)

		r = do(t, s, call{Path: "/account/v1.0/projects/memberships?project=" + lab, Token: "bob-token"})
		ms = nil
		require.NoError(t, json.Unmarshal([]byte(r.Body), &ms))
		require.Len(t, ms, 2, "the owner sees every membership of its project")
		for _, m := range ms {
			if m["user"] == bob {
				require.Equal(t, "leave_requested", m["state"])
			} else {
				require.Equal(t, []any{"remove"}, m["allowed_actions"])
			}
		}
		r = do(t, s, call{Path: "/account/v1.0/projects/memberships?project=nope", Token: "bob-token"})
		require.JSONEq(t, `[]`, r.Body)
		r = do(t, s, call{Path: "/account/v1.0/projects/memberships", Token: "admin-token"})
		ms = nil
		require.NoError(t, json.Unmarshal([]byte(r.Body), &ms))
		require.Len(t, ms, 15, "an admin sees every membership")
		var id int
		for _, m := range ms {
			if m["project"] == alice {
				id = int(m["id"].(float64))
			}
		}
		r = do(t, s, call{Path: fmt.Sprintf("/account/v1.0/projects/memberships/%d", id), Token: "admin-token"})
		require.Equal(t, 200, r.Status, r.Body)
		r = do(t, s, call{Path: fmt.Sprintf("/account/v1.0/projects/memberships/%d", id), Token: "bob-token"})
		require.Equal(t, 403, r.Status, r.Body)
		r = do(t, s, call{Method: "POST", Path: "/account/v1.0/projects/memberships", Token: "bob-token", Body: `{}`})
		require.Equal(t, 405, r.Status)
		require.Equal(t, "GET", r.Header.Get("Allow"))
	})
	t.Run("quotas", func(t *testing.T) {
		q := quotas(t, s, "alice-token")
		require.ElementsMatch(t, []string{alice, lab, frozen, ended}, keys(q),
			"only accepted memberships; suspended and terminated projects stay, with zeros")
		require.Equal(t, int64(0), q[frozen][quota.VM].Limit)
		require.Equal(t, int64(0), q[ended][quota.VM].ProjectLimit)
		qb := quotas(t, s, "bob-token")
		require.Contains(t, qb, lab, "leave_requested still grants quota")
		require.Equal(t, int64(5), qb[lab][quota.VM].Limit)
		// The holding of a former member stays, seen only by the service call.
		r := do(t, s, call{Path: "/account/v1.0/service_quotas?user=" + alice, Token: "svc-token"})
		var sq map[string]map[string]map[string]quota.Quota
		require.NoError(t, json.Unmarshal([]byte(r.Body), &sq))
		require.ElementsMatch(t, []string{alice, lab, former, rejoin, paused, frozen, ended}, keys(sq[alice]))
		require.Equal(t, int64(0), sq[alice][former][quota.VM].Limit)
	})
	t.Run("identity projects", func(t *testing.T) {
		r := post(t, s, "", "/identity/v2.0/tokens", `{"auth": {"token": {"id": "alice-token"}}}`)
		var tr struct {
			Access struct {
				User struct {
					Projects []string `json:"projects"`
				} `json:"user"`
			} `json:"access"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Body), &tr))
		require.ElementsMatch(t, []string{alice, lab}, tr.Access.User.Projects)
	})
	t.Run("reassign", func(t *testing.T) {
		notIn := func(p string) string { return fault("badRequest", 400, "User "+alice+" not in project "+p, "") }
		noHolding := func(p string) string {
			return fault("fault", 404, "NOT FOUND", fault("itemNotFound", 404, "There is no such holding for user "+alice+" in project "+p, ""))
		}
		tests := []struct {
			name, project       string
			cyclades, pithos    int
			cycladesBody, pBody string
		}{
			{"removed: holding kept at 0", former, 413, 413, overBody("Floating IP address", 0, 1), ""},
			{"suspended membership", paused, 413, 413, overBody("Floating IP address", 0, 1), ""},
			{"requested after an acceptance", rejoin, 413, 413, overBody("Floating IP address", 0, 1), ""},
			{"requested, never accepted", asked, 400, 404, notIn(asked), noHolding(asked)},
			{"suspended project", frozen, 413, 413, overBody("Floating IP address", 0, 1), ""},
			{"terminated project", ended, 413, 413, overBody("Floating IP address", 0, 1), ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := post(t, s, "alice-token", "/network/v2.0/floatingips/18/action", fmt.Sprintf(reasgn, tt.project))
				require.Equal(t, tt.cyclades, r.Status, r.Body)
				require.JSONEq(t, tt.cycladesBody, r.Body)
				r = do(t, s, call{Method: "POST", Path: "/object-store/v1/" + alice + "/data?update", Token: "alice-token",
					Header: map[string]string{"X-Container-Policy-Project": tt.project}})
				require.Equal(t, tt.pithos, r.Status, r.Body)
				if tt.pBody != "" {
					require.JSONEq(t, tt.pBody, r.Body)
				}
			})
		}
	})
	t.Run("uninitialized and deleted projects have no holdings", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		for _, state := range []string{"deleted", "uninitialized"} {
			require.NoError(t, s.Cloud.SetProjectState(frozen, state))
			r := post(t, s, "alice-token", "/network/v2.0/floatingips/18/action", fmt.Sprintf(reasgn, frozen))
			require.Equal(t, 400, r.Status, state)
			require.JSONEq(t, fault("badRequest", 400, "User "+alice+" not in project "+frozen, ""), r.Body, state)
		}
		require.NotContains(t, quotas(t, s, "alice-token"), frozen)
	})
	t.Run("moving out is never limit-checked", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		require.NoError(t, s.Cloud.SetMembership(lab, alice, "removed"))
		require.NotContains(t, quotas(t, s, "alice-token"), lab, "the project leaves /quotas")
		require.Equal(t, int64(1), s.Cloud.Quota(alice, lab, quota.FloatingIP).Usage, "the items stay charged")
		r := post(t, s, "alice-token", "/network/v2.0/floatingips/17/action", fmt.Sprintf(reasgn, alice))
		require.Equal(t, 200, r.Status, r.Body)
		r = post(t, s, "alice-token", "/network/v2.0/floatingips/17/action", fmt.Sprintf(reasgn, lab))
		require.Equal(t, 413, r.Status, r.Body)
		r = do(t, s, call{Method: "POST", Path: "/_sim/memberships", Body: `{"project": "` + lab + `", "user": "` + alice + `", "state": "accepted"}`})
		require.Equal(t, 204, r.Status, r.Body)
		r = post(t, s, "alice-token", "/network/v2.0/floatingips/17/action", fmt.Sprintf(reasgn, lab))
		require.Equal(t, 200, r.Status, r.Body)
	})
}

// A release of more than the quotaholder records fails with a 413 whose
// Requested is negative (docs/synnefo-wire.md#release-failures).
func TestReleaseFailure(t *testing.T) {
	t.Run("scenario drift", func(t *testing.T) {
		sc, err := LoadScenario("testdata/states.yaml")
		require.NoError(t, err)
		sc.Drift = []Drift{{User: alice, Project: alice, Resource: quota.VM, Amount: 2}}
		s := NewServer(sc)
		t.Cleanup(s.Close)
		q := quotas(t, s, "alice-token")[alice][quota.VM]
		require.Equal(t, int64(0), q.Usage, "two VMs, both lost by the quotaholder")
		r := post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", fmt.Sprintf(reasgn, lab))
		require.Equal(t, 413, r.Status)
		require.JSONEq(t, overBody("Virtual Machine", 0, -1), r.Body)
	})
	t.Run("sim control, partial drift", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		r := do(t, s, call{Method: "POST", Path: "/_sim/drift", Body: `{"user": "` + alice + `", "project": "` + lab + `", "resource": "pithos.diskspace", "amount": 1048000}`})
		require.Equal(t, 204, r.Status, r.Body)
		require.Equal(t, int64(576), quotas(t, s, "alice-token")[lab][quota.DiskSpace].Usage)
		r = do(t, s, call{Method: "POST", Path: "/object-store/v1/" + alice + "/data?update", Token: "alice-token",
			Header: map[string]string{"X-Container-Policy-Project": alice}})
		require.Equal(t, 413, r.Status)
		require.JSONEq(t, fault("fault", 413, "Resource Limit Exceeded for your account.",
			"Limit for resource 'Storage space' exceeded for your account. Available: -576, Requested: -1048576"), r.Body)
		// Stopping releases cpu and ram, so it fails the same way.
		require.NoError(t, s.Cloud.SetDrift(alice, alice, quota.CPU, 1))
		r = post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", `{"shutdown": {}}`)
		require.JSONEq(t, overBody("CPU", -1, -2), r.Body)
		// Repaired, the move goes through.
		require.NoError(t, s.Cloud.SetDrift(alice, lab, quota.DiskSpace, 0))
		r = do(t, s, call{Method: "POST", Path: "/object-store/v1/" + alice + "/data?update", Token: "alice-token",
			Header: map[string]string{"X-Container-Policy-Project": alice}})
		require.Equal(t, 202, r.Status, r.Body)
		r = do(t, s, call{Method: "POST", Path: "/_sim/drift", Body: `{"user": "nobody", "project": "` + lab + `", "resource": "x", "amount": 1}`})
		require.Equal(t, 400, r.Status)
	})
}

type tokenReply struct {
	Access struct {
		Token struct {
			Expires string `json:"expires"`
		} `json:"token"`
	} `json:"access"`
}

// Tokens expire after their duration, counted from when the cloud starts;
// a renewed token replaces the old one at once (docs/synnefo-wire.md#token-lifetime).
func TestTokenLifetime(t *testing.T) {
	s := startFile(t, "states.yaml")
	expires := func(token string) (int, string) {
		r := post(t, s, "", "/identity/v2.0/tokens", `{"auth": {"token": {"id": "`+token+`"}}}`)
		var tr tokenReply
		_ = json.Unmarshal([]byte(r.Body), &tr)
		return r.Status, tr.Access.Token.Expires
	}
	_, e := expires("alice-token")
	require.Equal(t, "2026-01-31T00:00:00.000000+00:00", e, "30 days by default")
	_, e = expires("bob-token")
	require.Equal(t, "2026-01-03T00:00:00.000000+00:00", e)
	_, e = expires("admin-token")
	require.Equal(t, "2026-01-01T12:00:00.000000+00:00", e)

	r := do(t, s, call{Method: "POST", Path: "/_sim/clock", Body: `{"advance": "49h"}`})
	require.Equal(t, 200, r.Status, r.Body)
	require.JSONEq(t, `{"now": "2026-01-03T01:00:00.000000+00:00"}`, r.Body)
	expired := fault("unauthorized", 401, "Authentication expired", "")
	st, _ := expires("bob-token")
	require.Equal(t, 401, st)
	r = post(t, s, "", "/identity/v2.0/tokens", `{"auth": {"token": {"id": "bob-token"}}}`)
	require.JSONEq(t, expired, r.Body)
	r = do(t, s, call{Path: "/account/v1.0/quotas", Token: "bob-token"})
	require.JSONEq(t, expired, r.Body)
	r = do(t, s, call{Path: "/compute/v2.0/servers/detail", Token: "bob-token"})
	require.JSONEq(t, fault("fault", 401, "UNAUTHORIZED", expired), r.Body)
	r = do(t, s, call{Method: "HEAD", Path: "/object-store/v1/" + bob, Token: "bob-token"})
	require.Equal(t, 401, r.Status)
	r = do(t, s, call{Path: "/account/v1.0/quotas", Token: "alice-token"})
	require.Equal(t, 200, r.Status, "alice's token still lives")

	r = do(t, s, call{Method: "POST", Path: "/_sim/users/" + bob + "/token", Body: `{"token": "bob-renewed"}`})
	require.Equal(t, 200, r.Status, r.Body)
	require.JSONEq(t, `{"token": "bob-renewed", "expires": "2026-01-05T01:00:00.000000+00:00"}`, r.Body)
	r = do(t, s, call{Path: "/account/v1.0/quotas", Token: "bob-token"})
	require.JSONEq(t, fault("unauthorized", 401, "Invalid X-Auth-Token", ""), r.Body, "the old token is invalid, not expired")
	r = do(t, s, call{Path: "/account/v1.0/quotas", Token: "bob-renewed"})
	require.Equal(t, 200, r.Status, r.Body)
	// A random token when none is given: 43 characters of URL-safe base64.
	tok, _, err := s.Cloud.RenewToken(alice, "")
	require.NoError(t, err)
	require.Len(t, tok, 43)
	_, _, err = s.Cloud.RenewToken(alice, "bob-renewed")
	require.Error(t, err)
}

// Each component token reads only its component's resources
// (docs/synnefo-wire.md#component-tokens).
func TestComponentTokens(t *testing.T) {
	s := startFile(t, "states.yaml")
	resources := func(token string) []string {
		r := do(t, s, call{Path: "/account/v1.0/service_project_quotas?project=" + lab, Token: token})
		require.Equal(t, 200, r.Status, r.Body)
		var got map[string]map[string]projectQuota
		require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
		return keys(got[lab])
	}
	require.ElementsMatch(t, []string{quota.CPU, quota.Disk, quota.FloatingIP, quota.PrivateNetwork, quota.RAM, quota.VM, quota.TotalCPU, quota.TotalRAM},
		resources("cyclades-token"))
	require.ElementsMatch(t, []string{quota.DiskSpace}, resources("pithos-token"))
	require.ElementsMatch(t, []string{quota.PendingApp}, resources("astakos-token"))
	require.Contains(t, resources("svc-token"), quota.DiskSpace)
	require.Contains(t, resources("svc-token"), quota.VM)

	r := do(t, s, call{Path: "/account/v1.0/service_quotas?user=" + alice, Token: "pithos-token"})
	var uq map[string]map[string]map[string]quota.Quota
	require.NoError(t, json.Unmarshal([]byte(r.Body), &uq))
	require.Equal(t, []string{quota.DiskSpace}, keys(uq[alice][lab]))
	for _, path := range []string{"/account/v1.0/quotas", "/compute/v2.0/servers/detail"} {
		r := do(t, s, call{Path: path, Token: "cyclades-token"})
		require.Equal(t, 401, r.Status, "a component token is not a user token")
	}
}

// PUT projects/<id> submits an application and the admin's approval
// applies it (docs/synnefo-wire.md#raising-limits).
func TestModifyProject(t *testing.T) {
	vm := func(member, project string) string {
		return `{"resources": {"cyclades.vm": {"member_capacity": ` + member + `, "project_capacity": ` + project + `}}}`
	}
	tests := []struct {
		name, token, project, body string
		status                     int
		want                       string
	}{
		{"unknown project", "alice-token", "nope", vm("1", "2"), 404, fault("itemNotFound", 404, "There is no project identified by nope.", "")},
		{"not the owner", "alice-token", lab, vm("1", "2"), 403, fault("forbidden", 403, "You do not have the permissions to perform this action.", "")},
		{"system project by its user", "alice-token", alice, vm("1", "2"), 403, fault("forbidden", 403, "You do not have the permissions to perform this action.", "")},
		{"system project name", "admin-token", alice, `{"name": "x"}`, 409,
			fault("conflict", 409, "Cannot modify fields 'owner', 'name', 'homepage', and 'description' of a system project.", "")},
		{"not an object", "alice-token", frozen, `{"resources": []}`, 400, fault("badRequest", 400, "Malformed resource policies", "")},
		{"hidden resource", "alice-token", frozen, `{"resources": {"cyclades.total_cpu": {"member_capacity": 1, "project_capacity": 1}}}`, 400,
			fault("badRequest", 400, "Malformed resource policies", "")},
		{"unknown resource", "alice-token", frozen, `{"resources": {"x": {"member_capacity": 1, "project_capacity": 1}}}`, 400,
			fault("badRequest", 400, "Malformed resource policies", "")},
		{"capacity missing", "alice-token", frozen, `{"resources": {"cyclades.vm": {"member_capacity": 1}}}`, 400,
			fault("badRequest", 400, "Malformed resource policies", "")},
		{"capacity a string", "alice-token", frozen, vm(`"1"`, "2"), 400, fault("badRequest", 400, "Malformed resource policies", "")},
		{"capacity a float", "alice-token", frozen, vm("1.5", "2"), 400, fault("badRequest", 400, "Malformed resource policies", "")},
		{"entry not an object", "alice-token", frozen, `{"resources": {"cyclades.vm": 1}}`, 500, fault("internalServerError", 500, "Unexpected error", "")},
		{"too large", "alice-token", frozen, vm("1", "9223372036854775808"), 400, fault("badRequest", 400, "Quota limit exceeds max value 9223372036854775807", "")},
		{"negative", "alice-token", frozen, vm("-1", "2"), 400, fault("badRequest", 400, "Negative quota limit is not allowed", "")},
		{"project below member", "alice-token", frozen, vm("3", "2"), 400,
			fault("badRequest", 400, "Project quota limit is less than member limit for resource 'cyclades.vm'", "")},
		{"no content type", "alice-token", frozen, "-", 400, fault("badRequest", 400, "Missing Content-Type header field", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFile(t, "states.yaml")
			c := call{Method: "PUT", Path: "/account/v1.0/projects/" + tt.project, Token: tt.token, Body: tt.body}
			if tt.body == "-" {
				c.Body, c.Header = vm("1", "2"), map[string]string{"Content-Type": "-"}
			}
			r := do(t, s, c)
			require.Equal(t, tt.status, r.Status, r.Body)
			require.JSONEq(t, tt.want, r.Body)
		})
	}

	t.Run("submit, approve, and the limits change at once", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		r := do(t, s, call{Method: "PUT", Path: "/account/v1.0/projects/" + frozen, Token: "alice-token", Body: vm("7", "9")})
		require.Equal(t, 201, r.Status, r.Body)
		var sub struct {
			ID  string `json:"id"`
			App int    `json:"application"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Body), &sub))
		require.Equal(t, frozen, sub.ID)
		require.Equal(t, "pending", s.Cloud.Applications()[sub.App])
		require.Equal(t, int64(1), s.Cloud.Quota(alice, alice, quota.PendingApp).Usage)
		require.Equal(t, int64(0), s.Cloud.Quota(alice, frozen, quota.VM).Limit, "nothing changes before approval")

		// The owner sees last_application; a second submit hits the limit.
		var p projectObject
		r = do(t, s, call{Path: "/account/v1.0/projects/" + frozen, Token: "alice-token"})
		require.NoError(t, json.Unmarshal([]byte(r.Body), &p))
		require.Equal(t, sub.App, p.LastApplication.ID)
		require.Equal(t, map[string]capacity{quota.VM: {7, 9}}, p.LastApplication.Resources)
		require.NotEmpty(t, p.DeactivationDate)
		r = do(t, s, call{Method: "PUT", Path: "/account/v1.0/projects/" + frozen, Token: "alice-token", Body: vm("8", "9")})
		require.JSONEq(t, fault("conflict", 409, "You have reached the maximum number of pending project applications: 1.", ""), r.Body)

		action := func(token, body string) reply {
			return post(t, s, token, "/account/v1.0/projects/"+frozen+"/action", body)
		}
		r = action("alice-token", fmt.Sprintf(`{"approve": {"app_id": %d}}`, sub.App))
		require.JSONEq(t, fault("forbidden", 403, "You do not have the permissions to perform this action.", ""), r.Body)
		r = action("admin-token", fmt.Sprintf(`{"approve": {"app_id": "%d", "reason": "ok"}}`, sub.App))
		require.Equal(t, 200, r.Status, r.Body)
		require.Empty(t, r.Body)
		require.Equal(t, "approved", s.Cloud.Applications()[sub.App])
		q := s.Cloud.Quota(alice, frozen, quota.VM)
		require.Equal(t, int64(7), q.Limit, "approval reactivates the suspended project")
		require.Equal(t, int64(9), q.ProjectLimit)
		require.Equal(t, int64(0), s.Cloud.Quota(alice, alice, quota.PendingApp).Usage)
		r = action("admin-token", fmt.Sprintf(`{"approve": {"app_id": %d}}`, sub.App))
		require.JSONEq(t, fault("conflict", 409, fmt.Sprintf("Cannot approve application %d in state 'Approved'", sub.App), ""), r.Body)
	})
	t.Run("admin submits for a system project and approves it", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		r := do(t, s, call{Method: "PUT", Path: "/account/v1.0/projects/" + alice, Token: "admin-token", Body: vm("9", "9")})
		require.Equal(t, 201, r.Status, r.Body)
		var sub struct {
			App int `json:"application"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Body), &sub))
		r = post(t, s, "admin-token", "/account/v1.0/projects/"+alice+"/action", fmt.Sprintf(`{"approve": {"app_id": %d}}`, sub.App))
		require.Equal(t, 200, r.Status, r.Body)
		require.Equal(t, int64(9), quotas(t, s, "alice-token")[alice][quota.VM].Limit)
	})
	t.Run("replacing, decisions and their errors", func(t *testing.T) {
		s := startFile(t, "states.yaml")
		submit := func(token, project string) int {
			r := do(t, s, call{Method: "PUT", Path: "/account/v1.0/projects/" + project, Token: token, Body: vm("1", "2")})
			require.Equal(t, 201, r.Status, r.Body)
			var sub struct {
				App int `json:"application"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.Body), &sub))
			return sub.App
		}
		first := submit("bob-token", lab)
		second := submit("admin-token", lab)
		require.Equal(t, "replaced", s.Cloud.Applications()[first])
		require.Equal(t, int64(0), s.Cloud.Quota(bob, bob, quota.PendingApp).Usage)
		other := submit("alice-token", ended)
		act := func(token, body string) reply {
			return post(t, s, token, "/account/v1.0/projects/"+lab+"/action", body)
		}
		cases := []struct {
			name, token, body string
			status            int
			want              string
		}{
			{"bad json", "admin-token", `{`, 400, fault("badRequest", 400, "Invalid input data", "")},
			{"no action", "admin-token", `{"frobnicate": {}}`, 400, fault("badRequest", 400, "No recognized action", "")},
			{"two actions", "admin-token", `{"approve": {}, "deny": {}}`, 400, fault("badRequest", 400, "Multiple actions not supported", "")},
			{"value not an object", "admin-token", `{"approve": 1}`, 500, fault("internalServerError", 500, "Unexpected error", "")},
			{"app_id missing", "admin-token", `{"approve": {}}`, 500, fault("internalServerError", 500, "Unexpected error", "")},
			{"unknown application", "admin-token", `{"approve": {"app_id": 1}}`, 404,
				fault("itemNotFound", 404, "There is no project application identified by 1.", "")},
			{"another project's", "admin-token", fmt.Sprintf(`{"approve": {"app_id": %d}}`, other), 409,
				fault("conflict", 409, fmt.Sprintf("%d is not a pending application for project %s.", other, lab), "")},
			{"replaced", "admin-token", fmt.Sprintf(`{"approve": {"app_id": %d}}`, first), 409,
				fault("conflict", 409, fmt.Sprintf("%d is not a pending application for project %s.", first, lab), "")},
			{"owner cannot cancel the admin's", "bob-token", fmt.Sprintf(`{"cancel": {"app_id": %d}}`, second), 403,
				fault("forbidden", 403, "You do not have the permissions to perform this action.", "")},
			{"dismiss a pending one", "admin-token", fmt.Sprintf(`{"dismiss": {"app_id": %d}}`, second), 409,
				fault("conflict", 409, fmt.Sprintf("Cannot dismiss application %d in state 'Pending review'", second), "")},
			{"deny", "admin-token", fmt.Sprintf(`{"deny": {"app_id": %d, "reason": "no"}}`, second), 200, ""},
			{"dismiss", "admin-token", fmt.Sprintf(`{"dismiss": {"app_id": %d}}`, second), 200, ""},
		}
		for _, c := range cases {
			r := act(c.token, c.body)
			require.Equal(t, c.status, r.Status, c.name+": "+r.Body)
			if c.want != "" {
				require.JSONEq(t, c.want, r.Body, c.name)
			}
		}
		require.Equal(t, "dismissed", s.Cloud.Applications()[second])
		require.Equal(t, int64(5), s.Cloud.Quota(alice, lab, quota.VM).Limit, "a denied application changes nothing")
	})
}

// Project admins suspend, unsuspend, terminate and reinstate
// (docs/synnefo-wire.md#project-admins).
func TestProjectAdminActions(t *testing.T) {
	s := startFile(t, "states.yaml")
	act := func(token, project, body string) reply {
		return post(t, s, token, "/account/v1.0/projects/"+project+"/action", body)
	}
	conflict := func(msg string) string { return fault("conflict", 409, msg, "") }
	r := act("bob-token", lab, `{"suspend": {"reason": "x"}}`)
	require.Equal(t, 403, r.Status, "the owner is not an admin")
	r = act("admin-token", lab, `{"suspend": {"reason": "x"}}`)
	require.Equal(t, 200, r.Status, r.Body)
	require.Equal(t, int64(0), s.Cloud.Quota(alice, lab, quota.VM).Limit)
	require.Equal(t, int64(1), s.Cloud.Quota(alice, lab, quota.FloatingIP).Usage, "nothing is released")
	require.JSONEq(t, conflict("Project "+lab+" is suspended."), act("admin-token", lab, `{"suspend": {}}`).Body)
	require.JSONEq(t, conflict("Project "+lab+" is not terminated."), act("admin-token", lab, `{"reinstate": {}}`).Body)
	require.Equal(t, 200, act("admin-token", lab, `{"unsuspend": {}}`).Status)
	require.Equal(t, int64(5), s.Cloud.Quota(alice, lab, quota.VM).Limit, "limits come back")
	require.JSONEq(t, conflict("Project "+lab+" is not suspended."), act("admin-token", lab, `{"unsuspend": {}}`).Body)
	require.JSONEq(t, conflict("Cannot terminate: "+alice+" is a system project."), act("admin-token", alice, `{"terminate": {}}`).Body)
	require.Equal(t, 200, act("admin-token", lab, `{"terminate": {}}`).Status)
	require.JSONEq(t, conflict("Project "+lab+" is not alive."), act("admin-token", lab, `{"suspend": {}}`).Body)
	require.Equal(t, 200, act("admin-token", lab, `{"reinstate": {}}`).Status)
	require.JSONEq(t, fault("itemNotFound", 404, "There is no project identified by nope.", ""), act("admin-token", "nope", `{"suspend": {}}`).Body)

	// Admins see every project, private ones included.
	r = do(t, s, call{Path: "/account/v1.0/projects", Token: "admin-token"})
	var ps []projectObject
	require.NoError(t, json.Unmarshal([]byte(r.Body), &ps))
	require.Len(t, ps, 10)
	r = do(t, s, call{Path: "/account/v1.0/projects?mode=active", Token: "admin-token"})
	ps = nil
	require.NoError(t, json.Unmarshal([]byte(r.Body), &ps))
	require.Len(t, ps, 10, "mode=active gives an admin every project")
	r = do(t, s, call{Path: "/account/v1.0/projects?mode=active", Token: "bob-token"})
	ps = nil
	require.NoError(t, json.Unmarshal([]byte(r.Body), &ps))
	for _, p := range ps {
		require.Equal(t, "active", p.State)
		require.False(t, p.Private)
	}
}

// User catalogs map uuids to display names and back (docs/synnefo-wire.md#user-catalogs).
func TestUserCatalogs(t *testing.T) {
	s := startFile(t, "states.yaml")
	tests := []struct {
		name, path, token, body string
		header                  map[string]string
		status                  int
		want                    string
	}{
		{"both ways", "/account/v1.0/user_catalogs", "bob-token",
			`{"uuids": ["` + alice + `", "nobody"], "displaynames": ["BOB@example.org", "ghost@example.org"]}`, nil, 200,
			`{"uuid_catalog": {"` + alice + `": "alice@example.org"}, "displayname_catalog": {"BOB@example.org": "` + bob + `"}}`},
		{"empty body object", "/account/v1.0/user_catalogs", "bob-token", `{}`, nil, 200, `{"uuid_catalog": {}, "displayname_catalog": {}}`},
		{"content type not checked", "/account/v1.0/user_catalogs", "bob-token", `{"uuids": ["` + bob + `"]}`,
			map[string]string{"Content-Type": "text/plain"}, 200, `{"uuid_catalog": {"` + bob + `": "bob@example.org"}, "displayname_catalog": {}}`},
		{"null uuids for a user", "/account/v1.0/user_catalogs", "bob-token", `{"uuids": null}`, nil, 200, `{"uuid_catalog": {}, "displayname_catalog": {}}`},
		{"bad json", "/account/v1.0/user_catalogs", "bob-token", `{`, nil, 400, fault("badRequest", 400, "Request body should be json formatted.", "")},
		{"not a dict", "/account/v1.0/user_catalogs", "bob-token", `[]`, nil, 400, fault("badRequest", 400, "Request body should be a json formatted dictionary", "")},
		{"null displaynames", "/account/v1.0/user_catalogs", "bob-token", `{"displaynames": null}`, nil, 400, fault("badRequest", 400, "Invalid displaynames: None", "")},
		{"displayname not a string", "/account/v1.0/user_catalogs", "bob-token", `{"displaynames": [1]}`, nil, 400,
			fault("badRequest", 400, "Items in 'displaynames' must be strings", "")},
		{"service with a user token", "/account/v1.0/service/user_catalogs", "bob-token", `{}`, nil, 401, fault("unauthorized", 401, "Invalid X-Auth-Token", "")},
		{"user call with a component token", "/account/v1.0/user_catalogs", "astakos-token", `{}`, nil, 401, fault("unauthorized", 401, "Invalid X-Auth-Token", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, call{Method: "POST", Path: tt.path, Token: tt.token, Body: tt.body, Header: tt.header})
			require.Equal(t, tt.status, r.Status, r.Body)
			require.JSONEq(t, tt.want, r.Body)
		})
	}
	t.Run("null uuids on the service endpoint: every user", func(t *testing.T) {
		r := post(t, s, "astakos-token", "/account/v1.0/service/user_catalogs", `{"uuids": null}`)
		var got struct {
			UUIDs map[string]string `json:"uuid_catalog"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
		require.Equal(t, map[string]string{alice: "alice@example.org", bob: "bob@example.org", admin: "admin@example.org"}, got.UUIDs)
	})
	r := do(t, s, call{Path: "/account/v1.0/user_catalogs", Token: "bob-token"})
	require.Equal(t, 405, r.Status)
	require.Equal(t, "POST", r.Header.Get("Allow"))
}

// shutdown and start answer 202 and change the status when done; a
// stopped VM carries no cpu or ram (docs/synnefo-wire.md#server-shutdown-and-start).
func TestServerPowerActions(t *testing.T) {
	s := startFile(t, "states.yaml")
	status := func(id string) (string, string) {
		r := do(t, s, call{Path: "/compute/v2.0/servers/" + id, Token: "alice-token"})
		var got struct {
			Server struct {
				Status string `json:"status"`
				Task   string `json:"SNF:task_state"`
			} `json:"server"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
		return got.Server.Status, got.Server.Task
	}
	cpu := func() int64 { return quotas(t, s, "alice-token")[alice][quota.CPU].Usage }
	require.Equal(t, int64(2), cpu())
	r := post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", `{"shutdown": {}}`)
	require.Equal(t, http.StatusAccepted, r.Status, r.Body)
	st, task := status("4242")
	require.Equal(t, "ACTIVE", st, "not yet: the action takes action_delay")
	require.Equal(t, "STOP", task)
	r = post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", fmt.Sprintf(reasgn, lab))
	require.JSONEq(t, fault("badRequest", 400, "Cannot perform 'REASSIGN' action while there is a pending 'STOP'.", ""), r.Body)
	s.Cloud.AdvanceClock(10 * time.Second)
	st, task = status("4242")
	require.Equal(t, "STOPPED", st)
	require.Empty(t, task)
	require.Equal(t, int64(0), cpu())
	require.Equal(t, int64(0), quotas(t, s, "alice-token")[alice][quota.RAM].Usage)

	r = post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", `{"shutdown": {}}`)
	require.JSONEq(t, fault("conflict", 409, "Cannot perform 'STOP' action while server is in 'STOPPED' state.", ""), r.Body)
	r = post(t, s, "alice-token", "/compute/v2.0/servers/4251/action", `{"start": {}}`)
	require.Equal(t, http.StatusAccepted, r.Status, r.Body)
	s.Cloud.AdvanceClock(10 * time.Second)
	st, _ = status("4251")
	require.Equal(t, "ACTIVE", st)
	require.Equal(t, int64(2), cpu())
	r = post(t, s, "alice-token", "/compute/v2.0/servers/4242/action", `{"reboot": {}}`)
	require.JSONEq(t, fault("badRequest", 400, "Action reboot not supported.", ""), r.Body)
}

// A 405's Allow names only the methods this cloud serves
// (docs/synnefo-wire.md#common-behaviour).
func TestAllowListsServedMethods(t *testing.T) {
	s := startFile(t, "multi.yaml")
	tests := []struct{ method, path, allow string }{
		{"POST", "/network/v2.0/floatingips", "GET"},
		{"POST", "/network/v2.0/networks/", "GET"},
		{"DELETE", "/network/v2.0/floatingips/17", "GET"},
		{"POST", "/compute/v2.0/servers", "GET"},
		{"DELETE", "/compute/v2.0/servers/4242", "GET"},
		{"POST", "/volume/v2.0/volumes", "GET"},
		{"DELETE", "/volume/v2.0/volumes/79", "GET"},
		{"POST", "/account/v1.0/projects", "GET"},
		{"DELETE", "/account/v1.0/projects/" + lab, "GET, PUT"},
		{"GET", "/account/v1.0/projects/" + lab + "/action", "POST"},
	}
	for _, tt := range tests {
		r := do(t, s, call{Method: tt.method, Path: tt.path, Token: "alice-token"})
		require.Equal(t, 405, r.Status, tt.path)
		require.Equal(t, tt.allow, r.Header.Get("Allow"), tt.method+" "+tt.path)
	}
}

// A system project is described after its user, as Astakos's
// make_base_project does (docs/synnefo-wire.md#project-object).
func TestSystemProjectDescription(t *testing.T) {
	s := startFile(t, "states.yaml")
	r := do(t, s, call{Path: "/account/v1.0/projects/" + alice, Token: "alice-token"})
	var p projectObject
	require.NoError(t, json.Unmarshal([]byte(r.Body), &p))
	require.Equal(t, "system project for user alice@example.org", p.Description)
	require.True(t, strings.HasPrefix(p.EndDate, "2126-"), p.EndDate)
	require.Nil(t, p.LastApplication)
}
