package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/internal/yamlnode"
)

// nameRE is what account and notifier names look like; they appear in
// metrics labels, store keys and rule selectors.
var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// parse walks the whole document, collecting problems in p; the Config it
// returns is meaningful only when there are none.
func (p *parser) parse(data []byte) *Config {
	cfg := &Config{}
	root := p.document(data)
	if root == nil {
		return cfg
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "configuration: expected a mapping, got %s", yamlnode.Describe(root))
		return cfg
	}
	top := p.mapping(root, "", root.Line,
		"cloud", "schedule", "store", "http", "dry_run", "max_actions_per_cycle", "digest_after", "settle_window", "notifiers", "rules",
		"require_approval", "approval_ttl", "ha")

	if top.node("cloud") == nil {
		// Its own keys would only repeat that it is missing.
		top.required("cloud")
	} else {
		cfg.Cloud = p.cloud(p.mapping(top.vals["cloud"], "cloud", top.keyLine("cloud"),
			"auth_url", "accounts", "service_token", "service_token_file", "service_token_env",
			"timeout", "ca_file", "requests_per_second", "token_warning", "service_tokens",
			"admin_token", "admin_token_file", "admin_token_env"))
	}

	cfg.Schedule = DefaultSchedule
	if s, ok := top.str("schedule"); ok {
		cfg.Schedule = s
		if _, err := ParseSchedule(s); err != nil {
			top.errorf(top.node("schedule").Line, "schedule", "%v", err)
		}
	}

	cfg.Store = p.store(p.mapping(top.vals["store"], "store", top.keyLine("store"), "path", "retention"))
	cfg.HTTP = p.http(p.mapping(top.vals["http"], "http", top.keyLine("http"), "listen", "external_url"))
	cfg.DryRun = top.bool("dry_run", false)
	if n, ok := top.int("max_actions_per_cycle", DefaultMaxActionsPerCycle); ok {
		cfg.MaxActionsPerCycle = n
		if n < 0 {
			top.errorf(top.node("max_actions_per_cycle").Line, "max_actions_per_cycle", "must be 0 or more, got %d", n)
		}
	}
	var ok bool
	if cfg.SettleWindow, ok = top.duration("settle_window", DefaultSettleWindow); ok && cfg.SettleWindow <= 0 {
		top.errorf(top.node("settle_window").Line, "settle_window", "must be positive, got %s", top.node("settle_window").Value)
	}
	cfg.DigestAfter = digestAfter(top, DefaultDigestAfter)
	cfg.Notifiers = p.notifiers(top, cfg.DigestAfter)
	p.rules(cfg, top)
	p.approval(cfg, top)
	p.checkAdminToken(cfg)
	cfg.HA = p.ha(top)
	return cfg
}

