package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Error is a failure answered by the cloud: any non-2xx response. Synnefo
// renders errors as a one-key JSON object ({"<key>": {"code", "message",
// "details"|"data"}}); other bodies (an HTML 500, an empty 405) keep only
// the status.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Key is the fault name, e.g. "overLimit", "itemNotFound" or "fault"
	// (an Astakos error proxied by Pithos or Cyclades); empty for a body
	// that is not a cloudFault.
	Key string
	// Message is the fault's message, or the HTTP status text.
	Message string
	// Details is the fault's details (a JSON string is unquoted) or data
	// (raw JSON), as the cloud sent it.
	Details string
	// Method and Path name the request; Path carries no query.
	Method, Path string
}

// Error renders the failure in one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("synnefo: ")
	if e.Method != "" || e.Path != "" {
		b.WriteString(e.Method)
		b.WriteByte(' ')
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.Status))
	if e.Key != "" {
		b.WriteByte(' ')
		b.WriteString(e.Key)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Details != "" {
		b.WriteString(" (")
		b.WriteString(truncate(e.Details, 300))
		b.WriteByte(')')
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseError builds an *Error from a non-2xx response, scrubbed of the token.
func (c *Client) parseError(resp *http.Response, method, path string) *Error {
	e := &Error{Status: resp.StatusCode, Method: method, Path: path}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	b = bytes.TrimSpace(b)
	if !parseFault(b, e) {
		e.Message = http.StatusText(resp.StatusCode)
		if len(b) > 0 && b[0] != '<' && !strings.Contains(resp.Header.Get("Content-Type"), "html") {
			// Scrub before truncating, so no part of the token survives.
			e.Details = truncate(c.scrub(string(b)), 512)
		}
	}
	e.Message = c.scrub(e.Message)
	e.Details = c.scrub(e.Details)
	return e
}

// parseFault reads a cloudFault: the only key, and message and details (or
// data) of its value.
func parseFault(b []byte, e *Error) bool {
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || len(m) != 1 {
		return false
	}
	for k, v := range m {
		var f struct {
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal(v, &f) != nil {
			return false
		}
		e.Key = k
		e.Message = f.Message
		e.Details = rawText(f.Details)
		if e.Details == "" {
			e.Details = rawText(f.Data)
		}
	}
	return true
}

// rawText unquotes a JSON string and keeps anything else as JSON text.
func rawText(r json.RawMessage) string {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || string(r) == "null" {
		return ""
	}
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
	}
	return string(r)
}

// notMemberRe matches Cyclades' refusal of a project the owner is not in.
var notMemberRe = regexp.MustCompile(`^User \S+ not in project \S+`)

func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsOverLimit reports whether the cloud refused for lack of quota: any 413,
// whatever its key (overLimit from Cyclades, fault from Pithos through
// Astakos, requestEntityTooLarge from a Pithos container policy).
func IsOverLimit(err error) bool {
	e, ok := asError(err)
	return ok && e.Status == http.StatusRequestEntityTooLarge
}

// IsNotMember reports whether the cloud refused because the item's owner is
// not a member of the destination project: Cyclades answers 400 "User X not
// in project Y", Pithos 404 with a proxied Astakos "fault".
func IsNotMember(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	switch e.Status {
	case http.StatusBadRequest:
		return notMemberRe.MatchString(e.Message)
	case http.StatusNotFound:
		return e.Key == "fault"
	}
	return false
}

// IsNotFound reports whether the item (or project) does not exist: a 404
// that is not a not-a-member refusal.
func IsNotFound(err error) bool {
	e, ok := asError(err)
	return ok && e.Status == http.StatusNotFound && !IsNotMember(err)
}

// IsForbidden reports whether the cloud refused the caller the call (403).
func IsForbidden(err error) bool {
	e, ok := asError(err)
	return ok && e.Status == http.StatusForbidden
}

// requestedRe finds the quantity of a 413's details, e.g. "Limit for
// resource 'CPU' exceeded for your account. Available: 1, Requested: 2".
var requestedRe = regexp.MustCompile(`Requested: (-?\d+)`)

// Requested returns the quantity a 413 says was requested, if it says.
func (e *Error) Requested() (int64, bool) {
	if e.Status != http.StatusRequestEntityTooLarge {
		return 0, false
	}
	m := requestedRe.FindStringSubmatch(e.Details)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	return n, err == nil
}

// IsReleaseFailure reports whether the cloud refused because the source
// project's recorded usage is below what the item releases: a 413 whose
// Requested is negative (Astakos's NoQuantityError). It is quota drift in
// the cloud's accounting, not a full destination, and retrying cannot fix
// it (docs/synnefo-wire.md#release-failures).
func IsReleaseFailure(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	n, ok := e.Requested()
	return ok && n < 0
}

// IsUnauthorized reports whether the token was refused (401), including a
// token request that returned no user.
func IsUnauthorized(err error) bool {
	e, ok := asError(err)
	return ok && e.Status == http.StatusUnauthorized
}
