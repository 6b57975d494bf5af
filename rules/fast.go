package rules

import (
	"math"

	"github.com/expr-lang/expr/ast"
)

// The common rule expressions (`ratio > 0.95`, `usage >= limit && !unlimited`,
// `days_to_full < 7`) are also compiled to native closures over env, which
// run several times faster than expr's VM and allocate nothing: the VM boxes
// every field it reads. The closures follow expr's own semantics (integer
// arithmetic for + - * on integers, float for /, ^ and mixed operands);
// anything else (strings beyond ==, %, functions, members, conditionals)
// keeps the VM. A differential test checks both agree.

type kind uint8

const (
	kInt kind = iota + 1
	kFloat
	kBool
	kString
)

// val is the value of a native sub-expression; its kind is static.
type val struct {
	i int64
	f float64
	b bool
	s string
}

type nfn func(e *env) val

// native compiles n, or returns nil when it uses anything unsupported.
func native(n ast.Node) func(e *env) bool {
	f, k := nativeNode(n)
	if f == nil || k != kBool {
		return nil
	}
	return func(e *env) bool { return f(e).b }
}

func nativeIdent(name string) (nfn, kind) {
	switch name {
	case "account":
		return func(e *env) val { return val{s: e.Account} }, kString
	case "user":
		return func(e *env) val { return val{s: e.User} }, kString
	case "project":
		return func(e *env) val { return val{s: e.Project} }, kString
	case "project_name":
		return func(e *env) val { return val{s: e.ProjectName} }, kString
	case "resource":
		return func(e *env) val { return val{s: e.Resource} }, kString
	case "unit":
		return func(e *env) val { return val{s: e.Unit} }, kString
	case "system":
		return func(e *env) val { return val{b: e.System} }, kBool
	case "unlimited":
		return func(e *env) val { return val{b: e.Unlimited} }, kBool
	case "usage":
		return func(e *env) val { return val{i: e.Usage} }, kInt
	case "limit":
		return func(e *env) val { return val{i: e.Limit} }, kInt
	case "pending":
		return func(e *env) val { return val{i: e.Pending} }, kInt
	case "project_usage":
		return func(e *env) val { return val{i: e.ProjectUsage} }, kInt
	case "project_limit":
		return func(e *env) val { return val{i: e.ProjectLimit} }, kInt
	case "project_pending":
		return func(e *env) val { return val{i: e.ProjectPending} }, kInt
	case "effective_limit":
		return func(e *env) val { return val{i: e.EffectiveLimit} }, kInt
	case "headroom":
		return func(e *env) val { return val{i: e.Headroom} }, kInt
	case "ratio":
		return func(e *env) val { return val{f: e.Ratio} }, kFloat
	case "project_ratio":
		return func(e *env) val { return val{f: e.ProjectRatio} }, kFloat
	case "growth_per_day":
		return func(e *env) val { e.needForecast(); return val{f: e.GrowthPerDay} }, kFloat
	case "days_to_full":
		return func(e *env) val { e.needForecast(); return val{f: e.DaysToFull} }, kFloat
	}
	return nil, 0
}

// asFloat converts a numeric sub-expression to float64.
func asFloat(f nfn, k kind) func(e *env) float64 {
	if k == kInt {
		return func(e *env) float64 { return float64(f(e).i) }
	}
	return func(e *env) float64 { return f(e).f }
}

func nativeNode(n ast.Node) (nfn, kind) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return nativeIdent(n.Value)
	case *ast.IntegerNode:
		v := val{i: int64(n.Value)}
		return func(*env) val { return v }, kInt
	case *ast.FloatNode:
		v := val{f: n.Value}
		return func(*env) val { return v }, kFloat
	case *ast.BoolNode:
		v := val{b: n.Value}
		return func(*env) val { return v }, kBool
	case *ast.StringNode:
		v := val{s: n.Value}
		return func(*env) val { return v }, kString
	case *ast.UnaryNode:
		return nativeUnary(n)
	case *ast.BinaryNode:
		return nativeBinary(n)
	}
	return nil, 0
}

