// Package view is what quotawatch shows of its state: queries that read the
// store into typed rows (the rows of `status`, `history` and `actions`, the
// same rows as JSON) and the renderers that print them for people. The
// command line and the daemon's status page both show state through it, so
// a row reads the same wherever it appears.
package view

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/quotawatch/quotawatch/quota"
)

// Column is one column of a text table: its header and how a row fills it.
type Column[R any] struct {
	Header string
	Cell   func(R) string
}

// WriteTable writes rows as aligned columns under their headers.
func WriteTable[R any](w io.Writer, cols []Column[R], rows []R) error {
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.Header
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		cells[i] = make([]string, len(cols))
		for j, c := range cols {
			cells[i][j] = c.Cell(r)
		}
	}
	return WriteRows(w, header, cells)
}

// WriteRows writes a header and rows of cells as aligned columns, as
// text/tabwriter aligns them with padding 2. It never truncates a cell:
// names are what people look for.
func WriteRows(w io.Writer, header []string, rows [][]string) error {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	var err error
	if plainTable(header, rows) {
		err = writeAligned(bw, header, rows)
	} else {
		err = writeTabbed(bw, header, rows)
	}
	if err == nil && !ok {
		err = bw.Flush()
	}
	return err
}

// plainTable reports whether every row has the header's cells and no cell
// holds a character the tabwriter would take for a cell or line break.
func plainTable(header []string, rows [][]string) bool {
	plain := func(cells []string) bool {
		for _, c := range cells {
			for i := 0; i < len(c); i++ {
				switch c[i] {
				case '\t', '\n', '\v', '\f', 0xff:
					return false
				}
			}
		}
		return true
	}
	for _, r := range rows {
		if len(r) != len(header) || !plain(r) {
			return false
		}
	}
	return plain(header)
}

// writeAligned pads each cell but the last of a line to its column's
// widest cell plus two spaces, widths counted in runes: what the
// tabwriter does for a table whose rows all have the same cells, without
// its copies and its write per cell.
func writeAligned(w *bufio.Writer, header []string, rows [][]string) error {
	width := make([]int, len(header))
	measure := func(cells []string) {
		for i, c := range cells[:max(len(cells)-1, 0)] {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	measure(header)
	for _, r := range rows {
		measure(r)
	}
	line := func(cells []string) {
		for i, c := range cells {
			w.WriteString(c)
			if i < len(cells)-1 {
				for range width[i] - utf8.RuneCountInString(c) + 2 {
					w.WriteByte(' ')
				}
			}
		}
		w.WriteByte('\n')
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return nil
}

// writeTabbed writes the table through a tabwriter, for ragged rows and
// cells holding tabs.
func writeTabbed(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// WriteJSON writes v as indented JSON, the shape every --output json has.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Float is a float64 whose JSON is null for infinities and NaN, which JSON
// cannot hold (a ratio against a zero limit is infinite).
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return []byte(fmt.Sprintf("%g", float64(f))), nil
}

// Usage renders "19.2 GiB / 20.0 GiB (96.0%)" against the effective limit.
func Usage(resource string, q quota.Quota) string {
	return quota.FormatAmount(resource, q.Usage) + " / " + quota.FormatAmount(resource, q.EffectiveLimit()) +
		" (" + quota.FormatPercent(q.Ratio()) + ")"
}

// ProjectUsage renders the project-wide usage against the project's limit.
func ProjectUsage(resource string, q quota.Quota) string {
	return quota.FormatAmount(resource, q.ProjectUsage) + " / " + quota.FormatAmount(resource, q.ProjectLimit) +
		" (" + quota.FormatPercent(q.ProjectRatio()) + ")"
}

// Time renders a time in UTC to the second, or "-" for the zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// NameOr is a name, or the id when the name is not known.
func NameOr(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

// Dash stands in for an empty cell, so that columns stay readable.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Sparkline draws values as one line of block characters, scaled between
// their minimum and maximum.
func Sparkline(vals []int64) string {
	if len(vals) == 0 {
		return ""
	}
	runes := []rune("▁▂▃▄▅▆▇█")
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if hi > lo {
			i = int(math.Round(float64(v-lo) / float64(hi-lo) * float64(len(runes)-1)))
		}
		b.WriteRune(runes[i])
	}
	return b.String()
}

// namer returns a function giving a project's name, or its id when no
// name is known for it.
func namer(projects map[string]quota.Project) func(id string) string {
	return func(id string) string {
		if p, ok := projects[id]; ok {
			return p.Shown()
		}
		return id
	}
}

// TableWidth is the widest line WriteRows writes for the table, in runes.
func TableWidth(header []string, rows [][]string) int {
	width := make([]int, len(header))
	measure := func(cells []string) {
		for i, c := range cells[:min(len(cells), len(width))] {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	measure(header)
	for _, r := range rows {
		measure(r)
	}
	total := 0
	for _, w := range width {
		total += w + 2
	}
	return max(total-2, 0)
}

// DropColumns removes the columns named drop, in that order, until the
// table fits in width (0: any width); a cell is never truncated, so a
// table of long names may stay wider.
func DropColumns(header []string, rows [][]string, width int, drop ...string) ([]string, [][]string) {
	rows = slices.Clone(rows)
	for _, name := range drop {
		if width <= 0 || TableWidth(header, rows) <= width {
			break
		}
		i := slices.Index(header, name)
		if i < 0 {
			continue
		}
		header = slices.Delete(slices.Clone(header), i, i+1)
		for j, r := range rows {
			if i < len(r) {
				rows[j] = slices.Delete(slices.Clone(r), i, i+1)
			}
		}
	}
	return header, rows
}

// WriteFitted writes the table as WriteRows does when it fits in width (0:
// any width); else each row as a block, its first cell on a line of its
// own and the others under it as "HEADER  value", so that a narrow
// terminal shows every cell whole.
func WriteFitted(w io.Writer, header []string, rows [][]string, width int) error {
	if width <= 0 || TableWidth(header, rows) <= width || len(header) < 2 {
		return WriteRows(w, header, rows)
	}
	bw := bufio.NewWriter(w)
	key := 0
	for _, h := range header[1:] {
		key = max(key, utf8.RuneCountInString(h))
	}
	for n, r := range rows {
		if n > 0 {
			bw.WriteByte('\n')
		}
		for i, c := range r {
			if i == 0 {
				bw.WriteString(c + "\n")
				continue
			}
			h := ""
			if i < len(header) {
				h = header[i]
			}
			fmt.Fprintf(bw, "  %s%s  %s\n", h, strings.Repeat(" ", key-utf8.RuneCountInString(h)), c)
		}
	}
	return bw.Flush()
}
