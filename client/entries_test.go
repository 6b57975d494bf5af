package client

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// full is a complete quota object with the given numbers.
func full(usage, limit, pending, pusage, plimit, ppending string) string {
	return `{"usage": ` + usage + `, "limit": ` + limit + `, "pending": ` + pending +
		`, "project_usage": ` + pusage + `, "project_limit": ` + plimit + `, "project_pending": ` + ppending + `}`
}

func TestDecodeEntriesInAStableOrder(t *testing.T) {
	body := `{"b": {"pithos.diskspace": ` + full("5", "9223372036854775807", "1", "7", "10", "2") +
		`, "cyclades.vm": ` + full("1", "2", "0", "1", "2", "0") + `},
	 "a": {"cyclades.cpu": {"limit": 4, "usage": 3, "unknown": [1, {"x": "y"}], "pending": 0, "project_limit": 4, "project_usage": 3, "project_pending": 0}},
	 "d": {}}`
	got, err := decodeEntries(strings.NewReader(body), nil)
	require.NoError(t, err)
	require.Equal(t, []quota.Entry{
		{Project: "b", Resource: "cyclades.vm", Quota: quota.Quota{Limit: 2, Usage: 1, ProjectLimit: 2, ProjectUsage: 1}},
		{Project: "b", Resource: "pithos.diskspace", Quota: quota.Quota{Limit: quota.Unlimited, Usage: 5, Pending: 1, ProjectLimit: 10, ProjectUsage: 7, ProjectPending: 2}},
		{Project: "a", Resource: "cyclades.cpu", Quota: quota.Quota{Limit: 4, Usage: 3, ProjectLimit: 4, ProjectUsage: 3}},
	}, got)

	// The same as decoding to maps and flattening.
	m, err := decodeQuotas(strings.NewReader(body))
	require.NoError(t, err)
	require.ElementsMatch(t, m.Entries(), got)
	require.Contains(t, m, "d", "a project without resources stays in the map view")

	got, err = decodeEntries(strings.NewReader("null"), nil)
	require.NoError(t, err)
	require.Empty(t, got)
}

