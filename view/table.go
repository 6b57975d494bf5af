// Package view is what quotawatch shows of its state: queries that read the
// store into typed rows (the rows of `status`, `history` and `actions`, the
// same rows as JSON) and the renderers that print them for people. The
// command line and the daemon's status page both show state through it, so
// a row reads the same wherever it appears.
package view

import (
	"bufio"
	"bytes"
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
	// Append, when set, is used instead of Cell: it appends the row's cell
	// to b, so that a table of 80,000 rows makes no string per cell.
	Append func(b []byte, r *R) []byte
}

// WriteTable writes rows as aligned columns under their headers.
func WriteTable[R any](w io.Writer, cols []Column[R], rows []R) error {
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.Header
	}
	t := newTable(header, len(rows), 16*len(cols)*len(rows))
	for i := range rows {
		if i == 64 && len(rows) > 2*i {
			// Room for the rest, by the size of the first rows.
			t.text = slices.Grow(t.text, len(t.text)/i*(len(rows)-i)*9/8)
		}
		r := &rows[i]
		for _, c := range cols {
			if c.Append != nil {
				t.text = c.Append(t.text, r)
			} else {
				t.text = append(t.text, c.Cell(*r)...)
			}
			t.endCell()
		}
	}
	return t.write(w)
}

// WriteRows writes a header and rows of cells as aligned columns, as
// text/tabwriter aligns them with padding 2. It never truncates a cell:
// names are what people look for.
func WriteRows(w io.Writer, header []string, rows [][]string) error {
	for _, r := range rows {
		if len(r) != len(header) {
			return writeBuffered(w, func(bw *bufio.Writer) error { return writeTabbed(bw, header, rows) })
		}
	}
	size := 0
	for _, r := range rows {
		for _, c := range r {
			size += len(c)
		}
	}
	t := newTable(header, len(rows), size)
	for _, r := range rows {
		for _, c := range r {
			t.text = append(t.text, c...)
			t.endCell()
		}
	}
	return t.write(w)
}

// writeBuffered runs write on w if it is a *bufio.Writer, else on a buffer
// it then flushes to w.
func writeBuffered(w io.Writer, write func(bw *bufio.Writer) error) error {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	err := write(bw)
	if err == nil && !ok {
		err = bw.Flush()
	}
	return err
}

// table is a text table of n rows rendered into one buffer: a cell per
// header, row after row, ends holding where each cell ends in text. Each
// cell is measured as it is added, while it is in the cache.
type table struct {
	header []string
	n      int
	text   []byte
	ends   []int
	// width is each column's widest cell in runes but the last column's;
	// plain: no cell holds a tabwriter's cell or line break; ascii: every
	// cell is ASCII, one column a byte.
	width        []int
	plain, ascii bool
}

func newTable(header []string, rows, size int) *table {
	t := &table{header: header, n: rows, text: make([]byte, 0, size), ends: make([]int, 0, len(header)*rows),
		width: make([]int, len(header)), plain: true, ascii: true}
	for i, h := range header {
		plain, ascii := scanCell(h)
		t.plain, t.ascii = t.plain && plain, t.ascii && ascii
		if i < len(header)-1 {
			t.width[i] = utf8.RuneCountInString(h)
		}
	}
	return t
}

// endCell ends the cell appended to text since the last.
func (t *table) endCell() {
	k := len(t.ends)
	c := t.cell0(k)
	plain, ascii := scanCell(c)
	t.plain, t.ascii = t.plain && plain, t.ascii && ascii
	if i := k % len(t.header); i < len(t.header)-1 {
		n := len(c)
		if !ascii {
			n = utf8.RuneCount(c)
		}
		t.width[i] = max(t.width[i], n)
	}
	t.ends = append(t.ends, len(t.text))
}

// cell0 returns the text from the end of cell k-1 on.
func (t *table) cell0(k int) []byte {
	if k == 0 {
		return t.text
	}
	return t.text[t.ends[k-1]:]
}

func (t *table) rows() int { return t.n }

// cell returns cell k, counted row by row.
func (t *table) cell(k int) []byte {
	start := 0
	if k > 0 {
		start = t.ends[k-1]
	}
	return t.text[start:t.ends[k]]
}

// plainTable reports whether every row has the header's cells and no cell
// holds a character the tabwriter would take for a cell or line break.
func plainTable(header []string, rows [][]string) bool {
	for _, r := range rows {
		if len(r) != len(header) {
			return false
		}
		for _, c := range r {
			if plain, _ := scanCell(c); !plain {
				return false
			}
		}
	}
	for _, c := range header {
		if plain, _ := scanCell(c); !plain {
			return false
		}
	}
	return true
}

