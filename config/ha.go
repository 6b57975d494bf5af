package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/internal/yamlnode"
)

// High-availability defaults and bounds.
const (
	// DefaultEtcdPrefix is where the instances keep their keys in etcd.
	DefaultEtcdPrefix = "/quotawatch/"
	// DefaultLeaseTTL is how long a leader that stops renewing its lease
	// stays leader.
	DefaultLeaseTTL = 15 * time.Second
	// MinLeaseTTL and MaxLeaseTTL bound lease_ttl: below a couple of
	// seconds a busy etcd or a slow network deposes healthy leaders; above
	// a few minutes a dead leader is replaced too late.
	MinLeaseTTL = 2 * time.Second
	MaxLeaseTTL = 5 * time.Minute
)

// HA is the `ha:` section: instances that elect a leader through etcd, only
// the leader acting.
type HA struct {
	Etcd Etcd
}

// haFields is HA without its methods.
type haFields HA

// Format prints h as fmt prints a struct, with any verb. Without it a *HA
// inside a Config printed with %s or %q is a bad verb for a pointer, which
// fmt prints bypassing every method, the key's Secret.Format included.
func (h HA) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), haFields(h))
}

// Etcd is `ha.etcd`: how to reach the etcd cluster and where in it to keep
// the instances' keys. The TLS files are read at load time; their contents
// are kept here so that nothing reads them again.
type Etcd struct {
	// Endpoints are the members' client URLs (http:// or https://, host
	// and port), in file order.
	Endpoints []string
	// CAFile, CertFile and KeyFile are the absolute paths of the PEM files
	// given, or "": a CA bundle to trust instead of the system roots, and a
	// client certificate with its key (both or neither).
	CAFile   string
	CertFile string
	KeyFile  string
	// CAPEM, CertPEM and KeyPEM are their contents; the key is a Secret.
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  Secret
	// Unread is set when TLS files were given but not read, because the
	// configuration was loaded with Options.NoSecrets: their paths and
	// contents are then empty (KeyPEM is a placeholder).
	Unread bool
	// Prefix begins and ends with "/"; every key of the instances is
	// under it.
	Prefix string
	// LeaseTTL is the TTL of the leader's lease, whole seconds.
	LeaseTTL time.Duration
}

