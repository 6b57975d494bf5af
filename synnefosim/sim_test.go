package synnefosim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestFaults(t *testing.T) {
	quotasCall := call{Path: "/account/v1.0/quotas", Token: "alice-token"}
	serversCall := call{Path: "/compute/v2.0/servers/detail", Token: "alice-token"}
	postCall := call{Method: "POST", Path: "/compute/v2.0/servers/4242/action", Token: "alice-token", Body: `{"reassign": {"project": "` + alice + `"}}`}
	unavailable := fault("serviceUnavailable", 503, "Service Unavailable", "")
	tests := []struct {
		name   string
		faults []Fault
		calls  []call
		want   []int
		body   string // body of the first failure
	}{
		{"every third", []Fault{{Path: "/account/v1.0/quotas", Status: 503, Every: 3}},
			[]call{quotasCall, quotasCall, quotasCall, quotasCall, quotasCall, quotasCall}, []int{200, 200, 503, 200, 200, 503}, unavailable},
		{"every one", []Fault{{Path: "/account/*", Status: 500}},
			[]call{quotasCall, serversCall}, []int{500, 200}, fault("internalServerError", 500, "Unexpected error", "")},
		{"glob across slashes", []Fault{{Path: "*/servers/*", Status: 503}},
			[]call{quotasCall, serversCall}, []int{200, 503}, unavailable},
		{"method filter", []Fault{{Path: "*", Method: "POST", Status: 503}},
			[]call{serversCall, postCall}, []int{200, 503}, unavailable},
		{"custom body", []Fault{{Path: "*", Status: 502, Body: `{"oops": true}`}},
			[]call{quotasCall}, []int{502}, `{"oops": true}`},
		{"small latency only", []Fault{{Path: "*", Latency: Duration(time.Millisecond)}},
			[]call{quotasCall}, []int{200}, ""},
		{"counters per fault", []Fault{{Path: "*quotas", Status: 503, Every: 2}, {Path: "*detail", Status: 500, Every: 2}},
			[]call{quotasCall, serversCall, quotasCall, serversCall}, []int{200, 200, 503, 500}, unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFile(t, "multi.yaml")
			s.Cloud.SetFaults(tt.faults)
			var got []int
			body := ""
			for _, c := range tt.calls {
				r := do(t, s, c)
				got = append(got, r.Status)
				if r.Status >= 400 && body == "" {
					body = r.Body
				}
			}
			require.Equal(t, tt.want, got)
			if tt.body != "" {
				require.JSONEq(t, tt.body, body)
			}
			require.Equal(t, tt.faults, s.Cloud.Faults())
		})
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	sc, err := LoadScenario("testdata/multi.yaml")
	require.NoError(t, err)
	sc.Faults = []Fault{{Path: "*", Latency: Duration(time.Hour)}}
	c, err := New(sc)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/account/v1.0/quotas", nil)
	req.Header.Set("X-Auth-Token", "alice-token")
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req) // returns at once: the request is already gone
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
}

func TestFaultsFromScenarioAndSim(t *testing.T) {
	sc, err := ParseScenario("inline.yaml", []byte(`
users: [{uuid: u1, token: t1}]
projects: [{id: u1, system: true}]
faults:
  - {path: "/account/v1.0/quotas", status: 503, every: 2, latency: 1ms}
`))
	require.NoError(t, err)
	require.Equal(t, []Fault{{Path: "/account/v1.0/quotas", Status: 503, Every: 2, Latency: Duration(time.Millisecond)}}, sc.Faults)
	s := NewServer(sc)
	defer s.Close()
	q := call{Path: "/account/v1.0/quotas", Token: "t1"}
	require.Equal(t, 200, do(t, s, q).Status)
	require.Equal(t, 503, do(t, s, q).Status)

	r := do(t, s, call{Method: "POST", Path: "/_sim/faults", Body: `[{"path": "*", "status": 429, "latency": "2ms"}]`})
	require.Equal(t, 200, r.Status, r.Body)
	require.JSONEq(t, `[{"path": "*", "status": 429, "latency": "2ms"}]`, r.Body)
	require.Equal(t, 429, do(t, s, q).Status)
	r = do(t, s, call{Method: "POST", Path: "/_sim/faults", Body: `[{"path": "*"}]`})
	require.Equal(t, 400, r.Status)
	require.JSONEq(t, fault("badRequest", 400, "faults[0]: a fault needs a status or a latency", ""), r.Body)
	r = do(t, s, call{Method: "POST", Path: "/_sim/faults", Body: `[]`})
	require.Equal(t, 200, r.Status)
	require.Equal(t, 200, do(t, s, q).Status)
	r = do(t, s, call{Path: "/_sim/faults"})
	require.JSONEq(t, `[]`, r.Body)
}

