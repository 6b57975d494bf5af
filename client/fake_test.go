package client_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
)

const secret = "s3cr3t-T0ken-do-not-leak"

// recorded is one request as the fake cloud saw it.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                string
	ContentLength       int64
	TransferEncoding    []string
}

// fake is a recorder cloud: it answers the token request with a catalog
// pointing at itself and every other request from its routes.
type fake struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	routes map[string]http.HandlerFunc // "METHOD /path"
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.routes["POST /identity/v2.0/tokens"] = func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength <= 0 {
			f.file("catalog.json")(w, r) // public mode
			return
		}
		f.file("token.json")(w, r)
	}
	for path, file := range map[string]string{
		"/account/v1.0/resources":              "resources.json",
		"/account/v1.0/quotas":                 "quotas.json",
		"/account/v1.0/service_project_quotas": "service_project_quotas.json",
		"/account/v1.0/service_quotas":         "service_quotas.json",
		"/account/v1.0/projects":               "projects.json",
		"/account/v1.0/projects/p-lab":         "project.json",
		"/compute/v2.0/servers/detail":         "servers.json",
		"/compute/v2.0/flavors/detail":         "flavors.json",
		"/network/v2.0/floatingips":            "floatingips.json",
		"/network/v2.0/networks":               "networks.json",
		"/volume/v2.0/volumes/detail":          "volumes.json",
	} {
		f.routes["GET "+path] = f.file(file)
	}
	f.routes["GET /object-store/v1/u-alice"] = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("marker") {
		case "":
			f.file("containers-1.json")(w, r)
		case "course container":
			f.file("containers-2.json")(w, r)
		default:
			f.json(200, `[]`)(w, r)
		}
	}
	f.routes["HEAD /object-store/v1/u-alice/course container"] = func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("X-Container-Object-Count", "120")
		h.Set("X-Container-Bytes-Used", "20615843020")
		h.Set("X-Container-Policy-Quota", "0")
		h.Set("X-Container-Policy-Versioning", "auto")
		h.Set("X-Container-Policy-Project", "p%2Dlab")
		h.Set("Last-Modified", "Fri, 02 Dec 2011 08:10:41 GMT")
		w.WriteHeader(http.StatusNoContent)
	}
	f.routes["HEAD /object-store/v1/u-alice"] = func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("X-Account-Container-Count", "3")
		h.Set("X-Account-Bytes-Used", "20615843030")
		h.Set("X-Account-Policy-Quota-U-alice", "21474836480")
		h.Set("X-Account-Policy-Quota-C18088be-16b1-4263-8180-043c54e22903", "9223372036854775807")
		h.Set("X-Account-Policy-Quota", "9223372058329612287") // beyond int64
		h.Set("Last-Modified", "Fri, 02 Dec 2011 08:10:41 GMT")
		w.WriteHeader(http.StatusNoContent)
	}
	f.routes["POST /object-store/v1/u-alice/course container"] = f.json(http.StatusAccepted, "")
	for _, p := range []string{
		"/compute/v2.0/servers/4242/action", "/network/v2.0/floatingips/17/action",
		"/network/v2.0/networks/3/action", "/volume/v2.0/volumes/80/action",
	} {
		f.routes["POST "+p] = f.json(http.StatusOK, "")
	}
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(),
		Body: string(b), ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
	})
	h, ok := f.routes[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(b))
	if !ok {
		f.json(http.StatusBadRequest, `{"badRequest": {"code": 400, "message": "API endpoint not found", "details": ""}}`)(w, r)
		return
	}
	h(w, r)
}

// route replaces the handler of "METHOD /path".
func (f *fake) route(key string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[key] = h
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// file serves a testdata fixture with BASE replaced by the fake's URL.
func (f *fake) file(name string) http.HandlerFunc {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(f.t, err)
	body := strings.ReplaceAll(string(b), "BASE", f.srv.URL)
	return f.json(http.StatusOK, body)
}

func (f *fake) json(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// config is a test configuration against the fake: no waiting between
// retries, a debug log into buf.
func (f *fake) config(buf *bytes.Buffer) client.Config {
	cfg := client.Config{
		AuthURL: f.srv.URL + "/identity/v2.0/",
		Token:   secret,
		Retry:   client.Retry{Attempts: 3, Base: time.Nanosecond, Max: time.Nanosecond},
		Rand:    func(int64) int64 { return 0 },
		// The fixture listing pages by two.
		PageLimit: 2,
	}
	if buf != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

func (f *fake) client(buf *bytes.Buffer) *client.Client {
	f.t.Helper()
	c, err := client.New(f.config(buf))
	require.NoError(f.t, err)
	return c
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
