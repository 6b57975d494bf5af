package store

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzCodec encodes an arbitrary poll-by-poll sequence of series states as
// a chunk, a write-ahead log and a poll-time log, decodes them and
// compares; it also feeds the raw input to every decoder, which must fail
// cleanly rather than panic.
func FuzzCodec(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0x7e, 1, 2, 3, 4, 5, 6, 1, 0x03, 0x80, 0x01, 0, 0x02, 0xff})
	f.Add([]byte{0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(fuzzCodecOnce)
}

func fuzzCodecOnce(t *testing.T, data []byte) {
	{
		// Raw input must never panic a decoder.
		_ = expandChunk(data, 64, func(int, bool, vals) bool { return true })
		_, _ = recode(data)
		_, _ = readPollTimes(data)
		var scratch vals
		_, _, _ = readPointBody(data, &scratch)
		_ = newHead().replay(1, data)

		type state struct {
			present bool
			v       vals
		}
		var (
			w      chunkWriter
			want   []state
			cur    state
			times  []int64
			tm     int64
			wal    []byte
			walPts []state
		)
		var walPrev vals
		walPresent := false
		var pts []point // the chunk's points, as the log rebuilds them
		var ptsPrev vals
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
				if c&0x80 != 0 && i == fUsage {
					next.v[fProjectUsage] = cur.v[fProjectUsage] + (x - cur.v[fUsage])
				}
			}
			if !next.present {
				next.v = cur.v // absent series keep their last values
			}
			w.add(uint32(len(want)), cur.v, next.v, next.present)
			if next.present != ptsPresent || next.present && next.v != ptsPrev {
				pts = append(pts, point{uint32(len(want)), next.present, next.v})
				ptsPresent = next.present
				if next.present {
					ptsPrev = next.v
				}
			}
			cur = next
			want = append(want, cur)

			if cur.present != walPresent || cur.present && cur.v != walPrev {
				wal = appendPointBody(wal, walPrev, cur.v, !cur.present)
				walPts = append(walPts, cur)
				walPresent = cur.present
				if cur.present {
					walPrev = cur.v
				}
			}
			tm += int64(c) * 1000
			if c == 0x42 {
				tm = math.MaxInt64 - tm // extreme deltas wrap and must still round-trip
			}
			times = append(times, tm)
		}

		i := 0
		err := expandChunk(w.buf, len(want), func(j int, present bool, v vals) bool {
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
		require.Equal(t, rc, encodeChunk(pts), "a chunk rebuilt from the log is the folded chunk")
		require.LessOrEqual(t, len(rc), len(w.buf))
		i = 0
		err = expandChunk(rc, len(want), func(j int, present bool, v vals) bool {
			require.Equal(t, want[j].present, present, "recoded poll %d", j)
			if present {
				require.Equal(t, want[j].v, v, "recoded poll %d", j)
			}
			i++
			return true
		})
		require.NoError(t, err)
		require.Equal(t, len(want), i)

		var v vals
		for k, p := range walPts {
			n, absent, err := readPointBody(wal, &v)
			require.NoError(t, err)
			require.Equal(t, !p.present, absent, "wal point %d", k)
			if p.present {
				require.Equal(t, p.v, v, "wal point %d", k)
			}
			wal = wal[n:]
		}
		require.Empty(t, wal)

		got, err := readPollTimes(appendPollTimes(nil, times))
		require.NoError(t, err)
		if len(times) == 0 {
			require.Empty(t, got)
		} else {
			require.Equal(t, times, got)
		}
	}
}

func TestPollTimesAreCompact(t *testing.T) {
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
				ts = append(ts, ms(start)+int64(i)*300_000+int64(i*7919)%(tt.jitterMs+1))
			}
			b := appendPollTimes(nil, ts)
			require.LessOrEqual(t, len(b), 16+tt.maxBytes*len(ts))
			got, err := readPollTimes(b)
			require.NoError(t, err)
			require.Equal(t, ts, got)
		})
	}
}
