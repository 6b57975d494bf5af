package view

import (
	"cmp"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// Glob is a shell pattern on names (path.Match syntax: *, ?, [...]); the
// empty glob matches everything.
type Glob string

// Check reports a malformed pattern, so that a typo is a usage error and
// not a silent "no match".
func (g Glob) Check() error {
	if _, err := path.Match(string(g), ""); err != nil {
		return fmt.Errorf("pattern %q: %w", string(g), err)
	}
	return nil
}

// Match reports whether any of the names matches (a project matches by id
// or by name). A name equal to the pattern matches even if it holds
// pattern characters.
func (g Glob) Match(names ...string) bool {
	for _, n := range names {
		if g.match(n) {
			return true
		}
	}
	return g == ""
}

// match is Match of one name.
func (g Glob) match(n string) bool {
	if g == "" || n == string(g) {
		return true
	}
	if !g.literal() {
		ok, _ := path.Match(string(g), n)
		return ok
	}
	return false
}

// literal reports whether the glob holds no pattern character, and so
// matches only itself: tens of thousands of names are compared, not
// matched.
func (g Glob) literal() bool { return !strings.ContainsAny(string(g), `*?[\`) }

// StatusFilter selects the rows of `status` and /api/v1/status.
type StatusFilter struct {
	// Project matches a project id or name; Rule, State and Account match
	// those fields. Rule and State select rule instances: with either,
	// series no selected instance covers are left out.
	Project, Rule, State, Account Glob
	// Top, if positive, keeps only the fullest Top rows of each list.
	Top int
}

// Check reports the first malformed pattern.
func (f StatusFilter) Check() error {
	for _, g := range []Glob{f.Project, f.Rule, f.State, f.Account} {
		if err := g.Check(); err != nil {
			return err
		}
	}
	if f.Top < 0 {
		return fmt.Errorf("top %d: want 0 or more", f.Top)
	}
	return nil
}

// Select returns the status the filter selects, each list sorted by ratio,
// fullest first (ties keep the query's order).
func (s *Status) Select(f StatusFilter) *Status {
	rules, covered := f.selectRules(s.Rules)
	byInstance := f.Rule != "" || f.State != ""
	quotas := make([]int32, 0, len(s.Quotas))
	for i := range s.Quotas {
		r := &s.Quotas[i]
		if f.series(r.Account, r.Project, r.ProjectName) && (!byInstance || covered[r.key()]) {
			quotas = append(quotas, int32(i))
		}
	}
	return &Status{Rules: fullestFirst(s.Rules, rules, f.Top), Quotas: fullestFirst(s.Quotas, quotas, f.Top)}
}

// series reports whether the filter selects a series by its account and
// project.
func (f StatusFilter) series(account, project, projectName string) bool {
	return (f.Project == "" || f.Project.Match(project, projectName, SynnefoName(project, projectName))) && f.Account.match(account)
}

// selectRules returns the indexes of the rule rows the filter selects, and
// the series they cover.
func (f StatusFilter) selectRules(rows []StatusRow) ([]int32, map[quota.Key]bool) {
	var sel []int32
	covered := map[quota.Key]bool{}
	for i := range rows {
		r := &rows[i]
		if f.series(r.Account, r.Project, r.ProjectName) && f.Rule.match(r.Rule) && f.State.match(string(r.State)) {
			sel = append(sel, int32(i))
			covered[r.key()] = true
		}
	}
	return sel, covered
}

// fullestFirst returns rows[sel] sorted by ratio, fullest first, ties in
// their order, and keeps the first top (all for 0).
func fullestFirst(rows []StatusRow, sel []int32, top int) []StatusRow {
	// The ratios are sorted beside their indices, not through the rows:
	// 80,000 rows do not fit a cache, their ratios do.
	keys := make([]ratioKey, len(sel))
	for j, i := range sel {
		keys[j] = ratioKey{fullness(float64(rows[i].Ratio)), i}
	}
	slices.SortFunc(keys, func(a, b ratioKey) int {
		if a.fullness != b.fullness {
			return cmp.Compare(a.fullness, b.fullness)
		}
		return cmp.Compare(a.i, b.i)
	})
	if top > 0 && len(keys) > top {
		keys = keys[:top]
	}
	out := make([]StatusRow, len(keys))
	for j, k := range keys {
		out[j] = rows[k.i]
	}
	return out
}

// ratioKey is a row's fullness and its index, as fullestFirst sorts them.
type ratioKey struct {
	fullness uint64
	i        int32
}

// fullness orders ratios as integers: the fullest (+Inf) first, NaN last,
// the two zeros as one, as byRatio orders them.
func fullness(r float64) uint64 {
	if math.IsNaN(r) {
		return math.MaxUint64
	}
	b := math.Float64bits(r + 0) // -0 + 0 is +0
	if b>>63 != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return ^b // the larger the ratio, the smaller
}

// sortRows returns the first top rows (all for 0) in the order of by, ties
// in their order. It sorts indices, and compares rows in place: rows are
// large, and there may be 80,000 of them.
func sortRows(rows []StatusRow, top int, by func(a, b *StatusRow) int) []StatusRow {
	idx := make([]int32, len(rows))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Or(by(&rows[a], &rows[b]), cmp.Compare(a, b)) })
	if top > 0 && len(idx) > top {
		idx = idx[:top]
	}
	out := make([]StatusRow, len(idx))
	for i, j := range idx {
		out[i] = rows[j]
	}
	return out
}

// byRatio orders rows fullest first; a ratio against a zero limit (+Inf)
// is fullest, and NaN sorts last.
func byRatio(a, b StatusRow) int {
	return -cmp.Compare(float64(a.Ratio), float64(b.Ratio))
}

// systemName is Synnefo's own name of a system project shown by its
// user's e-mail (system:<uuid>, its id being the user's), so that globs on
// that name still select it; "" for other projects.
func SynnefoName(id, shown string) string {
	if strings.HasSuffix(shown, " (personal)") {
		return "system:" + id
	}
	return ""
}
