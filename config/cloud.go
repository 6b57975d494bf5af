package config

import (
	"fmt"
	"slices"
)

// Components are the Astakos components a service token may belong to.
var Components = []string{"astakos", "cyclades", "pithos"}

// ServiceToken is one component's token. A component token reads only its
// component's resources, so the service view is the union of what every
// token given sees. It can also issue commissions (change usage), so it is
// as sensitive as a root password.
type ServiceToken struct {
	// Component is astakos, cyclades or pithos; "" for a token given with
	// the single service_token key, whose component is not known.
	Component string
	Token     Secret
}

// HasServiceView reports whether any service token is configured.
func (c Cloud) HasServiceView() bool { return c.ServiceToken.IsSet() || len(c.ServiceTokens) > 0 }

// Services returns the service tokens: service_tokens, else the single
// service_token as one token of unknown component.
func (c Cloud) Services() []ServiceToken {
	if len(c.ServiceTokens) > 0 {
		return c.ServiceTokens
	}
	if c.ServiceToken.IsSet() {
		return []ServiceToken{{Token: c.ServiceToken}}
	}
	return nil
}

// serviceTokens reads cloud.service_tokens: a list of {component, token |
// token_file | token_env}, one per component. single says whether the
// single service_token key was given too, which is an error.
func (p *parser) serviceTokens(m *mapping, single bool) ([]ServiceToken, bool) {
	if m.node("service_tokens") == nil {
		return nil, false
	}
	if single {
		m.errorf(m.keyLine("service_tokens"), "service_tokens", "only one of service_token (or service_token_file, service_token_env) and service_tokens may be set")
	}
	var out []ServiceToken
	seen := map[string]bool{}
	for i, item := range m.list("service_tokens") {
		path := fmt.Sprintf("%s[%d]", m.at("service_tokens"), i)
		sm := p.mapping(item, path, item.Line, "component", "token", "token_file", "token_env")
		if sm.bad {
			continue
		}
		st := ServiceToken{}
		if c, ok := sm.str("component"); ok {
			switch {
			case !slices.Contains(Components, c):
				sm.errorf(sm.node("component").Line, "component", "unknown component %q (want astakos, cyclades or pithos)", c)
			case seen[c]:
				sm.errorf(sm.node("component").Line, "component", "%s is given twice", c)
			}
			seen[c] = true
			st.Component = c
		} else if sm.node("component") == nil {
			sm.required("component")
		}
		st.Token, _ = sm.secret("token", true)
		out = append(out, st)
	}
	return out, true
}

// checkAdminToken requires cloud.admin_token_file when a rule raises
// limits: only a project admin may submit and approve the applications.
func (p *parser) checkAdminToken(cfg *Config) {
	if cfg.Cloud.AdminToken.IsSet() {
		return
	}
	for _, r := range cfg.Rules {
		if r.Raise != nil {
			p.errorf(r.Line, "rules: %s: raise_limit needs cloud.admin_token_file (a project admin's token)", r.Name)
			return
		}
	}
}
