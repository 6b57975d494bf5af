package series

import (
	"encoding/binary"
	"fmt"

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

// readSnapshot restores the head from a snapshot of the open block and
// returns the last log record it includes. ok is false when the snapshot
// is of another block, and so of no use.
func (h *head) readSnapshot(b []byte) (seq uint64, ok bool, err error) {
	bad := false
	uv := func() uint64 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			bad, b = true, nil
			return 0
		}
		b = b[n:]
		return x
	}
	sv := func() int64 {
		x, n := binary.Varint(b)
		if n <= 0 {
			bad, b = true, nil
			return 0
		}
		b = b[n:]
		return x
	}
	blk := uv()
	if bad || !h.hasBlock || blk != uint64(h.block) {
		return 0, false, nil
	}
	seq = uv()
	na := uv()
	for i := uint64(0); i < na && !bad; i++ {
		a := h.acctByID[uint32(uv())]
		last := sv()
		np := uv()
		if np > uint64(len(b)) {
			return 0, false, errCorrupt
		}
		polls, locs := make([]int64, 0, np), make([]logLoc, 0, np)
		t := int64(0)
		for j := uint64(0); j < np && !bad; j++ {
			t += sv()
			polls = append(polls, t)
			locs = append(locs, logLoc{seq: uint32(uv()), base: uint32(uv())})
		}
		if a != nil {
			a.last, a.polls, a.locs = last, polls, locs
		}
	}
	ns := uv()
	for i := uint64(0); i < ns && !bad; i++ {
		id := uint32(uv())
		if len(b) == 0 {
			return 0, false, errCorrupt
		}
		flags := uint32(b[0]&3) << 30
		b = b[1:]
		seen := sv()
		var v vals
		for j := range v {
			v[j] = sv()
		}
		li, lo := uint32(uv()), uint32(uv())
		if s := h.get(id); !bad && s != nil {
			s.acct = s.acct&acctMask | flags
			s.seen, s.cur, s.lastIdx, s.lastOff = seen, v, li, lo
		}
	}
	if bad || len(b) != 0 {
		return 0, false, errCorrupt
	}
	return seq, true, nil
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
