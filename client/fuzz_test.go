package client

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseError feeds arbitrary error bodies to the parser: it never
// panics and never lets the token through.
func FuzzParseError(f *testing.F) {
	const token = "fuzz-token"
	for _, s := range []string{
		`{"overLimit": {"code": 413, "message": "m", "details": "d"}}`,
		`{"fault": {"code": 404, "message": "NOT FOUND", "details": "{\"itemNotFound\": {}}"}}`,
		`{"overLimit": {"message": "m", "code": 413, "data": {"name": "NoCapacityError"}}}`,
		`<html>fuzz-token</html>`,
		`{"a": {"message": "fuzz-token"}}`,
		``, `{}`, `[]`, `null`, `{"a": 1}`,
	} {
		f.Add(s)
	}
	c, err := New(Config{AuthURL: "http://x/identity/v2.0", Token: token})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		resp := &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
		e := c.parseError(resp, "GET", "/p")
		if e.Status != 400 || e.Method != "GET" || e.Path != "/p" {
			t.Fatalf("lost the request: %+v", e)
		}
		if strings.Contains(e.Error(), token) {
			t.Fatalf("token in %q", e.Error())
		}
	})
}

// FuzzContainerPolicy decodes arbitrary policy objects without panicking.
func FuzzContainerPolicy(f *testing.F) {
	for _, s := range []string{
		`{"quota": "0", "versioning": "auto", "project": "p"}`,
		`{"quota": 0}`, `{"quota": "x"}`, `{"project": null}`, `{"quota": 1e3}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p ContainerPolicy
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		// What decoded re-decodes the same from its canonical form.
		canon, err := json.Marshal(map[string]any{"quota": p.Quota, "versioning": p.Versioning, "project": p.Project})
		if err != nil {
			t.Fatal(err)
		}
		var q ContainerPolicy
		if err := json.NewDecoder(bytes.NewReader(canon)).Decode(&q); err != nil || q != p {
			t.Fatalf("%s → %+v → %s → %+v (%v)", b, p, canon, q, err)
		}
	})
}
