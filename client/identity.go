package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Identity is what the token request told about the token's user and the
// cloud. For a service client only Endpoints is set.
type Identity struct {
	// UserID is the user's UUID: the Pithos account name and the id of the
	// user's system project.
	UserID   string
	UserName string
	// DefaultProject is where new resources go (access.token.tenant.id); it
	// is not the user's UUID.
	DefaultProject string
	// Projects are the active projects the user is an accepted member of.
	Projects []string
	// Endpoints maps a catalog service type to its base URL, versioned.
	Endpoints map[string]string
	// Expires is when the token expires (zero if the cloud did not say).
	Expires time.Time
}

func (id *Identity) clone() *Identity {
	c := *id
	c.Projects = slices.Clone(id.Projects)
	c.Endpoints = maps.Clone(id.Endpoints)
	return &c
}

// tokenResponse is the part of POST tokens we use. The token itself is
// deliberately not decoded.
type tokenResponse struct {
	Access struct {
		Token struct {
			Expires string `json:"expires"`
			Tenant  struct {
				ID string `json:"id"`
			} `json:"tenant"`
		} `json:"token"`
		User struct {
			ID       string   `json:"id"`
			Name     string   `json:"name"`
			Projects []string `json:"projects"`
		} `json:"user"`
		ServiceCatalog []struct {
			Type      string `json:"type"`
			Endpoints []struct {
				VersionID string `json:"versionId"`
				PublicURL string `json:"publicURL"`
			} `json:"endpoints"`
		} `json:"serviceCatalog"`
	} `json:"access"`
}

// versionRe matches a URL that already ends in its API version.
var versionRe = regexp.MustCompile(`/v\d+(\.\d+)?$`)

// Authenticate sends the token request once and caches the result; every
// other call calls it lazily. A user client sends its token in the body and
// requires a user in the answer; a service client sends an empty body and
// gets the public catalog.
func (c *Client) Authenticate(ctx context.Context) (*Identity, error) {
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	return s.ident.clone(), nil
}

// Resume makes id, which an earlier token request with the same token
// answered (a process before this one, whose store kept it), the client's
// session, so that its first call needs no token request. Its endpoints
// are held to the token request's rule: one whose scheme is not auth_url's
// is refused. A call that the cloud answers 401 (an expired or revoked
// token) drops the resumed session and asks the identity service again. It
// does nothing when the client already has a session.
func (c *Client) Resume(id *Identity) error {
	if id == nil || (!c.service && id.UserID == "") {
		return errors.New("resume: no identity")
	}
	auth, err := url.Parse(c.authURL)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	bases := make(map[string]*url.URL, len(id.Endpoints))
	for typ, base := range id.Endpoints {
		bu, err := url.Parse(base)
		if err != nil || bu.Host == "" || !strings.EqualFold(bu.Scheme, auth.Scheme) {
			return fmt.Errorf("resume: the %q endpoint is not an %s URL", typ, auth.Scheme)
		}
		bases[typ] = bu
	}
	c.authSem <- struct{}{}
	defer func() { <-c.authSem }()
	if c.sess == nil {
		c.sess = &session{ident: id.clone(), bases: bases, refused: map[string]string{}, resumed: true}
	}
	return nil
}

// dropResumed forgets a resumed session that the cloud refused, so that
// the next call authenticates; it reports whether there was one.
func (c *Client) dropResumed(ctx context.Context) bool {
	select {
	case c.authSem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-c.authSem }()
	if c.sess == nil || !c.sess.resumed {
		return false
	}
	c.sess = nil
	return true
}

// session returns the current session, authenticating if there is none.
// A 401 to the token request renews the token once (see Config.TokenSource).
func (c *Client) session(ctx context.Context) (*session, error) {
	select {
	case c.authSem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("authenticate: %w", ctx.Err())
	}
	defer func() { <-c.authSem }()
	if c.sess != nil {
		return c.sess, nil
	}
	used := c.currentToken()
	s, err := c.authenticate(ctx, used)
	if err != nil && !c.service && c.tokenSource != nil && IsUnauthorized(err) {
		renewed, rerr := c.renewLocked(used)
		switch {
		case rerr != nil:
			return nil, &scrubbedError{msg: c.scrub(fmt.Sprintf("%v (%v)", err, rerr)), err: err}
		case renewed:
			c.log.LogAttrs(ctx, slog.LevelInfo, "synnefo token refused; authenticating once more with the token read again")
			s, err = c.authenticate(ctx, c.currentToken())
		}
	}
	if err != nil {
		return nil, err
	}
	c.sess = s
	return s, nil
}

