package synnefosim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestPithosListing(t *testing.T) {
	s := startFile(t, "paging.yaml")
	acct := "/object-store/v1/" + alice
	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantBody   string
	}{
		{"text default page", call{Path: acct, Token: "alice-token"}, 200, "c1\nc2\n"},
		{"text next page", call{Path: acct + "?marker=c2", Token: "alice-token"}, 200, "c3\nc4\n"},
		{"text last page", call{Path: acct + "?marker=c4", Token: "alice-token"}, 200, "c5\n"},
		{"text past the end", call{Path: acct + "?marker=c5", Token: "alice-token"}, 204, ""},
		{"marker between names", call{Path: acct + "?marker=c2a&limit=1", Token: "alice-token"}, 200, "c3\n"},
		{"explicit limit", call{Path: acct + "?limit=4", Token: "alice-token"}, 200, "c1\nc2\nc3\nc4\n"},
		{"zero limit is default", call{Path: acct + "?limit=0", Token: "alice-token"}, 200, "c1\nc2\n"},
		{"negative limit is default", call{Path: acct + "?limit=-3", Token: "alice-token"}, 200, "c1\nc2\n"},
		{"bad limit is default", call{Path: acct + "?limit=x", Token: "alice-token"}, 200, "c1\nc2\n"},
		{"json empty page", call{Path: acct + "?format=json&marker=c5", Token: "alice-token"}, 200, "[]"},
		{"empty account text", call{Path: "/object-store/v1/" + bob, Token: "bob-token"}, 204, ""},
		{"empty account json", call{Path: "/object-store/v1/" + bob + "?format=json", Token: "bob-token"}, 200, "[]"},
		{"other account sees nothing", call{Path: acct + "?format=json", Token: "bob-token"}, 200, "[]"},
		{"wrong method", call{Method: "PUT", Path: acct, Token: "alice-token"}, 405, fault("notAllowed", 405, "Method not allowed", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, tt.call)
			require.Equal(t, tt.wantStatus, r.Status, r.Body)
			require.Equal(t, tt.wantBody, r.Body)
		})
	}
	t.Run("json pages", func(t *testing.T) {
		var names []string
		marker := ""
		pages := 0
		for {
			r := do(t, s, call{Path: acct + "?format=json&marker=" + url.QueryEscape(marker), Token: "alice-token"})
			require.Equal(t, 200, r.Status)
			var page []containerJSON
			require.NoError(t, json.Unmarshal([]byte(r.Body), &page))
			pages++
			for _, c := range page {
				names = append(names, c.Name)
				require.Equal(t, map[string]string{"quota": "0", "versioning": "auto", "project": alice}, c.Policy)
			}
			if len(page) < 2 {
				break
			}
			marker = page[len(page)-1].Name
		}
		require.Equal(t, []string{"c1", "c2", "c3", "c4", "c5"}, names)
		require.Equal(t, 3, pages)
	})
}

