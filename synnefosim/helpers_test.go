package synnefosim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// Ids of testdata/multi.yaml.
const (
	alice = "a11ce000-0000-4000-8000-000000000001"
	bob   = "b0b00000-0000-4000-8000-000000000002"
	lab   = "1ab00000-0000-4000-8000-000000000010"
	team  = "7ea40000-0000-4000-8000-000000000011"
	susp  = "5a5e0000-0000-4000-8000-000000000012"
	other = "07e40000-0000-4000-8000-000000000013"
	pend  = "9e9d0000-0000-4000-8000-000000000014"
	small = "5a110000-0000-4000-8000-000000000015"
	gib   = int64(1) << 30
)

func startFile(t *testing.T, file string) *Server {
	t.Helper()
	sc, err := LoadScenario("testdata/" + file)
	require.NoError(t, err)
	s := NewServer(sc)
	t.Cleanup(s.Close)
	return s
}

// call is one HTTP request. A body is sent as JSON unless Header sets
// Content-Type ("-" drops it).
type call struct {
	Method string
	Path   string
	Token  string
	Header map[string]string
	Body   string
}

type reply struct {
	Status int
	Header http.Header
	Body   string
}

func do(t *testing.T, s *Server, c call) reply {
	t.Helper()
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequest(c.Method, s.URL+c.Path, body)
	require.NoError(t, err)
	if c.Token != "" {
		req.Header.Set("X-Auth-Token", c.Token)
	}
	if c.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.Header {
		if v == "-" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func quotas(t *testing.T, s *Server, token string) map[string]map[string]quota.Quota {
	t.Helper()
	r := do(t, s, call{Path: "/account/v1.0/quotas", Token: token})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	var q map[string]map[string]quota.Quota
	require.NoError(t, json.Unmarshal([]byte(r.Body), &q))
	return q
}

func fault(key string, code int, msg, details string) string {
	b, _ := json.Marshal(map[string]faultBody{key: {Code: code, Message: msg, Details: details}})
	return string(b)
}
