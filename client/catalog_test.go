package client_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/synnefosim"
)

func TestUserCatalog(t *testing.T) {
	ctx := context.Background()
	srv, c := newSim(t, nil)
	got, err := c.UserCatalog(ctx, []string{alice, bob, "nobody"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{alice: "alice@example.org", bob: "bob@example.org"}, got)

	// Many UUIDs go in batches, one POST each.
	many := make([]string, 450)
	for i := range many {
		many[i] = fmt.Sprintf("u-%d", i)
	}
	many[449] = bob
	srv.Cloud.ResetRequests()
	got, err = c.UserCatalog(ctx, many)
	require.NoError(t, err)
	require.Equal(t, map[string]string{bob: "bob@example.org"}, got)
	n := 0
	for _, r := range srv.Cloud.Requests() {
		if r.Method == http.MethodPost && r.Path == "/account/v1.0/user_catalogs" {
			n++
		}
	}
	require.Equal(t, 3, n)

	// A refusal is an error that names the call.
	srv.Cloud.SetFaults([]synnefosim.Fault{{Path: "*/user_catalogs", Status: 503}})
	_, err = c.UserCatalog(ctx, []string{alice})
	require.ErrorContains(t, err, "user catalog")
}
