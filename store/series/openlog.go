package series

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series/chunkenc"
)

// The open-block log holds one record per Append: poll count, then per
// poll: account id, time, entry count and entries. An entry is: series id,
// link, point body (the change from the series' previous values). The link
// is 0 for the series' first entry in the block, else the poll index
// distance back to its previous entry followed by that entry's offset
// among its poll's entries.

// logPoll collects one account poll for the log.
type logPoll struct {
	aid     uint32
	t       int64
	n       int
	entries []byte
	acct    *account
	idx     uint32 // the poll's index in the account's open block
	base    int    // offset of entries in the encoded record
}

func encodeRecord(polls []logPoll) []byte {
	size := 8
	for _, p := range polls {
		size += 24 + len(p.entries)
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(polls)))
	for i := range polls {
		p := &polls[i]
		b = binary.AppendUvarint(b, uint64(p.aid))
		b = binary.AppendVarint(b, p.t)
		b = binary.AppendUvarint(b, uint64(p.n))
		p.base = len(b)
		b = append(b, p.entries...)
	}
	return b
}

// logEntry is one decoded log entry.
type logEntry struct {
	sid    uint32
	off    uint32 // offset among its poll's entries
	back   uint32 // poll index distance to the previous entry; 0: none
	prev   uint32 // offset of the previous entry
	absent bool
	d      vals // change from the previous values
}

// decodeRecord decodes one record: poll is called for each poll, with the
// offset of its entries, then entry for each of its entries.
func decodeRecord(rec []byte, poll func(aid uint32, t int64, base int) error, entry func(e *logEntry) error) error {
	p := 0
	uv := func() (uint64, bool) {
		x, n := binary.Uvarint(rec[p:])
		if n <= 0 {
			return 0, false
		}
		p += n
		return x, true
	}
	np, ok := uv()
	if !ok {
		return errCorrupt
	}
	var e logEntry // one for all entries: entry gets a pointer to it
	for range np {
		aid, ok1 := uv()
		t, n := binary.Varint(rec[p:])
		if !ok1 || n <= 0 {
			return errCorrupt
		}
		p += n
		ne, ok2 := uv()
		if !ok2 || aid > 1<<32-1 {
			return errCorrupt
		}
		base := p
		if err := poll(uint32(aid), t, base); err != nil {
			return err
		}
		for range ne {
			// As readEntry, inline: a log holds a day of entries.
			e = logEntry{off: uint32(p - base)} // values are under 2 GiB
			sid, ok1 := uv()
			back, ok2 := uv()
			if !ok1 || !ok2 || sid > 1<<32-1 || back > 1<<32-1 {
				return errCorrupt
			}
			e.sid, e.back = uint32(sid), uint32(back)
			if back != 0 {
				prev, ok := uv()
				if !ok || prev > 1<<32-1 {
					return errCorrupt
				}
				e.prev = uint32(prev)
			}
			m, absent, err := chunkenc.ReadPoint(rec[p:], &e.d)
			if err != nil {
				return err
			}
			p += m
			e.absent = absent
			if err := entry(&e); err != nil {
				return err
			}
		}
	}
	if p != len(rec) {
		return errCorrupt
	}
	return nil
}

// readEntry decodes the log entry at the start of b and returns its size.
func readEntry(b []byte) (logEntry, int, error) {
	var e logEntry
	p := 0
	uv := func() (uint32, bool) {
		x, n := binary.Uvarint(b[p:])
		if n <= 0 || x > 1<<32-1 {
			return 0, false
		}
		p += n
		return uint32(x), true
	}
	var ok bool
	if e.sid, ok = uv(); !ok {
		return e, 0, errCorrupt
	}
	if e.back, ok = uv(); !ok {
		return e, 0, errCorrupt
	}
	if e.back != 0 {
		if e.prev, ok = uv(); !ok {
			return e, 0, errCorrupt
		}
	}
	m, absent, err := chunkenc.ReadPoint(b[p:], &e.d)
	e.absent = absent
	return e, p + m, err
}

