package rules

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/quota"
)

// Defaults of optional rule fields (DESIGN.md §4).
const (
	DefaultCooldown = time.Hour
	DefaultRepeat   = 24 * time.Hour
	DefaultSeverity = quota.Warning
	DefaultSelect   = SelectLargest
	DefaultStrategy = StrategyMostHeadroom
	DefaultMaxItems = 1
)

// Orders in which a reassign action tries items.
const (
	SelectLargest  = "largest"
	SelectSmallest = "smallest"
)

// Strategies for choosing a destination.
const (
	StrategyMostHeadroom = "most_headroom"
	StrategyFirstFit     = "first_fit"
)

// ParseOptions tunes what Parse checks beyond the rules themselves.
type ParseOptions struct {
	// Notifiers are the configured notifier names; nil skips the check of
	// each rule's notify list.
	Notifiers []string
}

// Error is one problem found in a rules document.
type Error struct {
	Line  int    // line of the offending key or value; 0 when unknown
	Rule  string // rule name, or "#N" (1-based position) without a valid name
	Field string // key path inside the rule, such as "when" or "action.reassign.kind"
	Msg   string
}

// Error renders "rule NAME: FIELD: MSG (line N)", leaving out empty parts.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d)", e.Detail(), e.Line)
	}
	return e.Detail()
}

