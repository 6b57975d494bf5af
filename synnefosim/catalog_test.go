package synnefosim

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUserCatalogsAnswers(t *testing.T) {
	s := startFile(t, "multi.yaml")
	const path = "/account/v1.0/user_catalogs"
	tests := []struct {
		name   string
		c      call
		status int
		body   string
	}{
		{"uuids and names", call{Method: http.MethodPost, Path: path, Token: "alice-token",
			Body: `{"uuids": ["` + bob + `", "nobody"], "displaynames": ["Alice@Example.org", "ghost@example.org"]}`},
			http.StatusOK, `{"displayname_catalog":{"Alice@Example.org":"` + alice + `"},"uuid_catalog":{"` + bob + `":"bob@example.org"}}`},
		{"both keys optional", call{Method: http.MethodPost, Path: path, Token: "alice-token", Body: `{}`},
			http.StatusOK, `{"displayname_catalog":{},"uuid_catalog":{}}`},
		{"content type not checked", call{Method: http.MethodPost, Path: path, Token: "alice-token",
			Header: map[string]string{"Content-Type": "-"}, Body: `{"uuids": ["` + alice + `"]}`},
			http.StatusOK, `{"displayname_catalog":{},"uuid_catalog":{"` + alice + `":"alice@example.org"}}`},
		{"null displaynames", call{Method: http.MethodPost, Path: path, Token: "alice-token", Body: `{"displaynames": null}`},
			http.StatusBadRequest, fault("badRequest", 400, "Invalid displaynames: None", "")},
		{"not a dictionary", call{Method: http.MethodPost, Path: path, Token: "alice-token", Body: `[1]`},
			http.StatusBadRequest, fault("badRequest", 400, "Request body should be a json formatted dictionary", "")},
		{"no token", call{Method: http.MethodPost, Path: path, Body: `{}`},
			http.StatusUnauthorized, ""},
		{"wrong method", call{Path: path, Token: "alice-token"},
			http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, tt.c)
			require.Equal(t, tt.status, r.Status, r.Body)
			if tt.body != "" {
				require.JSONEq(t, tt.body, r.Body)
			}
		})
	}
}