func nativeUnary(n *ast.UnaryNode) (nfn, kind) {
	x, k := nativeNode(n.Node)
	if x == nil {
		return nil, 0
	}
	switch {
	case (n.Operator == "!" || n.Operator == "not") && k == kBool:
		return func(e *env) val { return val{b: !x(e).b} }, kBool
	case n.Operator == "-" && k == kInt:
		return func(e *env) val { return val{i: -x(e).i} }, kInt
	case n.Operator == "-" && k == kFloat:
		return func(e *env) val { return val{f: -x(e).f} }, kFloat
	case n.Operator == "+" && (k == kInt || k == kFloat):
		return x, k
	}
	return nil, 0
}

func isNum(k kind) bool { return k == kInt || k == kFloat }

func nativeBinary(n *ast.BinaryNode) (nfn, kind) {
	if f := nativeCompare(n); f != nil {
		return f, kBool
	}
	l, lk := nativeNode(n.Left)
	r, rk := nativeNode(n.Right)
	if l == nil || r == nil {
		return nil, 0
	}
	op := n.Operator
	if (op == "&&" || op == "and" || op == "||" || op == "or") && mentionsForecast(n.Left) && !mentionsForecast(n.Right) {
		// Native operands are pure and cannot fail, so the order is free:
		// the cheap side first, and the forecast only when it decides.
		l, r = r, l
		lk, rk = rk, lk
	}
	switch op {
	case "&&", "and":
		if lk == kBool && rk == kBool {
			return func(e *env) val { return val{b: l(e).b && r(e).b} }, kBool
		}
	case "||", "or":
		if lk == kBool && rk == kBool {
			return func(e *env) val { return val{b: l(e).b || r(e).b} }, kBool
		}
	case "==", "!=":
		neg := op == "!="
		var eq func(e *env) bool
		switch {
		case lk == kInt && rk == kInt:
			eq = func(e *env) bool { return l(e).i == r(e).i }
		case isNum(lk) && isNum(rk):
			lf, rf := asFloat(l, lk), asFloat(r, rk)
			eq = func(e *env) bool { return lf(e) == rf(e) }
		case lk == kBool && rk == kBool:
			eq = func(e *env) bool { return l(e).b == r(e).b }
		case lk == kString && rk == kString:
			eq = func(e *env) bool { return l(e).s == r(e).s }
		default:
			return nil, 0
		}
		return func(e *env) val { return val{b: eq(e) != neg} }, kBool
	case "<", "<=", ">", ">=":
		if !isNum(lk) || !isNum(rk) {
			return nil, 0
		}
		if lk == kInt && rk == kInt {
			switch op {
			case "<":
				return func(e *env) val { return val{b: l(e).i < r(e).i} }, kBool
			case "<=":
				return func(e *env) val { return val{b: l(e).i <= r(e).i} }, kBool
			case ">":
				return func(e *env) val { return val{b: l(e).i > r(e).i} }, kBool
			default:
				return func(e *env) val { return val{b: l(e).i >= r(e).i} }, kBool
			}
		}
		lf, rf := asFloat(l, lk), asFloat(r, rk)
		switch op {
		case "<":
			return func(e *env) val { return val{b: lf(e) < rf(e)} }, kBool
		case "<=":
			return func(e *env) val { return val{b: lf(e) <= rf(e)} }, kBool
		case ">":
			return func(e *env) val { return val{b: lf(e) > rf(e)} }, kBool
		default:
			return func(e *env) val { return val{b: lf(e) >= rf(e)} }, kBool
		}
	case "+", "-", "*":
		if !isNum(lk) || !isNum(rk) {
			return nil, 0
		}
		if lk == kInt && rk == kInt {
			switch op {
			case "+":
				return func(e *env) val { return val{i: l(e).i + r(e).i} }, kInt
			case "-":
				return func(e *env) val { return val{i: l(e).i - r(e).i} }, kInt
			default:
				return func(e *env) val { return val{i: l(e).i * r(e).i} }, kInt
			}
		}
		lf, rf := asFloat(l, lk), asFloat(r, rk)
		switch op {
		case "+":
			return func(e *env) val { return val{f: lf(e) + rf(e)} }, kFloat
		case "-":
			return func(e *env) val { return val{f: lf(e) - rf(e)} }, kFloat
		default:
			return func(e *env) val { return val{f: lf(e) * rf(e)} }, kFloat
		}
	case "/":
		if isNum(lk) && isNum(rk) {
			lf, rf := asFloat(l, lk), asFloat(r, rk)
			return func(e *env) val { return val{f: lf(e) / rf(e)} }, kFloat
		}
	case "^", "**":
		if isNum(lk) && isNum(rk) {
			lf, rf := asFloat(l, lk), asFloat(r, rk)
			return func(e *env) val { return val{f: math.Pow(lf(e), rf(e))} }, kFloat
		}
	}
	return nil, 0
}

