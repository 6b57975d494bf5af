package synnefosim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestLoadScenarioErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"invalid-unknown-key.yaml", `testdata/invalid-unknown-key.yaml:6: unknown field "limit"`},
		{"invalid-type.yaml", "testdata/invalid-type.yaml:7: cannot unmarshal !!str `lots` into int64"},
		{"invalid-syntax.yaml", "testdata/invalid-syntax.yaml:1: did not find expected ',' or '}'"},
		{"invalid-references.yaml", strings.Join([]string{
			`testdata/invalid-references.yaml:8: projects[1].members[1]: unknown member "nobody"`,
			`testdata/invalid-references.yaml:10: containers[0].project: unknown project "p9"`,
			`testdata/invalid-references.yaml:14: servers[0].flavor: unknown flavor 7`,
		}, "\n")},
		{"missing.yaml", "read scenario: open testdata/missing.yaml: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadScenario("testdata/" + tt.file)
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestValidate(t *testing.T) {
	base := func() *Scenario {
		return &Scenario{
			Users:    []User{{UUID: "u1", Token: "t1"}, {UUID: "u2", Token: "t2"}},
			Projects: []Project{{ID: "u1", System: true}, {ID: "p", Members: []string{"u1"}}},
			Flavors:  []Flavor{{ID: 1, VCPUs: 1, RAM: 512, Disk: 5}},
		}
	}
	tests := []struct {
		name   string
		change func(*Scenario)
		want   string
	}{
		{"ok", func(*Scenario) {}, ""},
		{"duplicate token", func(sc *Scenario) { sc.Users[1].Token = "t1" }, "users[1].token: duplicate token"},
		{"service token is a user token", func(sc *Scenario) { sc.ServiceToken = "t2" }, "users[1].token: duplicate token"},
		{"system project of no user", func(sc *Scenario) { sc.Projects[1].System = true },
			"projects[1].id: system project \"p\" is not a user's uuid\nprojects[1].members[0]: system project member \"u1\" is not its user"},
		{"bad state", func(sc *Scenario) { sc.Projects[1].State = "frozen" }, `projects[1].state: unknown state "frozen"`},
		{"owner unknown", func(sc *Scenario) { sc.Projects[1].Owner = "zz" }, `projects[1].owner: unknown owner "zz"`},
		{"server without system project", func(sc *Scenario) {
			sc.Servers = []VM{{ID: 1, Owner: "u2", Flavor: 1}}
		}, "servers[0]: no project given and the owner has no system project"},
		{"system volume of another owner", func(sc *Scenario) {
			sc.Servers = []VM{{ID: 1, Owner: "u1", Flavor: 1}}
			sc.Volumes = []Volume{{ID: "5", Owner: "u2", Project: "p", Server: 1, Size: 1}}
		}, "volumes[0].owner: a system volume must have its server's owner"},
		{"non-numeric ids", func(sc *Scenario) {
			sc.FloatingIPs = []FloatingIP{{ID: "x", Owner: "u1"}}
		}, `floating_ips[0].id: id "x" must be a positive integer`},
		{"fault without effect", func(sc *Scenario) { sc.Faults = []Fault{{Path: "*"}} }, "faults[0]: a fault needs a status or a latency"},
		{"fault status", func(sc *Scenario) { sc.Faults = []Fault{{Path: "*", Status: 200}} }, "faults[0].status: status must be 4xx or 5xx"},
		{"membership state", func(sc *Scenario) { sc.Projects[1].Memberships = []Membership{{User: "u2", State: "friend"}} },
			`projects[1].memberships[0].state: unknown membership state "friend"`},
		{"member twice", func(sc *Scenario) { sc.Projects[1].Memberships = []Membership{{User: "u1", State: "removed"}} },
			`projects[1].memberships[0].user: duplicate member "u1"`},
		{"memberships of a system project", func(sc *Scenario) { sc.Projects[0].Memberships = []Membership{{User: "u2", State: "removed"}} },
			"projects[0].memberships: a system project has only its user"},
		{"component", func(sc *Scenario) { sc.ComponentTokens = map[string]string{"nova": "t9"} },
			`component_tokens.nova: unknown component "nova" (astakos, cyclades or pithos)`},
		{"component token of a user", func(sc *Scenario) { sc.ComponentTokens = map[string]string{"pithos": "t1"} },
			"component_tokens.pithos: empty or duplicate token"},
		{"admin unknown", func(sc *Scenario) { sc.ProjectAdmins = []string{"zz"} }, `project_admins[0]: unknown user "zz"`},
		{"drift", func(sc *Scenario) {
			sc.Drift = []Drift{{User: "u1", Project: "q", Resource: "cyclades.vm", Amount: -1}}
		},
			"drift[0].project: unknown project \"q\"\ndrift[0].amount: amount must not be negative"},
		{"token duration", func(sc *Scenario) { sc.Users[0].TokenDuration = -1 }, "users[0].token_duration: token_duration must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := base()
			tt.change(sc)
			err := sc.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			_, err = New(sc)
			require.EqualError(t, err, "invalid scenario: "+tt.want)
		})
	}
}

