package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestApprovalKeys(t *testing.T) {
	base := `cloud:
  auth_url: https://accounts.example.org/identity/v2.0
  accounts: [{name: alice, token: t}]
notifiers:
  - name: bot
    slack:
      token: xoxb-1
      channel: "#ops"
      app_token_env: APP_TOKEN
      approvers: [U0BOSS, W0ADMIN]
rules:
  - name: r
    resource: pithos.diskspace
    when: ratio > 0.9
    action: {reassign: {kind: container}}
  - name: s
    resource: pithos.diskspace
    when: ratio > 0.9
    require_approval: true
    action: {reassign: {kind: container}}
`
	env := func(k string) (string, bool) { return map[string]string{"APP_TOKEN": "xapp-1"}[k], k == "APP_TOKEN" }
	cfg, err := Parse("", []byte(base), Options{LookupEnv: env})
	require.NoError(t, err)
	require.False(t, cfg.Rules[0].RequireApproval)
	require.True(t, cfg.Rules[1].RequireApproval)
	require.Equal(t, DefaultApprovalTTL, cfg.ProposalTTL())
	require.Equal(t, "xapp-1", cfg.Notifiers[0].Slack.AppToken.Reveal())
	require.Equal(t, []string{"U0BOSS", "W0ADMIN"}, cfg.Notifiers[0].Slack.Approvers)

	cfg, err = Parse("", []byte("require_approval: true\napproval_ttl: 2h\n"+base), Options{LookupEnv: env})
	require.NoError(t, err)
	require.True(t, cfg.Rules[0].RequireApproval, "the global key applies to every rule")
	require.Equal(t, 2*time.Hour, cfg.ProposalTTL())

	for _, tc := range []struct{ from, to, want string }{
		{"approvers: [U0BOSS, W0ADMIN]", "approvers: [alice]", `"alice" is not a Slack user id`},
		{"approvers: [U0BOSS, W0ADMIN]", "approvers: U0BOSS", "must be a list of Slack user ids"},
		{"require_approval: true\n    action", "require_approval: maybe\n    action", "require_approval: must be true or false"},
	} {
		_, err := Parse("", []byte(strings.Replace(base, tc.from, tc.to, 1)), Options{LookupEnv: env})
		require.ErrorContains(t, err, tc.want)
	}
	_, err = Parse("", []byte("approval_ttl: 0s\n"+base), Options{LookupEnv: env})
	require.ErrorContains(t, err, "approval_ttl: must be positive")
}