// Detail renders the error without its line, "rule NAME: FIELD: MSG", for
// callers that put the line in front ("FILE:LINE: rule NAME: ...").
func (e *Error) Detail() string {
	var b strings.Builder
	if e.Rule != "" {
		b.WriteString("rule ")
		b.WriteString(e.Rule)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Rule is one compiled rule with its defaults filled in.
type Rule struct {
	// Name is unique among the rules and matches [a-z0-9_-]+.
	Name        string
	Description string
	// Resource is a resource name or a glob on resource names.
	Resource string
	// Projects are globs on project id or name; default ["*"].
	Projects []string
	// When is the firing condition, an expr-lang bool expression.
	When string
	// Clear is the resolving condition; by default "not (WHEN)".
	Clear string
	// For is how long When must hold before the instance fires.
	For time.Duration
	// Cooldown is the least time between moves of one (rule, project).
	Cooldown time.Duration
	// Repeat is how often a still-firing instance is re-notified; 0 = never.
	Repeat time.Duration
	// Severity is info, warning (the default) or critical.
	Severity quota.Severity
	// Notify names the notifiers to tell; empty = all.
	Notify []string
	// DryRun plans and reports without acting, whatever the global setting.
	DryRun bool
	// Action is nil for alert-only rules.
	Action *Reassign
	// Line is the line of the rule in its file.
	Line int

	when, clear         *program // clear nil: not when
	whenLine, clearLine int
	projects            []matcher // compiled Projects
	allProjects         bool      // Projects is just "*": no matching per series
	usesForecast        bool
}

// Reassign is the action of a rule: move items out of the firing project.
type Reassign struct {
	// Kind is the kind of item moved; it carries the rule's resource.
	Kind quota.Kind
	// Match is a glob on item names; "" matches every item.
	Match string
	// Select is SelectLargest or SelectSmallest.
	Select string
	// MaxItems is the most moves per firing (at least 1).
	MaxItems int
	// To are candidate destinations (globs on project id or name) in order.
	To []string
	// Strategy is StrategyMostHeadroom or StrategyFirstFit.
	Strategy string
}

// carries lists the resources each kind of item moves (synnefo-api.md §5).
var carries = map[quota.Kind][]string{
	quota.KindContainer:  {quota.DiskSpace},
	quota.KindServer:     {quota.VM, quota.CPU, quota.RAM, quota.TotalCPU, quota.TotalRAM, quota.Disk},
	quota.KindFloatingIP: {quota.FloatingIP},
	quota.KindNetwork:    {quota.PrivateNetwork},
	quota.KindVolume:     {quota.Disk},
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// ParseBytes parses a YAML document whose top-level `rules:` key holds the
// rules; other top-level keys are left to the config loader. A document
// without `rules:` has no rules.
func ParseBytes(data []byte, opt ParseOptions) ([]*Rule, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	root := resolve(&doc)
	if root == nil || isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Msg: "the document must be a mapping with a rules: key"}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "rules" {
			return Parse(root.Content[i+1], opt)
		}
	}
	return nil, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError turns a YAML syntax error into an *Error with its line.
func yamlError(err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: msg[len(m[0]):]}
	}
	return &Error{Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// Parse compiles the rules of node, the sequence under `rules:`. The error
// is errors.Join of every problem found, each an *Error.
func Parse(node *yaml.Node, opt ParseOptions) ([]*Rule, error) {
	node = resolve(node)
	if node == nil || isNull(node) {
		return nil, nil
	}
	if node.Kind != yaml.SequenceNode {
		return nil, &Error{Line: node.Line, Field: "rules", Msg: "must be a list of rules"}
	}
	p := &parser{opt: opt, names: map[string]int{}}
	var out []*Rule
	for i, n := range node.Content {
		if r := p.rule(i+1, resolve(n)); r != nil {
			out = append(out, r)
		}
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return out, nil
}

type parser struct {
	opt   ParseOptions
	names map[string]int // rule name → line of its first use
	errs  []error
}

// ruleParser collects the problems of one rule.
type ruleParser struct {
	*parser
	label string
}

func (p *ruleParser) errorf(line int, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{Line: line, Rule: p.label, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows documents and aliases to the node that holds the value.
func resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && depth < 100; depth++ {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") ||
		(n.Kind == yaml.DocumentNode && len(n.Content) == 0)
}

// pairs returns the key/value pairs of a mapping, reporting keys that are
// not plain scalars or that repeat.
func (p *ruleParser) pairs(n *yaml.Node, prefix string) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			line := n.Line
			if k != nil {
				line = k.Line
			}
			p.errorf(line, strings.TrimSuffix(prefix, "."), "keys must be plain names")
			continue
		}
		if seen[k.Value] {
			p.errorf(k.Line, prefix+k.Value, "duplicate key")
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

// scalar returns the text of a scalar value; null is "".
func (p *ruleParser) scalar(v *yaml.Node, field string) (string, bool) {
	if v == nil || isNull(v) {
		return "", true
	}
	if v.Kind != yaml.ScalarNode {
		p.errorf(v.Line, field, "must be a single value")
		return "", false
	}
	return v.Value, true
}

// list returns a sequence of scalars (a single scalar counts as one), with
// the line of each element.
func (p *ruleParser) list(v *yaml.Node, field string) ([]string, []int, bool) {
	if v == nil || isNull(v) {
		return nil, nil, true
	}
	if v.Kind == yaml.ScalarNode {
		return []string{v.Value}, []int{v.Line}, true
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, field, "must be a list")
		return nil, nil, false
	}
	var vals []string
	var lines []int
	for _, e := range v.Content {
		e = resolve(e)
		if e == nil || e.Kind != yaml.ScalarNode || isNull(e) {
			line := v.Line
			if e != nil {
				line = e.Line
			}
			p.errorf(line, field, "must be a list of names")
			return nil, nil, false
		}
		vals = append(vals, e.Value)
		lines = append(lines, e.Line)
	}
	return vals, lines, true
}

func (p *ruleParser) duration(v *yaml.Node, field string, def time.Duration) time.Duration {
	s, ok := p.scalar(v, field)
	if !ok {
		return def
	}
	if s == "" {
		p.errorf(v.Line, field, "a duration is required")
		return def
	}
	d, err := ParseDuration(s)
	if err != nil {
		p.errorf(v.Line, field, "%v", err)
		return def
	}
	if d < 0 {
		p.errorf(v.Line, field, "must not be negative")
		return def
	}
	return d
}

func (p *ruleParser) globs(v *yaml.Node, field string, def []string) []string {
	vals, lines, ok := p.list(v, field)
	if !ok {
		return def
	}
	if len(vals) == 0 {
		p.errorf(v.Line, field, "must not be empty")
		return def
	}
	for i, g := range vals {
		if _, err := path.Match(g, ""); err != nil {
			p.errorf(lines[i], field, "bad pattern %q: %v", g, err)
		}
	}
	return vals
}

// rule parses the rule at 1-based position pos.
func (p *parser) rule(pos int, n *yaml.Node) *Rule {
	rp := &ruleParser{parser: p, label: "#" + strconv.Itoa(pos)}
	if n == nil || n.Kind != yaml.MappingNode {
		line := 0
		if n != nil {
			line = n.Line
		}
		rp.errorf(line, "", "must be a mapping")
		return nil
	}
	nerr := len(p.errs)
	r := &Rule{
		Line:     n.Line,
		Projects: []string{"*"},
		Cooldown: DefaultCooldown,
		Repeat:   DefaultRepeat,
		Severity: DefaultSeverity,
	}
	pairs := rp.pairs(n, "")

	// The name labels every other error, so it is read first.
	var nameLine int
	for _, kv := range pairs {
		if kv[0].Value != "name" {
			continue
		}
		nameLine = kv[1].Line
		s, ok := rp.scalar(kv[1], "name")
		switch {
		case !ok:
		case s == "":
			rp.errorf(nameLine, "name", "must not be empty")
		case !nameRE.MatchString(s):
			rp.errorf(nameLine, "name", "%q must match [a-z0-9_-]+", s)
		default:
			r.Name = s
			rp.label = s
		}
	}
	if nameLine == 0 {
		rp.errorf(n.Line, "name", "required")
	}
	if r.Name != "" {
		if first, dup := p.names[r.Name]; dup {
			rp.errorf(nameLine, "name", "duplicate name (first used at line %d)", first)
		} else {
			p.names[r.Name] = nameLine
		}
	}

	var whenNode, clearNode, resNode *yaml.Node
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "name":
		case "description":
			r.Description, _ = rp.scalar(v, k.Value)
		case "resource":
			resNode = v
			r.Resource, _ = rp.scalar(v, k.Value)
		case "projects":
			r.Projects = rp.globs(v, k.Value, r.Projects)
		case "when":
			whenNode = v
			r.whenLine = v.Line
			r.When, _ = rp.scalar(v, k.Value)
		case "clear":
			clearNode = v
			r.clearLine = v.Line
			r.Clear, _ = rp.scalar(v, k.Value)
		case "for":
			r.For = rp.duration(v, k.Value, 0)
		case "cooldown":
			r.Cooldown = rp.duration(v, k.Value, DefaultCooldown)
		case "repeat":
			r.Repeat = rp.duration(v, k.Value, DefaultRepeat)
		case "severity":
			s, ok := rp.scalar(v, k.Value)
			switch sev := quota.Severity(s); {
			case !ok:
			case sev == quota.Info || sev == quota.Warning || sev == quota.Critical:
				r.Severity = sev
			default:
				rp.errorf(v.Line, k.Value, "unknown severity %q (want info, warning or critical)", s)
			}
		case "notify":
			names, lines, _ := rp.list(v, k.Value)
			r.Notify = names
			if p.opt.Notifiers != nil {
				for i, name := range names {
					if !slices.Contains(p.opt.Notifiers, name) {
						rp.errorf(lines[i], k.Value, "unknown notifier %q", name)
					}
				}
			}
		case "dry_run":
			if v.Kind != yaml.ScalarNode || v.Decode(&r.DryRun) != nil {
				rp.errorf(v.Line, k.Value, "must be true or false")
			}
		case "action":
			r.Action = rp.action(v)
		default:
			rp.errorf(k.Line, k.Value, "unknown key")
		}
	}

	// Resource: a name or glob that matches at least one known resource.
	var matched []string
	switch {
	case resNode != nil && resNode.Kind != yaml.ScalarNode:
		// Already reported as not a single value.
	case resNode == nil || r.Resource == "":
		line := n.Line
		if resNode != nil {
			line = resNode.Line
		}
		rp.errorf(line, "resource", "required")
	default:
		if _, err := path.Match(r.Resource, ""); err != nil {
			rp.errorf(resNode.Line, "resource", "bad pattern %q: %v", r.Resource, err)
			break
		}
		for _, known := range quota.KnownResources() {
			if ok, _ := path.Match(r.Resource, known); ok {
				matched = append(matched, known)
			}
		}
		if len(matched) == 0 {
			rp.errorf(resNode.Line, "resource", "%q matches no known resource", r.Resource)
		}
	}

	// Expressions.
	if whenNode != nil && whenNode.Kind != yaml.ScalarNode && !isNull(whenNode) {
		// Already reported as not a single value.
	} else if whenNode == nil || r.When == "" {
		line := n.Line
		if whenNode != nil {
			line = whenNode.Line
		}
		rp.errorf(line, "when", "required")
	} else if prog, err := compile(r.When); err != nil {
		rp.errorf(exprLine(whenNode, err), "when", "%s", err.msg)
	} else {
		r.when = prog
	}
	if clearNode != nil && r.Clear != "" {
		if prog, err := compile(r.Clear); err != nil {
			rp.errorf(exprLine(clearNode, err), "clear", "%s", err.msg)
		} else {
			r.clear = prog
		}
	} else if clearNode != nil && (clearNode.Kind == yaml.ScalarNode || isNull(clearNode)) {
		rp.errorf(clearNode.Line, "clear", "must not be empty (leave it out for: not when)")
	} else if r.When != "" {
		r.Clear = "not (" + r.When + ")"
	}
	r.usesForecast = (r.when != nil && r.when.forecast) || (r.clear != nil && r.clear.forecast)
	r.allProjects = len(r.Projects) == 1 && r.Projects[0] == "*"
	for _, g := range r.Projects {
		r.projects = append(r.projects, newMatcher(g))
	}

	// The action's kind must move the resource the rule watches, or moving
	// it could never relieve the quota.
	if a := r.Action; a != nil && a.Kind.Valid() && len(matched) > 0 {
		var missing []string
		for _, res := range matched {
			if !slices.Contains(carries[a.Kind], res) {
				missing = append(missing, res)
			}
		}
		if len(missing) > 0 {
			msg := fmt.Sprintf("kind %s does not carry %s", a.Kind, strings.Join(missing, ", "))
			if len(matched) > 1 || matched[0] != r.Resource {
				msg += fmt.Sprintf(" (matched by resource %s)", r.Resource)
			}
			rp.errorf(actionKindLine(n), "action.reassign.kind", "%s", msg)
		}
	}
	if len(p.errs) > nerr {
		return nil
	}
	return r
}

// exprLine is the file line of a compile error inside an expression value;
// block scalars (| and >) start on the line after their indicator.
func exprLine(v *yaml.Node, err *compileErr) int {
	line := v.Line
	if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line++
		if v.Style&yaml.LiteralStyle != 0 && err.line > 1 {
			line += err.line - 1
		}
	}
	return line
}

// actionKindLine finds the line of action.reassign.kind for an error that is
// found after the fields have been read.
func actionKindLine(n *yaml.Node) int {
	cur := n
	for _, key := range []string{"action", "reassign", "kind"} {
		var next *yaml.Node
		for i := 0; i+1 < len(cur.Content); i += 2 {
			if resolve(cur.Content[i]).Value == key {
				next = resolve(cur.Content[i+1])
				break
			}
		}
		if next == nil {
			return cur.Line
		}
		cur = next
	}
	return cur.Line
}

// action parses the `action:` mapping.
func (p *ruleParser) action(v *yaml.Node) *Reassign {
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "action", "must be a mapping with reassign:")
		return nil
	}
	var a *Reassign
	for _, kv := range p.pairs(v, "action.") {
		k, val := kv[0], kv[1]
		if k.Value != "reassign" {
			p.errorf(k.Line, "action."+k.Value, "unknown action (want reassign)")
			continue
		}
		a = p.reassign(val)
	}
	if a == nil && len(v.Content) == 0 {
		p.errorf(v.Line, "action", "must be a mapping with reassign:")
	}
	return a
}