func (p *parser) cloud(m *mapping) Cloud {
	c := Cloud{}
	if m.bad {
		return c
	}
	if u, ok := m.str("auth_url"); ok {
		c.AuthURL = u
		if !isHTTPURL(u) {
			m.errorf(m.node("auth_url").Line, "auth_url", "must be an absolute http or https URL, got %q", u)
		}
	} else if m.node("auth_url") == nil {
		m.required("auth_url")
	}
	// Even a service token that fails to load counts here: its own problem
	// is the one to report, not missing accounts.
	var serviceSpecified bool
	c.ServiceToken, serviceSpecified = m.secret("service_token", false)
	c.AdminToken, _ = m.secret("admin_token", false)
	var tokensSpecified bool
	c.ServiceTokens, tokensSpecified = p.serviceTokens(m, serviceSpecified)
	serviceSpecified = serviceSpecified || tokensSpecified

	seen := map[string]int{}
	items := m.list("accounts")
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", m.at("accounts"), i)
		am := p.mapping(item, path, item.Line, "name", "token", "token_file", "token_env")
		if am.bad {
			continue
		}
		a := Account{Name: p.name(am, "account", seen)}
		if a.Name == ServiceAccount {
			am.errorf(am.node("name").Line, "name", "%q is reserved for the service token's view", ServiceAccount)
		}
		a.Token, _ = am.secret("token", true)
		if a.Token.IsSet() && !p.opt.NoSecrets {
			a.TokenFile, _ = am.filePath("token_file")
		}
		c.Accounts = append(c.Accounts, a)
	}
	if len(items) == 0 && !serviceSpecified {
		if v := m.node("accounts"); v == nil || v.Kind == yaml.SequenceNode {
			m.p.errorf(m.keyLine("accounts"), "%s: at least one account is required unless service_token is set", m.path)
		}
	}

	var ok bool
	if c.Timeout, ok = m.duration("timeout", DefaultTimeout); ok && c.Timeout <= 0 {
		m.errorf(m.node("timeout").Line, "timeout", "must be positive, got %s", m.node("timeout").Value)
	}
	if c.RequestsPerSecond, ok = m.float("requests_per_second", DefaultRequestsPerSecond); ok && c.RequestsPerSecond <= 0 {
		m.errorf(m.node("requests_per_second").Line, "requests_per_second", "must be positive, got %s", m.node("requests_per_second").Value)
	}
	if c.TokenWarning, ok = m.duration("token_warning", DefaultTokenWarning); ok && c.TokenWarning <= 0 {
		m.errorf(m.node("token_warning").Line, "token_warning", "must be positive, got %s", m.node("token_warning").Value)
	}
	if path, ok := m.filePath("ca_file"); ok {
		c.CAFile = path
		line := m.node("ca_file").Line
		if pem, err := p.opt.ReadFile(path); err != nil {
			p.wrapf(line, err, "%s: %v", m.at("ca_file"), err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			m.errorf(line, "ca_file", "no PEM certificate found in %s", path)
		}
	}
	return c
}

// name reads and checks the name of a list item; seen maps names to the
// line that first used them.
func (p *parser) name(m *mapping, what string, seen map[string]int) string {
	n, ok := m.str("name")
	if !ok {
		if m.node("name") == nil {
			m.required("name")
		}
		return ""
	}
	line := m.node("name").Line
	switch {
	case !nameRE.MatchString(n):
		m.errorf(line, "name", "%s name %q must match [a-z0-9_-]+", what, n)
	case seen[n] != 0:
		m.errorf(line, "name", "duplicate %s name %q (first on line %d)", what, n, seen[n])
	default:
		seen[n] = line
	}
	return n
}

func (p *parser) store(m *mapping) Store {
	s := Store{Path: filepath.Join(DefaultStoreDir, DefaultStoreFile)}
	if dir, ok := p.opt.LookupEnv("STATE_DIRECTORY"); ok && dir != "" {
		// systemd joins several StateDirectory= entries with ':'.
		dir, _, _ = strings.Cut(dir, ":")
		s.Path = p.abs(filepath.Join(dir, DefaultStoreFile))
	}
	if path, ok := m.filePath("path"); ok {
		s.Path = path
	} else if v := m.node("path"); v != nil && v.Kind == yaml.ScalarNode && v.Value == "" {
		m.errorf(v.Line, "path", "must not be empty")
	}
	var ok bool
	if s.Retention, ok = m.duration("retention", DefaultRetention); ok && s.Retention <= 0 {
		m.errorf(m.node("retention").Line, "retention", "must be positive, got %s", m.node("retention").Value)
	}
	return s
}

// digestAfter reads a digest_after key: at least 1, def when absent.
func digestAfter(m *mapping, def int) int {
	n, ok := m.int("digest_after", def)
	if !ok {
		return def
	}
	if n < 1 {
		m.errorf(m.node("digest_after").Line, "digest_after", "must be 1 or more, got %d", n)
		return def
	}
	return n
}

func (p *parser) http(m *mapping) HTTP {
	h := HTTP{Listen: DefaultListen}
	if u, ok := m.str("external_url"); ok && u != "" {
		if !isHTTPURL(u) {
			m.errorf(m.node("external_url").Line, "external_url", "must be an absolute http or https URL, got %q", u)
		}
		h.ExternalURL = strings.TrimSuffix(u, "/")
	}
	l, ok := m.str("listen")
	if !ok {
		return h
	}
	h.Listen = l
	if l == "" {
		return h
	}
	_, port, err := net.SplitHostPort(l)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		m.errorf(m.node("listen").Line, "listen", "must be host:port (such as 127.0.0.1:9457 or :9457) or \"\" to disable, got %q", l)
	}
	return h
}