// intField and floatField read one numeric variable directly; comparisons
// of a variable with a constant or another variable, by far the most
// common rule shape, skip the generic closures.
func intField(name string) func(e *env) int64 {
	switch name {
	case "usage":
		return func(e *env) int64 { return e.Usage }
	case "limit":
		return func(e *env) int64 { return e.Limit }
	case "pending":
		return func(e *env) int64 { return e.Pending }
	case "project_usage":
		return func(e *env) int64 { return e.ProjectUsage }
	case "project_limit":
		return func(e *env) int64 { return e.ProjectLimit }
	case "project_pending":
		return func(e *env) int64 { return e.ProjectPending }
	case "effective_limit":
		return func(e *env) int64 { return e.EffectiveLimit }
	case "headroom":
		return func(e *env) int64 { return e.Headroom }
	}
	return nil
}

func floatField(name string) func(e *env) float64 {
	switch name {
	case "ratio":
		return func(e *env) float64 { return e.Ratio }
	case "project_ratio":
		return func(e *env) float64 { return e.ProjectRatio }
	case "growth_per_day":
		return func(e *env) float64 { e.needForecast(); return e.GrowthPerDay }
	case "days_to_full":
		return func(e *env) float64 { e.needForecast(); return e.DaysToFull }
	}
	if g := intField(name); g != nil {
		return func(e *env) float64 { return float64(g(e)) }
	}
	return nil
}

// nativeCompare handles `variable OP constant` and `variable OP variable`.
func nativeCompare(n *ast.BinaryNode) nfn {
	id, ok := n.Left.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	li := intField(id.Value)
	switch r := n.Right.(type) {
	case *ast.IntegerNode:
		if li != nil {
			return cmpConst(n.Operator, li, int64(r.Value))
		}
		if lf := floatField(id.Value); lf != nil {
			return cmpConst(n.Operator, lf, float64(r.Value))
		}
	case *ast.FloatNode:
		if lf := floatField(id.Value); lf != nil {
			return cmpConst(n.Operator, lf, r.Value)
		}
	case *ast.IdentifierNode:
		if ri := intField(r.Value); li != nil && ri != nil {
			return cmpInts(n.Operator, li, ri)
		}
	}
	return nil
}

// cmpConst compares a variable with a constant. Each number type gets its
// own instance, so the comparison is as direct as written out by hand.
func cmpConst[T int64 | float64](op string, l func(*env) T, c T) nfn {
	switch op {
	case "<":
		return func(e *env) val { return val{b: l(e) < c} }
	case "<=":
		return func(e *env) val { return val{b: l(e) <= c} }
	case ">":
		return func(e *env) val { return val{b: l(e) > c} }
	case ">=":
		return func(e *env) val { return val{b: l(e) >= c} }
	case "==":
		return func(e *env) val { return val{b: l(e) == c} }
	case "!=":
		return func(e *env) val { return val{b: l(e) != c} }
	}
	return nil
}

func cmpInts(op string, l, r func(*env) int64) nfn {
	switch op {
	case "<":
		return func(e *env) val { return val{b: l(e) < r(e)} }
	case "<=":
		return func(e *env) val { return val{b: l(e) <= r(e)} }
	case ">":
		return func(e *env) val { return val{b: l(e) > r(e)} }
	case ">=":
		return func(e *env) val { return val{b: l(e) >= r(e)} }
	case "==":
		return func(e *env) val { return val{b: l(e) == r(e)} }
	case "!=":
		return func(e *env) val { return val{b: l(e) != r(e)} }
	}
	return nil
}
