package series

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"go.etcd.io/bbolt"
)

// snapEvery is how many open-block log records a reader may have to replay
// at most beyond the head snapshot: an hour of polls at the default
// five-minute schedule. Replaying a whole day of an 80,000-series log
// costs a read-only command over 100 ms; writing the snapshot costs the
// writer a few megabytes every snapEvery cycles.
const snapEvery = 12

// kSnapshot holds the head as it stood after a log record: a reader
// restores it and replays only the records after it, instead of the
// whole open block from its checkpoint.
var kSnapshot = []byte("snapshot")

// Snapshot: block, last log record included, accounts (id, last poll,
// open-block poll times and their log places), then series (id, flags,
// seen, values, newest log entry), as varints.
func (h *head) snapshot(seq uint64) []byte {
	b := make([]byte, 0, 64+int(h.n)*40)
	b = binary.AppendUvarint(b, uint64(h.block))
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(h.acctList)))
	for _, a := range h.acctList {
		b = binary.AppendUvarint(b, uint64(a.id))
		b = binary.AppendVarint(b, a.last)
		b = binary.AppendUvarint(b, uint64(len(a.polls)))
		prev := int64(0)
		for i, t := range a.polls {
			b = binary.AppendVarint(b, t-prev)
			prev = t
			b = binary.AppendUvarint(b, uint64(a.locs[i].seq))
			b = binary.AppendUvarint(b, uint64(a.locs[i].base))
		}
	}
	b = binary.AppendUvarint(b, uint64(h.n))
	h.each(func(_ uint32, s *series) {
		b = binary.AppendUvarint(b, uint64(s.id))
		b = append(b, byte(s.acct>>30)) // fPresent, fOpen
		b = binary.AppendVarint(b, s.seen)
		for _, x := range s.cur {
			b = binary.AppendVarint(b, x)
		}
		b = binary.AppendUvarint(b, uint64(s.lastIdx))
		b = binary.AppendUvarint(b, uint64(s.lastOff))
	})
	return b
}

// varints reads a run of varints; a malformed one sets bad and reads as 0
// from then on. Its one-byte path is inline: a snapshot of 80,000 series
// is a million varints, most of them small.
type varints struct {
	b   []byte
	p   int
	bad bool
}

func (r *varints) uv() uint64 {
	if r.p < len(r.b) && r.b[r.p] < 0x80 {
		x := r.b[r.p]
		r.p++
		return uint64(x)
	}
	return r.uvSlow()
}

func (r *varints) uvSlow() uint64 {
	if r.bad {
		return 0
	}
	if r.p+8 <= len(r.b) {
		// Up to eight bytes at once: find the last byte of the varint,
		// then pack its seven-bit groups together.
		w := binary.LittleEndian.Uint64(r.b[r.p:])
		if stops := ^w & 0x8080808080808080; stops != 0 {
			n := bits.TrailingZeros64(stops)/8 + 1
			w &= ^uint64(0) >> (64 - 8*n) // this varint's bytes
			w = w&0x007f007f007f007f | w&0x7f007f007f007f00>>1
			w = w&0x00003fff00003fff | w&0x3fff00003fff0000>>2
			w = w&0x000000000fffffff | w&0x0fffffff00000000>>4
			r.p += n
			return w
		}
	}
	x, n := binary.Uvarint(r.b[r.p:])
	if n <= 0 {
		r.bad, r.p = true, len(r.b)
		return 0
	}
	r.p += n
	return x
}

func (r *varints) sv() int64 {
	ux := r.uv()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// byte reads one raw byte.
func (r *varints) byte() (byte, bool) {
	if r.p >= len(r.b) {
		return 0, false
	}
	c := r.b[r.p]
	r.p++
	return c, true
}

func (r *varints) rest() int { return len(r.b) - r.p }

// readSnapshotAccounts restores the accounts' last polls and open-block
// polls from a snapshot.
func (h *head) readSnapshotAccounts(r *varints) error {
	na := r.uv()
	for i := uint64(0); i < na && !r.bad; i++ {
		a := h.acctByID[uint32(r.uv())]
		last := r.sv()
		np := r.uv()
		if np > uint64(r.rest()) {
			return errCorrupt
		}
		polls, locs := make([]int64, 0, np), make([]logLoc, 0, np)
		t := int64(0)
		for j := uint64(0); j < np && !r.bad; j++ {
			t += r.sv()
			polls = append(polls, t)
			locs = append(locs, logLoc{seq: uint32(r.uv()), base: uint32(r.uv())})
		}
		if a != nil {
			a.last, a.polls, a.locs = last, polls, locs
		}
	}
	if r.bad {
		return errCorrupt
	}
	return nil
}

// maybeSnapshot writes the head snapshot when snapEvery log records have
// been written since the last one.
func (h *head) maybeSnapshot(bk *buckets) error {
	seq := bk.log().Sequence()
	if !h.hasBlock || seq < h.snapSeq+snapEvery {
		return nil
	}
	if err := bk.head().Put(kSnapshot, h.snapshot(seq)); err != nil {
		return fmt.Errorf("head snapshot: %w", err)
	}
	h.snapSeq = seq
	return nil
}

// replayLog replays the open block's log records after seq.
func (h *head) replayLog(log *bbolt.Bucket, after uint64) error {
	c := log.Cursor()
	k, v := c.Seek(u64(after + 1))
	for ; k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return errCorrupt
		}
		if err := h.replay(binary.BigEndian.Uint64(k), v); err != nil {
			return err
		}
	}
	return nil
}
