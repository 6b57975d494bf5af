package ruletests

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// point is one value of an input series at one poll; missing is a poll
// that returned nothing (`_`).
type point struct {
	v       int64
	missing bool
}

// maxPoints bounds the length of one expanded series, so that a typo such
// as 1x100000000 is an error, not an exhausted memory.
const maxPoints = 100_000

// expand reads promtool's expanding notation: whitespace-separated terms,
// each a number (with an optional unit, see quota.ParseAmount), `_` (a
// missing poll), `_xn` (n missing polls), `axn` (a, n+1 times), or `a+bxn`
// and `a-bxn` (a, a±b, ..., a±n*b: n+1 values).
func expand(s string) ([]point, error) {
	var out []point
	for _, term := range strings.Fields(s) {
		pts, err := expandTerm(term)
		if err != nil {
			return nil, fmt.Errorf("term %q: %w", term, err)
		}
		out = append(out, pts...)
		if len(out) > maxPoints {
			return nil, fmt.Errorf("more than %d values", maxPoints)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no values")
	}
	return out, nil
}

func expandTerm(term string) ([]point, error) {
	switch term {
	case "_":
		return []point{{missing: true}}, nil
	case "stale":
		return nil, errors.New("a poll returns the quota or fails (_): there is no stale value")
	}
	base, count, repeated := strings.Cut(term, "x")
	if !repeated {
		v, err := quota.ParseAmount(term)
		if err != nil {
			return nil, err
		}
		return []point{{v: v}}, nil
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 0 || strings.HasPrefix(count, "+") {
		return nil, fmt.Errorf("the count after x must be a whole number of 0 or more, got %q", count)
	}
	if n >= maxPoints {
		return nil, fmt.Errorf("more than %d values", maxPoints)
	}
	if base == "_" {
		if n == 0 {
			return nil, errors.New("_x0 is no poll at all")
		}
		out := make([]point, n)
		for i := range out {
			out[i].missing = true
		}
		return out, nil
	}
	// The step's sign is the first + or - after the start value's own sign.
	start, step, sign := base, "0", byte('+')
	if i := strings.IndexAny(base[min(1, len(base)):], "+-"); i >= 0 {
		start, step, sign = base[:i+1], base[i+2:], base[i+1]
	}
	a, err := quota.ParseAmount(start)
	if err != nil {
		return nil, err
	}
	b, err := quota.ParseAmount(step)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(step, "+") || strings.HasPrefix(step, "-") {
		return nil, fmt.Errorf("%q: one sign between the start and the step", base)
	}
	if sign == '-' {
		b = -b
	}
	out := make([]point, 0, n+1)
	v := a
	for i := 0; i <= n; i++ {
		out = append(out, point{v: v})
		if i < n {
			if (b > 0 && v > math.MaxInt64-b) || (b < 0 && v < math.MinInt64-b) {
				return nil, fmt.Errorf("value %d of the term is out of range", i+2)
			}
			v += b
		}
	}
	return out, nil
}
