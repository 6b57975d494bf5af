package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/synnefosim"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

// realityTime matches the times of a plan, which move with the clock.
var realityTime = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?Z?( UTC)?`)

// `plan` on a cloud as it really is: a move or a refusal for each thing
// that decides whether an operator can trust a move, in words.
func TestPlanOnReality(t *testing.T) {
	sc, err := synnefosim.LoadScenario(filepath.Join("..", "..", "synnefosim", "testdata", "reality.yaml"))
	require.NoError(t, err)
	cloud := synnefosim.NewServer(sc)
	t.Cleanup(cloud.Close)
	// The cloud's clock is the command's, so that the token's 72 hours
	// are counted from now.
	cloud.Cloud.Now = time.Now
	dir := t.TempDir()
	for name, tok := range map[string]string{"alice.token": "alice-token", "admin.token": "admin-token"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(tok+"\n"), 0o600))
	}
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_file: alice.token
  admin_token_file: admin.token
store:
  path: %s
http:
  listen: ""
rules:
  - name: vm-rebalance
    resource: cyclades.cpu
    projects: ["system:*"]
    when: ratio >= 1
    clear: ratio < 0.1
    action:
      reassign: {kind: server, to: [lab], max_items: 2}
  - name: ip-rebalance
    resource: cyclades.floating_ip
    projects: ["system:*"]
    when: ratio >= 1
    action:
      reassign: {kind: floating_ip, to: [course]}
  - name: disk-rebalance
    resource: pithos.diskspace
    projects: [drifty]
    when: ratio >= 0.95
    action:
      reassign: {kind: container, to: [lab]}
  - name: frozen-raise
    resource: pithos.diskspace
    projects: [frozen]
    when: project_ratio >= 0.9
    action:
      raise_limit: {level: project, by: 50%%, max: 2TiB, self_approve: true}
`, cloud.AuthURL(), filepath.Join(dir, "q.db"))), 0o600))

	code, stdout, stderr := runCmd(t, nil, "plan", "--config", cfg)
	require.Equal(t, exitOK, code, stderr)
	got := realityTime.ReplaceAllString(stdout, "<time>")
	golden := filepath.Join("testdata", "reality-plan.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), got)

	// What each line must say, in words.
	for _, s := range []string{
		"shared-vm", "staying shared with its project", // kept shared
		"old-flavor-vm", // sized though its flavor is retired
		"alice@example.org's membership in course is leave_requested",
		"the cloud's accounting for drifty is inconsistent (it records less pithos.diskspace than results holds)",
		"token_expiring", "the token expires at",
		"frozen is suspended: approving a raise would reactivate it",
		"alice@example.org (personal)",
	} {
		require.Contains(t, got, s)
	}
	for _, r := range cloud.Cloud.Requests() {
		require.NotContains(t, r.Path, "/action", "plan changes nothing: %+v", r)
		require.NotEqual(t, "PUT", r.Method, "plan changes nothing: %+v", r)
	}
}
