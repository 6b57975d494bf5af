package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/internal/yamlnode"
)

// The configuration is walked as a yaml.Node tree rather than decoded into
// structs: yaml.v3 does not carry KnownFields into custom unmarshalers, and a
// walk yields the line of every problem and lets all of them be reported at
// once.

// syntax records a YAML syntax error at the line it concerns.
func (p *parser) syntax(err error) {
	line, msg := yamlnode.Syntax(err)
	p.wrapf(line, err, "invalid YAML: %s", msg)
}

// join builds the dotted path of a key for messages.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping is one YAML mapping whose keys have been checked against the
// known ones.
type mapping struct {
	p    *parser
	path string // "" for the top level
	line int    // where the mapping is named, for "x is required"
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
	// bad is set when the node is not a mapping at all (already reported),
	// so callers skip "x is required" problems that would only repeat it.
	bad bool
}

// mapping checks that n is a mapping (null counts as empty) with string keys
// from known, each at most once, and reports every other key. Merge keys
// (<<) are expanded, the mapping's own keys winning over merged ones; a
// problem of a merged key is reported at the line it is written on.
func (p *parser) mapping(n *yaml.Node, path string, line int, known ...string) *mapping {
	m := &mapping{p: p, path: path, line: line, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	// Aliases are followed everywhere, so anchors may be used anywhere.
	n = yamlnode.Resolve(n)
	if yamlnode.IsNull(n) {
		return m
	}
	if n.Kind != yaml.MappingNode {
		what := path
		if what == "" {
			what = "configuration"
		}
		p.errorf(n.Line, "%s: expected a mapping, got %s", what, yamlnode.Describe(n))
		m.bad = true
		return m
	}
	in := func(msg string) string {
		if path == "" {
			return msg
		}
		return path + ": " + msg
	}
	pairs, problems := yamlnode.Pairs(n)
	for _, pr := range problems {
		switch pr.Kind {
		case yamlnode.KeyNotScalar:
			p.errorf(pr.Line(), "%s", in("keys must be strings, got "+yamlnode.Describe(pr.Key)))
		case yamlnode.DuplicateKey:
			p.errorf(pr.Line(), "%s", in(fmt.Sprintf("duplicate key %q (first on line %d)", pr.Key.Value, pr.First.Line)))
		case yamlnode.BadMerge:
			p.errorf(pr.Line(), "%s", in("<< must merge a mapping or a list of mappings, got "+yamlnode.Describe(pr.Merged)))
		}
	}
	for _, kv := range pairs {
		if !slices.Contains(known, kv.Key.Value) {
			p.errorf(kv.Key.Line, "%s", in(fmt.Sprintf("unknown key %q", kv.Key.Value)))
			continue
		}
		m.keys[kv.Key.Value] = kv.Key
		m.vals[kv.Key.Value] = kv.Value
	}
	return m
}

// node returns the value of key, or nil when it is absent or null.
func (m *mapping) node(key string) *yaml.Node {
	v := yamlnode.Resolve(m.vals[key])
	if yamlnode.IsNull(v) {
		return nil
	}
	return v
}

// keyLine returns the line of key, or the mapping's line when it is absent.
func (m *mapping) keyLine(key string) int {
	if k := m.keys[key]; k != nil {
		return k.Line
	}
	return m.line
}

// at is the path of key for messages.
func (m *mapping) at(key string) string { return join(m.path, key) }

func (m *mapping) errorf(line int, key, format string, args ...any) {
	m.p.errorf(line, "%s: %s", m.at(key), fmt.Sprintf(format, args...))
}

// required reports a missing key at the line that names the mapping.
func (m *mapping) required(key string) {
	if m.path == "" {
		m.p.errorf(m.line, "%s is required", key)
		return
	}
	m.p.errorf(m.line, "%s: %s is required", m.path, key)
}

// str returns the text of a scalar key; ok is false when the key is absent,
// null or not a scalar (the last one reported).
func (m *mapping) str(key string) (string, bool) {
	v := m.node(key)
	if v == nil {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		m.errorf(v.Line, key, "expected a string, got %s", yamlnode.Describe(v))
		return "", false
	}
	return v.Value, true
}

// bool returns a boolean key, or def.
func (m *mapping) bool(key string, def bool) bool {
	v := m.node(key)
	if v == nil {
		return def
	}
	var b bool
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
		m.errorf(v.Line, key, "expected true or false, got %s", yamlnode.Describe(v))
		return def
	}
	return b
}

// int returns an integer key, or def; ok is false when it is invalid.
func (m *mapping) int(key string, def int) (int, bool) {
	v := m.node(key)
	if v == nil {
		return def, true
	}
	var i int
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&i) != nil {
		m.errorf(v.Line, key, "expected an integer, got %s", yamlnode.Describe(v))
		return def, false
	}
	return i, true
}

// float returns a number key, or def; ok is false when it is invalid.
func (m *mapping) float(key string, def float64) (float64, bool) {
	v := m.node(key)
	if v == nil {
		return def, true
	}
	var f float64
	tag := v.ShortTag()
	if v.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || v.Decode(&f) != nil ||
		math.IsNaN(f) || math.IsInf(f, 0) {
		m.errorf(v.Line, key, "expected a number, got %s", yamlnode.Describe(v))
		return def, false
	}
	return f, true
}