func TestPithosJSONAndHead(t *testing.T) {
	s := startFile(t, "multi.yaml")
	r := do(t, s, call{Path: "/object-store/v1/" + alice + "?format=json", Token: "alice-token"})
	require.Equal(t, 200, r.Status)
	var raw []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Body), &raw))
	require.Len(t, raw, 5)
	require.Equal(t, map[string]any{
		"name": "course_container", "count": float64(120), "bytes": float64(20615843020),
		"last_modified":      "2026-01-01T00:00:00.000000+00:00",
		"x_container_policy": map[string]any{"quota": "0", "versioning": "auto", "project": alice},
	}, raw[0])
	require.Equal(t, "5", r.Header.Get("X-Account-Container-Count"))
	require.Equal(t, "32212254720", r.Header.Get("X-Account-Policy-Quota-"+alice))

	tests := []struct {
		name       string
		path       string
		token      string
		wantStatus int
		want       map[string]string
	}{
		{"encoded", "/object-store/v1/" + alice + "/my%20data", "alice-token", 204, map[string]string{
			"X-Container-Object-Count": "1", "X-Container-Bytes-Used": "1024", "X-Container-Policy-Quota": "1048576",
			"X-Container-Policy-Versioning": "none", "X-Container-Policy-Project": alice, "X-Container-Block-Size": "4194304",
			"X-Container-Block-Hash": "sha256",
		}},
		{"charged elsewhere", "/object-store/v1/" + alice + "/legacy/", "alice-token", 204, map[string]string{"X-Container-Policy-Project": susp}},
		{"missing", "/object-store/v1/" + alice + "/nope", "alice-token", 404, nil},
		{"not the owner", "/object-store/v1/" + alice + "/data", "bob-token", 403, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, call{Method: "HEAD", Path: tt.path, Token: tt.token})
			require.Equal(t, tt.wantStatus, r.Status)
			require.Empty(t, r.Body)
			for k, v := range tt.want {
				require.Equal(t, v, r.Header.Get(k), k)
			}
		})
	}
	require.Equal(t, "a%2Bb%C3%A9/=,:@; \"", pithosEscape("a+bé/=,:@; \""))
}

func TestContainerReassign(t *testing.T) {
	post := func(container, project string, update bool) call {
		q := "?format=json"
		if update {
			q = "?update&format=json"
		}
		c := call{Method: "POST", Path: "/object-store/v1/" + alice + "/" + url.PathEscape(container) + q, Token: "alice-token", Header: map[string]string{}}
		if project != "-" {
			c.Header["X-Container-Policy-Project"] = project
		}
		return c
	}
	storage := func(avail, req int64) string {
		return fault("fault", 413, "Resource Limit Exceeded for your account.",
			fmt.Sprintf("Limit for resource 'Storage space' exceeded for your account. Available: %d, Requested: %d", avail, req))
	}
	noHolding := func(project string) string {
		inner := fault("itemNotFound", 404, fmt.Sprintf("There is no such holding for user %s in project %s", alice, project), "")
		return fault("fault", 404, "NOT FOUND", inner)
	}
	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantBody   string
		moved      int64  // bytes that move from alice's system project
		to         string // where they land
	}{
		{"to the lab", post("course_container", lab, true), 202, "", 20615843020, lab},
		{"project level full", post("course_container", team, true), 413, storage(5*gib, 20615843020), 0, ""},
		{"member level full", post("data", small, true), 413, storage(gib, 5*gib), 0, ""},
		{"suspended project", post("empty", susp, true), 413, storage(-gib, 0), 0, ""},
		{"empty container", post("empty", lab, true), 202, "", 0, lab},
		{"same project, over limit", post("legacy", susp, true), 413, storage(-gib, gib), 0, ""},
		{"non-member", post("data", other, true), 404, noHolding(other), 0, ""},
		{"unknown project", post("data", "nope", true), 404, noHolding("nope"), 0, ""},
		{"empty project", post("data", "", true), 404, noHolding(""), 0, ""},
		{"missing container", post("nope", lab, true), 404, fault("itemNotFound", 404, "Container does not exist", ""), 0, ""},
		{"not the owner", call{Method: "POST", Path: "/object-store/v1/" + alice + "/data?update", Token: "bob-token", Header: map[string]string{"X-Container-Policy-Project": lab}}, 403, fault("forbidden", 403, "Not allowed", ""), 0, ""},
		{"bad policy", call{Method: "POST", Path: "/object-store/v1/" + alice + "/data?update", Token: "alice-token", Header: map[string]string{"X-Container-Policy-Color": "red"}}, 400,
			fault("badRequest", 400, "The only allowed policies are 'quota' or 'versioning'.", ""), 0, ""},
		{"pending counts", post("data", pend, true), 202, "", 5 * gib, pend},
		{"without update, with project", post("data", lab, false), 202, "", 5 * gib, lab},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFile(t, "multi.yaml")
			before := quotas(t, s, "alice-token")
			r := do(t, s, tt.call)
			require.Equal(t, tt.wantStatus, r.Status, r.Body)
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, r.Body)
			} else {
				require.Empty(t, r.Body)
			}
			after := quotas(t, s, "alice-token")
			require.Equal(t, before[alice][quota.DiskSpace].Usage-tt.moved, after[alice][quota.DiskSpace].Usage)
			if tt.to != "" {
				require.Equal(t, before[tt.to][quota.DiskSpace].Usage+tt.moved, after[tt.to][quota.DiskSpace].Usage)
				require.Equal(t, before[tt.to][quota.DiskSpace].ProjectUsage+tt.moved, after[tt.to][quota.DiskSpace].ProjectUsage)
			} else {
				require.Equal(t, before, after)
			}
		})
	}
}