func addVals(v, d vals) vals {
	for i := range v {
		v[i] += d[i]
	}
	return v
}

// replay applies one log record, stored under key seq.
func (h *head) replay(seq uint64, rec []byte) error {
	var a *account
	var idx uint32
	var prevLast int64
	return decodeRecord(rec, func(aid uint32, t int64, base int) error {
		if a = h.acctByID[aid]; a == nil {
			return fmt.Errorf("%w: poll of unknown account %d", errCorrupt, aid)
		}
		idx, prevLast = uint32(len(a.polls)), a.last
		a.polls = append(a.polls, t)
		a.locs = append(a.locs, logLoc{seq: uint32(seq), base: uint32(base)})
		a.last = t
		return nil
	}, func(e *logEntry) error {
		i, ok := h.indexOf(e.sid)
		if !ok {
			return nil // pruned by retention
		}
		s := h.ser(i)
		if h.lazy != nil {
			h.replayLazy(i, s, e, idx, prevLast)
			return nil
		}
		if e.absent {
			s.setPresent(false)
			s.seen = prevLast
		} else {
			s.setPresent(true)
			s.cur = addVals(s.cur, e.d)
		}
		s.lastIdx, s.lastOff = idx+1, e.off
		return nil
	})
}

// appendEntry appends s's change at poll idx to lp and links s to it.
func (h *head) appendEntry(lp *logPoll, s *series, idx uint32, prev, next vals, absent bool) {
	off := len(lp.entries)
	lp.entries = binary.AppendUvarint(lp.entries, uint64(s.id))
	if s.lastIdx == 0 {
		lp.entries = append(lp.entries, 0)
	} else {
		lp.entries = binary.AppendUvarint(lp.entries, uint64(idx+1-s.lastIdx))
		lp.entries = binary.AppendUvarint(lp.entries, uint64(s.lastOff))
	}
	lp.entries = chunkenc.AppendPoint(lp.entries, prev, next, absent)
	lp.n++
	s.lastIdx, s.lastOff = idx+1, uint32(off)
}

// newEntryBytes is about the size of a new series' first log entry: its
// id, no link, and six values of a few bytes each.
const newEntryBytes = 32

// poll records one snapshot of account a at time t (ms), updating the
// cache and appending the changes to lp.
func (h *head) poll(bk *buckets, a *account, t int64, entries []quota.Entry, lp *logPoll) error {
	idx := uint32(len(a.polls))
	prevLast := a.last
	a.polls = append(a.polls, t)
	a.locs = append(a.locs, logLoc{})
	a.last = t
	clear(h.marks)
	lp.aid, lp.t, lp.acct, lp.idx = a.id, t, a, idx
	if n := len(entries) - len(a.series); n > 0 {
		// New series each write their values whole: size for them at
		// once, as growing by doubling would hold twice their size.
		lp.entries = slices.Grow(lp.entries, n*newEntryBytes)
	}
	// order is rewritten in place: entry i's slot is read before it is set.
	order := a.order
	for i := range entries {
		e := &entries[i]
		si, found := uint32(0), false
		if i < len(order) {
			if c := h.ser(order[i]); h.names[c.project] == e.Project && h.names[c.resource] == e.Resource {
				si, found = order[i], true
			}
		}
		if !found {
			si, found = h.find(quota.Key{Account: a.name, Project: e.Project, Resource: e.Resource})
		}
		if !found {
			var err error
			if si, err = h.register(bk, a, e.Project, e.Resource); err != nil {
				return err
			}
		}
		if i < len(order) {
			order[i] = si
		} else {
			order = append(order, si)
		}
		s := h.ser(si)
		for int(si/64) >= len(h.marks) {
			h.marks = append(h.marks, 0)
		}
		if h.marks[si/64]&(1<<(si%64)) != 0 {
			continue // duplicate entry in one snapshot: first wins
		}
		h.marks[si/64] |= 1 << (si % 64)
		v := valsOf(e.Quota)
		if !s.present() || v != s.cur {
			h.appendEntry(lp, s, idx, s.cur, v, false)
			s.cur = v
			s.setPresent(true)
		}
	}
	a.order = order[:len(entries)]
	for _, si := range a.series {
		if s := h.ser(si); (int(si/64) >= len(h.marks) || h.marks[si/64]&(1<<(si%64)) == 0) && s.present() {
			h.appendEntry(lp, s, idx, s.cur, s.cur, true)
			s.setPresent(false)
			s.seen = prevLast
		}
	}
	return nil
}

