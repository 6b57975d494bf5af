package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/quotawatch/quotawatch/quota"
)

// vals holds the six numbers of a quota in a fixed order, so the codec can
// loop over them.
type vals [6]int64

// Field order in vals and in a point's change mask.
const (
	fUsage = iota
	fLimit
	fPending
	fProjectUsage
	fProjectLimit
	fProjectPending
)

// Point flags: bits 0-5 say which field changed.
const (
	flagAbsent = 1 << 6
	// flagSameDelta: project_usage moved by exactly the usage delta, as it
	// does whenever only this member's usage changed; it saves a varint.
	flagSameDelta = 1 << 7
)

func valsOf(q quota.Quota) vals {
	return vals{q.Usage, q.Limit, q.Pending, q.ProjectUsage, q.ProjectLimit, q.ProjectPending}
}

func (v vals) quota() quota.Quota {
	return quota.Quota{Usage: v[0], Limit: v[1], Pending: v[2], ProjectUsage: v[3], ProjectLimit: v[4], ProjectPending: v[5]}
}

// errCorrupt reports undecodable stored bytes.
var errCorrupt = errors.New("store: corrupt history record")

// appendPointBody encodes the transition from prev to next (present) or to
// absence. Deltas wrap around int64 on purpose: decoding adds them back
// with the same wrap-around, so every int64 pair round-trips.
func appendPointBody(dst []byte, prev, next vals, absent bool) []byte {
	return appendPointBodyShift(dst, prev, next, absent, 0)
}

// appendPointBodyShift stores each delta divided by 2^shift; every delta
// must be a multiple of it.
func appendPointBodyShift(dst []byte, prev, next vals, absent bool, shift uint8) []byte {
	if absent {
		return append(dst, flagAbsent)
	}
	var d vals
	var flags byte
	for i := range next {
		d[i] = next[i] - prev[i]
		if d[i] != 0 {
			flags |= 1 << i
		}
	}
	if d[fUsage] != 0 && d[fProjectUsage] == d[fUsage] {
		flags = flags&^(1<<fProjectUsage) | flagSameDelta
	}
	dst = append(dst, flags)
	for i := range d {
		if flags&(1<<i) != 0 {
			dst = binary.AppendVarint(dst, d[i]>>shift)
		}
	}
	return dst
}

// readPointBody decodes what appendPointBody wrote, applying it to v.
// It returns the bytes consumed and whether the point marks absence.
func readPointBody(b []byte, v *vals) (n int, absent bool, err error) {
	return readPointBodyShift(b, v, 0)
}

func readPointBodyShift(b []byte, v *vals, shift uint8) (n int, absent bool, err error) {
	if len(b) == 0 {
		return 0, false, errCorrupt
	}
	flags := b[0]
	n = 1
	if flags&flagAbsent != 0 {
		if flags != flagAbsent {
			return 0, false, errCorrupt
		}
		return n, true, nil
	}
	if flags&flagSameDelta != 0 && (flags&(1<<fUsage) == 0 || flags&(1<<fProjectUsage) != 0) {
		return 0, false, errCorrupt
	}
	for i := range v {
		if flags&(1<<i) == 0 {
			continue
		}
		d, m := binary.Varint(b[n:])
		if m <= 0 {
			return 0, false, errCorrupt
		}
		n += m
		d <<= shift
		v[i] += d
		if i == fUsage && flags&flagSameDelta != 0 {
			v[fProjectUsage] += d
		}
	}
	return n, false, nil
}

// A chunk is one series' history within one block: a shift byte, then a
// sequence of points, each "poll index delta (uvarint), point body". The
// decoding state starts absent with all values zero, so a chunk stands
// alone. The first point's deltas are the values themselves; later deltas
// are stored divided by 2^shift, the largest power of two dividing them
// all (GiB and MiB sized resources move in round amounts). Chunks are
// written with shift 0 and recoded when their block is folded.

// chunkWriter appends points to a chunk. It does not keep the values of
// its last point: the caller passes them in (the series' last values),
// which saves memory per series in the head cache.
type chunkWriter struct {
	buf     []byte
	idx     uint32 // poll index of the last point
	present bool
	started bool // a point was written in this block
}

// add records that from poll index idx on the series is absent, or present
// with values next. prev must be the values of the last point written (the
// series' values before this poll); it is ignored before the first point,
// since a chunk starts from zero. Nothing is written when nothing changed.
func (w *chunkWriter) add(idx uint32, prev, next vals, present bool) {
	if !w.started {
		prev = vals{}
	}
	if present == w.present && (!present || next == prev) {
		return
	}
	if !w.started {
		w.buf = append(w.buf[:0], 0) // shift
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(idx-w.idx))
	w.buf = appendPointBody(w.buf, prev, next, !present)
	w.idx = idx
	w.present = present
	w.started = true
}

