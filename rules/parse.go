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

	"github.com/quotawatch/quotawatch/internal/yamlnode"
	"github.com/quotawatch/quotawatch/quota"
)

// Defaults of optional rule fields (docs/design.md#rule-keys-and-defaults).
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
	// RequireApproval turns the rule's moves into proposals that wait for
	// a person's approval.
	RequireApproval bool
	// Action is nil for alert-only rules and for rules that raise limits.
	Action *Reassign
	// Raise is the action raise_limit: at most one of Action and Raise is
	// set.
	Raise *RaiseLimit
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
	// KeepShared sends the item's current sharing with the reassign (the
	// default): a cross-project reassign without it unshares the item, and
	// the members who used it lose it. false unshares on purpose.
	KeepShared bool
}

// carries lists the resources each kind of item moves (docs/quota.md#what-an-item-carries).
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
	root := yamlnode.Resolve(&doc)
	if yamlnode.IsNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Msg: "the document must be a mapping with a rules: key"}
	}
	if _, rules := yamlnode.Get(root, "rules"); rules != nil {
		return Parse(rules, opt)
	}
	return nil, nil
}

// yamlError turns a YAML syntax error into an *Error with its line.
func yamlError(err error) error {
	line, msg := yamlnode.Syntax(err)
	return &Error{Line: line, Msg: msg}
}

