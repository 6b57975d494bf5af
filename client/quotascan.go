package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"github.com/quotawatch/quotawatch/quota"
)

// EntryError says which entry of a quota listing is not to be trusted and
// why. A poll that meets one is insufficient: nothing is decided on it.
type EntryError struct {
	Project  string
	Resource string // "" when the problem is the project as a whole
	Field    string // "" when the problem is the entry as a whole
	Problem  string
}

func (e *EntryError) Error() string {
	s := "project " + e.Project
	if e.Resource != "" {
		s += ", resource " + e.Resource
	}
	if e.Field != "" {
		s += ", field " + e.Field
	}
	return s + ": " + e.Problem
}

// quotaFields are the numbers of a quota object, in bit order.
var quotaFields = [...]string{"usage", "limit", "pending", "project_usage", "project_limit", "project_pending"}

const (
	// userFields: every number of a user's /quotas entry.
	userFields = 1<<len(quotaFields) - 1
	// projectFields: the project-level numbers of service_project_quotas.
	projectFields = 1<<3 | 1<<4 | 1<<5
)

// maxSkipDepth bounds the nesting of values skipped under unknown keys.
const maxSkipDepth = 64

// quotaScanner decodes a project → resource → quota object straight from
// the body into entries. It is a scanner for this one fixed schema rather
// than encoding/json because it is several times faster (the cycle spends
// most of its time here) and because it checks what encoding/json cannot:
// duplicated keys, missing numbers, and anything after the value. It holds
// one buffer and the entries it returns, whatever the size of the body.
type quotaScanner struct {
	// The scanner reads through its own buffer rather than a
	// bufio.Reader: a byte is then a bounds check and an index, not a
	// call, and the body is a few bytes per number.
	r    io.Reader
	buf  []byte
	pos  int   // next byte in buf
	end  int   // bytes read into buf
	base int64 // offset in the body of buf[0]
	rerr error // the reader's error, once it returned one with data
	// required are the numbers every quota must have.
	required uint8
	key      []byte            // scratch for the current key
	names    map[string]string // resource names, one string each per poll
	// order and prevOrder are the resource names of the current and the
	// previous project, in the body's order.
	order, prevOrder []string
	seen             map[string]struct{}
	// project, when set, is told of every project, even one with no
	// resources (the map view keeps those).
	project func(string)
}

// scanBuffer is the size of the scanner's buffer.
const scanBuffer = 64 << 10

func newQuotaScanner(r io.Reader, required uint8, hint int) *quotaScanner {
	return &quotaScanner{
		r:        r,
		buf:      make([]byte, scanBuffer),
		required: required,
		key:      make([]byte, 0, 64),
		names:    make(map[string]string, 32),
		seen:     make(map[string]struct{}, hint),
	}
}

// scanEntries decodes a project → resource → quota body into out, with
// the numbers in required present: projects in the body's order, each
// project's resources by name, an order that is stable between polls.
func scanEntries(r io.Reader, out []quota.Entry, required uint8) ([]quota.Entry, error) {
	return newQuotaScanner(r, required, cap(out)/8).entries(out)
}

func (s *quotaScanner) entries(out []quota.Entry) ([]quota.Entry, error) {
	out, err := s.top(out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *quotaScanner) syntax(format string, args ...any) error {
	return fmt.Errorf("decoding response at byte %d: %s", s.base+int64(s.pos), fmt.Sprintf(format, args...))
}

// read returns the next byte of the body; its end is a syntax error.
func (s *quotaScanner) read() (byte, error) {
	if s.pos < s.end {
		b := s.buf[s.pos]
		s.pos++
		return b, nil
	}
	return s.readMore()
}

func (s *quotaScanner) readMore() (byte, error) {
	if err := s.fill(); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, s.syntax("unexpected end of the body")
		}
		return 0, fmt.Errorf("reading response: %w", err)
	}
	b := s.buf[s.pos]
	s.pos++
	return b, nil
}

// fill reads more of the body once buf is consumed, keeping its last
// byte so that unread can step back over it.
func (s *quotaScanner) fill() error {
	if s.end > 0 {
		s.buf[0] = s.buf[s.end-1]
		s.base += int64(s.end - 1)
		s.pos, s.end = 1, 1
	}
	if s.rerr != nil {
		return s.rerr
	}
	// A reader that keeps returning nothing is given up on, as bufio
	// does.
	for range 100 {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if n > 0 {
			s.rerr = err
			return nil
		}
		if err != nil {
			s.rerr = err
			return err
		}
	}
	s.rerr = io.ErrNoProgress
	return s.rerr
}