// chunkReader walks a chunk's points.
type chunkReader struct {
	b       []byte
	idx     uint64
	v       vals
	present bool
	started bool
	shift   uint8
}

// next advances to the next point; it returns false at the end.
func (r *chunkReader) next() (bool, error) {
	if !r.started && len(r.b) > 0 {
		if r.b[0] > 63 || len(r.b) == 1 {
			return false, errCorrupt
		}
		r.shift = r.b[0]
		r.b = r.b[1:]
	}
	if len(r.b) == 0 {
		return false, nil
	}
	d, n := binary.Uvarint(r.b)
	if n <= 0 || (r.started && d == 0) {
		return false, errCorrupt
	}
	r.b = r.b[n:]
	r.idx += d
	shift := r.shift
	if !r.started {
		shift = 0
	}
	r.started = true
	m, absent, err := readPointBodyShift(r.b, &r.v, shift)
	if err != nil {
		return false, err
	}
	if absent && !r.present {
		return false, errCorrupt // absence is only marked after presence
	}
	r.b = r.b[m:]
	r.present = !absent
	return true, nil
}

// recode rewrites a chunk with the largest shift its deltas allow. It
// reads the chunk twice rather than keep its points.
func recode(chunk []byte) ([]byte, error) {
	r := chunkReader{b: chunk}
	shift := 63
	var prev vals
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
	prev = vals{}
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
		out = appendPointBodyShift(out, prev, r.v, !r.present, sh)
		last = r.idx
		if r.present {
			prev = r.v
		}
	}
	return out, nil
}

// encodeChunk writes a chunk of points (the first present, none repeating
// the state before it) with the largest shift their deltas allow, as
// recode would.
func encodeChunk(pts []point) []byte {
	if len(pts) == 0 {
		return nil
	}
	shift := 63
	var prev vals
	for i, p := range pts {
		if !p.present {
			continue
		}
		if i > 0 {
			for j := range p.v {
				if d := p.v[j] - prev[j]; d != 0 {
					shift = min(shift, bits.TrailingZeros64(uint64(d)))
				}
			}
		}
		prev = p.v
	}
	out := make([]byte, 0, 8+8*len(pts))
	out = append(out, byte(shift))
	var last uint32
	prev = vals{}
	for i, p := range pts {
		out = binary.AppendUvarint(out, uint64(p.idx-last))
		sh := uint8(shift)
		if i == 0 {
			sh = 0
		}
		out = appendPointBodyShift(out, prev, p.v, !p.present, sh)
		last = p.idx
		if p.present {
			prev = p.v
		}
	}
	return out
}

// expandChunk calls fn for every poll 0..npolls-1 with the series' state at
// that poll. fn returns false to stop.
func expandChunk(chunk []byte, npolls int, fn func(i int, present bool, v vals) bool) error {
	r := chunkReader{b: chunk}
	var cur vals
	present := false
	more, err := r.next()
	if err != nil {
		return err
	}
	for i := 0; i < npolls; i++ {
		for more && r.idx == uint64(i) {
			cur, present = r.v, r.present
			if more, err = r.next(); err != nil {
				return err
			}
		}
		if more && r.idx < uint64(i) {
			return errCorrupt
		}
		if !fn(i, present, cur) {
			return nil
		}
	}
	if more {
		return fmt.Errorf("%w: point at poll %d beyond %d polls", errCorrupt, r.idx, npolls)
	}
	return nil
}

// Poll times of one account in one block: count, first time, then
// delta-of-delta varints. Regular polls cost one byte each.
func appendPollTimes(dst []byte, ts []int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	var prev, prevD int64
	for i, t := range ts {
		switch i {
		case 0:
			dst = binary.AppendVarint(dst, t)
		default:
			d := t - prev
			dst = binary.AppendVarint(dst, d-prevD)
			prevD = d
		}
		prev = t
	}
	return dst
}

func readPollTimes(b []byte) ([]int64, error) {
	n, m := binary.Uvarint(b)
	if m <= 0 || n > uint64(len(b)) {
		return nil, errCorrupt
	}
	b = b[m:]
	ts := make([]int64, 0, n)
	var prev, prevD int64
	for i := uint64(0); i < n; i++ {
		x, m := binary.Varint(b)
		if m <= 0 {
			return nil, errCorrupt
		}
		b = b[m:]
		if i == 0 {
			prev = x
		} else {
			prevD += x
			prev += prevD
		}
		ts = append(ts, prev)
	}
	if len(b) != 0 {
		return nil, errCorrupt
	}
	return ts, nil
}

func u32(x uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return b[:]
}

func u64(x uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], x)
	return b[:]
}

// blockKey orders chunks by block first, so a new block is appended at the
// end of the bucket and retention deletes a prefix.
func blockKey(block, id uint32) []byte {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], block)
	binary.BigEndian.PutUint32(b[4:], id)
	return b[:]
}