// scanCell reports whether c holds no character the tabwriter would take
// for a cell or line break, and whether it is all ASCII (one column a
// byte).
func scanCell[S string | []byte](c S) (plain, ascii bool) {
	plain, ascii = true, true
	for i := 0; i < len(c); i++ {
		if b := c[i]; b < 0x20 || b >= 0x80 {
			switch b {
			case '\t', '\n', '\v', '\f', 0xff:
				return false, false
			}
			if b >= 0x80 {
				ascii = false
			}
		}
	}
	return plain, ascii
}

// write writes the table aligned, if it is plain, else through the
// tabwriter.
func (t *table) write(w io.Writer) error {
	if len(t.header) == 0 {
		return writeBuffered(w, func(bw *bufio.Writer) error { return writeTabbed(bw, t.header, make([][]string, t.rows())) })
	}
	if !t.plain {
		return t.writeTabbed(w)
	}
	return writeAligned(w, t, t.width, t.ascii)
}

// writeTabbed writes a table that is not plain through the tabwriter.
func (t *table) writeTabbed(w io.Writer) error {
	cols := len(t.header)
	rows := make([][]string, t.rows())
	for i := range rows {
		rows[i] = make([]string, cols)
		for j := range rows[i] {
			rows[i][j] = string(t.cell(i*cols + j))
		}
	}
	return writeBuffered(w, func(bw *bufio.Writer) error { return writeTabbed(bw, t.header, rows) })
}

// writeAligned pads each cell but the last of a line to its column's
// widest cell plus two spaces, widths counted in runes: what the
// tabwriter does for a table whose rows all have the same cells, without
// its copies and its write per cell. Lines are collected and written 64
// KiB at a time.
func writeAligned(w io.Writer, t *table, width []int, allASCII bool) error {
	cols := len(t.header)
	spaces := bytes.Repeat([]byte{' '}, slices.Max(width)+2)
	out := make([]byte, 0, 64<<10+1024)
	cell := func(c []byte, i int) {
		out = append(out, c...)
		if i < cols-1 {
			n := len(c)
			if !allASCII {
				n = utf8.RuneCount(c)
			}
			out = append(out, spaces[:width[i]-n+2]...)
		}
	}
	for i, h := range t.header {
		cell([]byte(h), i)
	}
	out = append(out, '\n')
	k := 0
	for range t.rows() {
		for i := range cols {
			cell(t.cell(k), i)
			k++
		}
		out = append(out, '\n')
		if len(out) >= 64<<10 {
			if _, err := w.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
	}
	_, err := w.Write(out)
	return err
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
	var b [64]byte
	return string(AppendUsage(b[:0], resource, q))
}

// AppendUsage appends Usage(resource, q) to b.
func AppendUsage(b []byte, resource string, q quota.Quota) []byte {
	return appendUsage(b, quota.UnitOf(resource), q.Usage, q.EffectiveLimit(), q.Ratio())
}

// ProjectUsage renders the project-wide usage against the project's limit.
func ProjectUsage(resource string, q quota.Quota) string {
	var b [64]byte
	return string(AppendProjectUsage(b[:0], resource, q))
}

// AppendProjectUsage appends ProjectUsage(resource, q) to b.
func AppendProjectUsage(b []byte, resource string, q quota.Quota) []byte {
	return appendUsage(b, quota.UnitOf(resource), q.ProjectUsage, q.ProjectLimit, q.ProjectRatio())
}

func appendUsage(b []byte, u quota.Unit, usage, limit int64, ratio float64) []byte {
	b = u.AppendAmount(b, usage)
	b = append(b, " / "...)
	b = u.AppendAmount(b, limit)
	b = append(b, " ("...)
	b = quota.AppendPercent(b, ratio)
	return append(b, ')')
}

// Time renders a time in UTC to the second, or "-" for the zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

const timeLayout = "2006-01-02 15:04:05Z"

// timeAppender returns a function that appends Time(t) to b, remembering
// the last time it rendered: the rows of a table mostly share their poll's
// time.
func timeAppender() func(b []byte, t time.Time) []byte {
	var last time.Time
	var text []byte
	return func(b []byte, t time.Time) []byte {
		if text == nil || !t.Equal(last) || t.IsZero() != last.IsZero() {
			last = t
			if t.IsZero() {
				text = append(text[:0], '-')
			} else {
				text = t.UTC().AppendFormat(text[:0], timeLayout)
			}
		}
		return append(b, text...)
	}
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
