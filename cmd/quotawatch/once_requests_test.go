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
		require.Len(t, got, 2, "run %d: the token and the quotas only: %v", i+2, got)
		require.Contains(t, got[1], "/quotas", "run %d: %v", i+2, got)
	}
	code, stdout, stderr := c.run("status")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "CS333 lab assignments", "names are shown from the store")
	t.Log(first)
}