func TestIdentity(t *testing.T) {
	s := startFile(t, "multi.yaml")
	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantBody   string // exact, when set
		wantUser   string
	}{
		{"token form", call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{"auth": {"token": {"id": "alice-token"}, "tenantName": "` + alice + `"}}`}, 200, "", alice},
		{"password form, trailing slash", call{Method: "POST", Path: "/identity/v2.0/tokens/", Body: `{"auth": {"passwordCredentials": {"username": "` + bob + `", "password": "bob-token"}}}`}, 200, "", bob},
		{"public mode", call{Method: "POST", Path: "/identity/v2.0/tokens"}, 200, "", ""},
		{"missing credentials", call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{"auth": {}}`}, 400, fault("badRequest", 400, "Malformed request: missing credentials", ""), ""},
		{"tenant mismatch", call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{"auth": {"token": {"id": "alice-token"}, "tenantName": "` + bob + `"}}`}, 400, fault("badRequest", 400, "Not conforming tenantName", ""), ""},
		{"invalid token", call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{"auth": {"token": {"id": "nope"}}}`}, 401, fault("unauthorized", 401, "Invalid token", ""), ""},
		{"service token is no user", call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{"auth": {"token": {"id": "svc-token"}}}`}, 401, fault("unauthorized", 401, "Invalid token", ""), ""},
		{"wrong username", call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{"auth": {"passwordCredentials": {"username": "` + bob + `", "password": "alice-token"}}}`}, 401, fault("unauthorized", 401, "Invalid credentials", ""), ""},
		{"no content type", call{Method: "POST", Path: "/identity/v2.0/tokens", Header: map[string]string{"Content-Type": "-"}, Body: `{}`}, 400, fault("badRequest", 400, "Missing Content-Type header field", ""), ""},
		{"bad content type", call{Method: "POST", Path: "/identity/v2.0/tokens", Header: map[string]string{"Content-Type": "text/plain"}, Body: `{}`}, 400, fault("badRequest", 400, "Unsupported Content-type: 'text/plain'", ""), ""},
		{"bad json", call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{`}, 400, fault("badRequest", 400, "Could not decode request body as JSON", ""), ""},
		{"wrong method", call{Path: "/identity/v2.0/tokens"}, 405, fault("notAllowed", 405, "Method not allowed", ""), ""},
		{"unknown path", call{Path: "/identity/v2.0/nothing"}, 400, fault("badRequest", 400, "API endpoint not found", ""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, tt.call)
			require.Equal(t, tt.wantStatus, r.Status, r.Body)
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, r.Body)
			}
			if tt.wantStatus != 200 {
				return
			}
			var resp struct {
				Access struct {
					Token *struct {
						ID     string `json:"id"`
						Tenant struct {
							ID string `json:"id"`
						} `json:"tenant"`
					} `json:"token"`
					User *struct {
						ID       string   `json:"id"`
						Projects []string `json:"projects"`
						Roles    []struct {
							ID string `json:"id"`
						} `json:"roles"`
					} `json:"user"`
					ServiceCatalog []catalogEntry `json:"serviceCatalog"`
				} `json:"access"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.Body), &resp))
			urls := map[string]string{}
			for _, e := range resp.Access.ServiceCatalog {
				require.Len(t, e.Endpoints, 1)
				urls[e.Type] = e.Endpoints[0].PublicURL
			}
			require.Equal(t, map[string]string{
				"identity": s.AuthURL(), "account": s.URL + "/account/v1.0", "compute": s.URL + "/compute/v2.0",
				"network": s.URL + "/network", "volume": s.URL + "/volume", "object-store": s.URL + "/object-store/v1",
			}, urls)
			if tt.wantUser == "" {
				require.Nil(t, resp.Access.User)
				require.Nil(t, resp.Access.Token)
				return
			}
			require.Equal(t, tt.wantUser, resp.Access.User.ID)
			require.Equal(t, tt.wantUser, resp.Access.Token.Tenant.ID)
			require.Equal(t, "1", resp.Access.User.Roles[0].ID)
			if tt.wantUser == alice {
				// Active projects only: the suspended one is left out.
				require.Equal(t, []string{lab, team, pend, small, alice}, sortedCopy(resp.Access.User.Projects, []string{lab, team, pend, small, alice}))
			}
		})
	}
}