// TestDecodeEntriesRefusesWhatItCannotTrust: every class of hostile or
// broken /quotas body fails the whole decode, naming what was wrong.
func TestDecodeEntriesRefusesWhatItCannotTrust(t *testing.T) {
	ok := full("1", "10", "0", "1", "10", "0")
	tests := []struct {
		name, body string
		entry      *EntryError // nil: a syntax error
		err        string
	}{
		{"missing usage", `{"p": {"r": {"limit": 10, "pending": 0, "project_usage": 1, "project_limit": 10, "project_pending": 0}}}`,
			&EntryError{Project: "p", Resource: "r", Field: "usage", Problem: "missing"}, ""},
		{"missing project_usage", `{"p": {"r": {"usage": 1, "limit": 10, "pending": 0, "project_limit": 10, "project_pending": 0}}}`,
			&EntryError{Project: "p", Resource: "r", Field: "project_usage", Problem: "missing"}, ""},
		{"missing limit", `{"p": {"r": {"usage": 1, "pending": 0, "project_usage": 1, "project_limit": 10, "project_pending": 0}}}`,
			&EntryError{Project: "p", Resource: "r", Field: "limit", Problem: "missing"}, ""},
		{"null usage", `{"p": {"r": ` + full("null", "10", "0", "1", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "usage", Problem: "null"}, ""},
		{"negative usage", `{"p": {"r": ` + full("-5", "10", "0", "1", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "usage", Problem: "negative"}, ""},
		{"negative limit", `{"p": {"r": ` + full("1", "-1", "0", "1", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "limit", Problem: "negative"}, ""},
		{"string number", `{"p": {"r": ` + full(`"1"`, "10", "0", "1", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "usage", Problem: "not a number"}, ""},
		{"float", `{"p": {"r": ` + full("1.0", "10", "0", "1", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "usage", Problem: "not an integer"}, ""},
		{"exponent", `{"p": {"r": ` + full("1", "1e3", "0", "1", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "limit", Problem: "not an integer"}, ""},
		{"beyond int64", `{"p": {"r": ` + full("1", "9223372036854775808", "0", "1", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "limit", Problem: "beyond the int64 range"}, ""},
		{"project_usage below usage", `{"p": {"r": ` + full("5", "10", "0", "4", "10", "0") + `}}`,
			&EntryError{Project: "p", Resource: "r", Field: "project_usage", Problem: "4 is below the member's usage 5"}, ""},
		{"duplicated project", `{"p": {"r": ` + ok + `}, "q": {}, "p": {"r": ` + ok + `}}`,
			&EntryError{Project: "p", Problem: "listed twice"}, ""},
		{"duplicated resource", `{"p": {"r": ` + ok + `, "r": ` + ok + `}}`,
			&EntryError{Project: "p", Resource: "r", Problem: "listed twice"}, ""},
		{"duplicated field", `{"p": {"r": {"usage": 1, "usage": 2, "limit": 10, "pending": 0, "project_usage": 2, "project_limit": 10, "project_pending": 0}}}`,
			&EntryError{Project: "p", Resource: "r", Field: "usage", Problem: "listed twice"}, ""},
		{"resource not an object", `{"p": {"r": 5}}`, &EntryError{Project: "p", Resource: "r", Problem: "not an object"}, ""},
		{"null project", `{"p": null}`, nil, "project p: decoding response"},
		{"trailing bytes", `{"p": {"r": ` + ok + `}} {"p": {}}`, nil, "data after the JSON value"},
		{"trailing garbage", `{}x`, nil, "data after the JSON value"},
		{"array", `[]`, nil, "want an object of projects"},
		{"truncated", `{"p": {"r": ` + ok, nil, "unexpected end of the body"},
		{"empty body", ``, nil, "unexpected end of the body"},
		{"leading zero", `{"p": {"r": ` + full("01", "10", "0", "1", "10", "0") + `}}`, nil, "leading zero"},
		{"invalid utf-8 key", "{\"p\xff\": {}}", nil, "invalid UTF-8"},
		{"control character", "{\"p\n\": {}}", nil, "control character"},
		{"deep nesting", `{"p": {"r": {"x": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}}`, nil, "nesting deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEntries(strings.NewReader(tt.body), nil)
			require.Error(t, err)
			require.Nil(t, got)
			var ee *EntryError
			if tt.entry != nil {
				require.True(t, errors.As(err, &ee), "%v", err)
				require.Equal(t, tt.entry, ee)
				require.Contains(t, err.Error(), "project "+tt.entry.Project)
				return
			}
			require.False(t, errors.As(err, &ee), "%v", err)
			require.ErrorContains(t, err, tt.err)
		})
	}
}

// TestDecodeEntriesServiceLevel: service_project_quotas carries only the
// project-level numbers, and those are required.
func TestDecodeEntriesServiceLevel(t *testing.T) {
	q, err := scanQuotas(strings.NewReader(`{"p": {"cyclades.vm": {"project_limit": 10, "project_usage": 4, "project_pending": 1}}}`), projectFields)
	require.NoError(t, err)
	require.Equal(t, Quotas{"p": {"cyclades.vm": {ProjectLimit: 10, ProjectUsage: 4, ProjectPending: 1}}}, q)
	_, err = scanQuotas(strings.NewReader(`{"p": {"cyclades.vm": {"project_limit": 10, "project_pending": 1}}}`), projectFields)
	require.EqualError(t, err, "project p, resource cyclades.vm, field project_usage: missing")
}

// TestDecodeEntriesEscapedKeys: keys are decoded as encoding/json does.
func TestDecodeEntriesEscapedKeys(t *testing.T) {
	got, err := decodeEntries(strings.NewReader(`{"p\u00e9\"\\": {"r\/x": `+full("1", "2", "0", "1", "2", "0")+`}}`), nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "p\u00e9\"\\", got[0].Project)
	require.Equal(t, "r/x", got[0].Resource)
}

