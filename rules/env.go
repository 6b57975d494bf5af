package rules

import (
	"errors"
	"fmt"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/quotawatch/quotawatch/quota"
)

// env is the typed environment of `when` and `clear` (docs/design.md#expression-variables). One
// value is reused for every series of a cycle, so filling it allocates
// nothing.
type env struct {
	Account        string  `expr:"account"`
	User           string  `expr:"user"`
	Project        string  `expr:"project"`
	ProjectName    string  `expr:"project_name"`
	System         bool    `expr:"system"`
	Resource       string  `expr:"resource"`
	Unit           string  `expr:"unit"`
	Usage          int64   `expr:"usage"`
	Limit          int64   `expr:"limit"`
	Pending        int64   `expr:"pending"`
	ProjectUsage   int64   `expr:"project_usage"`
	ProjectLimit   int64   `expr:"project_limit"`
	ProjectPending int64   `expr:"project_pending"`
	EffectiveLimit int64   `expr:"effective_limit"`
	Headroom       int64   `expr:"headroom"`
	Ratio          float64 `expr:"ratio"`
	ProjectRatio   float64 `expr:"project_ratio"`
	Unlimited      bool    `expr:"unlimited"`
	GrowthPerDay   float64 `expr:"growth_per_day"`
	DaysToFull     float64 `expr:"days_to_full"`

	// lazy, while set, computes the forecast variables when a native
	// expression first reads them: a forecast reads the series' history,
	// and `days_to_full < 3 && ratio > 0.5` needs it only when the ratio
	// is over half.
	lazy *lazyForecast
}

// lazyForecast is the series whose forecast a native expression may ask.
type lazyForecast struct {
	e   *Engine
	in  *Input
	ser *series
}

// needForecast fills the forecast variables if they are not yet.
func (e *env) needForecast() {
	if l := e.lazy; l != nil && !l.ser.forecast {
		l.e.forecast(*l.in, l.ser)
	}
}

// Names of the forecast variables: only rules that mention them pay for
// reading history.
const (
	varGrowth     = "growth_per_day"
	varDaysToFull = "days_to_full"
)

// setQuota fills the quota-derived variables of e from q.
func (e *env) setQuota(resource, unit string, q quota.Quota) {
	e.Resource = resource
	e.Unit = unit
	e.Usage = q.Usage
	e.Limit = q.Limit
	e.Pending = q.Pending
	e.ProjectUsage = q.ProjectUsage
	e.ProjectLimit = q.ProjectLimit
	e.ProjectPending = q.ProjectPending
	e.EffectiveLimit = q.EffectiveLimit()
	e.Headroom = q.Headroom()
	e.Ratio = q.Ratio()
	e.ProjectRatio = q.ProjectRatio()
	e.Unlimited = q.IsUnlimited()
	e.GrowthPerDay = 0
	e.DaysToFull = DaysToFull(e.Headroom, 0)
}

// program is one compiled expression.
type program struct {
	src      string
	prog     *vm.Program
	forecast bool // mentions growth_per_day or days_to_full
	// fast is the native form of the expression; nil when it needs the VM.
	fast func(*env) bool
}

// compileErr is a compile failure: expr's own message and its position in
// the expression (1-based line and column; 0 when unknown).
type compileErr struct {
	msg          string
	line, column int
}

// compile compiles src as a bool expression over env.
func compile(src string) (*program, *compileErr) {
	p, err := expr.Compile(src,
		expr.Env(env{}),
		expr.AsBool(),
		// now() would read the wall clock; rules see only the cycle's data.
		expr.DisableBuiltin("now"),
	)
	if err != nil {
		ce := &compileErr{msg: err.Error()}
		var fe *file.Error
		if errors.As(err, &fe) {
			ce.msg = fe.Message
			ce.line, ce.column = fe.Line, fe.Column+1
		}
		return nil, ce
	}
	v := &identVisitor{}
	node := p.Node()
	ast.Walk(&node, v)
	return &program{src: src, prog: p, forecast: v.forecast, fast: native(node)}, nil
}

// mentionsForecast reports whether an expression reads a forecast variable.
func mentionsForecast(n ast.Node) bool {
	v := &identVisitor{}
	ast.Walk(&n, v)
	return v.forecast
}

// identVisitor finds the forecast variables in an expression.
type identVisitor struct{ forecast bool }

// Visit notes identifiers that name a forecast variable.
func (v *identVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && (id.Value == varGrowth || id.Value == varDaysToFull) {
		v.forecast = true
	}
}

// run evaluates p against e with the reusable machine m. Any runtime error
// (or a non-bool result, which the checker already rules out) is returned.
func (p *program) run(m *vm.VM, e *env) (bool, error) {
	if p.fast != nil {
		return p.fast(e), nil
	}
	out, err := m.Run(p.prog, e)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("expression returned %T, not bool", out)
	}
	return b, nil
}