// sortedCopy returns got reordered as want when they hold the same set.
func sortedCopy(got, want []string) []string {
	set := map[string]bool{}
	for _, g := range got {
		set[g] = true
	}
	out := []string{}
	for _, w := range want {
		if set[w] {
			out = append(out, w)
			delete(set, w)
		}
	}
	for g := range set {
		out = append(out, g)
	}
	return out
}

func TestAuthFailures(t *testing.T) {
	s := startFile(t, "multi.yaml")
	noToken := fault("unauthorized", 401, "Access denied. No authentication token", "")
	astakosBad := fault("unauthorized", 401, "Invalid X-Auth-Token", "")
	proxied := fault("fault", 401, "UNAUTHORIZED", `{"unauthorized":{"code":401,"message":"Invalid token","details":""}}`)
	paths := []struct {
		path string
		bad  string
	}{
		{"/account/v1.0/quotas", astakosBad},
		{"/account/v1.0/projects", astakosBad},
		{"/account/v1.0/projects/" + lab, astakosBad},
		{"/account/v1.0/service_project_quotas", astakosBad},
		{"/object-store/v1/" + alice, proxied},
		{"/compute/v2.0/servers/detail", proxied},
		{"/compute/v2.0/flavors/detail", proxied},
		{"/network/v2.0/floatingips", proxied},
		{"/network/v2.0/networks", proxied},
		{"/volume/v2.0/volumes/detail", proxied},
	}
	for _, p := range paths {
		t.Run(p.path, func(t *testing.T) {
			r := do(t, s, call{Path: p.path})
			require.Equal(t, 401, r.Status)
			require.JSONEq(t, noToken, r.Body)
			r = do(t, s, call{Path: p.path, Token: "wrong-token"})
			require.Equal(t, 401, r.Status)
			require.JSONEq(t, p.bad, r.Body)
			require.NotContains(t, r.Body, "wrong-token")
		})
	}
	// The service token is not a user token, and a user token is not a component's.
	r := do(t, s, call{Path: "/account/v1.0/quotas", Token: "svc-token"})
	require.Equal(t, 401, r.Status)
	require.JSONEq(t, astakosBad, r.Body)
	r = do(t, s, call{Path: "/account/v1.0/service_project_quotas", Token: "alice-token"})
	require.Equal(t, 401, r.Status)
	require.JSONEq(t, astakosBad, r.Body)
	// HEAD carries no body.
	r = do(t, s, call{Method: "HEAD", Path: "/object-store/v1/" + alice + "/data", Token: "wrong"})
	require.Equal(t, 401, r.Status)
	require.Empty(t, r.Body)
}