func TestRequestLogAndSimEndpoints(t *testing.T) {
	s := startFile(t, "seed.yaml")
	const user = "0f2c6a1e-4b7d-4e21-9c3a-5d8e7f6a1b2c"
	do(t, s, call{Path: "/account/v1.0/quotas", Token: "alice-token"})
	do(t, s, call{Path: "/object-store/v1/" + user + "?format=json&limit=5", Token: "alice-token"})
	do(t, s, call{Path: "/compute/v2.0/servers/detail/", Token: "alice-token"})
	do(t, s, call{Path: "/_sim/state"})
	want := []Request{
		{Method: "GET", Path: "/account/v1.0/quotas", Status: 200},
		{Method: "GET", Path: "/object-store/v1/" + user, Query: "format=json&limit=5", Status: 200},
		{Method: "GET", Path: "/compute/v2.0/servers/detail/", Status: 400},
	}
	require.Equal(t, want, s.Cloud.Requests())
	r := do(t, s, call{Path: "/_sim/requests"})
	require.Equal(t, 200, r.Status)
	var got []Request
	require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
	require.Equal(t, want, got)
	require.Contains(t, r.Body, `"method":"GET","path":"/account/v1.0/quotas","query":"","status":200`)
	require.Equal(t, 204, do(t, s, call{Method: "DELETE", Path: "/_sim/requests"}).Status)
	require.Empty(t, s.Cloud.Requests())
	r = do(t, s, call{Path: "/_sim/requests"})
	require.JSONEq(t, `[]`, r.Body)

	// Grow a container over HTTP; /quotas follows.
	before := quotas(t, s, "alice-token")[user][quota.DiskSpace].Usage
	growTests := []struct {
		name   string
		path   string
		body   string
		status int
		grown  int64
	}{
		{"grow", "/_sim/containers/" + user + "/course_container/grow", `{"bytes": 1048576}`, 204, 1048576},
		{"shrink", "/_sim/containers/" + user + "/course_container/grow", `{"bytes": -1024}`, 204, 1048576 - 1024},
		{"unknown container", "/_sim/containers/" + user + "/nope/grow", `{"bytes": 1}`, 404, 1048576 - 1024},
		{"missing bytes", "/_sim/containers/" + user + "/course_container/grow", `{}`, 400, 1048576 - 1024},
		{"unknown field", "/_sim/containers/" + user + "/course_container/grow", `{"byte": 1}`, 400, 1048576 - 1024},
	}
	for _, tt := range growTests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, call{Method: "POST", Path: tt.path, Body: tt.body})
			require.Equal(t, tt.status, r.Status, r.Body)
			require.Equal(t, before+tt.grown, quotas(t, s, "alice-token")[user][quota.DiskSpace].Usage)
		})
	}

	r = do(t, s, call{Path: "/_sim/state"})
	require.Equal(t, 200, r.Status)
	require.NotContains(t, r.Body, "alice-token")
	require.NotContains(t, r.Body, "svc-token")
	var st State
	require.NoError(t, json.Unmarshal([]byte(r.Body), &st))
	require.Len(t, st.Projects, 2)
	require.Equal(t, before+1048576-1024, st.Projects[0].Usage[quota.DiskSpace])
	require.Equal(t, before+1048576-1024, st.Projects[0].MemberUsage[user][quota.DiskSpace])
	require.Equal(t, int64(20615843020+1048576-1024), st.Containers[0].Bytes)
	require.Equal(t, 404, do(t, s, call{Path: "/_sim/nothing"}).Status)
	require.Equal(t, 404, do(t, s, call{Path: "/nothing"}).Status)
}

