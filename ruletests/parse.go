package ruletests

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/internal/smallfile"
	"github.com/quotawatch/quotawatch/internal/yamlnode"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
)

// DefaultInterval is the time between polls when a test file gives none:
// the default schedule's.
const DefaultInterval = 5 * time.Minute

// File is a loaded test file.
type File struct {
	// Path is the file's name as given.
	Path string
	// Config is the config or rules file the tests run, relative to the
	// working directory when Path is.
	Config string
	// Interval is the time between polls.
	Interval time.Duration
	Tests    []Test

	rules    []*rules.Rule
	dryRun   bool
	cap      int
	accounts map[string]bool // the configured accounts; nil for a rules file: any
}

// Test is one named test of a file.
type Test struct {
	Name string
	Line int

	series []series
	items  []item
	checks []check
	polls  int // evaluations: the longest series
}

// The fields of an input series, in the order of fieldNames.
const (
	fUsage = iota
	fLimit
	fPending
	fProjectUsage
	fProjectLimit
	fProjectPending
	nFields
)

var fieldNames = [nFields]string{"usage", "limit", "pending", "project_usage", "project_limit", "project_pending"}

// series is what the polls of one (account, project, resource) return.
type series struct {
	line        int
	key         quota.Key
	projectName string
	fields      [nFields][]point
	n           int
}

// at returns the series' quota at poll i; present is false past its end,
// missing when the poll failed.
func (s *series) at(i int) (q quota.Quota, present, missing bool) {
	if i >= s.n {
		return q, false, false
	}
	var v [nFields]int64
	for f := range s.fields {
		if s.fields[f] == nil {
			continue // optional, 0
		}
		p := s.fields[f][i]
		if p.missing {
			return q, true, true
		}
		v[f] = p.v
	}
	return quota.Quota{
		Usage: v[fUsage], Limit: v[fLimit], Pending: v[fPending],
		ProjectUsage: v[fProjectUsage], ProjectLimit: v[fProjectLimit], ProjectPending: v[fProjectPending],
	}, true, false
}

// item is an item the planner may move, with the account it belongs to.
type item struct {
	account string
	quota.Item
}

// check is one `at` of expected_events.
type check struct {
	line   int
	at     time.Duration
	events []expect
}

// Options tunes how a test file's config is loaded.
type Options struct {
	// LookupEnv reads environment variables for the config (${VAR} in
	// paths, *_env secrets); nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Load reads and checks a test file and the config or rules file it names.
// The error joins every problem found, each FILE:LINE: message.
func Load(path string, opt Options) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("read test file: %v", err), Err: err}
	}
	return Parse(path, data, opt)
}