// FuzzDecodeEntries: whatever the body, the strict decode never panics,
// and what it accepts encoding/json accepts too, with the same numbers.
func FuzzDecodeEntries(f *testing.F) {
	f.Add(`{"a": {"pithos.diskspace": ` + full("1", "9223372036854775807", "0", "1", "9223372036854775807", "0") + `}}`)
	f.Add(`{"a": {}, "b": {}}`)
	f.Add(`null`)
	f.Add(`{"a": {"x": {"usage": -1}, "y": {"usage": 1e3}}}`)
	f.Add(`{"a": {"x": {"usage": 1, "z": [true, false, null, "s", {"k": -0.5e+3}]}}}`)
	f.Fuzz(func(t *testing.T, body string) {
		got, err := decodeEntries(strings.NewReader(body), nil)
		// However the body arrives, the same entries or the same error.
		for _, r := range []io.Reader{iotest.OneByteReader(strings.NewReader(body)), iotest.DataErrReader(strings.NewReader(body))} {
			again, err2 := decodeEntries(r, nil)
			require.Equal(t, fmt.Sprint(err), fmt.Sprint(err2))
			require.Equal(t, got, again)
		}
		if err != nil {
			return
		}
		var want map[string]map[string]quota.Quota
		require.NoError(t, json.Unmarshal([]byte(body), &want), "accepted what encoding/json refuses")
		flat := Quotas(want).Entries()
		require.ElementsMatch(t, flat, got)
		for _, e := range got {
			require.GreaterOrEqual(t, e.Quota.Usage, int64(0))
			require.GreaterOrEqual(t, e.Quota.ProjectUsage, e.Quota.Usage)
		}
	})
}

// TestDecodeEntriesAcrossTheBuffer: a body many times the scanner's
// buffer, read in small odd pieces, decodes as encoding/json reads it,
// and a fault beyond the first buffer is placed at its byte.
func TestDecodeEntriesAcrossTheBuffer(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",\n ")
		}
		fmt.Fprintf(&b, `"project-%05d-%s": {"cyclades.vm": %s, "pithos.diskspace": %s}`, i, strings.Repeat("x", i%40),
			full(fmt.Sprint(i%7), "10", "0", fmt.Sprint(i%7), "20", "0"), full(fmt.Sprint(i), fmt.Sprint(1<<40), "1", fmt.Sprint(2*i), fmt.Sprint(1<<41), "2"))
	}
	b.WriteString("}\n")
	body := b.String()
	require.Greater(t, len(body), 4*scanBuffer)
	var want map[string]map[string]quota.Quota
	require.NoError(t, json.Unmarshal([]byte(body), &want))
	for _, r := range []io.Reader{strings.NewReader(body), &chunks{r: strings.NewReader(body), n: 7}, iotest.HalfReader(strings.NewReader(body))} {
		got, err := decodeEntries(r, nil)
		require.NoError(t, err)
		byKey := func(a, b quota.Entry) int {
			return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Resource, b.Resource))
		}
		wantEs := Quotas(want).Entries()
		slices.SortFunc(wantEs, byKey)
		slices.SortFunc(got, byKey)
		require.Equal(t, wantEs, got)
	}
	at := 3 * scanBuffer
	for body[at] != ',' || body[at-1] != '}' {
		at++
	}
	_, err := decodeEntries(&chunks{r: strings.NewReader(body[:at] + "?" + body[at+1:]), n: 5}, nil)
	require.ErrorContains(t, err, fmt.Sprintf("decoding response at byte %d: ", at+1))
}

// chunks reads at most n bytes at a time.
type chunks struct {
	r io.Reader
	n int
}

func (c *chunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestResponseCap: a body over the cap fails the call, one at the cap
// does not.
func TestResponseCap(t *testing.T) {
	body := `{"p": {"r": ` + full("1", "10", "0", "1", "10", "0") + `}}`
	for _, tt := range []struct {
		name string
		cap  int64
		ok   bool
	}{{"at the cap", int64(len(body)), true}, {"one byte over", int64(len(body)) - 1, false}} {
		t.Run(tt.name, func(t *testing.T) {
			c := &cappedBody{ReadCloser: io.NopCloser(strings.NewReader(body)), left: tt.cap}
			_, err := decodeEntries(c, nil)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errBodyTooLarge)
		})
	}
}

