// Package chunkenc encodes the history of quota series: the change from
// one poll's values to the next (a point body), chunks of such changes for
// one series over one block, and the poll times of one account over one
// block. It knows nothing of storage; package series keeps the encoded
// bytes in bbolt.
//
// A quota's six numbers change rarely and by round amounts, so a point
// stores only the fields that changed, as zigzag varint deltas behind a
// one-byte change mask. A mask bit records that project usage moved with
// usage (the common case when only this member's usage changed), saving a
// varint, and another marks the series absent from that poll on.
//
// A chunk is a shift byte, then points, each "poll index delta (uvarint),
// point body". Decoding starts absent with all values zero, so a chunk
// stands alone. The first point's deltas are the values themselves; later
// deltas are stored divided by 2^shift, the largest power of two dividing
// them all (resources move in KiB, MiB or GiB steps).
//
// Poll times are a count, the first time, then delta-of-delta varints:
// regular polls cost a byte each.
package chunkenc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Vals holds the six numbers of a quota in a fixed order (Usage, Limit,
// Pending, ProjectUsage, ProjectLimit, ProjectPending), so the codec can
// loop over them.
type Vals [6]int64

// Field indexes in Vals and bits in a point's change mask.
const (
	Usage = iota
	Limit
	Pending
	ProjectUsage
	ProjectLimit
	ProjectPending
)

// Point flags: bits 0-5 say which field changed.
const (
	flagAbsent = 1 << 6
	// flagSameDelta: project usage moved by exactly the usage delta.
	flagSameDelta = 1 << 7
)

// ErrCorrupt reports undecodable stored bytes.
var ErrCorrupt = errors.New("corrupt history record")

// AppendPoint encodes the transition from prev to next (present) or to
// absence. Deltas wrap around int64 on purpose: decoding adds them back
// with the same wrap-around, so every int64 pair round-trips.
func AppendPoint(dst []byte, prev, next Vals, absent bool) []byte {
	return appendPointShift(dst, prev, next, absent, 0)
}

// appendPointShift stores each delta divided by 2^shift; every delta must
// be a multiple of it.
func appendPointShift(dst []byte, prev, next Vals, absent bool, shift uint8) []byte {
	if absent {
		return append(dst, flagAbsent)
	}
	var d Vals
	var flags byte
	for i := range next {
		d[i] = next[i] - prev[i]
		if d[i] != 0 {
			flags |= 1 << i
		}
	}
	if d[Usage] != 0 && d[ProjectUsage] == d[Usage] {
		flags = flags&^(1<<ProjectUsage) | flagSameDelta
	}
	dst = append(dst, flags)
	for i := range d {
		if flags&(1<<i) != 0 {
			dst = binary.AppendVarint(dst, d[i]>>shift)
		}
	}
	return dst
}

// ReadPoint decodes what AppendPoint wrote, adding the change to v. It
// returns the bytes consumed and whether the point marks absence.
func ReadPoint(b []byte, v *Vals) (n int, absent bool, err error) {
	return readPointShift(b, v, 0)
}

func readPointShift(b []byte, v *Vals, shift uint8) (n int, absent bool, err error) {
	if len(b) == 0 {
		return 0, false, ErrCorrupt
	}
	flags := b[0]
	n = 1
	if flags&flagAbsent != 0 {
		if flags != flagAbsent {
			return 0, false, ErrCorrupt
		}
		return n, true, nil
	}
	if flags&flagSameDelta != 0 && (flags&(1<<Usage) == 0 || flags&(1<<ProjectUsage) != 0) {
		return 0, false, ErrCorrupt
	}
	for i := range v {
		if flags&(1<<i) == 0 {
			continue
		}
		d, m := binary.Varint(b[n:])
		if m <= 0 {
			return 0, false, ErrCorrupt
		}
		n += m
		d <<= shift
		v[i] += d
		if i == Usage && flags&flagSameDelta != 0 {
			v[ProjectUsage] += d
		}
	}
	return n, false, nil
}

// chunkReader walks a chunk's points.
type chunkReader struct {
	b       []byte
	idx     uint64
	v       Vals
	present bool
	started bool
	shift   uint8
}

// next advances to the next point; it returns false at the end.
func (r *chunkReader) next() (bool, error) {
	if !r.started && len(r.b) > 0 {
		if r.b[0] > 63 || len(r.b) == 1 {
			return false, ErrCorrupt
		}
		r.shift = r.b[0]
		r.b = r.b[1:]
	}
	if len(r.b) == 0 {
		return false, nil
	}
	d, n := binary.Uvarint(r.b)
	if n <= 0 || (r.started && d == 0) {
		return false, ErrCorrupt
	}
	r.b = r.b[n:]
	r.idx += d
	shift := r.shift
	if !r.started {
		shift = 0
	}
	r.started = true
	m, absent, err := readPointShift(r.b, &r.v, shift)
	if err != nil {
		return false, err
	}
	if absent && !r.present {
		return false, ErrCorrupt // absence is only marked after presence
	}
	r.b = r.b[m:]
	r.present = !absent
	return true, nil
}

// Point is one point of a chunk: from account poll index Idx on, the
// series is absent, or present with values V.
type Point struct {
	Idx     uint32
	Present bool
	V       Vals
}

// Encode writes a chunk of points (the first present, in ascending Idx,
// none repeating the state before it) with the largest shift their deltas
// allow. It returns nil for no points.
func Encode(pts []Point) []byte {
	if len(pts) == 0 {
		return nil
	}
	shift := 63
	var prev Vals
	for i, p := range pts {
		if !p.Present {
			continue
		}
		if i > 0 {
			for j := range p.V {
				if d := p.V[j] - prev[j]; d != 0 {
					shift = min(shift, bits.TrailingZeros64(uint64(d)))
				}
			}
		}
		prev = p.V
	}
	out := make([]byte, 0, 8+8*len(pts))
	out = append(out, byte(shift))
	var last uint32
	prev = Vals{}
	for i, p := range pts {
		out = binary.AppendUvarint(out, uint64(p.Idx-last))
		sh := uint8(shift)
		if i == 0 {
			sh = 0
		}
		out = appendPointShift(out, prev, p.V, !p.Present, sh)
		last = p.Idx
		if p.Present {
			prev = p.V
		}
	}
	return out
}

// Expand calls fn for every poll 0..npolls-1 with the series' state at
// that poll. fn returns false to stop.
func Expand(chunk []byte, npolls int, fn func(i int, present bool, v Vals) bool) error {
	r := chunkReader{b: chunk}
	var cur Vals
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
			return ErrCorrupt
		}
		if !fn(i, present, cur) {
			return nil
		}
	}
	if more {
		return fmt.Errorf("%w: point at poll %d beyond %d polls", ErrCorrupt, r.idx, npolls)
	}
	return nil
}

// AppendPollTimes encodes the poll times (ms) of one account in one
// block: count, first time, then delta-of-delta varints.
func AppendPollTimes(dst []byte, ts []int64) []byte {
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

// ReadPollTimes decodes what AppendPollTimes wrote.
func ReadPollTimes(b []byte) ([]int64, error) {
	n, m := binary.Uvarint(b)
	if m <= 0 || n > uint64(len(b)) {
		return nil, ErrCorrupt
	}
	b = b[m:]
	ts := make([]int64, 0, n)
	var prev, prevD int64
	for i := uint64(0); i < n; i++ {
		x, m := binary.Varint(b)
		if m <= 0 {
			return nil, ErrCorrupt
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
		return nil, ErrCorrupt
	}
	return ts, nil
}
