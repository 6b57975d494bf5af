package client_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
)

func TestErrorParsing(t *testing.T) {
	astakosNotFound := `{\"itemNotFound\": {\"code\": 404, \"message\": \"Project p-x not found\", \"details\": \"\"}}`
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        client.Error
		overLimit   bool
		notFound    bool
		notMember   bool
		unauth      bool
	}{
		{
			name: "cyclades overLimit", status: 413,
			body: `{"overLimit": {"code": 413, "message": "Resource Limit Exceeded for your account.", "details": "Limit for resource 'CPU' exceeded for your account. Available: 1, Requested: 2"}}`,
			want: client.Error{Status: 413, Key: "overLimit", Message: "Resource Limit Exceeded for your account.",
				Details: "Limit for resource 'CPU' exceeded for your account. Available: 1, Requested: 2"},
			overLimit: true,
		},
		{
			name: "pithos quota through astakos", status: 413,
			body: `{"fault": {"code": 413, "message": "Resource Limit Exceeded for your account.", "details": "Limit for resource 'Storage space' exceeded for your account. Available: 0, Requested: 1048576"}}`,
			want: client.Error{Status: 413, Key: "fault", Message: "Resource Limit Exceeded for your account.",
				Details: "Limit for resource 'Storage space' exceeded for your account. Available: 0, Requested: 1048576"},
			overLimit: true,
		},
		{
			name: "pithos container policy quota", status: 413,
			body:      `{"requestEntityTooLarge": {"code": 413, "message": "Quota error: Container quota exceeded: limit: 100, usage: 101", "details": ""}}`,
			want:      client.Error{Status: 413, Key: "requestEntityTooLarge", Message: "Quota error: Container quota exceeded: limit: 100, usage: 101"},
			overLimit: true,
		},
		{
			name: "commission overLimit with data", status: 413,
			body: `{"overLimit": {"message": "no capacity", "code": 413, "data": {"name": "NoCapacityError", "limit": 2, "usage": 2}}}`,
			want: client.Error{Status: 413, Key: "overLimit", Message: "no capacity",
				Details: `{"name": "NoCapacityError", "limit": 2, "usage": 2}`},
			overLimit: true,
		},
		{
			name: "cyclades not a member", status: 400,
			body:      `{"badRequest": {"code": 400, "message": "User u-alice not in project p-x", "details": ""}}`,
			want:      client.Error{Status: 400, Key: "badRequest", Message: "User u-alice not in project p-x"},
			notMember: true,
		},
		{
			name: "pithos not a member", status: 404,
			body: `{"fault": {"code": 404, "message": "NOT FOUND", "details": "` + astakosNotFound + `"}}`,
			want: client.Error{Status: 404, Key: "fault", Message: "NOT FOUND",
				Details: `{"itemNotFound": {"code": 404, "message": "Project p-x not found", "details": ""}}`},
			notMember: true,
		},
		{
			name: "item not found", status: 404,
			body:     `{"itemNotFound": {"code": 404, "message": "Server not found.", "details": ""}}`,
			want:     client.Error{Status: 404, Key: "itemNotFound", Message: "Server not found."},
			notFound: true,
		},
		{
			name: "unknown path is a bad request, not a not-found", status: 400,
			body: `{"badRequest": {"code": 400, "message": "API endpoint not found", "details": ""}}`,
			want: client.Error{Status: 400, Key: "badRequest", Message: "API endpoint not found"},
		},
		{
			name: "unauthorized", status: 401,
			body:   `{"unauthorized": {"code": 401, "message": "Invalid X-Auth-Token", "details": ""}}`,
			want:   client.Error{Status: 401, Key: "unauthorized", Message: "Invalid X-Auth-Token"},
			unauth: true,
		},
		{
			name: "proxied unauthorized", status: 401,
			body:   `{"fault": {"code": 401, "message": "UNAUTHORIZED", "details": "{\"unauthorized\": {}}"}}`,
			want:   client.Error{Status: 401, Key: "fault", Message: "UNAUTHORIZED", Details: `{"unauthorized": {}}`},
			unauth: true,
		},
		{
			name: "system volume conflict", status: 409,
			body: `{"conflict": {"code": 409, "message": "Cannot reassign: 80 is a system volume", "details": ""}}`,
			want: client.Error{Status: 409, Key: "conflict", Message: "Cannot reassign: 80 is a system volume"},
		},
		{
			name: "HTML 500 of the volume action", status: 500, contentType: "text/html; charset=utf-8",
			body: "<h1>Server Error (500)</h1>",
			want: client.Error{Status: 500, Message: "Internal Server Error"},
		},
		{
			name: "empty 405", status: 405,
			want: client.Error{Status: 405, Message: "Method Not Allowed"},
		},
		{
			name: "plain text body", status: 502, contentType: "text/plain",
			body: "upstream down",
			want: client.Error{Status: 502, Message: "Bad Gateway", Details: "upstream down"},
		},
		{
			name: "JSON that is not a fault", status: 400,
			body: `{"a": 1, "b": 2}`,
			want: client.Error{Status: 400, Message: "Bad Request", Details: `{"a": 1, "b": 2}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.route("POST /volume/v2.0/volumes/80/action", func(w http.ResponseWriter, _ *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			err := f.client(nil).ReassignVolume(context.Background(), "80", "p-x", false)
			require.Error(t, err)
			var e *client.Error
			require.ErrorAs(t, err, &e)
			want := tt.want
			want.Method, want.Path = "POST", "/volume/v2.0/volumes/80/action"
			require.Equal(t, want, *e)
			require.Equal(t, tt.overLimit, client.IsOverLimit(err), "IsOverLimit")
			require.Equal(t, tt.notFound, client.IsNotFound(err), "IsNotFound")
			require.Equal(t, tt.notMember, client.IsNotMember(err), "IsNotMember")
			require.Equal(t, tt.unauth, client.IsUnauthorized(err), "IsUnauthorized")
			require.Len(t, f.requests(), 2, "a POST is never retried")
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &client.Error{Status: 413, Key: "overLimit", Message: "Resource Limit Exceeded for your account.",
		Details: "Limit for resource 'CPU' exceeded", Method: "POST", Path: "/compute/v2.0/servers/1/action"}
	require.Equal(t, "synnefo: POST /compute/v2.0/servers/1/action: 413 overLimit: Resource Limit Exceeded for your account. (Limit for resource 'CPU' exceeded)", e.Error())
	require.Equal(t, "synnefo: HEAD /x: 404", (&client.Error{Status: 404, Method: "HEAD", Path: "/x"}).Error())
}

func TestHelpersOnOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("boom"), context.Canceled} {
		require.False(t, client.IsOverLimit(err))
		require.False(t, client.IsNotFound(err))
		require.False(t, client.IsNotMember(err))
		require.False(t, client.IsUnauthorized(err))
	}
}

func TestAuthenticationFailures(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{name: "invalid token", status: 401, body: `{"unauthorized": {"code": 401, "message": "Invalid token", "details": ""}}`},
		{name: "public catalog only", status: 200, body: `{"access": {"serviceCatalog": []}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.route("POST /identity/v2.0/tokens", f.json(tt.status, tt.body))
			c := f.client(nil)
			_, err := c.Quotas(context.Background())
			require.Error(t, err)
			require.True(t, client.IsUnauthorized(err), "%v", err)
			require.Len(t, f.requests(), 1, "nothing is called without an identity")
		})
	}
}