// duration returns a duration key (Go syntax plus d for days), or def; ok
// is false when it is invalid.
func (m *mapping) duration(key string, def time.Duration) (time.Duration, bool) {
	v := m.node(key)
	if v == nil {
		return def, true
	}
	if v.Kind != yaml.ScalarNode {
		m.errorf(v.Line, key, "expected a duration such as 30s, 5m, 12h or 7d, got %s", yamlnode.Describe(v))
		return def, false
	}
	d, err := parseDuration(v.Value)
	if err != nil {
		m.errorf(v.Line, key, "invalid duration %s: use a number with a unit such as 30s, 5m, 12h or 7d", yamlnode.Describe(v))
		return def, false
	}
	return d, true
}

// list returns the items of a sequence key (aliases followed); nil when the
// key is absent, null or not a sequence (the last one reported).
func (m *mapping) list(key string) []*yaml.Node {
	v := m.node(key)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		m.errorf(v.Line, key, "expected a list, got %s", yamlnode.Describe(v))
		return nil
	}
	items := make([]*yaml.Node, len(v.Content))
	for i, it := range v.Content {
		items[i] = yamlnode.Resolve(it)
	}
	return items
}

// filePath returns a file path key with ${VAR} expanded and made absolute
// against the configuration's folder; ok is false when absent, empty or
// invalid (the last one reported).
func (m *mapping) filePath(key string) (string, bool) {
	raw, ok := m.str(key)
	if !ok || raw == "" {
		return "", false
	}
	p, err := m.p.expand(raw)
	if err != nil {
		m.errorf(m.node(key).Line, key, "%v", err)
		return "", false
	}
	return m.p.abs(p), true
}

// abs anchors a relative path at the configuration's folder.
func (p *parser) abs(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(p.dir, path)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces each ${VAR} in s. Only the braced form is expanded, so a
// lone $ stays literal; an unset or empty variable is an error naming it.
func (p *parser) expand(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+end]
		if !envName.MatchString(name) {
			return "", fmt.Errorf("invalid environment variable name %q in %q", name, s)
		}
		val, set := p.opt.LookupEnv(name)
		if !set && p.opt.NoSecrets && name == "STATE_DIRECTORY" {
			val, set = DefaultStoreDir, true
		}
		if !set {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		if val == "" {
			return "", fmt.Errorf("environment variable %s is empty", name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

// secret reads the secret base from one of its three forms: base (inline),
// base_file (a file, read now and trimmed) or base_env (an environment
// variable). An empty value counts as not set. specified reports whether
// any form was given, even if reading it failed (already reported), so
// callers do not pile a "missing" problem on top.
func (m *mapping) secret(base string, required bool) (s Secret, specified bool) {
	forms := []string{base, base + "_file", base + "_env"}
	var given []string
	for _, k := range forms {
		v := m.node(k)
		if v == nil {
			continue
		}
		if v.Kind != yaml.ScalarNode {
			// describe only names the kind here: a scalar would be the secret.
			m.errorf(v.Line, k, "expected a string, got %s", yamlnode.Describe(v))
			specified = true
			continue
		}
		if v.Value != "" {
			given = append(given, k)
		}
	}
	slices.SortStableFunc(given, func(a, b string) int { return m.keys[a].Line - m.keys[b].Line })
	switch {
	case len(given) > 1:
		k := given[1]
		m.p.errorf(m.keys[k].Line, "%s: only one of %s, %s and %s may be set", m.at(k), forms[0], forms[1], forms[2])
		return "", true
	case len(given) == 0:
		if required && !specified {
			m.p.errorf(m.line, "%s: one of %s, %s or %s is required", m.path, forms[0], forms[1], forms[2])
		}
		return "", specified
	}
	if m.p.opt.NoSecrets {
		return unread, true
	}
	k := given[0]
	v := m.node(k)
	var val string
	switch k {
	case base:
		val = v.Value
		if strings.TrimSpace(val) == "" {
			m.errorf(v.Line, k, "is empty")
			return "", true
		}
	case base + "_file":
		path, err := m.p.expand(v.Value)
		if err != nil {
			m.errorf(v.Line, k, "%v", err)
			return "", true
		}
		path = m.p.abs(path)
		data, err := m.p.opt.ReadFile(path)
		if err != nil {
			if notFound(err) {
				// No file by that name: the value may be the secret itself,
				// pasted into the wrong key, so it is not echoed; the line
				// says where it is.
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				m.p.wrapf(v.Line, err, "%s: no file of that name can be read (%v); the value is not shown in case it is a secret", m.at(k), err)
				return "", true
			}
			m.p.wrapf(v.Line, err, "%s: %v", m.at(k), err)
			return "", true
		}
		val = strings.TrimSpace(string(data))
		if val == "" {
			m.errorf(v.Line, k, "file %s is empty", path)
			return "", true
		}
	case base + "_env":
		if !envName.MatchString(v.Value) {
			// Not echoed: a value here that is no variable name is most
			// likely the secret itself, pasted into the wrong key.
			m.errorf(v.Line, k, "must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), not hold the secret")
			return "", true
		}
		env, set := m.p.opt.LookupEnv(v.Value)
		if !set {
			m.errorf(v.Line, k, "environment variable %s is not set", envLabel(v.Value))
			return "", true
		}
		val = strings.TrimSpace(env)
		if val == "" {
			m.errorf(v.Line, k, "environment variable %s is empty", envLabel(v.Value))
			return "", true
		}
	}
	return Secret(val), true
}

var conventionalEnvName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// envLabel names the variable of an *_env key in a message, unless the name
// does not look like one (ALL_CAPS): then it may well be the secret itself.
func envLabel(name string) string {
	if conventionalEnvName.MatchString(name) {
		return name
	}
	return "(name not shown)"
}

// notFound reports a path that names no file, which for a *_file value may
// mean the value is not a path at all.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENAMETOOLONG) || errors.Is(err, syscall.ENOTDIR)
}
