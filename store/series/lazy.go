package series

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"

	"github.com/quotawatch/quotawatch/quota"
)

// lazySeries holds the head snapshot's series until each is needed: a
// command that reads one series of 80,000 restores that one, not all of
// them (decoding every series' values cost a one-series query most of its
// time). The log after the snapshot is replayed at once, as changes to
// the series' values from wherever they stood; restoring a series adds
// its values from the snapshot.
type lazySeries struct {
	// mu is held while series are restored: readers run at once.
	mu sync.Mutex
	// snap is the snapshot's list of series, copied out of the file.
	snap []byte
	// off is, by arena index, 1 + the offset of the series in snap (0:
	// not in it).
	off []uint32
	// By arena index: restored; changed by the log after the snapshot;
	// made absent by it, which set its last-seen time.
	restored, replayed, seenSet []uint64
	all                         bool // every series restored
}

func hasBit(b []uint64, i uint32) bool { return b[i/64]&(1<<(i%64)) != 0 }
func setBit(b []uint64, i uint32)      { b[i/64] |= 1 << (i % 64) }

// readSnapshotLazy restores the accounts from a snapshot of the open block
// and indexes its series for restoring later, from a copy of it if keep
// (else the caller restores them within the transaction); it returns the
// last log record the snapshot includes. ok is false when the snapshot is
// of another block, and so of no use.
func (h *head) readSnapshotLazy(b []byte, keep bool) (seq uint64, ok bool, err error) {
	r := &varints{b: b}
	blk := r.uv()
	if r.bad || !h.hasBlock || blk != uint64(h.block) {
		return 0, false, nil
	}
	seq = r.uv()
	if err := h.readSnapshotAccounts(r); err != nil {
		return 0, false, err
	}
	ns := r.uv()
	words := (int(h.n) + 63) / 64
	snap := b[r.p:]
	if keep {
		snap = append([]byte(nil), snap...)
	}
	lz := &lazySeries{snap: snap, off: make([]uint32, h.n),
		restored: make([]uint64, words), replayed: make([]uint64, words), seenSet: make([]uint64, words)}
	if len(lz.snap) > 1<<32-2 {
		return 0, false, errCorrupt
	}
	// A head of a few series (not kept) stops past the last of them: the
	// snapshot lists series by id, as the arena does.
	var last uint64
	if !keep && h.n > 0 {
		last = uint64(h.ser(h.n - 1).id)
	}
	r = &varints{b: lz.snap}
	for i := uint64(0); i < ns && !r.bad; i++ {
		at := r.p
		id := uint32(r.uv())
		if r.p >= len(lz.snap) {
			return 0, false, errCorrupt
		}
		if !keep && (h.n == 0 || uint64(id) > last) {
			break
		}
		// The flags are restored now, as the values' places are noted:
		// other readers read them (they share a word with the account)
		// while one restores a series.
		if ai, ok := h.indexOf(id); ok {
			lz.off[ai] = uint32(at) + 1
			s := h.ser(ai)
			s.acct = s.acct&acctMask | uint32(lz.snap[r.p]&3)<<30
		}
		// The flags byte, then seen, six values and the log place: each
		// ends in a byte below 0x80.
		if r.p = skipVarints(lz.snap, r.p, 10); r.p < 0 {
			return 0, false, errCorrupt
		}
	}
	if r.bad || keep && r.rest() != 0 {
		return 0, false, errCorrupt
	}
	h.lazy = lz
	return seq, true, nil
}

// skipVarints returns the offset after the next n varints in b from p, or
// -1. It counts their last bytes (below 0x80) eight bytes at a time.
func skipVarints(b []byte, p, n int) int {
	for n > 0 {
		if p+8 <= len(b) {
			stops := ^binary.LittleEndian.Uint64(b[p:]) & 0x8080808080808080
			if c := bits.OnesCount64(stops); c < n {
				n, p = n-c, p+8
				continue
			}
			for ; n > 1; n-- {
				stops &= stops - 1
			}
			return p + bits.TrailingZeros64(stops)/8 + 1
		}
		if p >= len(b) {
			return -1
		}
		if b[p] < 0x80 {
			n--
		}
		p++
	}
	return p
}

// replayLazy applies one log entry to series s at arena index i, poll idx,
// before its snapshot values are restored: its values collect the changes.
func (h *head) replayLazy(i uint32, s *series, e *logEntry, idx uint32, prevLast int64) {
	lz := h.lazy
	setBit(lz.replayed, i)
	if e.absent {
		s.setPresent(false)
		s.seen = prevLast
		setBit(lz.seenSet, i)
	} else {
		s.setPresent(true)
		s.cur = addVals(s.cur, e.d)
	}
	s.lastIdx, s.lastOff = idx+1, e.off
}

// restore restores series s, at arena index i, from the snapshot, if it
// is not yet.
func (h *head) restore(i uint32, s *series) error {
	lz := h.lazy
	if lz == nil {
		return nil
	}
	lz.mu.Lock()
	defer lz.mu.Unlock()
	return h.restoreLocked(i, s)
}

func (h *head) restoreLocked(i uint32, s *series) error {
	lz := h.lazy
	if hasBit(lz.restored, i) {
		return nil
	}
	var seen int64
	var cur vals
	var li, lo uint32
	if o := lz.off[i]; o != 0 {
		r := &varints{b: lz.snap, p: int(o - 1)}
		r.uv()   // the id
		r.byte() // the flags, restored at load
		seen = r.sv()
		for j := range cur {
			cur[j] = r.sv()
		}
		li, lo = uint32(r.uv()), uint32(r.uv())
		if r.bad {
			return fmt.Errorf("%w: head snapshot of series %d", errCorrupt, s.id)
		}
	}
	if !hasBit(lz.replayed, i) {
		s.seen, s.cur, s.lastIdx, s.lastOff = seen, cur, li, lo
	} else {
		// The log set its newest entry, and its last-seen time if it made
		// it absent.
		s.cur = addVals(cur, s.cur)
		if !hasBit(lz.seenSet, i) {
			s.seen = seen
		}
	}
	setBit(lz.restored, i)
	return nil
}

// restoreAll restores every series.
func (h *head) restoreAll() error {
	lz := h.lazy
	if lz == nil {
		return nil
	}
	lz.mu.Lock()
	defer lz.mu.Unlock()
	if lz.all {
		return nil
	}
	for i := range h.n {
		if err := h.restoreLocked(i, h.ser(i)); err != nil {
			return err
		}
	}
	lz.all = true
	return nil
}

// settle restores every series and drops the snapshot, before a write
// changes the arena. The caller runs alone.
func (h *head) settle() error {
	if err := h.restoreAll(); err != nil {
		return err
	}
	h.lazy = nil
	return nil
}

// lookupRestored returns the series with key k, restored, or nil.
func (h *head) lookupRestored(k quota.Key) (*series, error) {
	i, ok := h.find(k)
	if !ok {
		return nil, nil
	}
	s := h.ser(i)
	return s, h.restore(i, s)
}