// unread steps back over the byte read last.
func (s *quotaScanner) unread() { s.pos-- }

// next returns the next byte that is not white space.
func (s *quotaScanner) next() (byte, error) {
	for {
		b, err := s.read()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return b, nil
	}
}

func (s *quotaScanner) expect(want byte, what string) error {
	b, err := s.next()
	if err != nil {
		return err
	}
	if b != want {
		return s.syntax("want %s, got %q", what, b)
	}
	return nil
}

// literal reads the rest of true, false or null after its first byte.
func (s *quotaScanner) literal(rest string) error {
	for i := 0; i < len(rest); i++ {
		b, err := s.read()
		if err != nil {
			return err
		}
		if b != rest[i] {
			return s.syntax("invalid literal")
		}
	}
	return nil
}

func (s *quotaScanner) top(out []quota.Entry) ([]quota.Entry, error) {
	b, err := s.next()
	if err != nil {
		return nil, err
	}
	switch b {
	case 'n':
		if err := s.literal("ull"); err != nil {
			return nil, err
		}
	case '{':
		if out, err = s.projects(out); err != nil {
			return nil, err
		}
	default:
		return nil, s.syntax("want an object of projects, got %q", b)
	}
	for {
		if s.pos == s.end {
			err := s.fill()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, fmt.Errorf("reading response: %w", err)
			}
		}
		b := s.buf[s.pos]
		s.pos++
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return nil, s.syntax("data after the JSON value")
	}
}

// members calls each for every key of an object whose '{' is read, with
// the key in s.key; each must consume the value.
func (s *quotaScanner) members(each func() error) error {
	b, err := s.next()
	if err != nil {
		return err
	}
	if b == '}' {
		return nil
	}
	for {
		if b != '"' {
			return s.syntax("want a key, got %q", b)
		}
		if err := s.str(); err != nil {
			return err
		}
		if err := s.expect(':', "':'"); err != nil {
			return err
		}
		if err := each(); err != nil {
			return err
		}
		if b, err = s.next(); err != nil {
			return err
		}
		switch b {
		case '}':
			return nil
		case ',':
		default:
			return s.syntax("want ',' or '}', got %q", b)
		}
		if b, err = s.next(); err != nil {
			return err
		}
	}
}

func (s *quotaScanner) projects(out []quota.Entry) ([]quota.Entry, error) {
	err := s.members(func() error {
		project := string(s.key)
		if _, dup := s.seen[project]; dup {
			return &EntryError{Project: project, Problem: "listed twice"}
		}
		s.seen[project] = struct{}{}
		if s.project != nil {
			s.project(project)
		}
		if err := s.expect('{', "an object of resources"); err != nil {
			return fmt.Errorf("project %s: %w", project, err)
		}
		first := len(out)
		s.order, s.prevOrder = s.prevOrder[:0], s.order
		return s.members(func() error {
			// Projects list the same resources in the same order, mostly:
			// the previous project's name at this place spares a lookup.
			var name string
			if r := len(s.order); r < len(s.prevOrder) && string(s.key) == s.prevOrder[r] {
				name = s.prevOrder[r]
			} else if n, ok := s.names[string(s.key)]; ok {
				name = n
			} else {
				name = string(s.key)
				s.names[name] = name
			}
			s.order = append(s.order, name)
			for _, e := range out[first:] {
				if e.Resource == name {
					return &EntryError{Project: project, Resource: name, Problem: "listed twice"}
				}
			}
			q, err := s.quota(project, name)
			if err != nil {
				return err
			}
			// Resources by name: the cloud writes a project's resources
			// from a map, so its order may change between polls.
			i := len(out)
			out = append(out, quota.Entry{Project: project, Resource: name, Quota: q})
			for ; i > first && out[i-1].Resource > name; i-- {
				out[i], out[i-1] = out[i-1], out[i]
			}
			return nil
		})
	})
	return out, err
}

