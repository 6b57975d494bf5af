package config

import (
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultApprovalTTL is how long a proposal waits for a decision.
const DefaultApprovalTTL = 24 * time.Hour

// ProposalTTL is how long a proposal waits for a decision: approval_ttl,
// else DefaultApprovalTTL.
func (c *Config) ProposalTTL() time.Duration {
	if c.ApprovalTTL > 0 {
		return c.ApprovalTTL
	}
	return DefaultApprovalTTL
}

// approval reads require_approval and approval_ttl; require_approval
// applies to every rule.
func (p *parser) approval(cfg *Config, top *mapping) {
	cfg.RequireApproval = top.bool("require_approval", false)
	var ok bool
	if cfg.ApprovalTTL, ok = top.duration("approval_ttl", 0); ok && top.node("approval_ttl") != nil && cfg.ApprovalTTL <= 0 {
		top.errorf(top.node("approval_ttl").Line, "approval_ttl", "must be positive, got %s", top.node("approval_ttl").Value)
		cfg.ApprovalTTL = 0
	}
	if cfg.RequireApproval {
		for _, r := range cfg.Rules {
			r.RequireApproval = true
		}
	}
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// slackApproval reads a Slack notifier's app_token and approvers.
func (p *parser) slackApproval(m *mapping, s *Slack) {
	s.AppToken, _ = m.secret("app_token", false)
	n := m.node("approvers")
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		m.errorf(n.Line, "approvers", "must be a list of Slack user ids")
		return
	}
	for _, v := range n.Content {
		if v.Kind != yaml.ScalarNode || !slackUserID.MatchString(v.Value) {
			m.errorf(v.Line, "approvers", "%q is not a Slack user id (U0123ABCD)", v.Value)
			continue
		}
		s.Approvers = append(s.Approvers, v.Value)
	}
	if len(s.Approvers) > 0 && !s.Token.IsSet() {
		m.errorf(n.Line, "approvers", "apply only to a bot token (buttons need the Web API)")
	}
}