func (h *head) account(bk *buckets, name string) (*account, error) {
	if a := h.accts[name]; a != nil {
		return a, nil
	}
	seq, err := bk.accts().NextSequence()
	if err != nil {
		return nil, fmt.Errorf("register account %q: %w", name, err)
	}
	if seq > 1<<32-1 {
		return nil, fmt.Errorf("register account %q: too many accounts", name)
	}
	if err := bk.accts().Put(u32(uint32(seq)), []byte(name)); err != nil {
		return nil, fmt.Errorf("register account %q: %w", name, err)
	}
	return h.addAccount(uint32(seq), name), nil
}

func (h *head) register(bk *buckets, a *account, project, resource string) (uint32, error) {
	seq, err := bk.series().NextSequence()
	if err != nil {
		return 0, fmt.Errorf("register series: %w", err)
	}
	if seq > 1<<32-1 {
		return 0, fmt.Errorf("register series: too many series")
	}
	h.addSeries(uint32(seq), a, project, resource)
	h.regDirty(uint32(seq))
	return h.n - 1, nil
}

// openChunk rebuilds s's chunk of the open block from the log.
func (h *head) openChunk(bk *buckets, s *series) ([]byte, error) {
	if len(h.acct(s).polls) == 0 {
		return nil, nil
	}
	var rec []byte
	recSeq := uint32(0)
	return h.linkedChunk(s, func(seq uint32) []byte {
		if rec == nil || seq != recSeq {
			rec, recSeq = bk.log().Get(u64(uint64(seq))), seq
		}
		return rec
	}, &chunkScratch{})
}

// point is one log entry of a series, or one point of its chunk.
type point = chunkenc.Point

// chunkScratch is space linkedChunk reuses from one series to the next.
type chunkScratch struct{ back, fwd []point }

// linkedChunk rebuilds s's chunk of the open block: back from its newest
// log entry along the links, undoing each change from its current values,
// then forward as a chunk with the largest shift its deltas allow (as a
// fold writes it). rec returns the log record with a key.
func (h *head) linkedChunk(s *series, rec func(seq uint32) []byte, sc *chunkScratch) ([]byte, error) {
	a := h.acct(s)
	if len(a.polls) == 0 {
		return nil, nil
	}
	back := sc.back[:0]
	defer func() { sc.back = back }()
	v := s.cur
	for li, lo := s.lastIdx, s.lastOff; li != 0; {
		idx := li - 1
		if int64(idx) >= int64(len(a.locs)) {
			return nil, fmt.Errorf("%w: log entry of poll %d beyond %d polls", errCorrupt, idx, len(a.locs))
		}
		loc := a.locs[idx]
		r := rec(loc.seq)
		if r == nil {
			return nil, fmt.Errorf("%w: no log record %d", errCorrupt, loc.seq)
		}
		p := uint64(loc.base) + uint64(lo)
		if p >= uint64(len(r)) {
			return nil, errCorrupt
		}
		e, _, err := readEntry(r[p:])
		if err != nil {
			return nil, err
		}
		if e.sid != s.id || e.back > idx {
			return nil, fmt.Errorf("%w: log link of series %d", errCorrupt, s.id)
		}
		back = append(back, point{Idx: idx, Present: !e.absent, V: v})
		if !e.absent {
			for i := range v {
				v[i] -= e.d[i]
			}
		}
		if e.back == 0 {
			break
		}
		li, lo = li-e.back, e.prev
	}
	// Forward: a point where the state changed, and a series present when
	// the block began starts its chunk at the account's first poll,
	// changed there or not.
	fwd := sc.fwd[:0]
	defer func() { sc.fwd = fwd }()
	var cur vals
	present := false
	add := func(idx uint32, next vals, p bool) {
		if p == present && (!p || next == cur) {
			return
		}
		fwd = append(fwd, point{Idx: idx, Present: p, V: next})
		present = p
		if p {
			cur = next
		}
	}
	start := v
	pending := s.open()
	for i := len(back) - 1; i >= 0; i-- {
		p := back[i]
		if pending && p.Idx != 0 {
			add(0, start, true)
		}
		pending = false
		add(p.Idx, p.V, p.Present)
	}
	if pending {
		add(0, start, true)
	}
	return chunkenc.Encode(fwd), nil
}