func TestMissingEndpoint(t *testing.T) {
	f := newFake(t)
	f.route("POST /identity/v2.0/tokens", f.json(200, `{"access": {"user": {"id": "u-alice"}, "serviceCatalog": []}}`))
	_, err := f.client(nil).Servers(context.Background())
	require.ErrorContains(t, err, `no "compute" endpoint in the service catalog`)
}

func TestErrorTextWithoutRequest(t *testing.T) {
	require.Equal(t, "synnefo: 404 itemNotFound: not listed", (&client.Error{Status: 404, Key: "itemNotFound", Message: "not listed"}).Error())
	f := newFake(t)
	_, err := f.client(nil).Item(context.Background(), "server", "1")
	require.EqualError(t, err, "server 1: synnefo: 404 itemNotFound: not listed")
}

func TestInvalidCatalogEntrySkipped(t *testing.T) {
	f := newFake(t)
	f.route("POST /identity/v2.0/tokens", func(w http.ResponseWriter, r *http.Request) {
		f.json(200, `{"access": {"user": {"id": "u-alice"}, "serviceCatalog": [
			{"type": "image", "endpoints": [{"versionId": "v1.0", "publicURL": "not a url"}]},
			{"type": "account", "endpoints": [{"versionId": "v1.0", "publicURL": "`+f.srv.URL+`/account/v1.0"}]}]}}`)(w, r)
	})
	c := f.client(nil)
	_, err := c.Quotas(context.Background())
	require.NoError(t, err)
	id, err := c.Authenticate(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"account": f.srv.URL + "/account/v1.0"}, id.Endpoints)
}