func (s *quotaScanner) quota(project, resource string) (quota.Quota, error) {
	var q quota.Quota
	b, err := s.next()
	if err != nil {
		return q, err
	}
	if b != '{' {
		s.unread()
		return q, &EntryError{Project: project, Resource: resource, Problem: "not an object"}
	}
	var have uint8
	err = s.members(func() error {
		i := fieldIndex(s.key)
		if i < 0 {
			return s.skip()
		}
		field := quotaFields[i]
		if have&(1<<i) != 0 {
			return &EntryError{Project: project, Resource: resource, Field: field, Problem: "listed twice"}
		}
		have |= 1 << i
		n, problem, err := s.number()
		if err != nil {
			return err
		}
		if problem != "" {
			return &EntryError{Project: project, Resource: resource, Field: field, Problem: problem}
		}
		switch i {
		case 0:
			q.Usage = n
		case 1:
			q.Limit = n
		case 2:
			q.Pending = n
		case 3:
			q.ProjectUsage = n
		case 4:
			q.ProjectLimit = n
		case 5:
			q.ProjectPending = n
		}
		return nil
	})
	if err != nil {
		return q, err
	}
	if missing := s.required &^ have; missing != 0 {
		for i, f := range quotaFields {
			if missing&(1<<i) != 0 {
				return q, &EntryError{Project: project, Resource: resource, Field: f, Problem: "missing"}
			}
		}
	}
	if s.required&1 != 0 && q.ProjectUsage < q.Usage {
		return q, &EntryError{Project: project, Resource: resource, Field: "project_usage",
			Problem: fmt.Sprintf("%d is below the member's usage %d", q.ProjectUsage, q.Usage)}
	}
	return q, nil
}

func fieldIndex(k []byte) int {
	// A switch on the key compiles to comparisons by length and value,
	// without converting it.
	switch string(k) {
	case "usage":
		return 0
	case "limit":
		return 1
	case "pending":
		return 2
	case "project_usage":
		return 3
	case "project_limit":
		return 4
	case "project_pending":
		return 5
	}
	return -1
}

// number reads a quota number: a non-negative JSON integer that fits in
// an int64. A value that is valid JSON but no such number is a problem of
// the entry (problem set), anything else a syntax error.
func (s *quotaScanner) number() (n int64, problem string, err error) {
	b, err := s.next()
	if err != nil {
		return 0, "", err
	}
	switch b {
	case 'n':
		return 0, "null", s.literal("ull")
	case '"', '{', '[', 't', 'f':
		s.unread()
		return 0, "not a number", s.skip()
	}
	neg := b == '-'
	if neg {
		if b, err = s.read(); err != nil {
			return 0, "", err
		}
	}
	if b < '0' || b > '9' {
		return 0, "", s.syntax("invalid number")
	}
	var u uint64
	overflow := false
	first := b
	digits := 0
	for {
		if digits > 0 && first == '0' {
			return 0, "", s.syntax("invalid number: leading zero")
		}
		d := uint64(b - '0')
		if u > (math.MaxInt64-d)/10 {
			overflow = true
		} else {
			u = u*10 + d
		}
		digits++
		if b, err = s.read(); err != nil {
			return 0, "", err
		}
		if b < '0' || b > '9' {
			break
		}
	}
	fraction := false
	if b == '.' || b == 'e' || b == 'E' {
		// Valid JSON perhaps, but never a quota: read it through so the
		// problem is reported as the entry's, not as broken syntax.
		fraction = true
		s.unread()
		if err := s.skipNumberTail(); err != nil {
			return 0, "", err
		}
	} else {
		s.unread()
	}
	switch {
	case fraction:
		return 0, "not an integer", nil
	case neg && (u != 0 || overflow):
		return 0, "negative", nil
	case overflow:
		return 0, "beyond the int64 range", nil
	}
	return int64(u), "", nil
}

// skipNumberTail reads a fraction and exponent after the integer part.
func (s *quotaScanner) skipNumberTail() error {
	b, err := s.read()
	if err != nil {
		return err
	}
	digits := func() error {
		n := 0
		for {
			b, err := s.read()
			if err != nil {
				return err
			}
			if b < '0' || b > '9' {
				s.unread()
				if n == 0 {
					return s.syntax("invalid number")
				}
				return nil
			}
			n++
		}
	}
	if b == '.' {
		if err := digits(); err != nil {
			return err
		}
		if b, err = s.read(); err != nil {
			return err
		}
	}
	if b == 'e' || b == 'E' {
		if b, err = s.read(); err != nil {
			return err
		}
		if b != '+' && b != '-' {
			s.unread()
		}
		return digits()
	}
	s.unread()
	return nil
}

