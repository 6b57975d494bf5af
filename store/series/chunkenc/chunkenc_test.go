package chunkenc

import (
	"encoding/binary"
	"math"
	"math/bits"
	"testing"

	"github.com/stretchr/testify/require"
)

// chunkWriter builds a chunk one poll at a time with shift 0, the obvious
// way: the reference Encode is checked against.
type chunkWriter struct {
	buf     []byte
	idx     uint32 // poll index of the last point
	present bool
	started bool // a point was written
}

// add records that from poll index idx on the series is absent, or present
// with values next; prev are the values of the last point written.
func (w *chunkWriter) add(idx uint32, prev, next Vals, present bool) {
	if !w.started {
		prev = Vals{}
	}
	if present == w.present && (!present || next == prev) {
		return
	}
	if !w.started {
		w.buf = append(w.buf[:0], 0) // shift
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(idx-w.idx))
	w.buf = AppendPoint(w.buf, prev, next, !present)
	w.idx = idx
	w.present = present
	w.started = true
}

// recode rewrites a chunk with the largest shift its deltas allow.
func recode(chunk []byte) ([]byte, error) {
	r := chunkReader{b: chunk}
	shift := 63
	var prev Vals
	n := 0
	for {
		more, err := r.next()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		if n > 0 && r.present {
			for i := range r.v {
				if d := r.v[i] - prev[i]; d != 0 {
					shift = min(shift, bits.TrailingZeros64(uint64(d)))
				}
			}
		}
		if r.present {
			prev = r.v
		}
		n++
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]byte, 0, len(chunk))
	out = append(out, byte(shift))
	r = chunkReader{b: chunk}
	var last uint64
	prev = Vals{}
	for i := 0; ; i++ {
		more, err := r.next()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		out = binary.AppendUvarint(out, r.idx-last)
		sh := uint8(shift)
		if i == 0 {
			sh = 0
		}
		out = appendPointShift(out, prev, r.v, !r.present, sh)
		last = r.idx
		if r.present {
			prev = r.v
		}
	}
	return out, nil
}

// FuzzCodec encodes an arbitrary poll-by-poll sequence of series states as
// a chunk, a sequence of point bodies (as the open-block log holds them)
// and poll times, decodes them and compares; it also feeds the raw input
// to every decoder, which must fail cleanly rather than panic.
func FuzzCodec(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0x7e, 1, 2, 3, 4, 5, 6, 1, 0x03, 0x80, 0x01, 0, 0x02, 0xff})
	f.Add([]byte{0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(fuzzCodecOnce)
}

func fuzzCodecOnce(t *testing.T, data []byte) {
	// Raw input must never panic a decoder.
	_ = Expand(data, 64, func(int, bool, Vals) bool { return true })
	_, _ = recode(data)
	_, _ = ReadPollTimes(data)
	var scratch Vals
	_, _, _ = ReadPoint(data, &scratch)

	type state struct {
		present bool
		v       Vals
	}
	var (
		w      chunkWriter
		want   []state
		cur    state
		times  []int64
		tm     int64
		log    []byte
		logPts []state
	)
	var logPrev Vals
	logPresent := false
	var pts []Point // the chunk's points, as the log rebuilds them
	var ptsPrev Vals
	ptsPresent := false
	for len(data) > 0 {
		c := data[0]
		data = data[1:]
		next := cur
		if c&1 == 1 {
			next.present = !cur.present
		}
		for i := range 6 {
			if c&(2<<i) == 0 {
				continue
			}
			x, n := binary.Varint(data)
			if n <= 0 {
				x, n = int64(len(data)), len(data)
			}
			data = data[n:]
			next.v[i] = x
			if c&0x80 != 0 && i == Usage {
				next.v[ProjectUsage] = cur.v[ProjectUsage] + (x - cur.v[Usage])
			}
		}
		if !next.present {
			next.v = cur.v // absent series keep their last values
		}
		w.add(uint32(len(want)), cur.v, next.v, next.present)
		if next.present != ptsPresent || next.present && next.v != ptsPrev {
			pts = append(pts, Point{uint32(len(want)), next.present, next.v})
			ptsPresent = next.present
			if next.present {
				ptsPrev = next.v
			}
		}
		cur = next
		want = append(want, cur)

		if cur.present != logPresent || cur.present && cur.v != logPrev {
			log = AppendPoint(log, logPrev, cur.v, !cur.present)
			logPts = append(logPts, cur)
			logPresent = cur.present
			if cur.present {
				logPrev = cur.v
			}
		}
		tm += int64(c) * 1000
		if c == 0x42 {
			tm = math.MaxInt64 - tm // extreme deltas wrap and must still round-trip
		}
		times = append(times, tm)
	}

	i := 0
	err := Expand(w.buf, len(want), func(j int, present bool, v Vals) bool {
		require.Equal(t, i, j)
		require.Equal(t, want[j].present, present, "poll %d", j)
		if present {
			require.Equal(t, want[j].v, v, "poll %d", j)
		}
		i++
		return true
	})
	require.NoError(t, err)
	require.Equal(t, len(want), i)

	// The recoded chunk (as folded) says the same, in no more bytes.
	rc, err := recode(w.buf)
	require.NoError(t, err)
	require.Equal(t, rc, Encode(pts), "a chunk rebuilt from the log is the folded chunk")
	require.LessOrEqual(t, len(rc), len(w.buf))
	i = 0
	err = Expand(rc, len(want), func(j int, present bool, v Vals) bool {
		require.Equal(t, want[j].present, present, "recoded poll %d", j)
		if present {
			require.Equal(t, want[j].v, v, "recoded poll %d", j)
		}
		i++
		return true
	})
	require.NoError(t, err)
	require.Equal(t, len(want), i)

	var v Vals
	for k, p := range logPts {
		n, absent, err := ReadPoint(log, &v)
		require.NoError(t, err)
		require.Equal(t, !p.present, absent, "log point %d", k)
		if p.present {
			require.Equal(t, p.v, v, "log point %d", k)
		}
		log = log[n:]
	}
	require.Empty(t, log)

	got, err := ReadPollTimes(AppendPollTimes(nil, times))
	require.NoError(t, err)
	if len(times) == 0 {
		require.Empty(t, got)
	} else {
		require.Equal(t, times, got)
	}
}

func TestPollTimesAreCompact(t *testing.T) {
	start := int64(1767225600000) // 2026-01-01T00:00:00Z
	tests := []struct {
		name     string
		jitterMs int64
		maxBytes int // per poll
	}{
		{"exact", 0, 1},
		{"jitter 50ms", 50, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts []int64
			for i := range 288 {
				ts = append(ts, start+int64(i)*300_000+int64(i*7919)%(tt.jitterMs+1))
			}
			b := AppendPollTimes(nil, ts)
			require.LessOrEqual(t, len(b), 16+tt.maxBytes*len(ts))
			got, err := ReadPollTimes(b)
			require.NoError(t, err)
			require.Equal(t, ts, got)
		})
	}
}