// Parse compiles the rules of node, the sequence under `rules:`. The error
// is errors.Join of every problem found, each an *Error.
func Parse(node *yaml.Node, opt ParseOptions) ([]*Rule, error) {
	node = yamlnode.Resolve(node)
	if yamlnode.IsNull(node) {
		return nil, nil
	}
	if node.Kind != yaml.SequenceNode {
		return nil, &Error{Line: node.Line, Field: "rules", Msg: "must be a list of rules"}
	}
	p := &parser{opt: opt, names: map[string]int{}}
	var out []*Rule
	for i, n := range node.Content {
		if r := p.rule(i+1, yamlnode.Resolve(n)); r != nil {
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

// pairs returns the key/value pairs of a mapping with merge keys (<<)
// expanded, reporting keys that are not plain scalars or that repeat, and
// merge keys that merge something other than mappings.
func (p *ruleParser) pairs(n *yaml.Node, prefix string) []yamlnode.Pair {
	pairs, problems := yamlnode.Pairs(n)
	for _, pr := range problems {
		switch pr.Kind {
		case yamlnode.KeyNotScalar:
			p.errorf(pr.Line(), strings.TrimSuffix(prefix, "."), "keys must be plain names")
		case yamlnode.DuplicateKey:
			p.errorf(pr.Line(), prefix+pr.Key.Value, "duplicate key")
		case yamlnode.BadMerge:
			p.errorf(pr.Line(), prefix+"<<", "must merge a mapping or a list of mappings")
		}
	}
	return pairs
}

// scalar returns the text of a scalar value; null is "".
func (p *ruleParser) scalar(v *yaml.Node, field string) (string, bool) {
	if yamlnode.IsNull(v) {
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
	if yamlnode.IsNull(v) {
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
		e = yamlnode.Resolve(e)
		if e == nil || e.Kind != yaml.ScalarNode || yamlnode.IsNull(e) {
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

// ruleDraft is one rule being read: each key fills in r, and the checks
// that involve several keys run once every key is read.
type ruleDraft struct {
	*ruleParser
	n *yaml.Node // the rule's mapping
	r *Rule
	// The nodes of the keys that are checked after reading, nil when absent.
	resNode, whenNode, clearNode *yaml.Node
	matched                      []string // known resources that Resource matches
}

// ruleKeys reads each key of a rule into the draft.
var ruleKeys = map[string]func(*ruleDraft, *yaml.Node){
	"name":             func(*ruleDraft, *yaml.Node) {}, // read before the others, by readName
	"description":      (*ruleDraft).readDescription,
	"resource":         (*ruleDraft).readResource,
	"projects":         (*ruleDraft).readProjects,
	"when":             (*ruleDraft).readWhen,
	"clear":            (*ruleDraft).readClear,
	"for":              (*ruleDraft).readFor,
	"cooldown":         (*ruleDraft).readCooldown,
	"repeat":           (*ruleDraft).readRepeat,
	"severity":         (*ruleDraft).readSeverity,
	"notify":           (*ruleDraft).readNotify,
	"dry_run":          (*ruleDraft).readDryRun,
	"require_approval": (*ruleDraft).readRequireApproval,
	"action":           (*ruleDraft).readAction,
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
	d := &ruleDraft{ruleParser: rp, n: n, r: &Rule{
		Line:     n.Line,
		Projects: []string{"*"},
		Cooldown: DefaultCooldown,
		Repeat:   DefaultRepeat,
		Severity: DefaultSeverity,
	}}
	pairs := rp.pairs(n, "")
	// The name labels every other error, so it is read first.
	d.readName(pairs)
	for _, kv := range pairs {
		read, ok := ruleKeys[kv.Key.Value]
		if !ok {
			rp.errorf(kv.Key.Line, kv.Key.Value, "unknown key")
			continue
		}
		read(d, kv.Value)
	}
	d.checkResource()
	d.checkWhen()
	d.checkClear()
	d.compileProjects()
	d.checkCarries()
	if len(p.errs) > nerr {
		return nil
	}
	return d.r
}

// readName reads the name, which must be present, valid and unused.
func (d *ruleDraft) readName(pairs []yamlnode.Pair) {
	var nameLine int
	for _, kv := range pairs {
		if kv.Key.Value != "name" {
			continue
		}
		nameLine = kv.Value.Line
		s, ok := d.scalar(kv.Value, "name")
		switch {
		case !ok:
		case s == "":
			d.errorf(nameLine, "name", "must not be empty")
		case !nameRE.MatchString(s):
			d.errorf(nameLine, "name", "%q must match [a-z0-9_-]+", s)
		default:
			d.r.Name = s
			d.label = s
		}
	}
	if nameLine == 0 {
		d.errorf(d.n.Line, "name", "required")
	}
	if d.r.Name == "" {
		return
	}
	if first, dup := d.names[d.r.Name]; dup {
		d.errorf(nameLine, "name", "duplicate name (first used at line %d)", first)
	} else {
		d.names[d.r.Name] = nameLine
	}
}

func (d *ruleDraft) readDescription(v *yaml.Node) {
	d.r.Description, _ = d.scalar(v, "description")
}

func (d *ruleDraft) readResource(v *yaml.Node) {
	d.resNode = v
	d.r.Resource, _ = d.scalar(v, "resource")
}

func (d *ruleDraft) readProjects(v *yaml.Node) {
	d.r.Projects = d.globs(v, "projects", d.r.Projects)
}

func (d *ruleDraft) readWhen(v *yaml.Node) {
	d.whenNode = v
	d.r.whenLine = v.Line
	d.r.When, _ = d.scalar(v, "when")
}

func (d *ruleDraft) readClear(v *yaml.Node) {
	d.clearNode = v
	d.r.clearLine = v.Line
	d.r.Clear, _ = d.scalar(v, "clear")
}

func (d *ruleDraft) readFor(v *yaml.Node) { d.r.For = d.duration(v, "for", 0) }

func (d *ruleDraft) readCooldown(v *yaml.Node) {
	d.r.Cooldown = d.duration(v, "cooldown", DefaultCooldown)
}

func (d *ruleDraft) readRepeat(v *yaml.Node) {
	d.r.Repeat = d.duration(v, "repeat", DefaultRepeat)
}

func (d *ruleDraft) readSeverity(v *yaml.Node) {
	s, ok := d.scalar(v, "severity")
	switch sev := quota.Severity(s); {
	case !ok:
	case sev == quota.Info || sev == quota.Warning || sev == quota.Critical:
		d.r.Severity = sev
	default:
		d.errorf(v.Line, "severity", "unknown severity %q (want info, warning or critical)", s)
	}
}

// readNotify reads the notifier names, checked against the configured ones
// when there are any.
func (d *ruleDraft) readNotify(v *yaml.Node) {
	names, lines, _ := d.list(v, "notify")
	d.r.Notify = names
	if d.opt.Notifiers == nil {
		return
	}
	for i, name := range names {
		if !slices.Contains(d.opt.Notifiers, name) {
			d.errorf(lines[i], "notify", "unknown notifier %q", name)
		}
	}
}

func (d *ruleDraft) readDryRun(v *yaml.Node) {
	if v.Kind != yaml.ScalarNode || v.Decode(&d.r.DryRun) != nil {
		d.errorf(v.Line, "dry_run", "must be true or false")
	}
}

func (d *ruleDraft) readAction(v *yaml.Node) { d.r.Action, d.r.Raise = d.action(v) }

// checkResource checks that the resource is a name or glob that matches at
// least one known resource, and records those it matches.
func (d *ruleDraft) checkResource() {
	r, res := d.r, d.resNode
	switch {
	case res != nil && res.Kind != yaml.ScalarNode:
		// Already reported as not a single value.
	case res == nil || r.Resource == "":
		line := d.n.Line
		if res != nil {
			line = res.Line
		}
		d.errorf(line, "resource", "required")
	default:
		if _, err := path.Match(r.Resource, ""); err != nil {
			d.errorf(res.Line, "resource", "bad pattern %q: %v", r.Resource, err)
			return
		}
		for _, known := range quota.KnownResources() {
			if ok, _ := path.Match(r.Resource, known); ok {
				d.matched = append(d.matched, known)
			}
		}
		if len(d.matched) == 0 {
			d.errorf(res.Line, "resource", "%q matches no known resource", r.Resource)
		}
	}
}

// checkWhen compiles the firing condition, which is required.
func (d *ruleDraft) checkWhen() {
	r, when := d.r, d.whenNode
	if when != nil && when.Kind != yaml.ScalarNode && !yamlnode.IsNull(when) {
		// Already reported as not a single value.
		return
	}
	if when == nil || r.When == "" {
		line := d.n.Line
		if when != nil {
			line = when.Line
		}
		d.errorf(line, "when", "required")
		return
	}
	if prog, err := compile(r.When); err != nil {
		d.errorf(exprLine(when, err), "when", "%s", err.msg)
	} else {
		r.when = prog
	}
}

// checkClear compiles the resolving condition, by default "not (WHEN)".
func (d *ruleDraft) checkClear() {
	r, clear := d.r, d.clearNode
	switch {
	case clear != nil && r.Clear != "":
		if prog, err := compile(r.Clear); err != nil {
			d.errorf(exprLine(clear, err), "clear", "%s", err.msg)
		} else {
			r.clear = prog
		}
	case clear != nil && (clear.Kind == yaml.ScalarNode || yamlnode.IsNull(clear)):
		d.errorf(clear.Line, "clear", "must not be empty (leave it out for: not when)")
	case r.When != "":
		r.Clear = "not (" + r.When + ")"
	}
	r.usesForecast = (r.when != nil && r.when.forecast) || (r.clear != nil && r.clear.forecast)
}

func (d *ruleDraft) compileProjects() {
	r := d.r
	r.allProjects = len(r.Projects) == 1 && r.Projects[0] == "*"
	for _, g := range r.Projects {
		r.projects = append(r.projects, newMatcher(g))
	}
}

// checkCarries checks that the action's kind moves the resource the rule
// watches, or moving it could never relieve the quota.
func (d *ruleDraft) checkCarries() {
	r := d.r
	a := r.Action
	if a == nil || !a.Kind.Valid() || len(d.matched) == 0 {
		return
	}
	var missing []string
	for _, res := range d.matched {
		if !slices.Contains(carries[a.Kind], res) {
			missing = append(missing, res)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("kind %s does not carry %s", a.Kind, strings.Join(missing, ", "))
	if len(d.matched) > 1 || d.matched[0] != r.Resource {
		msg += fmt.Sprintf(" (matched by resource %s)", r.Resource)
	}
	d.errorf(actionKindLine(d.n), "action.reassign.kind", "%s", msg)
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
		_, next := yamlnode.Get(cur, key)
		if next == nil {
			return cur.Line
		}
		cur = next
	}
	return cur.Line
}

// action parses the `action:` mapping.
func (p *ruleParser) action(v *yaml.Node) (*Reassign, *RaiseLimit) {
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "action", "must be a mapping with reassign:")
		return nil, nil
	}
	var a *Reassign
	var rl *RaiseLimit
	n := 0
	for _, kv := range p.pairs(v, "action.") {
		switch kv.Key.Value {
		case "reassign":
			a = p.reassign(kv.Value)
		case "raise_limit":
			rl = p.raiseLimit(kv.Value)
		default:
			p.errorf(kv.Key.Line, "action."+kv.Key.Value, "unknown action (want reassign or raise_limit)")
			continue
		}
		n++
		if n == 2 {
			p.errorf(kv.Key.Line, "action."+kv.Key.Value, "a rule has exactly one action: reassign or raise_limit")
		}
	}
	if a == nil && rl == nil && len(v.Content) == 0 {
		p.errorf(v.Line, "action", "must be a mapping with reassign:")
	}
	return a, rl
}

// reassignKeys reads each key of action.reassign; f is the key's field path.
var reassignKeys = map[string]func(p *ruleParser, a *Reassign, v *yaml.Node, f string){
	"kind":        (*ruleParser).reassignKind,
	"match":       (*ruleParser).reassignMatch,
	"select":      (*ruleParser).reassignSelect,
	"max_items":   (*ruleParser).reassignMaxItems,
	"to":          (*ruleParser).reassignTo,
	"strategy":    (*ruleParser).reassignStrategy,
	"keep_shared": (*ruleParser).reassignKeepShared,
}

func (p *ruleParser) reassign(v *yaml.Node) *Reassign {
	const pre = "action.reassign."
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "action.reassign", "must be a mapping")
		return nil
	}
	a := &Reassign{Select: DefaultSelect, MaxItems: DefaultMaxItems, To: []string{"*"}, Strategy: DefaultStrategy, KeepShared: true}
	readKeys(p, v, pre, reassignKeys, a, "kind")
	return a
}

// readKeys reads the mapping v into a, one reader per key from keys,
// reporting unknown keys and a missing required one under pre.
func readKeys[T any](p *ruleParser, v *yaml.Node, pre string, keys map[string]func(*ruleParser, *T, *yaml.Node, string), a *T, required string) {
	has := false
	for _, kv := range p.pairs(v, pre) {
		k := kv.Key.Value
		read, ok := keys[k]
		if !ok {
			p.errorf(kv.Key.Line, pre+k, "unknown key")
			continue
		}
		has = has || k == required
		read(p, a, kv.Value, pre+k)
	}
	if !has {
		p.errorf(v.Line, pre+required, "required")
	}
}

func (p *ruleParser) reassignKind(a *Reassign, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	a.Kind = quota.Kind(s)
	if !a.Kind.Valid() {
		p.errorf(v.Line, f, "unknown kind %q (want container, server, floating_ip, network or volume)", s)
	}
}

func (p *ruleParser) reassignMatch(a *Reassign, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	if _, err := path.Match(s, ""); err != nil {
		p.errorf(v.Line, f, "bad pattern %q: %v", s, err)
	}
	a.Match = s
}

func (p *ruleParser) reassignSelect(a *Reassign, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	if s != SelectLargest && s != SelectSmallest {
		p.errorf(v.Line, f, "unknown select %q (want largest or smallest)", s)
	}
	a.Select = s
}

func (p *ruleParser) reassignMaxItems(a *Reassign, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		p.errorf(v.Line, f, "must be a whole number, not %q", s)
	case n < 1:
		p.errorf(v.Line, f, "must be at least 1, not %d", n)
	default:
		a.MaxItems = n
	}
}

func (p *ruleParser) reassignTo(a *Reassign, v *yaml.Node, f string) {
	a.To = p.globs(v, f, a.To)
}

func (p *ruleParser) reassignStrategy(a *Reassign, v *yaml.Node, f string) {
	s, ok := p.scalar(v, f)
	if !ok {
		return
	}
	if s != StrategyMostHeadroom && s != StrategyFirstFit {
		p.errorf(v.Line, f, "unknown strategy %q (want most_headroom or first_fit)", s)
	}
	a.Strategy = s
}

func (p *ruleParser) reassignKeepShared(a *Reassign, v *yaml.Node, f string) {
	if v.Kind != yaml.ScalarNode || v.Decode(&a.KeepShared) != nil {
		p.errorf(v.Line, f, "must be true or false")
	}
}