// TestListingsRequireSizes: a listing element the planner would size a
// move from must carry its size, as a non-negative integer.
func TestListingsRequireSizes(t *testing.T) {
	tests := []struct {
		name, body string
		v          any
		err        string
	}{
		{"container ok", `{"name": "c", "bytes": 5}`, new(Container), ""},
		{"container without bytes", `{"name": "c", "count": 1}`, new(Container), "container c: field bytes missing"},
		{"container with null bytes", `{"name": "c", "bytes": null}`, new(Container), "container c: field bytes is null"},
		{"container with negative bytes", `{"name": "c", "bytes": -1}`, new(Container), "container c: field bytes is negative: -1"},
		{"flavor ok", `{"id": 3, "vcpus": 2, "ram": 2048, "disk": 20}`, new(Flavor), ""},
		{"flavor without ram", `{"id": 3, "vcpus": 2, "disk": 20}`, new(Flavor), "flavor 3: field ram missing"},
		{"flavor with a float", `{"id": 3, "vcpus": 2.5, "ram": 1, "disk": 20}`, new(Flavor), "flavor 3: field vcpus is not an integer: 2.5"},
		{"volume ok", `{"id": "7", "size": 20}`, new(Volume), ""},
		{"volume without size", `{"id": "7"}`, new(Volume), "volume 7: field size missing"},
		{"volume with a string size", `{"id": "7", "size": "20"}`, new(Volume), `volume 7: field size is not an integer: "20"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := json.Unmarshal([]byte(tt.body), tt.v)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.err)
		})
	}
}

// repeatReader yields head, then body repeated n times, then tail, without
// holding the whole stream.
type repeatReader struct {
	parts [][]byte
	n     int
	i     int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for r.i < len(r.parts) {
		part := r.parts[r.i]
		if r.off == len(part) {
			r.off = 0
			if r.i == 1 && r.n > 1 {
				r.n--
				continue
			}
			r.i++
			continue
		}
		n := copy(p, part[r.off:])
		r.off += n
		return n, nil
	}
	return 0, io.EOF
}

// TestDecodeMemoryFollowsEntries: a 64 MB body holding one entry, padded
// with white space and a huge unknown string, allocates about nothing more
// than a small body does.
func TestDecodeMemoryFollowsEntries(t *testing.T) {
	pad := []byte(strings.Repeat(" ", 1<<20))
	blob := []byte(strings.Repeat("x", 1<<20))
	measure := func(r io.Reader) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		got, err := decodeEntries(r, nil)
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		require.Len(t, got, 1)
		return after.TotalAlloc - before.TotalAlloc
	}
	entry := `{"p": {"r": {"usage": 1, "limit": 2, "pending": 0, "project_usage": 1, "project_limit": 2, "project_pending": 0, "note": "`
	padded := measure(&repeatReader{parts: [][]byte{[]byte(entry), blob, []byte(`"}}`), pad, []byte(`}`)}, n: 32})
	// The padding repeats the blob 32 times (32 MiB of string) and then
	// 1 MiB of white space.
	small := measure(strings.NewReader(entry + `x"}}}`))
	require.Less(t, padded, small+1<<20, "a 33 MB body allocated %d bytes, a small one %d", padded, small)
}

// TestFieldIndex: the fields' indexes are their bits in quotaFields.
func TestFieldIndex(t *testing.T) {
	for i, f := range quotaFields {
		require.Equal(t, i, fieldIndex([]byte(f)), f)
	}
	for _, k := range []string{"", "Usage", "usage ", "project", "project_usages"} {
		require.Equal(t, -1, fieldIndex([]byte(k)), k)
	}
}

// TestDecodeEntriesStalledReader: a reader that returns nothing, and no
// error, fails the decode instead of spinning.
func TestDecodeEntriesStalledReader(t *testing.T) {
	_, err := decodeEntries(stalled{}, nil)
	require.ErrorIs(t, err, io.ErrNoProgress)
}

type stalled struct{}

func (stalled) Read([]byte) (int, error) { return 0, nil }