func TestQuotas(t *testing.T) {
	s := startFile(t, "multi.yaml")
	q := quotas(t, s, "alice-token")
	// Deleted projects would be absent; suspended ones stay, with limits 0.
	require.ElementsMatch(t, []string{alice, lab, team, susp, pend, small}, keys(q))
	for _, p := range q {
		require.ElementsMatch(t, []string{quota.CPU, quota.Disk, quota.FloatingIP, quota.PrivateNetwork, quota.RAM, quota.VM, quota.DiskSpace}, keys(p))
	}
	// alice's system project: course_container + data + my data; VMs 4242,
	// 4243 (BUILD counts as running), 4244, 4245 (stopped: no cpu/ram).
	require.Equal(t, quota.Quota{Limit: 30 * gib, Usage: 20615843020 + 5*gib + 1024, ProjectLimit: 30 * gib, ProjectUsage: 20615843020 + 5*gib + 1024}, q[alice][quota.DiskSpace])
	require.Equal(t, quota.Quota{Limit: 5, Usage: 4, ProjectLimit: 5, ProjectUsage: 4}, q[alice][quota.VM])
	require.Equal(t, quota.Quota{Limit: 8, Usage: 4, ProjectLimit: 8, ProjectUsage: 4}, q[alice][quota.CPU])
	require.Equal(t, quota.Quota{Limit: 16 * gib, Usage: 4 * gib, ProjectLimit: 16 * gib, ProjectUsage: 4 * gib}, q[alice][quota.RAM])
	// Volumes 77 (20), 78 (10), 79 (5) and the generated system volumes of
	// 4243 (10), 4244 (10), 4245 (20).
	require.Equal(t, 75*gib, q[alice][quota.Disk].Usage)
	require.Equal(t, int64(1), q[alice][quota.FloatingIP].Usage)
	require.Equal(t, int64(1), q[alice][quota.PrivateNetwork].Usage)
	// Project level includes bob's usage in team.
	require.Equal(t, quota.Quota{Limit: 50 * gib, Usage: 0, ProjectLimit: 30 * gib, ProjectUsage: 25 * gib}, q[team][quota.DiskSpace])
	// Suspended: limits 0, usage still charged.
	require.Equal(t, quota.Quota{Usage: gib, ProjectUsage: gib}, q[susp][quota.DiskSpace])
	// Pending is included in usage and reported.
	require.Equal(t, quota.Quota{Limit: 100 * gib, Usage: 1048576, Pending: 1048576, ProjectLimit: 100 * gib, ProjectUsage: 1048576, ProjectPending: 1048576}, q[pend][quota.DiskSpace])

	qb := quotas(t, s, "bob-token")
	// 2^63-1 round-trips exactly.
	require.Equal(t, quota.Unlimited, qb[bob][quota.DiskSpace].Limit)
	require.Equal(t, quota.Unlimited, qb[bob][quota.DiskSpace].ProjectLimit)
	require.Equal(t, quota.Quota{Limit: 4, Usage: 1, ProjectLimit: 10, ProjectUsage: 1}, qb[lab][quota.VM])

	// Trailing slash, and the body is served from cache until a change.
	r1 := do(t, s, call{Path: "/account/v1.0/quotas/", Token: "alice-token"})
	require.Equal(t, 200, r1.Status)
	require.NoError(t, s.Cloud.GrowContainer(alice, "data", gib))
	q2 := quotas(t, s, "alice-token")
	require.Equal(t, q[alice][quota.DiskSpace].Usage+gib, q2[alice][quota.DiskSpace].Usage)
	require.Equal(t, q2[alice][quota.DiskSpace], s.Cloud.Quota(alice, alice, quota.DiskSpace))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestServiceProjectQuotas(t *testing.T) {
	s := startFile(t, "multi.yaml")
	type pq = map[string]map[string]projectQuota
	tests := []struct {
		name       string
		query      string
		wantStatus int
		check      func(t *testing.T, got pq)
		wantBody   string
	}{
		{"all projects", "", 200, func(t *testing.T, got pq) {
			require.Len(t, got, 8)
			require.Equal(t, projectQuota{ProjectLimit: 30 * gib, ProjectUsage: 25 * gib}, got[team][quota.DiskSpace])
			// Hidden resources are included, unlimited by default.
			require.Equal(t, projectQuota{ProjectLimit: quota.Unlimited, ProjectUsage: 6}, got[alice][quota.TotalCPU])
			require.Equal(t, projectQuota{ProjectLimit: quota.Unlimited, ProjectUsage: 6 * gib}, got[alice][quota.TotalRAM])
			require.Equal(t, projectQuota{ProjectLimit: 0, ProjectUsage: gib}, got[susp][quota.DiskSpace])
		}, ""},
		{"filtered", "?project=" + lab + "," + team, 200, func(t *testing.T, got pq) {
			require.ElementsMatch(t, []string{lab, team}, keys(got))
		}, ""},
		{"nothing found", "?project=nope", 404, nil, fault("itemNotFound", 404, "No project with UUID 'nope'", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, call{Path: "/account/v1.0/service_project_quotas" + tt.query, Token: "svc-token"})
			require.Equal(t, tt.wantStatus, r.Status, r.Body)
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, r.Body)
				return
			}
			var got pq
			require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
			tt.check(t, got)
		})
	}
}