// fold writes the open block as chunks and poll-time logs, checkpoints
// the last values and empties the log.
func (h *head) fold(bk *buckets) error {
	if !h.hasBlock {
		return nil
	}
	bk.folded = true
	chunks := bk.chunks()
	chunks.FillPercent = 1 // keys are appended in order
	// The records stay mapped for the transaction: index them once, then
	// follow each series' links in memory.
	recs := map[uint32][]byte{}
	if err := bk.log().ForEach(func(k, v []byte) error {
		if len(k) == 8 {
			recs[uint32(binary.BigEndian.Uint64(k))] = v
		}
		return nil
	}); err != nil {
		return fmt.Errorf("fold block %d: %w", h.block, err)
	}
	rec := func(seq uint32) []byte { return recs[seq] }
	var sc chunkScratch
	var pk packer
	for i := range h.n {
		s := h.ser(i)
		c, err := h.linkedChunk(s, rec, &sc)
		if err != nil {
			return fmt.Errorf("fold block %d: series %s: %w", h.block, h.key(s), err)
		}
		if len(c) == 0 {
			continue
		}
		if err := pk.add(s.id, c); err != nil {
			return fmt.Errorf("fold block %d: series %s: %w", h.block, h.key(s), err)
		}
		if pk.n == packSeries {
			if err := pk.put(&h.codec, chunks, h.block); err != nil {
				return fmt.Errorf("fold block %d: %w", h.block, err)
			}
		}
	}
	if err := pk.put(&h.codec, chunks, h.block); err != nil {
		return fmt.Errorf("fold block %d: %w", h.block, err)
	}
	polls := bk.polls()
	polls.FillPercent = 1
	accts := slices.Clone(h.acctList)
	slices.SortFunc(accts, func(x, y *account) int { return cmp.Compare(x.id, y.id) })
	for _, a := range accts {
		if len(a.polls) == 0 {
			continue
		}
		if err := polls.Put(blockKey(h.block, a.id), chunkenc.AppendPollTimes(nil, a.polls)); err != nil {
			return fmt.Errorf("fold block %d: %w", h.block, err)
		}
		a.polls, a.locs = a.polls[:0], a.locs[:0]
	}
	h.each(func(_ uint32, s *series) {
		s.setOpen(s.present())
		s.lastIdx, s.lastOff = 0, 0
	})
	if err := bk.head().Put(kCheckpoint, h.checkpoint()); err != nil {
		return fmt.Errorf("fold block %d: checkpoint: %w", h.block, err)
	}
	if err := bk.head().Delete(kSnapshot); err != nil {
		return fmt.Errorf("fold block %d: head snapshot: %w", h.block, err)
	}
	h.snapSeq = 0
	// Dropping the bucket frees the log's pages at once.
	if err := bk.tx.DeleteBucket(bLog); err != nil {
		return fmt.Errorf("fold block %d: clear log: %w", h.block, err)
	}
	lb, err := bk.tx.CreateBucket(bLog)
	if err != nil {
		return fmt.Errorf("fold block %d: clear log: %w", h.block, err)
	}
	bk.b[iLog] = lb
	return nil
}