// Parse reads a test file's contents; path names it in problems and
// anchors the config's path.
func Parse(path string, data []byte, opt Options) (*File, error) {
	if opt.LookupEnv == nil {
		opt.LookupEnv = os.LookupEnv
	}
	p := &problems{file: path}
	f := &File{Path: path, Interval: DefaultInterval}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlnode.Syntax(err)
		p.errorf(line, "invalid YAML: %s", msg)
		return nil, p.err()
	}
	root := yamlnode.Resolve(&doc)
	if yamlnode.IsNull(root) {
		p.errorf(1, "test file is empty")
		return nil, p.err()
	}
	top := p.mapping(root, "", 1, "config", "interval", "tests")
	if top.bad {
		return nil, p.err()
	}
	if top.required("config") {
		if c, ok := top.str("config"); ok {
			f.Config = c
			if !filepath.IsAbs(c) {
				f.Config = filepath.Join(filepath.Dir(path), c)
			}
			f.loadConfig(p, top.node("config").Line, opt)
		}
	}
	if v := top.node("interval"); v != nil {
		d, ok := duration(top, "interval")
		if ok && d <= 0 {
			top.errorf(v.Line, "interval", "must be positive, got %s", v.Value)
		} else if ok {
			f.Interval = d
		}
	}
	if top.required("tests") {
		tests := top.list("tests")
		if len(tests) == 0 && top.node("tests").Kind == yaml.SequenceNode {
			top.errorf(top.keyLine("tests"), "tests", "no tests")
		}
		names := map[string]int{}
		for i, n := range tests {
			if t, ok := f.test(p, fmt.Sprintf("tests[%d]", i), n, names); ok {
				f.Tests = append(f.Tests, t)
			}
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// placeholder stands in for a secret (or an environment variable) that
// cannot be read. It is a URL, since a webhook URL must be one.
const placeholder = "https://unused-by-quotawatch-test.invalid/"

// loadConfig loads the rules of the config or rules file. A file with a
// `cloud:` key is a config: loaded as the daemon loads it, except that a
// secret that cannot be read stands in as a placeholder, since a test
// never uses one. Any other file is a rules file (a top-level `rules:`).
func (f *File) loadConfig(p *problems, line int, opt Options) {
	data, err := smallfile.Read(f.Config)
	if err != nil {
		p.errorf(line, "config: %v", err)
		return
	}
	var doc yaml.Node
	isConfig := false
	if yaml.Unmarshal(data, &doc) == nil {
		k, _ := yamlnode.Get(yamlnode.Resolve(&doc), "cloud")
		isConfig = k != nil
	}
	if !isConfig {
		rs, err := rules.ParseBytes(data, rules.ParseOptions{})
		if err != nil {
			p.add(rulesErrors(f.Config, err)...)
			return
		}
		if len(rs) == 0 {
			p.errorf(line, "config: %s has no rules", f.Config)
		}
		f.rules, f.cap = rs, config.DefaultMaxActionsPerCycle
		return
	}
	cfg, err := config.Parse(f.Config, data, config.Options{
		LookupEnv: func(name string) (string, bool) {
			if v, ok := opt.LookupEnv(name); ok && v != "" {
				return v, true
			}
			return placeholder, true
		},
		ReadFile: func(name string) ([]byte, error) {
			if b, err := smallfile.Read(name); err == nil {
				return b, nil
			}
			return []byte(placeholder), nil
		},
	})
	if err != nil {
		p.add(joined(err)...)
		return
	}
	f.rules, f.dryRun, f.cap = cfg.Rules, cfg.DryRun, cfg.MaxActionsPerCycle
	f.accounts = map[string]bool{}
	for _, a := range cfg.Cloud.Accounts {
		f.accounts[a.Name] = true
	}
	if cfg.Cloud.HasServiceView() {
		f.accounts[config.ServiceAccount] = true
	}
}

// joined splits an errors.Join error into its parts.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// rulesErrors turns the problems of a rules file into FILE:LINE ones.
func rulesErrors(file string, err error) []error {
	var out []error
	for _, e := range joined(err) {
		var re *rules.Error
		if errors.As(e, &re) {
			out = append(out, &Error{File: file, Line: re.Line, Msg: re.Detail(), Err: re})
		} else {
			out = append(out, &Error{File: file, Msg: e.Error(), Err: e})
		}
	}
	return out
}

// duration reads a duration key (Go syntax plus d for days).
func duration(m *mapping, key string) (time.Duration, bool) {
	v := m.node(key)
	s, ok := m.str(key)
	if !ok {
		return 0, false
	}
	d, err := rules.ParseDuration(s)
	if err != nil {
		m.errorf(v.Line, key, "invalid duration %s: use a number with a unit such as 30s, 5m, 12h or 7d", yamlnode.Describe(v))
		return 0, false
	}
	return d, true
}

// test reads one test.
func (f *File) test(p *problems, path string, n *yaml.Node, names map[string]int) (Test, bool) {
	before := len(p.list)
	m := p.mapping(n, path, n.Line, "name", "input_series", "items", "expected_events")
	t := Test{Line: n.Line}
	if m.bad {
		return t, false
	}
	if m.required("name") {
		if name, ok := m.str("name"); ok {
			t.Name = name
			if first, dup := names[name]; dup {
				m.errorf(m.node("name").Line, "name", "duplicate test name %q (first on line %d)", name, first)
			} else {
				names[name] = m.node("name").Line
			}
		}
	}
	if m.required("input_series") {
		seen := map[quota.Key]int{}
		projectNames := map[string]*series{}
		list := m.list("input_series")
		if len(list) == 0 && m.node("input_series").Kind == yaml.SequenceNode {
			m.errorf(m.keyLine("input_series"), "input_series", "no series")
		}
		for i, sn := range list {
			s, ok := f.series(p, fmt.Sprintf("%s.input_series[%d]", path, i), sn)
			if !ok {
				continue
			}
			if first, dup := seen[s.key]; dup {
				p.errorf(s.line, "%s.input_series[%d]: a second series of %s (first on line %d)", path, i, s.key, first)
				continue
			}
			seen[s.key] = s.line
			if s.projectName != "" {
				if o := projectNames[s.key.Project]; o != nil && o.projectName != s.projectName {
					p.errorf(s.line, "%s.input_series[%d]: project %s is named %q here and %q on line %d",
						path, i, s.key.Project, s.projectName, o.projectName, o.line)
				} else if o == nil {
					projectNames[s.key.Project] = &s
				}
			}
			t.series = append(t.series, s)
			t.polls = max(t.polls, s.n)
		}
	}
	for i, in := range m.list("items") {
		if it, ok := f.item(p, fmt.Sprintf("%s.items[%d]", path, i), in); ok {
			t.items = append(t.items, it)
		}
	}
	// A test that checks nothing passes whatever the rules do: surely a
	// mistake.
	checks := m.list("expected_events")
	if m.required("expected_events") && len(checks) == 0 && m.node("expected_events").Kind == yaml.SequenceNode {
		m.errorf(m.keyLine("expected_events"), "expected_events", "nothing is checked")
	}
	ats := map[time.Duration]int{}
	for i, cn := range checks {
		c, ok := f.check(p, fmt.Sprintf("%s.expected_events[%d]", path, i), cn, t.polls)
		if !ok {
			continue
		}
		if first, dup := ats[c.at]; dup {
			p.errorf(c.line, "%s.expected_events[%d]: at %s is checked twice (first on line %d)", path, i, formatAt(c.at), first)
			continue
		}
		ats[c.at] = c.line
		t.checks = append(t.checks, c)
	}
	return t, len(p.list) == before
}

// account checks an account name against the config's accounts.
func (f *File) account(m *mapping) (string, bool) {
	if !m.required("account") {
		return "", false
	}
	a, ok := m.str("account")
	if !ok {
		return "", false
	}
	if f.accounts != nil && !f.accounts[a] {
		if a == config.ServiceAccount {
			m.errorf(m.node("account").Line, "account", "%q is the service token's view, and %s sets no cloud.service_token", a, f.Config)
		} else {
			m.errorf(m.node("account").Line, "account", "%q is not in the cloud.accounts of %s", a, f.Config)
		}
		return "", false
	}
	return a, true
}

// series reads one input series.
func (f *File) series(p *problems, path string, n *yaml.Node) (series, bool) {
	before := len(p.list)
	known := append([]string{"account", "project", "project_name", "resource"}, fieldNames[:]...)
	m := p.mapping(n, path, n.Line, known...)
	s := series{line: n.Line}
	if m.bad {
		return s, false
	}
	s.key.Account, _ = f.account(m)
	if m.required("project") {
		s.key.Project, _ = m.str("project")
	}
	s.projectName, _ = m.str("project_name")
	if m.required("resource") {
		s.key.Resource, _ = m.str("resource")
	}
	// The service view has no member level: its usage and limit are the
	// project's.
	raw, _ := m.str("account")
	service := raw == config.ServiceAccount
	first := ""
	for fi, name := range fieldNames {
		member := fi == fUsage || fi == fLimit || fi == fPending
		if service && member {
			if m.has(name) {
				m.errorf(m.keyLine(name), name, "the service view has only project_usage, project_limit and project_pending")
			}
			continue
		}
		optional := fi == fPending || fi == fProjectPending
		if !optional && !m.required(name) {
			continue
		}
		raw, ok := m.str(name)
		if !ok {
			continue
		}
		pts, err := expand(raw)
		if err != nil {
			m.errorf(m.node(name).Line, name, "%v", err)
			continue
		}
		switch {
		case first == "":
			first, s.n = name, len(pts)
		case len(pts) != s.n:
			m.errorf(m.node(name).Line, name, "%d values, but %s has %d: every field has one value per poll",
				len(pts), first, s.n)
			continue
		}
		s.fields[fi] = pts
	}
	return s, len(p.list) == before
}

// item reads one movable item.
func (f *File) item(p *problems, path string, n *yaml.Node) (item, bool) {
	before := len(p.list)
	m := p.mapping(n, path, n.Line, "account", "project", "kind", "name", "id", "quantities", "busy")
	var it item
	if m.bad {
		return it, false
	}
	it.account, _ = f.account(m)
	if m.required("project") {
		it.Project, _ = m.str("project")
	}
	if m.required("kind") {
		if k, ok := m.str("kind"); ok {
			it.Kind = quota.Kind(k)
			if !it.Kind.Valid() {
				m.errorf(m.node("kind").Line, "kind", "unknown kind %q (want container, server, floating_ip, network or volume)", k)
			}
		}
	}
	if m.required("name") {
		it.Name, _ = m.str("name")
	}
	it.ID = it.Name
	if id, ok := m.str("id"); ok {
		it.ID = id
	}
	it.Busy, _ = m.str("busy")
	if m.required("quantities") {
		qm := p.mapping(m.node("quantities"), m.at("quantities"), m.keyLine("quantities"), anyKey)
		it.Quantities = quota.Quantities{}
		for _, r := range slices.Sorted(maps.Keys(qm.vals)) {
			v := yamlnode.Resolve(qm.vals[r])
			if v == nil || v.Kind != yaml.ScalarNode || yamlnode.IsNull(v) {
				qm.errorf(qm.keys[r].Line, r, "expected an amount such as 20GiB, got %s", yamlnode.Describe(v))
				continue
			}
			a, err := quota.ParseAmount(v.Value)
			if err != nil {
				qm.errorf(v.Line, r, "%v", err)
				continue
			}
			it.Quantities[r] = a
		}
		if len(qm.vals) == 0 && !qm.bad {
			m.errorf(m.keyLine("quantities"), "quantities", "no resources")
		}
	}
	return it, len(p.list) == before
}

// anyKey, given as the only known key, lets a mapping take any key.
const anyKey = "\x00any"
