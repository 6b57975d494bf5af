package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOnceListsNamesAsRunDoes runs `once` as a timer would, each a process
// of its own: the first lists the projects' names, the next ones within
// the hour trust the names the store holds and ask the cloud only for the
// token and the quotas.
func TestOnceListsNamesAsRunDoes(t *testing.T) {
	c := newCLI(t)
	require.NoError(t, os.WriteFile(c.cfg, []byte(fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_env: ALICE_TOKEN
store:
  path: %s
http:
  listen: ""
rules:
  - name: full
    resource: pithos.diskspace
    when: ratio > 0.95
`, c.cloud.AuthURL(), filepath.Join(c.dir, "q.db"))), 0o600))
	paths := func() []string {
		var out []string
		for _, r := range c.cloud.Cloud.Requests() {
			out = append(out, r.Method+" "+r.Path)
		}
		c.cloud.Cloud.ResetRequests()
		return out
	}
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	first := paths()
	require.Contains(t, strings.Join(first, "\n"), "/projects", "the first run lists the names")
	for i := range 2 {
		code, _, stderr := c.run("once")
		require.Equal(t, exitOK, code, stderr)
		got := paths()
		require.Len(t, got, 1, "run %d: the quotas only, as a daemon's cycle: %v", i+2, got)
		require.Contains(t, got[0], "/quotas", "run %d: %v", i+2, got)
	}
	// The kept answer is for this endpoint and this token: another token
	// asks the identity service again (and is refused there).
	env := c.env()
	env["ALICE_TOKEN"] = "another-token"
	code, _, _ = runCmd(t, env, "once", "--config", c.cfg)
	require.Equal(t, exitFailure, code)
	got := paths()
	require.NotEmpty(t, got)
	require.Contains(t, got[0], "/tokens", "a changed token is not sent with the kept answer: %v", got)
	// The store keeps a digest, never the token.
	db, err := os.ReadFile(filepath.Join(c.dir, "q.db"))
	require.NoError(t, err)
	require.NotContains(t, string(db), "alice-token")
	code, stdout, stderr := c.run("status")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "CS333 lab assignments", "names are shown from the store")
	t.Log(first)
}
