package client_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
)

// The project listings are read an element at a time; an attempt cut
// short and retried starts its listing again, so nothing of the cut
// answer stays.
func TestProjectSummariesStreamAndRetryWhole(t *testing.T) {
	f := newFake(t)
	var calls atomic.Int32
	f.routes["GET /account/v1.0/projects"] = func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`[{"id": "p-gone", "name": "gone", "state": "active"},`))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // the attempt's timeout ends it
			return
		}
		f.json(200, `[{"id": "p-lab", "name": "lab", "state": "active", "owner": "u-bob"}, {"id": "p-x", "name": "x", "state": "suspended"}]`)(w, r)
	}
	f.routes["GET /account/v1.0/projects/memberships"] = f.json(200, `[
		{"id": 1, "user": "u-alice", "project": "p-lab", "state": "accepted"},
		{"id": 2, "user": "u-bob", "project": "p-x", "state": "accepted"},
		{"id": 3, "user": "u-alice", "project": "p-old", "state": "removed"}]`)
	cfg := f.config(nil)
	cfg.Timeout = 300 * time.Millisecond
	c := newClientFrom(t, cfg)
	ps, err := c.ProjectSummaries(context.Background())
	require.NoError(t, err)
	require.Equal(t, int32(2), calls.Load())
	require.Equal(t, map[string]quota.Project{
		"p-lab": {ID: "p-lab", Name: "lab", State: "active", Owner: "u-bob", Membership: "accepted"},
		"p-x":   {ID: "p-x", Name: "x", State: "suspended"},
		"p-old": {ID: "p-old", Membership: "removed"},
	}, ps)
}

func TestListingsRefuseWhatIsNotAList(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"object", `{"id": "p-lab"}`, "got a JSON object, want a JSON array"},
		{"number", `7`, "got a JSON number, want a JSON array"},
		{"bad element", `[{"id": "p-lab"}, {"id": 7}]`, "decoding response"},
		{"cut", `[{"id": "p-lab"}`, "decoding response"},
		{"not json", `<html>`, "decoding response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.routes["GET /account/v1.0/projects"] = f.json(200, tc.body)
			_, err := f.client(nil).ProjectSummaries(context.Background())
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "project summaries: projects")
		})
	}
	f := newFake(t)
	f.routes["GET /account/v1.0/projects"] = f.json(200, `null`)
	f.routes["GET /account/v1.0/projects/memberships"] = f.json(200, `[]`)
	ps, err := f.client(nil).ProjectSummaries(context.Background())
	require.NoError(t, err)
	require.Empty(t, ps)
}

func newClientFrom(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	require.NoError(t, err)
	return c
}
