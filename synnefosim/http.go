package synnefosim

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/internal/backoff"
)

// faultKeys maps a status to the cloudFault key Synnefo renders for it (docs/synnefo-wire.md#error-bodies).
var faultKeys = map[int]string{
	304: "notModified", 400: "badRequest", 401: "unauthorized", 403: "forbidden",
	404: "itemNotFound", 405: "notAllowed", 409: "conflict", 411: "lengthRequired",
	412: "preconditionFailed", 413: "overLimit", 415: "badMediaType", 416: "rangeNotSatisfiable",
	421: "networkInUse", 422: "unprocessableEntity", 500: "internalServerError",
	501: "notImplemented", 503: "serviceUnavailable",
}

type faultBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

// writeFault writes a cloudFault {key: {code, message, details}}.
func writeFault(w http.ResponseWriter, status int, key, message, details string) {
	if key == "" {
		key = faultKeys[status]
		if key == "" {
			key = "fault"
		}
	}
	writeJSON(w, status, map[string]faultBody{key: {Code: status, Message: message, Details: details}})
}

// writeProxied writes an Astakos error re-rendered by Cyclades or Pithos:
// key "fault", HTTP reason as message, Astakos's body as a string in details.
func writeProxied(w http.ResponseWriter, status int, astakosMessage string) {
	inner, _ := json.Marshal(map[string]faultBody{faultKeys[status]: {Code: status, Message: astakosMessage}})
	writeFault(w, status, "fault", strings.ToUpper(http.StatusText(status)), string(inner))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"internalServerError": {"code": 500, "message": "Unexpected error", "details": ""}}`)
	}
	writeRaw(w, status, "application/json; charset=utf-8", b)
}

func writeRaw(w http.ResponseWriter, status int, contentType string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func notAllowed(w http.ResponseWriter, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeFault(w, http.StatusMethodNotAllowed, "", "Method not allowed", "")
}

func endpointNotFound(w http.ResponseWriter) {
	writeFault(w, http.StatusBadRequest, "", "API endpoint not found", "")
}

// checkJSONContentType applies Synnefo's body rule (docs/synnefo-wire.md#common-behaviour): Content-Type must
// start with application/json. It returns the error message, or "".
func checkJSONContentType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "Missing Content-Type header field"
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Sprintf("Unsupported Content-type: '%s'", ct)
	}
	return ""
}

// statusRecorder remembers the status written, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ServeHTTP serves the cloud's APIs and the /_sim/ control endpoints.
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, "/_sim/") {
		c.serveSim(w, r)
		return
	}
	c.startTime() // tokens are issued when the cloud starts serving
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		c.logRequest(Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status})
	}()
	h := rec.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0")
	h.Set("Vary", "X-Auth-Token")
	r = c.hold(r)
	if c.injectFault(rec, r) {
		return
	}
	c.route(rec, r)
}

// injectFault applies the first fault due for this request. It reports
// whether the response has been written.
func (c *Cloud) injectFault(w http.ResponseWriter, r *http.Request) bool {
	var latency time.Duration
	var fail *Fault
	c.faultMu.Lock()
	for _, f := range c.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if !globMatch(f.Path, r.URL.Path) {
			continue
		}
		f.seen++
		if f.Every > 1 && f.seen%f.Every != 0 {
			continue
		}
		latency += time.Duration(f.Latency)
		if f.Status != 0 && fail == nil {
			ff := f.Fault
			fail = &ff
		}
	}
	c.faultMu.Unlock()
	if latency > 0 {
		if err := backoff.Sleep(r.Context(), latency); err != nil {
			writeFault(w, http.StatusServiceUnavailable, "", "Service Unavailable", "")
			return true
		}
	}
	if fail == nil {
		return false
	}
	switch {
	case fail.Body != "":
		writeRaw(w, fail.Status, "application/json; charset=utf-8", []byte(fail.Body))
	case fail.Status == http.StatusInternalServerError:
		writeFault(w, fail.Status, "", "Unexpected error", "")
	default:
		writeFault(w, fail.Status, "", http.StatusText(fail.Status), "")
	}
	return true
}

// globMatch matches s against a pattern where * is any run of characters
// (slashes included) and ? is one character.
func globMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(pattern, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

// route dispatches on the API prefix.
func (c *Cloud) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case under(p, "/identity/v2.0"):
		c.serveIdentity(w, r, strings.TrimPrefix(p, "/identity/v2.0"))
	case under(p, "/account/v1.0"):
		c.serveAccount(w, r, strings.TrimPrefix(p, "/account/v1.0"))
	case under(p, "/object-store/v1"):
		c.servePithos(w, r, strings.TrimPrefix(p, "/object-store/v1"))
	case under(p, "/compute/v2.0"):
		c.serveCompute(w, r, strings.TrimPrefix(p, "/compute/v2.0"))
	case under(p, "/network/v2.0"):
		c.serveNetwork(w, r, strings.TrimPrefix(p, "/network/v2.0"))
	case under(p, "/volume/v2.0"):
		c.serveVolume(w, r, strings.TrimPrefix(p, "/volume/v2.0"))
	case under(p, "/volume/v2"):
		c.serveVolume(w, r, strings.TrimPrefix(p, "/volume/v2"))
	case under(p, "/identity"), under(p, "/account"), under(p, "/object-store"),
		under(p, "/compute"), under(p, "/network"), under(p, "/volume"):
		// A service prefix with a version this cloud does not serve.
		endpointNotFound(w)
	default:
		writeRaw(w, http.StatusNotFound, "text/html; charset=utf-8", []byte("<h1>Not Found</h1>"))
	}
}

func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// token returns the request's token: the query parameter first, as Synnefo.
func token(r *http.Request) string {
	if t := r.URL.Query().Get("X-Auth-Token"); t != "" {
		return t
	}
	return r.Header.Get("X-Auth-Token")
}

// caller looks up the request's token: no token at all is the same 401
// everywhere; an unknown one (nil user) is each service's own answer.
func (c *Cloud) caller(w http.ResponseWriter, r *http.Request) (*User, bool) {
	t := token(r)
	if t == "" {
		writeFault(w, http.StatusUnauthorized, "", "Access denied. No authentication token", "")
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[t], true
}

// authUser resolves the caller for Cyclades and Pithos: missing token →
// 401 unauthorized; bad token → Astakos's 401 proxied as "fault".
func (c *Cloud) authUser(w http.ResponseWriter, r *http.Request) (*User, bool) {
	u, ok := c.caller(w, r)
	if !ok {
		return nil, false
	}
	if u == nil || u.Inactive || c.expiredLocked(u) {
		msg := "Invalid token"
		switch {
		case u == nil:
		case u.Inactive:
			msg = "User inactive"
		default:
			msg = "Authentication expired"
		}
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusUnauthorized)
			return nil, false
		}
		writeProxied(w, http.StatusUnauthorized, msg)
		return nil, false
	}
	return u, true
}

// authAstakos resolves the caller for the Astakos account API.
func (c *Cloud) authAstakos(w http.ResponseWriter, r *http.Request) (*User, bool) {
	u, ok := c.caller(w, r)
	if !ok {
		return nil, false
	}
	if u == nil {
		writeFault(w, http.StatusUnauthorized, "", "Invalid X-Auth-Token", "")
		return nil, false
	}
	if u.Inactive {
		writeFault(w, http.StatusUnauthorized, "", "User inactive", "")
		return nil, false
	}
	if c.expiredLocked(u) {
		writeFault(w, http.StatusUnauthorized, "", "Authentication expired", "")
		return nil, false
	}
	return u, true
}

// expiredLocked is expired for callers that do not hold c.mu.
func (c *Cloud) expiredLocked(u *User) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expired(u)
}

func (c *Cloud) baseURL(r *http.Request) string {
	if c.BaseURL != "" {
		return strings.TrimSuffix(c.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (c *Cloud) timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000") + "+00:00"
}