// TLS returns the TLS configuration for the endpoints: nil when they are
// http://, else one that trusts CAPEM (or the system roots) and presents
// the client certificate, if any.
func (e Etcd) TLS() (*tls.Config, error) {
	if len(e.Endpoints) == 0 || !strings.HasPrefix(e.Endpoints[0], "https://") {
		return nil, nil
	}
	if e.Unread {
		return nil, errors.New("ha.etcd: the TLS files were not read (the configuration was loaded without secrets)")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(e.CAPEM) > 0 {
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(e.CAPEM) {
			return nil, fmt.Errorf("ha.etcd.ca_file %s: no PEM certificate found", e.CAFile)
		}
	}
	if len(e.CertPEM) > 0 {
		cert, err := tls.X509KeyPair(e.CertPEM, []byte(e.KeyPEM.Reveal()))
		if err != nil {
			return nil, fmt.Errorf("ha.etcd: cert_file %s and key_file %s: %w", e.CertFile, e.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// etcdKeys are the keys of `ha.etcd`.
var etcdKeys = []string{"endpoints", "ca_file", "cert_file", "key_file", "prefix", "lease_ttl"}

// ha reads the `ha:` section; nil when the file has none. A key given
// with no value still asks for high availability, so it needs etcd.
func (p *parser) ha(top *mapping) *HA {
	if top.keys["ha"] == nil {
		return nil
	}
	m := p.mapping(top.vals["ha"], "ha", top.keyLine("ha"), "etcd")
	h := &HA{}
	if m.bad {
		return h
	}
	if m.node("etcd") == nil {
		m.required("etcd")
		return h
	}
	h.Etcd = p.etcd(p.mapping(m.vals["etcd"], m.at("etcd"), m.keyLine("etcd"), etcdKeys...))
	return h
}

func (p *parser) etcd(m *mapping) Etcd {
	e := Etcd{Prefix: DefaultEtcdPrefix, LeaseTTL: DefaultLeaseTTL}
	if m.bad {
		return e
	}
	e.Endpoints = p.etcdEndpoints(m)

	if s, ok := m.str("prefix"); ok {
		e.Prefix = s
		if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/") {
			m.errorf(m.node("prefix").Line, "prefix", "must begin and end with \"/\" (such as /quotawatch/prod/), got %q", s)
		}
	}
	if d, ok := m.duration("lease_ttl", DefaultLeaseTTL); ok {
		e.LeaseTTL = d
		line := m.keyLine("lease_ttl")
		switch {
		case d < MinLeaseTTL || d > MaxLeaseTTL:
			m.errorf(line, "lease_ttl", "must be between 2s and 5m, got %s", m.node("lease_ttl").Value)
		case d%time.Second != 0:
			m.errorf(line, "lease_ttl", "must be whole seconds (etcd counts leases in seconds), got %s", m.node("lease_ttl").Value)
		}
	}

	// An empty value counts as not given, as for cloud.ca_file.
	given := map[string]bool{}
	for _, k := range []string{"ca_file", "cert_file", "key_file"} {
		if v := m.node(k); v != nil && (v.Kind != yaml.ScalarNode || v.Value != "") {
			given[k] = true
		}
	}
	switch {
	case given["cert_file"] && !given["key_file"]:
		m.errorf(m.keyLine("cert_file"), "cert_file", "needs key_file (the client certificate's private key)")
	case given["key_file"] && !given["cert_file"]:
		m.errorf(m.keyLine("key_file"), "key_file", "needs cert_file (the client certificate)")
	}
	if len(given) > 0 && len(e.Endpoints) > 0 && !strings.HasPrefix(e.Endpoints[0], "https://") {
		line := 0
		for k := range given {
			if l := m.keyLine(k); line == 0 || l < line {
				line = l
			}
		}
		m.p.errorf(line, "%s: TLS files given but every endpoint is http://", m.path)
	}
	if len(given) == 0 {
		return e
	}
	if p.opt.NoSecrets {
		e.Unread = true
		if given["key_file"] {
			e.KeyPEM = unread
		}
		return e
	}

	var caOK, certOK, keyOK bool
	if e.CAFile, e.CAPEM, caOK = p.pemFile(m, "ca_file"); caOK && !x509.NewCertPool().AppendCertsFromPEM(e.CAPEM) {
		m.errorf(m.node("ca_file").Line, "ca_file", "no PEM certificate found in %s", e.CAFile)
	}
	e.CertFile, e.CertPEM, certOK = p.pemFile(m, "cert_file")
	var key []byte
	e.KeyFile, key, keyOK = p.pemFile(m, "key_file")
	e.KeyPEM = Secret(key)
	if certOK && keyOK {
		if _, err := tls.X509KeyPair(e.CertPEM, key); err != nil {
			// crypto/tls names what is wrong, never the key's bytes.
			m.p.errorf(m.keyLine("key_file"), "%s: cert_file %s and key_file %s do not make a certificate and key pair: %v", m.path, e.CertFile, e.KeyFile, err)
		}
	}
	return e
}

// etcdEndpoints reads `endpoints`: at least one URL, each http:// or
// https:// with a host and port and nothing else, each once, all of one
// scheme.
func (p *parser) etcdEndpoints(m *mapping) []string {
	v := m.node("endpoints")
	if v == nil {
		m.required("endpoints")
		return nil
	}
	items := m.list("endpoints")
	if v.Kind == yaml.SequenceNode && len(items) == 0 {
		m.errorf(v.Line, "endpoints", "must list at least one etcd member, such as https://etcd-1:2379")
		return nil
	}
	var out []string
	seen := map[string]int{}
	scheme := ""
	for i, it := range items {
		at := fmt.Sprintf("%s[%d]", m.at("endpoints"), i)
		if it.Kind != yaml.ScalarNode {
			p.errorf(it.Line, "%s: expected a string, got %s", at, yamlnode.Describe(it))
			continue
		}
		ep, problem := etcdEndpoint(it.Value)
		if problem != "" {
			p.errorf(it.Line, "%s: %s", at, problem)
			continue
		}
		key := strings.ToLower(ep)
		if first, dup := seen[key]; dup {
			p.errorf(it.Line, "%s: %q is listed twice (first on line %d)", at, ep, first)
			continue
		}
		seen[key] = it.Line
		s, _, _ := strings.Cut(ep, ":")
		if scheme == "" {
			scheme = s
		} else if s != scheme {
			p.errorf(it.Line, "%s: %s:// among %s:// endpoints: the members of one cluster take one scheme", at, s, scheme)
			continue
		}
		out = append(out, ep)
	}
	return out
}

// etcdEndpoint checks one endpoint and returns it without a trailing "/",
// or what is wrong with it.
func etcdEndpoint(s string) (string, string) {
	const want = "must be an http:// or https:// URL with a host and a port and nothing else, such as https://etcd-1:2379"
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "", want + "; the value is not shown in case it holds a password"
		}
		return "", fmt.Sprintf("%s, got %q", want, s)
	}
	if u.User != nil {
		// A password in a URL is a secret: the value is not echoed.
		return "", "must not carry a user name or password (etcd authenticates quotawatch by its client certificate); the value is not shown"
	}
	scheme := strings.ToLower(u.Scheme)
	port, perr := strconv.Atoi(u.Port())
	switch {
	case scheme != "http" && scheme != "https", u.Opaque != "", u.Hostname() == "":
		return "", fmt.Sprintf("%s, got %q", want, s)
	case u.Port() == "":
		return "", fmt.Sprintf("needs a port (etcd's is usually 2379), got %q", s)
	case perr != nil || port < 1 || port > 65535:
		return "", fmt.Sprintf("port must be 1 to 65535, got %q", s)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.ForceQuery, u.Fragment != "":
		return "", fmt.Sprintf("must have no path, query or fragment, got %q", s)
	}
	return scheme + "://" + u.Host, ""
}

// pemFile reads a PEM file key as ca_file is read: ${VAR} expanded,
// relative to the configuration's folder, a regular file of at most
// 1 MiB. ok is false when the key is absent or the file cannot be read
// (reported). The path is not echoed when no file has that name: a value
// that is no path may be the private key itself, pasted into any of the
// three keys.
func (p *parser) pemFile(m *mapping, key string) (path string, data []byte, ok bool) {
	path, ok = m.filePath(key)
	if !ok {
		return "", nil, false
	}
	line := m.node(key).Line
	data, err := p.opt.ReadFile(path)
	switch {
	case err != nil && notFound(err):
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		p.wrapf(line, err, "%s: no file of that name can be read (%v); the value is not shown in case it is a secret", m.at(key), err)
		return path, nil, false
	case err != nil:
		p.wrapf(line, err, "%s: %v", m.at(key), err)
		return path, nil, false
	}
	return path, data, true
}
