package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/internal/yamlnode"
)

// E-mail notifier defaults and keywords.
const (
	// DefaultEmailTLS upgrades the connection with STARTTLS.
	DefaultEmailTLS = "starttls"
	// DefaultEmailMaxPerHour is how many messages one address gets per
	// hour at most; the rest waits in the outbox.
	DefaultEmailMaxPerHour = 12
	// ToItemOwner and ToProjectOwner are the `to:` keywords for the owner of
	// a moved item and the owners of the projects it left and joined.
	ToItemOwner    = "item_owner"
	ToProjectOwner = "project_owner"
)

// Email is an `email:` notifier: SMTP with STARTTLS or implicit TLS.
type Email struct {
	// Host and Port locate the SMTP server (`smtp: host:port`).
	Host string
	Port int
	// TLS is "starttls" (the default), "tls" (implicit, usually port 465)
	// or "none", which only a loopback host may use.
	TLS string
	// CAFile is the absolute path of a PEM bundle to trust instead of the
	// system roots, or "".
	CAFile string
	// From is the sender address; ReplyTo, when set, where replies go.
	From    string
	ReplyTo string
	// Username and Password log in to the server; both or neither.
	Username string
	Password Secret
	// To lists ToItemOwner, ToProjectOwner and e-mail addresses, in file
	// order, each once.
	To []string
	// MaxPerHour caps the messages one address gets per hour.
	MaxPerHour int
}

// emailKeys are the keys of an `email:` block.
var emailKeys = []string{
	"smtp", "tls", "ca_file", "from", "reply_to", "username",
	"password", "password_file", "password_env", "to", "max_per_hour",
}

func (p *parser) email(m *mapping) *Email {
	e := &Email{TLS: DefaultEmailTLS, MaxPerHour: DefaultEmailMaxPerHour}
	if m.bad {
		return e
	}
	if s, ok := m.str("smtp"); ok {
		host, port, err := net.SplitHostPort(s)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || host == "" || n < 1 || n > 65535 {
			m.errorf(m.node("smtp").Line, "smtp", "must be host:port (such as mail.example.org:587), got %q", s)
		} else {
			e.Host, e.Port = host, n
		}
	} else if m.node("smtp") == nil {
		m.required("smtp")
	}
	if s, ok := m.str("tls"); ok {
		switch s {
		case "starttls", "tls", "none":
			e.TLS = s
		default:
			m.errorf(m.node("tls").Line, "tls", "must be starttls, tls or none, got %q", s)
		}
	}
	if e.TLS == "none" && e.Host != "" && !isLoopback(e.Host) {
		m.errorf(m.keyLine("tls"), "tls", "none sends the password and the messages in the clear: it is allowed only toward a loopback host (localhost, 127.0.0.1, ::1), not %q", e.Host)
	}
	if path, ok := m.filePath("ca_file"); ok {
		e.CAFile = path
		line := m.node("ca_file").Line
		if pem, err := p.opt.ReadFile(path); err != nil {
			p.wrapf(line, err, "%s: %v", m.at("ca_file"), err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			m.errorf(line, "ca_file", "no PEM certificate found in %s", path)
		}
	}
	if s, ok := m.str("from"); ok {
		e.From = s
		if !isAddress(s) {
			m.errorf(m.node("from").Line, "from", "must be an e-mail address such as quotawatch@example.org, got %q", s)
		}
	} else if m.node("from") == nil {
		m.required("from")
	}
	if s, ok := m.str("reply_to"); ok && s != "" {
		e.ReplyTo = s
		if !isAddress(s) {
			m.errorf(m.node("reply_to").Line, "reply_to", "must be an e-mail address, got %q", s)
		}
	}
	e.Username, _ = m.str("username")
	var hasPassword bool
	e.Password, hasPassword = m.secret("password", false)
	switch {
	case e.Username != "" && !hasPassword:
		m.p.errorf(m.keyLine("username"), "%s: one of password, password_file or password_env is required with username", m.path)
	case e.Username == "" && hasPassword:
		k := firstSet(m, "password", "password_file", "password_env")
		m.errorf(m.keyLine(k), k, "needs a username")
	}
	e.To = p.emailTo(m)
	if n, ok := m.int("max_per_hour", DefaultEmailMaxPerHour); ok {
		e.MaxPerHour = n
		if n < 1 {
			m.errorf(m.node("max_per_hour").Line, "max_per_hour", "must be 1 or more, got %d", n)
		}
	}
	return e
}

// emailTo reads the `to:` list: keywords and addresses, each once.
func (p *parser) emailTo(m *mapping) []string {
	v := m.node("to")
	if v == nil {
		m.required("to")
		return nil
	}
	items := m.list("to")
	if v.Kind == yaml.SequenceNode && len(items) == 0 {
		m.errorf(v.Line, "to", "must list at least one recipient: item_owner, project_owner or an e-mail address")
		return nil
	}
	var out []string
	seen := map[string]int{}
	for i, it := range items {
		at := fmt.Sprintf("%s[%d]", m.at("to"), i)
		if it.Kind != yaml.ScalarNode {
			p.errorf(it.Line, "%s: expected a string, got %s", at, yamlnode.Describe(it))
			continue
		}
		s := strings.TrimSpace(it.Value)
		key := strings.ToLower(s)
		switch {
		case s == ToItemOwner || s == ToProjectOwner:
		case !strings.Contains(s, "@"):
			p.errorf(it.Line, "%s: unknown recipient %q: use item_owner, project_owner or an e-mail address", at, s)
			continue
		case !isAddress(s):
			p.errorf(it.Line, "%s: invalid e-mail address %q", at, s)
			continue
		}
		if first, dup := seen[key]; dup {
			p.errorf(it.Line, "%s: %q is listed twice (first on line %d)", at, s, first)
			continue
		}
		seen[key] = it.Line
		out = append(out, s)
	}
	return out
}

// isAddress reports whether s is a bare e-mail address (user@domain).
func isAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s, "@")
}

// isLoopback reports whether host is the loopback interface: localhost, or
// an address in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// emailFields is Email without its methods.
type emailFields Email

// Format prints e as fmt prints a struct, with any verb. Without it an
// *Email inside a Config printed with %s or %q is a bad verb for a pointer,
// which fmt prints bypassing every method, the password's Secret.Format
// included.
func (e Email) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), emailFields(e))
}