func (p *ruleParser) reassign(v *yaml.Node) *Reassign {
	const pre = "action.reassign."
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "action.reassign", "must be a mapping")
		return nil
	}
	a := &Reassign{Select: DefaultSelect, MaxItems: DefaultMaxItems, To: []string{"*"}, Strategy: DefaultStrategy}
	hasKind := false
	for _, kv := range p.pairs(v, pre) {
		k, val := kv[0], kv[1]
		f := pre + k.Value
		switch k.Value {
		case "kind":
			hasKind = true
			s, ok := p.scalar(val, f)
			if !ok {
				break
			}
			a.Kind = quota.Kind(s)
			if !a.Kind.Valid() {
				p.errorf(val.Line, f, "unknown kind %q (want container, server, floating_ip, network or volume)", s)
			}
		case "match":
			s, ok := p.scalar(val, f)
			if !ok {
				break
			}
			if _, err := path.Match(s, ""); err != nil {
				p.errorf(val.Line, f, "bad pattern %q: %v", s, err)
			}
			a.Match = s
		case "select":
			s, ok := p.scalar(val, f)
			if !ok {
				break
			}
			if s != SelectLargest && s != SelectSmallest {
				p.errorf(val.Line, f, "unknown select %q (want largest or smallest)", s)
			}
			a.Select = s
		case "max_items":
			s, ok := p.scalar(val, f)
			if !ok {
				break
			}
			n, err := strconv.Atoi(s)
			switch {
			case err != nil:
				p.errorf(val.Line, f, "must be a whole number, not %q", s)
			case n < 1:
				p.errorf(val.Line, f, "must be at least 1, not %d", n)
			default:
				a.MaxItems = n
			}
		case "to":
			a.To = p.globs(val, f, a.To)
		case "strategy":
			s, ok := p.scalar(val, f)
			if !ok {
				break
			}
			if s != StrategyMostHeadroom && s != StrategyFirstFit {
				p.errorf(val.Line, f, "unknown strategy %q (want most_headroom or first_fit)", s)
			}
			a.Strategy = s
		default:
			p.errorf(k.Line, f, "unknown key")
		}
	}
	if !hasKind {
		p.errorf(v.Line, pre+"kind", "required")
	}
	return a
}