// authenticate sends the token request with token. Callers hold authSem.
func (c *Client) authenticate(ctx context.Context, token string) (*session, error) {
	u, err := url.Parse(c.authURL + "/tokens")
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	rq := &request{service: ServiceIdentity, method: http.MethodPost, url: u, noToken: true}
	if !c.service {
		body, err := json.Marshal(map[string]any{"auth": map[string]any{"token": map[string]string{"id": token}}})
		if err != nil {
			return nil, fmt.Errorf("authenticate: encoding request: %w", err)
		}
		rq.body = body
	}
	var tr tokenResponse
	err = c.send(ctx, rq, func(resp *http.Response) error {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			return fmt.Errorf("decoding token response: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	a := tr.Access
	if !c.service && a.User.ID == "" {
		// Public mode: the cloud ignored the credentials (docs/synnefo-wire.md#token-request).
		return nil, fmt.Errorf("authenticate: %w", &Error{
			Status: http.StatusUnauthorized, Key: "unauthorized",
			Message: "token request returned no user (public catalog only)",
			Method:  http.MethodPost, Path: u.EscapedPath(),
		})
	}
	id := &Identity{
		UserID:         a.User.ID,
		UserName:       a.User.Name,
		DefaultProject: a.Token.Tenant.ID,
		Projects:       a.User.Projects,
		Endpoints:      make(map[string]string, len(a.ServiceCatalog)),
	}
	if a.Token.Expires != "" {
		// The token's real expiry (docs/synnefo-wire.md#token-lifetime); an
		// unreadable one is left zero rather than failing authentication.
		if t, err := time.Parse(time.RFC3339Nano, a.Token.Expires); err == nil {
			id.Expires = t
		} else {
			c.log.LogAttrs(ctx, slog.LevelWarn, "synnefo token expiry unreadable", slog.String("expires", a.Token.Expires))
		}
	}
	bases := make(map[string]*url.URL, len(a.ServiceCatalog))
	refused := map[string]string{}
	for _, s := range a.ServiceCatalog {
		if _, dup := id.Endpoints[s.Type]; dup || s.Type == "" || len(s.Endpoints) == 0 {
			continue
		}
		ep := s.Endpoints[0]
		base := strings.TrimRight(ep.PublicURL, "/")
		if !versionRe.MatchString(base) && ep.VersionID != "" {
			base += "/" + ep.VersionID
		}
		bu, err := url.Parse(base)
		if err != nil || bu.Host == "" {
			// A broken entry for a service we may never call must not
			// fail authentication; calls to it report it missing.
			c.log.LogAttrs(ctx, slog.LevelWarn, "synnefo catalog entry with an invalid URL skipped", slog.String("type", s.Type))
			continue
		}
		// The token goes only where the identity service sent it over the
		// same scheme: a catalog must not lead an https token to http.
		if !strings.EqualFold(bu.Scheme, u.Scheme) {
			refused[s.Type] = fmt.Sprintf("the catalog's %q endpoint uses %s while auth_url uses %s; the token is not sent there", s.Type, bu.Scheme, u.Scheme)
			c.log.LogAttrs(ctx, slog.LevelWarn, "synnefo catalog entry refused: its scheme differs from auth_url's",
				slog.String("type", s.Type), slog.String("scheme", bu.Scheme), slog.String("auth_scheme", u.Scheme))
			continue
		}
		if !strings.EqualFold(bu.Host, u.Host) {
			// Real clouds serve services from other hosts; allowed, but
			// said once so an operator sees where the token goes.
			c.log.LogAttrs(ctx, slog.LevelInfo, "synnefo catalog endpoint on another host than auth_url",
				slog.String("type", s.Type), slog.String("host", bu.Host), slog.String("auth_host", u.Host))
		}
		id.Endpoints[s.Type] = base
		bases[s.Type] = bu
	}
	return &session{ident: id, bases: bases, refused: refused}, nil
}

// endpoint builds {service}/seg/seg... with each segment path-escaped.
func (c *Client) endpoint(ctx context.Context, service string, segs ...string) (*url.URL, *Identity, error) {
	s, err := c.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	id := s.ident.clone()
	// A session is never changed once made, so reading it is safe.
	base, ok := s.bases[service]
	if !ok {
		if why, bad := s.refused[service]; bad {
			return nil, nil, errors.New(why)
		}
		return nil, nil, fmt.Errorf("no %q endpoint in the service catalog", service)
	}
	raw := base.EscapedPath()
	for _, s := range segs {
		raw += "/" + url.PathEscape(s)
	}
	u := *base
	p, err := url.PathUnescape(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("building %s URL: %w", service, err)
	}
	u.Path, u.RawPath = p, raw
	return &u, id, nil
}

// errNoUser is returned by calls that act as the token's user when the
// client holds a service token.
var errNoUser = errors.New("this call needs a user token, not a service token")

// errNoProject refuses a reassign without a destination: Cyclades would
// answer with a misleading not-a-member error and Pithos with a 404.
var errNoProject = errors.New("empty destination project")

// user authenticates and requires a user identity.
func (c *Client) user(ctx context.Context) (*Identity, error) {
	id, err := c.Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if id.UserID == "" {
		return nil, errNoUser
	}
	return id, nil
}