func TestContainerPostWithoutUpdate(t *testing.T) {
	s := startFile(t, "multi.yaml")
	// Move "my data" to the lab first, so the policy is not the default.
	r := do(t, s, call{Method: "POST", Path: "/object-store/v1/" + alice + "/my%20data?update", Token: "alice-token",
		Header: map[string]string{"X-Container-Policy-Project": lab}})
	require.Equal(t, 202, r.Status)
	before := quotas(t, s, "alice-token")

	// Only a quota policy, no ?update: the project resets to the account
	// with no commission, and versioning to its default.
	r = do(t, s, call{Method: "POST", Path: "/object-store/v1/" + alice + "/my%20data", Token: "alice-token",
		Header: map[string]string{"X-Container-Policy-Quota": "10"}})
	require.Equal(t, 202, r.Status)
	require.Equal(t, before, quotas(t, s, "alice-token"))
	h := do(t, s, call{Method: "HEAD", Path: "/object-store/v1/" + alice + "/my%20data", Token: "alice-token"})
	require.Equal(t, alice, h.Header.Get("X-Container-Policy-Project"))
	require.Equal(t, "10", h.Header.Get("X-Container-Policy-Quota"))
	require.Equal(t, "auto", h.Header.Get("X-Container-Policy-Versioning"))
	var charged string
	for _, c := range s.Cloud.State().Containers {
		if c.Name == "my data" {
			charged = c.Charged
		}
	}
	require.Equal(t, lab, charged)

	// With ?update the other policies are kept.
	r = do(t, s, call{Method: "POST", Path: "/object-store/v1/" + alice + "/my%20data?update", Token: "alice-token",
		Header: map[string]string{"X-Container-Policy-Versioning": "none"}})
	require.Equal(t, 202, r.Status)
	h = do(t, s, call{Method: "HEAD", Path: "/object-store/v1/" + alice + "/my%20data", Token: "alice-token"})
	require.Equal(t, "10", h.Header.Get("X-Container-Policy-Quota"))
	require.Equal(t, "none", h.Header.Get("X-Container-Policy-Versioning"))
}

func TestContainerGet(t *testing.T) {
	s := startFile(t, "multi.yaml")
	r := do(t, s, call{Path: "/object-store/v1/" + alice + "/data?format=json", Token: "alice-token"})
	require.Equal(t, 200, r.Status)
	require.Equal(t, "[]", r.Body)
	require.Equal(t, "5368709120", r.Header.Get("X-Container-Bytes-Used"))
	r = do(t, s, call{Path: "/object-store/v1/" + alice + "/data", Token: "alice-token"})
	require.Equal(t, 204, r.Status)
	r = do(t, s, call{Path: "/object-store/v1/" + alice + "/data/some/object", Token: "alice-token"})
	require.Equal(t, 404, r.Status)
	r = do(t, s, call{Method: "DELETE", Path: "/object-store/v1/" + alice + "/data", Token: "alice-token"})
	require.Equal(t, 405, r.Status)
	require.JSONEq(t, fault("notAllowed", 405, "Method not allowed", ""), r.Body)
}