func TestResources(t *testing.T) {
	s := startFile(t, "multi.yaml")
	r := do(t, s, call{Path: "/account/v1.0/resources"})
	require.Equal(t, 200, r.Status)
	var got map[string]struct {
		Unit       *string `json:"unit"`
		APIVisible bool    `json:"api_visible"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
	require.Len(t, got, 7)
	require.Nil(t, got[quota.VM].Unit)
	require.Equal(t, "bytes", *got[quota.DiskSpace].Unit)
	require.NotContains(t, got, quota.TotalCPU)
}

func TestProjects(t *testing.T) {
	s := startFile(t, "multi.yaml")
	list := func(t *testing.T, token, query string) []string {
		r := do(t, s, call{Path: "/account/v1.0/projects" + query, Token: token})
		require.Equal(t, 200, r.Status, r.Body)
		var ps []projectObject
		require.NoError(t, json.Unmarshal([]byte(r.Body), &ps))
		ids := []string{}
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		return ids
	}
	tests := []struct {
		name  string
		token string
		query string
		want  []string
	}{
		{"default", "alice-token", "", []string{alice, lab, team, susp, pend, small}},
		{"trailing slash", "alice-token", "/", []string{alice, lab, team, susp, pend, small}},
		{"member", "alice-token", "?mode=member", []string{alice, lab, team, pend, small}},
		{"active", "alice-token", "?mode=active", []string{lab, team, pend, small}},
		{"state", "alice-token", "?state=suspended", []string{susp}},
		{"owner", "alice-token", "?owner=" + bob, []string{lab}},
		{"name", "alice-token", "?name=team", []string{team}},
		{"bob related", "bob-token", "?mode=related", []string{bob, lab, team, other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ElementsMatch(t, tt.want, list(t, tt.token, tt.query))
		})
	}
	errs := []struct {
		path   string
		status int
		body   string
	}{
		{"/account/v1.0/projects?mode=all", 400, fault("badRequest", 400, "Unrecognized mode 'all'.", "")},
		{"/account/v1.0/projects?state=gone", 400, fault("badRequest", 400, "Unrecognized state gone", "")},
		{"/account/v1.0/projects/" + other, 403, fault("forbidden", 403, "You do not have access to this project.", "")},
		{"/account/v1.0/projects/nope", 404, fault("itemNotFound", 404, "Project nope does not exist.", "")},
		{"/account/v1.0/projects/" + lab + "/x", 400, fault("badRequest", 400, "API endpoint not found", "")},
	}
	for _, e := range errs {
		t.Run(e.path, func(t *testing.T) {
			r := do(t, s, call{Path: e.path, Token: "alice-token"})
			require.Equal(t, e.status, r.Status)
			require.JSONEq(t, e.body, r.Body)
		})
	}
	t.Run("system project object", func(t *testing.T) {
		r := do(t, s, call{Path: "/account/v1.0/projects/" + alice + "/", Token: "alice-token"})
		require.Equal(t, 200, r.Status)
		var p map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.Body), &p))
		require.Nil(t, p["owner"])
		require.Contains(t, p, "owner")
		require.Equal(t, "system:"+alice, p["name"])
		require.Equal(t, true, p["system_project"])
		require.Equal(t, "closed", p["join_policy"])
	})
	t.Run("capacities exact", func(t *testing.T) {
		r := do(t, s, call{Path: "/account/v1.0/projects/" + bob, Token: "bob-token"})
		require.Contains(t, r.Body, `"pithos.diskspace":{"member_capacity":9223372036854775807,"project_capacity":9223372036854775807}`)
		r = do(t, s, call{Path: "/account/v1.0/projects/" + lab, Token: "alice-token"})
		var p projectObject
		require.NoError(t, json.Unmarshal([]byte(r.Body), &p))
		require.Equal(t, bob, *p.Owner)
		require.Equal(t, capacity{MemberCapacity: 4, ProjectCapacity: 10}, p.Resources[quota.VM])
	})
	t.Run("wrong method", func(t *testing.T) {
		r := do(t, s, call{Method: "DELETE", Path: "/account/v1.0/quotas", Token: "alice-token"})
		require.Equal(t, http.StatusMethodNotAllowed, r.Status)
		require.Equal(t, "GET", r.Header.Get("Allow"))
		require.JSONEq(t, fault("notAllowed", 405, "Method not allowed", ""), r.Body)
		require.Contains(t, r.Header.Get("Cache-Control"), "no-cache, no-store, must-revalidate")
	})
}

func TestServiceQuotas(t *testing.T) {
	s := startFile(t, "multi.yaml")
	type uq = map[string]map[string]map[string]quota.Quota
	tests := []struct {
		name     string
		query    string
		token    string
		status   int
		wantBody string
		check    func(t *testing.T, got uq)
	}{
		{"all users", "", "svc-token", 200, "", func(t *testing.T, got uq) {
			require.ElementsMatch(t, []string{alice, bob}, keys(got))
			require.ElementsMatch(t, []string{alice, lab, team, susp, pend, small}, keys(got[alice]))
			require.Equal(t, quota.Quota{Limit: quota.Unlimited, Usage: 6, ProjectLimit: quota.Unlimited, ProjectUsage: 6}, got[alice][alice][quota.TotalCPU])
			require.Equal(t, quota.Quota{Limit: 50 * gib, ProjectLimit: 30 * gib, ProjectUsage: 25 * gib}, got[alice][team][quota.DiskSpace])
		}},
		{"one user, one project", "?user=" + bob + "&project=" + team, "svc-token", 200, "", func(t *testing.T, got uq) {
			require.ElementsMatch(t, []string{bob}, keys(got))
			require.ElementsMatch(t, []string{team}, keys(got[bob]))
			require.Equal(t, 25*gib, got[bob][team][quota.DiskSpace].Usage)
		}},
		{"unknown user", "?user=nobody", "svc-token", 404, fault("itemNotFound", 404, "No user with UUID 'nobody'", ""), nil},
		{"user token", "", "alice-token", 401, fault("unauthorized", 401, "Invalid X-Auth-Token", ""), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, call{Path: "/account/v1.0/service_quotas" + tt.query, Token: tt.token})
			require.Equal(t, tt.status, r.Status, r.Body)
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, r.Body)
				return
			}
			var got uq
			require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
			tt.check(t, got)
		})
	}
}

func TestTokensNeverInErrors(t *testing.T) {
	_, err := ParseScenario("s.yaml", []byte(`
service_token: sekrit-service
users:
  - {uuid: u1, token: sekrit-user}
  - {uuid: u2, token: sekrit-user}
  - {uuid: u3, token: sekrit-service}
projects: [{id: u1, system: true}]
`))
	require.EqualError(t, err, "s.yaml:5: users[1].token: duplicate token\ns.yaml:6: users[2].token: duplicate token")
	require.NotContains(t, err.Error(), "sekrit")

	s := startFile(t, "multi.yaml")
	for _, path := range []string{"/account/v1.0/quotas", "/compute/v2.0/servers/detail", "/object-store/v1/" + alice} {
		r := do(t, s, call{Path: path, Token: "sekrit-guess"})
		require.Equal(t, 401, r.Status)
		require.NotContains(t, r.Body, "sekrit")
	}
	r := do(t, s, call{Method: "POST", Path: "/identity/v2.0/tokens", Body: `{"auth": {"token": {"id": "sekrit-guess"}}}`})
	require.Equal(t, 401, r.Status)
	require.NotContains(t, r.Body, "sekrit")
}