func TestSeedScenario(t *testing.T) {
	s := startFile(t, "seed.yaml")
	const user = "0f2c6a1e-4b7d-4e21-9c3a-5d8e7f6a1b2c"
	q := quotas(t, s, "alice-token")
	sys := q[user][quota.DiskSpace]
	require.Greater(t, sys.Ratio(), 0.95)
	var lab string
	for id := range q {
		if id != user {
			lab = id
		}
	}
	require.Greater(t, q[lab][quota.DiskSpace].Headroom(), int64(20615843020))
	r := do(t, s, call{Method: "POST", Path: "/object-store/v1/" + user + "/course_container?update&format=json", Token: "alice-token",
		Header: map[string]string{"X-Container-Policy-Project": lab}})
	require.Equal(t, 202, r.Status, r.Body)
	q = quotas(t, s, "alice-token")
	require.Less(t, q[user][quota.DiskSpace].Ratio(), 0.01)
	require.Equal(t, int64(20615843020), q[lab][quota.DiskSpace].Usage)
	r = do(t, s, call{Path: "/account/v1.0/projects?name=" + "CS333%20lab%20assignments", Token: "alice-token"})
	require.Contains(t, r.Body, `"id":"`+lab+`"`)
}

func TestStart(t *testing.T) {
	sc, err := LoadScenario("testdata/seed.yaml")
	require.NoError(t, err)
	s, err := Start(sc, "127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, s.URL+"/identity/v2.0", s.AuthURL())
	_, err = Start(sc, "256.0.0.1:0")
	require.Error(t, err)
	_, err = Start(&Scenario{Users: []User{{UUID: "x"}}}, "127.0.0.1:0")
	require.EqualError(t, err, "invalid scenario: users[0]: token is required")
	require.Panics(t, func() { NewServer(&Scenario{Users: []User{{UUID: "x"}}}) })
}

// TestConcurrentUse moves containers and servers back and forth while
// others read; afterwards the derived usage must still match the items.
func TestConcurrentUse(t *testing.T) {
	s := startFile(t, "multi.yaml")
	var wg sync.WaitGroup
	errs := make(chan error, 6*15*2)
	// Goroutines other than the test's must not call require, so they
	// report through errs.
	send := func(method, path string, hdr map[string]string, body string) {
		req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		if err != nil {
			errs <- err
			return
		}
		req.Header.Set("X-Auth-Token", "alice-token")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errs <- err
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			errs <- fmt.Errorf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				dest := []string{lab, alice}[i%2]
				switch g % 3 {
				case 0:
					send("POST", "/object-store/v1/"+alice+"/data?update", map[string]string{"X-Container-Policy-Project": dest}, "")
				case 1:
					send("POST", "/compute/v2.0/servers/4242/action", nil, `{"reassign": {"project": "`+dest+`"}}`)
					if err := s.Cloud.GrowContainer(alice, "empty", 1); err != nil {
						errs <- err
					}
				default:
					send("GET", "/account/v1.0/quotas", nil, "")
					send("GET", "/volume/v2.0/volumes/detail", nil, "")
					_ = s.Cloud.State()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := s.Cloud.State()
	want := map[[2]string]int64{}
	for _, c := range st.Containers {
		if c.Account == alice {
			want[[2]string{c.Charged, quota.DiskSpace}] += c.Bytes
		}
	}
	for _, v := range st.Volumes {
		if v.Owner == alice {
			want[[2]string{v.Project, quota.Disk}] += v.Size << 30
		}
	}
	for _, sv := range st.Servers {
		if sv.Owner == alice {
			want[[2]string{sv.Project, quota.VM}]++
		}
	}
	q := quotas(t, s, "alice-token")
	for _, p := range []string{alice, lab} {
		for _, r := range []string{quota.DiskSpace, quota.Disk, quota.VM} {
			require.Equal(t, want[[2]string{p, r}], q[p][r].Usage, fmt.Sprintf("%s %s", p, r))
		}
	}
	// 2x15 container posts, 2x15 server posts, 2x15x2 reads, 1 final read.
	require.Len(t, s.Cloud.Requests(), 121)
}