// maxKey bounds a key: project ids are UUIDs and resource names short, so
// a longer key is no quota listing and must not grow memory with the body.
const maxKey = 1024

// str reads a key whose opening quote is read into s.key.
func (s *quotaScanner) str() error {
	s.key = s.key[:0]
	escaped := false
	var high byte // the bits of every byte: ASCII needs no UTF-8 check
	for {
		// Plain bytes up to a quote, an escape, a control character or
		// the bound are taken from the buffer at once; the rest byte by
		// byte below.
		i, lim := s.pos, min(s.end, s.pos+maxKey+1-len(s.key))
		for i < lim {
			c := s.buf[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			high |= c
			i++
		}
		if i > s.pos {
			s.key = append(s.key, s.buf[s.pos:i]...)
			s.pos = i
		}
		b, err := s.read()
		if err != nil {
			return err
		}
		if len(s.key) > maxKey {
			return s.syntax("a key longer than %d bytes", maxKey)
		}
		switch {
		case b == '"':
			if escaped {
				return s.unescape()
			}
			if high >= utf8.RuneSelf && !utf8.Valid(s.key) {
				return s.syntax("invalid UTF-8 in a string")
			}
			return nil
		case b == '\\':
			escaped = true
			s.key = append(s.key, b)
			if b, err = s.read(); err != nil {
				return err
			}
			s.key = append(s.key, b)
		case b < 0x20:
			return s.syntax("control character in a string")
		default:
			high |= b
			s.key = append(s.key, b)
		}
	}
}

// unescape decodes s.key, raw and with escapes, as encoding/json does.
// Keys with escapes are rare: this path may be slow.
func (s *quotaScanner) unescape() error {
	raw := make([]byte, 0, len(s.key)+2)
	raw = append(append(append(raw, '"'), s.key...), '"')
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return s.syntax("invalid string: %v", err)
	}
	if !utf8.ValidString(v) || !utf8.Valid(s.key) {
		return s.syntax("invalid UTF-8 in a string")
	}
	s.key = append(s.key[:0], v...)
	return nil
}

// skipString reads through a string value whose opening quote is read,
// keeping nothing of it, however long it is.
func (s *quotaScanner) skipString() error {
	for {
		b, err := s.read()
		if err != nil {
			return err
		}
		switch {
		case b == '"':
			return nil
		case b < 0x20:
			return s.syntax("control character in a string")
		case b == '\\':
			if b, err = s.read(); err != nil {
				return err
			}
			switch b {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					h, err := s.read()
					if err != nil {
						return err
					}
					if !isHex(h) {
						return s.syntax("invalid \\u escape")
					}
				}
			default:
				return s.syntax("invalid escape %q", b)
			}
		}
	}
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// skip reads through one JSON value of any kind (under a key we do not
// use), nested at most maxSkipDepth deep.
func (s *quotaScanner) skip() error { return s.skipAt(0) }

func (s *quotaScanner) skipAt(depth int) error {
	if depth > maxSkipDepth {
		return s.syntax("nesting deeper than %d", maxSkipDepth)
	}
	b, err := s.next()
	if err != nil {
		return err
	}
	switch b {
	case '{':
		return s.members(func() error { return s.skipAt(depth + 1) })
	case '[':
		c, err := s.next()
		if err != nil {
			return err
		}
		if c == ']' {
			return nil
		}
		s.unread()
		for {
			if err := s.skipAt(depth + 1); err != nil {
				return err
			}
			if c, err = s.next(); err != nil {
				return err
			}
			switch c {
			case ']':
				return nil
			case ',':
			default:
				return s.syntax("want ',' or ']', got %q", c)
			}
		}
	case '"':
		return s.skipString()
	case 't':
		return s.literal("rue")
	case 'f':
		return s.literal("alse")
	case 'n':
		return s.literal("ull")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		s.unread()
		_, _, err := s.number()
		return err
	}
	return s.syntax("unexpected %q", b)
}
