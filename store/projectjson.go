package store

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/quotawatch/quotawatch/quota"
)

// projectFields are quota.Project's JSON names, in the order json.Marshal
// writes them; the first three are always written.
var projectFields = [...]string{"id", "name", "system", "state", "owner", "membership", "display"}

// decodeProject decodes a stored project as json.Unmarshal does. Projects
// are stored as json.Marshal writes them, and the commands read every one
// of them (10,000 decoded by encoding/json cost more than the rest of
// `history`): a value of exactly that form, without escapes, is read
// directly, and anything else goes to json.Unmarshal.
func decodeProject(v []byte) (quota.Project, error) {
	if p, ok := scanProject(v); ok {
		return p, nil
	}
	var p quota.Project
	err := json.Unmarshal(v, &p)
	return p, err
}

// scanProject reads v if it is a project as json.Marshal writes it with no
// escaped character; ok is false otherwise.
func scanProject(v []byte) (p quota.Project, ok bool) {
	strs := [...]*string{&p.ID, &p.Name, nil, &p.State, &p.Owner, &p.Membership, &p.Display}
	if len(v) < 2 || v[0] != '{' {
		return p, false
	}
	i, next := 1, 0
	for {
		key, n, ok := plainString(v[i:])
		if !ok {
			return p, false
		}
		f := next
		for f < len(projectFields) && projectFields[f] != key {
			f++
		}
		// The first three always come first; the others only once, in order.
		if f == len(projectFields) || next < 3 && f != next {
			return p, false
		}
		i += n
		if i >= len(v) || v[i] != ':' {
			return p, false
		}
		i++
		if strs[f] == nil { // system
			switch {
			case bytes.HasPrefix(v[i:], []byte("true")):
				p.System, i = true, i+4
			case bytes.HasPrefix(v[i:], []byte("false")):
				i += 5
			default:
				return p, false
			}
		} else {
			s, n, ok := plainString(v[i:])
			if !ok || f > 2 && s == "" { // json.Marshal leaves an empty optional out
				return p, false
			}
			*strs[f], i = s, i+n
		}
		next = f + 1
		switch {
		case i < len(v) && v[i] == ',':
			i++
		case i == len(v)-1 && v[i] == '}' && next >= 3:
			return p, true
		default:
			return p, false
		}
	}
}

// plainString reads a JSON string at the start of b that has no escape, no
// control character and only valid UTF-8, and returns it with its length
// in b.
func plainString(b []byte) (string, int, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", 0, false
	}
	ascii := true
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[1:i]) {
				return "", 0, false
			}
			return string(b[1:i]), i + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", 0, false
}
