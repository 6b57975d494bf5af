package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
)

// A kept token answer is a session without a token request; a 401 drops
// it and authenticates; an endpoint on another scheme is refused.
func TestResume(t *testing.T) {
	ctx := context.Background()
	srv, first := newSim(t, nil)
	id, err := first.Authenticate(ctx)
	require.NoError(t, err)
	tokens := func() int {
		n := 0
		for _, r := range srv.Cloud.Requests() {
			if strings.HasSuffix(r.Path, "/tokens") {
				n++
			}
		}
		return n
	}
	require.Equal(t, 1, tokens())

	c := simClient(t, srv, "alice-token", false)
	require.NoError(t, c.Resume(id))
	_, err = c.QuotaEntries(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, tokens(), "the resumed session needs no token request")
	got, err := c.Authenticate(ctx)
	require.NoError(t, err)
	require.Equal(t, id.UserID, got.UserID)

	// A token the cloud no longer takes: the resumed session is dropped and
	// the identity service asked, which refuses it too.
	stale := simClient(t, srv, "not-a-token", false)
	require.NoError(t, stale.Resume(id))
	_, err = stale.QuotaEntries(ctx)
	require.True(t, client.IsUnauthorized(err), "%v", err)
	require.Equal(t, 2, tokens(), "a refused resumed session asks the identity service once")
	require.NotContains(t, err.Error(), "not-a-token")

	// The token request's scheme rule holds for a kept answer too.
	bad := *id
	bad.Endpoints = map[string]string{}
	for k, v := range id.Endpoints {
		bad.Endpoints[k] = strings.Replace(v, "http://", "https://", 1)
	}
	other := simClient(t, srv, "alice-token", false)
	require.ErrorContains(t, other.Resume(&bad), "is not an http URL")
	_, err = other.QuotaEntries(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, tokens(), "a refused kept answer leaves the client to authenticate")
	require.Error(t, other.Resume(nil))
}
