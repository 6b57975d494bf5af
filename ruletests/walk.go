package ruletests

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/internal/yamlnode"
)

// Error is one problem of a test file, rendered FILE:LINE: message like the
// configuration's problems.
type Error struct {
	File string
	Line int // 0 when the problem has no line (an unreadable file)
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// problems collects every problem of one file while walking its tree.
type problems struct {
	file string
	list []error
}

func (p *problems) errorf(line int, format string, args ...any) {
	p.list = append(p.list, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// add records problems that name their own file and line (the config's).
func (p *problems) add(errs ...error) { p.list = append(p.list, errs...) }

// err returns every problem, this file's in line order, or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	line := func(e error) int {
		var te *Error
		if errors.As(e, &te) && te.File == p.file {
			return te.Line
		}
		return 0
	}
	sort.SliceStable(p.list, func(i, j int) bool { return line(p.list[i]) < line(p.list[j]) })
	return errors.Join(p.list...)
}

// mapping is one YAML mapping whose keys were checked against the known
// ones.
type mapping struct {
	p    *problems
	path string
	line int
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
	bad  bool // not a mapping (reported)
}

// mapping checks that n is a mapping with keys from known, each once, and
// reports every other key.
func (p *problems) mapping(n *yaml.Node, path string, line int, known ...string) *mapping {
	m := &mapping{p: p, path: path, line: line, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	n = yamlnode.Resolve(n)
	if yamlnode.IsNull(n) {
		return m
	}
	if n.Kind != yaml.MappingNode {
		what := path
		if what == "" {
			what = "test file"
		}
		p.errorf(n.Line, "%s: expected a mapping, got %s", what, yamlnode.Describe(n))
		m.bad = true
		return m
	}
	m.line = n.Line
	pairs, probs := yamlnode.Pairs(n)
	for _, pr := range probs {
		switch pr.Kind {
		case yamlnode.KeyNotScalar:
			m.errorf(pr.Line(), "", "keys must be strings, got %s", yamlnode.Describe(pr.Key))
		case yamlnode.DuplicateKey:
			m.errorf(pr.Line(), "", "duplicate key %q (first on line %d)", pr.Key.Value, pr.First.Line)
		case yamlnode.BadMerge:
			m.errorf(pr.Line(), "", "<< must merge a mapping or a list of mappings, got %s", yamlnode.Describe(pr.Merged))
		}
	}
	for _, kv := range pairs {
		if !(len(known) == 1 && known[0] == anyKey) && !slices.Contains(known, kv.Key.Value) {
			m.errorf(kv.Key.Line, "", "unknown key %q", kv.Key.Value)
			continue
		}
		m.keys[kv.Key.Value] = kv.Key
		m.vals[kv.Key.Value] = kv.Value
	}
	return m
}

// at is the path of key for messages.
func (m *mapping) at(key string) string {
	switch {
	case key == "":
		return m.path
	case m.path == "":
		return key
	}
	return m.path + "." + key
}

func (m *mapping) errorf(line int, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if at := m.at(key); at != "" {
		msg = at + ": " + msg
	}
	m.p.errorf(line, "%s", msg)
}

// node returns the value of key, nil when absent or null.
func (m *mapping) node(key string) *yaml.Node {
	v := yamlnode.Resolve(m.vals[key])
	if yamlnode.IsNull(v) {
		return nil
	}
	return v
}

// has reports whether key is given (even as null).
func (m *mapping) has(key string) bool { return m.keys[key] != nil }

// keyLine returns the line of key, or the mapping's line when it is absent.
func (m *mapping) keyLine(key string) int {
	if k := m.keys[key]; k != nil {
		return k.Line
	}
	return m.line
}

// required reports a missing key; it returns false when key is missing.
func (m *mapping) required(key string) bool {
	if m.node(key) != nil || m.bad {
		return m.node(key) != nil
	}
	if m.path == "" {
		m.p.errorf(m.line, "%s is required", key)
	} else {
		m.p.errorf(m.line, "%s: %s is required", m.path, key)
	}
	return false
}

// str returns a scalar key's text; ok is false when absent, null or not a
// scalar (the last one reported).
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

// list returns the items of a sequence key; nil when absent, null or not a
// sequence (the last one reported).
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
