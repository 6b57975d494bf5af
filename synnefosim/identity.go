package synnefosim

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
)

type catalogEndpoint struct {
	VersionID string `json:"versionId"`
	PublicURL string `json:"publicURL"`
	UIURL     string `json:"SNF:uiURL"`
	Region    string `json:"region"`
}

type catalogEntry struct {
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	EndpointsLinks []any             `json:"endpoints_links"`
	Endpoints      []catalogEndpoint `json:"endpoints"`
}

func (c *Cloud) catalog(base string) []catalogEntry {
	entry := func(name, typ, prefix, version string) catalogEntry {
		return catalogEntry{
			Name: name, Type: typ, EndpointsLinks: []any{},
			Endpoints: []catalogEndpoint{{VersionID: version, PublicURL: base + prefix, UIURL: base + "/ui", Region: "default"}},
		}
	}
	return []catalogEntry{
		entry("astakos_identity", "identity", "/identity/v2.0", "v2.0"),
		entry("astakos_account", "account", "/account/v1.0", "v1.0"),
		entry("cyclades_compute", "compute", "/compute/v2.0", "v2.0"),
		// network and volume are versionless in the catalog (docs/synnefo-wire.md#service-catalog).
		entry("cyclades_network", "network", "/network", "v2.0"),
		entry("cyclades_volume", "volume", "/volume", "v2.0"),
		entry("pithos_object-store", "object-store", "/object-store/v1", "v1"),
	}
}

type tokenRequest struct {
	Auth *struct {
		Token *struct {
			ID string `json:"id"`
		} `json:"token"`
		PasswordCredentials *struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"passwordCredentials"`
		TenantName *string `json:"tenantName"`
	} `json:"auth"`
}

func (c *Cloud) serveIdentity(w http.ResponseWriter, r *http.Request, rest string) {
	if rest != "/tokens" && rest != "/tokens/" {
		endpointNotFound(w)
		return
	}
	if r.Method != http.MethodPost {
		notAllowed(w, http.MethodPost)
		return
	}
	base := c.baseURL(r)
	if r.ContentLength <= 0 {
		// Public mode: no Content-Length means no authentication at all.
		writeJSON(w, http.StatusOK, map[string]any{"access": map[string]any{"serviceCatalog": c.catalog(base)}})
		return
	}
	if msg := checkJSONContentType(r); msg != "" {
		writeFault(w, http.StatusBadRequest, "", msg, "")
		return
	}
	var req tokenRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, &req) != nil {
		writeFault(w, http.StatusBadRequest, "", "Could not decode request body as JSON", "")
		return
	}
	var tok, username string
	switch {
	case req.Auth != nil && req.Auth.Token != nil && req.Auth.Token.ID != "":
		tok = req.Auth.Token.ID
	case req.Auth != nil && req.Auth.PasswordCredentials != nil && req.Auth.PasswordCredentials.Password != "":
		tok = req.Auth.PasswordCredentials.Password
		username = req.Auth.PasswordCredentials.Username
	default:
		writeFault(w, http.StatusBadRequest, "", "Malformed request: missing credentials", "")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.tokens[tok]
	switch {
	case u == nil:
		writeFault(w, http.StatusUnauthorized, "", "Invalid token", "")
		return
	case username != "" && username != u.UUID:
		writeFault(w, http.StatusUnauthorized, "", "Invalid credentials", "")
		return
	case u.Inactive:
		writeFault(w, http.StatusUnauthorized, "", "User inactive", "")
		return
	case c.expired(u):
		writeFault(w, http.StatusUnauthorized, "", "Authentication expired", "")
		return
	case req.Auth.TenantName != nil && *req.Auth.TenantName != "" && *req.Auth.TenantName != u.UUID:
		writeFault(w, http.StatusBadRequest, "", "Not conforming tenantName", "")
		return
	}
	projects := []string{}
	for _, id := range c.memberOf[u.UUID] {
		if p := c.projects[id]; p.State == "active" && p.accepted(u.UUID) {
			projects = append(projects, id)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"access": map[string]any{
		"token": map[string]any{
			"id": tok,
			// The token request neither renews nor extends the token.
			"expires": c.timestamp(c.tokenExpiry(u)),
			"tenant":  map[string]any{"id": u.UUID, "name": u.Name},
		},
		"user": map[string]any{
			"id": u.UUID, "name": u.Name,
			"roles":       []map[string]string{{"id": "1", "name": "default"}},
			"roles_links": []any{},
			"projects":    slices.Clone(projects),
		},
		"serviceCatalog": c.catalog(base),
	}})
}