func (p *parser) notifiers(top *mapping, digest int) []Notifier {
	var out []Notifier
	seen := map[string]int{}
	for i, item := range top.list("notifiers") {
		path := fmt.Sprintf("notifiers[%d]", i)
		nm := p.mapping(item, path, item.Line, "name", "slack", "email", "digest_after")
		if nm.bad {
			continue
		}
		n := Notifier{Name: p.name(nm, "notifier", seen), DigestAfter: digestAfter(nm, digest)}
		switch {
		case nm.node("slack") != nil && nm.node("email") != nil:
			k := "email"
			if nm.keyLine("slack") > nm.keyLine("email") {
				k = "slack"
			}
			nm.errorf(nm.keyLine(k), k, "set either slack or email, not both")
		case nm.node("email") != nil:
			n.Email = p.email(p.mapping(nm.vals["email"], nm.at("email"), nm.keyLine("email"), emailKeys...))
		case nm.node("slack") == nil:
			nm.required("slack or email")
		default:
			n.Slack = p.slack(p.mapping(nm.vals["slack"], nm.at("slack"), nm.keyLine("slack"),
				"webhook_url", "webhook_url_file", "webhook_url_env", "token", "token_file", "token_env",
				"channel", "api_url", "app_token", "app_token_file", "app_token_env", "approvers"))
		}
		out = append(out, n)
	}
	return out
}

func (p *parser) slack(m *mapping) Slack {
	s := Slack{APIURL: DefaultSlackAPIURL}
	if m.bad {
		return s
	}
	var webhook, token bool
	s.WebhookURL, webhook = m.secret("webhook_url", false)
	s.Token, token = m.secret("token", false)
	channel, hasChannel := m.str("channel")
	hasChannel = hasChannel && channel != ""
	// A channel of the wrong type is reported already; don't also call it missing.
	channelBad := m.node("channel") != nil && m.node("channel").Kind != yaml.ScalarNode
	s.Channel = channel
	p.slackApproval(m, &s)

	switch {
	case webhook && token:
		k := laterKey(m, "token", "webhook_url")
		m.p.errorf(m.keyLine(k), "%s: set either webhook_url (incoming webhook) or token with channel, not both", m.at(k))
	case !webhook && !token:
		m.p.errorf(m.line, "%s: one of webhook_url, webhook_url_file, webhook_url_env (incoming webhook) or token, token_file, token_env (bot token, with channel) is required", m.path)
	case token && !hasChannel && !channelBad:
		m.p.errorf(m.line, "%s: channel is required with a bot token (quote a #name: \"#ops\")", m.path)
	case webhook && hasChannel:
		m.errorf(m.node("channel").Line, "channel", "applies only to a bot token: an incoming webhook posts to its own channel")
	}
	if s.WebhookURL.IsSet() && !s.WebhookURL.Unread() && !isHTTPURL(s.WebhookURL.Reveal()) {
		// The URL is the secret: name the key, never the value.
		k := firstSet(m, "webhook_url", "webhook_url_file", "webhook_url_env")
		m.errorf(m.keyLine(k), k, "the webhook URL is not an absolute http or https URL")
	}
	if u, ok := m.str("api_url"); ok && u != "" {
		if !isHTTPURL(u) {
			m.errorf(m.node("api_url").Line, "api_url", "must be an absolute http or https URL, got %q", u)
		}
		// slack-go appends method names to the base URL as is.
		s.APIURL = strings.TrimSuffix(u, "/") + "/"
	}
	return s
}

// laterKey returns whichever form of secret a or b appears last in the
// mapping, so a conflict is reported where it is introduced.
func laterKey(m *mapping, a, b string) string {
	ka, kb := firstSet(m, a, a+"_file", a+"_env"), firstSet(m, b, b+"_file", b+"_env")
	if m.keyLine(ka) >= m.keyLine(kb) {
		return ka
	}
	return kb
}

// firstSet returns the first of keys present in m, or keys[0].
func firstSet(m *mapping, keys ...string) string {
	for _, k := range keys {
		if m.node(k) != nil {
			return k
		}
	}
	return keys[0]
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
