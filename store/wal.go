package store

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// walLinked starts a write-ahead log record whose entries link back to
// their series' previous entry. Older records start with their poll count,
// which is never 0.
const walLinked = 0

// A linked record is: walLinked, poll count, then per poll: account id,
// time, entry count and entries. An entry is: series id, link, point body
// (the change from the series' previous values). The link is 0 for the
// series' first entry in the block, else the poll index distance back to
// its previous entry followed by that entry's offset among its poll's
// entries.

// walPoll collects one account poll for the write-ahead log.
type walPoll struct {
	aid     uint32
	t       int64
	n       int
	entries []byte
	acct    *account
	idx     uint32 // the poll's index in the account's head block
	base    int    // offset of entries in the encoded record
}

func encodeWAL(polls []walPoll) []byte {
	size := 8
	for _, p := range polls {
		size += 24 + len(p.entries)
	}
	b := make([]byte, 0, size)
	b = append(b, walLinked)
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

// walEntry is one decoded log entry.
type walEntry struct {
	sid    uint32
	off    uint32 // offset among its poll's entries
	back   uint32 // poll index distance to the previous entry; 0: none
	prev   uint32 // offset of the previous entry
	absent bool
	d      vals // change from the previous values
}

// decodeWAL decodes one record: poll is called for each poll, with the
// offset of its entries, then entry for each of its entries.
func decodeWAL(rec []byte, poll func(aid uint32, t int64, base int) error, entry func(e *walEntry) error) (legacy bool, err error) {
	if len(rec) == 0 {
		return false, errCorrupt
	}
	p := 0
	if rec[0] == walLinked {
		p = 1
	} else {
		legacy = true
	}
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
		return legacy, errCorrupt
	}
	var e walEntry
	for range np {
		aid, ok1 := uv()
		t, n := binary.Varint(rec[p:])
		if !ok1 || n <= 0 {
			return legacy, errCorrupt
		}
		p += n
		ne, ok2 := uv()
		if !ok2 || aid > 1<<32-1 {
			return legacy, errCorrupt
		}
		base := p
		if err := poll(uint32(aid), t, base); err != nil {
			return legacy, err
		}
		for range ne {
			e = walEntry{off: uint32(p - base)} // values are under 2 GiB
			sid, ok := uv()
			if !ok || sid > 1<<32-1 {
				return legacy, errCorrupt
			}
			e.sid = uint32(sid)
			if !legacy {
				back, ok := uv()
				if !ok || back > 1<<32-1 {
					return legacy, errCorrupt
				}
				e.back = uint32(back)
				if back != 0 {
					prev, ok := uv()
					if !ok || prev > 1<<32-1 {
						return legacy, errCorrupt
					}
					e.prev = uint32(prev)
				}
			}
			m, absent, err := readPointBody(rec[p:], &e.d)
			if err != nil {
				return legacy, err
			}
			p += m
			e.absent = absent
			if err := entry(&e); err != nil {
				return legacy, err
			}
		}
	}
	if p != len(rec) {
		return legacy, errCorrupt
	}
	return legacy, nil
}

func addVals(v, d vals) vals {
	for i := range v {
		v[i] += d[i]
	}
	return v
}

// replay applies one write-ahead log record, stored under key seq.
func (h *head) replay(seq uint64, rec []byte) error {
	var a *account
	var idx uint32
	var prevLast int64
	legacy, err := decodeWAL(rec, func(aid uint32, t int64, base int) error {
		if a = h.acctByID[aid]; a == nil {
			return fmt.Errorf("%w: poll of unknown account %d", errCorrupt, aid)
		}
		idx, prevLast = uint32(len(a.polls)), a.last
		a.polls = append(a.polls, t)
		a.locs = append(a.locs, walLoc{seq: uint32(seq), base: uint32(base)})
		a.last = t
		return nil
	}, func(e *walEntry) error {
		s := h.get(e.sid)
		if s == nil {
			return nil // pruned by retention
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
	if legacy {
		h.legacy = true
	}
	return err
}

// logEntry appends s's change at poll idx to wp and links s to it.
func (h *head) logEntry(wp *walPoll, s *series, idx uint32, prev, next vals, absent bool) {
	off := len(wp.entries)
	wp.entries = binary.AppendUvarint(wp.entries, uint64(s.id))
	if s.lastIdx == 0 {
		wp.entries = append(wp.entries, 0)
	} else {
		wp.entries = binary.AppendUvarint(wp.entries, uint64(idx+1-s.lastIdx))
		wp.entries = binary.AppendUvarint(wp.entries, uint64(s.lastOff))
	}
	wp.entries = appendPointBody(wp.entries, prev, next, absent)
	wp.n++
	s.lastIdx, s.lastOff = idx+1, uint32(off)
}

// poll records one snapshot of account a at time t (ms), updating the
// cache and appending the changes to wp.
func (h *head) poll(tx *bbolt.Tx, a *account, t int64, entries []quota.Entry, wp *walPoll) error {
	idx := uint32(len(a.polls))
	prevLast := a.last
	a.polls = append(a.polls, t)
	a.locs = append(a.locs, walLoc{})
	a.last = t
	clear(h.marks)
	wp.aid, wp.t, wp.acct, wp.idx = a.id, t, a, idx
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
			if si, err = h.register(tx, a, e.Project, e.Resource); err != nil {
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
			h.logEntry(wp, s, idx, s.cur, v, false)
			s.cur = v
			s.setPresent(true)
		}
	}
	a.order = order[:len(entries)]
	for _, si := range a.series {
		if s := h.ser(si); (int(si/64) >= len(h.marks) || h.marks[si/64]&(1<<(si%64)) == 0) && s.present() {
			h.logEntry(wp, s, idx, s.cur, s.cur, true)
			s.setPresent(false)
			s.seen = prevLast
		}
	}
	return nil
}

func (h *head) account(tx *bbolt.Tx, name string) (*account, error) {
	if a := h.accts[name]; a != nil {
		return a, nil
	}
	b := tx.Bucket(bAccts)
	seq, err := b.NextSequence()
	if err != nil {
		return nil, fmt.Errorf("register account %q: %w", name, err)
	}
	if seq > 1<<32-1 {
		return nil, fmt.Errorf("register account %q: too many accounts", name)
	}
	if err := b.Put(u32(uint32(seq)), []byte(name)); err != nil {
		return nil, fmt.Errorf("register account %q: %w", name, err)
	}
	return h.addAccount(uint32(seq), name), nil
}

func (h *head) register(tx *bbolt.Tx, a *account, project, resource string) (uint32, error) {
	b := tx.Bucket(bSeries)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("register series: %w", err)
	}
	if seq > 1<<32-1 {
		return 0, fmt.Errorf("register series: too many series")
	}
	b.FillPercent = 0.9
	if err := b.Put(u32(uint32(seq)), encodeSeriesValue(a.id, project, resource)); err != nil {
		return 0, fmt.Errorf("register series %s/%s/%s: %w", a.name, project, resource, err)
	}
	h.addSeries(uint32(seq), a, project, resource)
	return h.n - 1, nil
}

// scanChunks rebuilds the head-block chunks of every series (by arena
// index) in one pass over the write-ahead log, starting from their values
// when the block began (the checkpoint). It needs no links, so it reads
// logs written before entries had them.
func (h *head) scanChunks(tx *bbolt.Tx) ([][]byte, error) {
	type state struct {
		w       chunkWriter
		v       vals
		pending bool // present when the block began; no point written yet
	}
	st := make([]state, h.n)
	err := forCheckpoint(tx.Bucket(bMeta).Get(kHeads), nil, func(id uint32, _ bool, _ int64, v vals) {
		if i, ok := h.indexOf(id); ok {
			st[i].v = v
		}
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	for i := range st {
		s := h.ser(uint32(i))
		st[i].pending = s.open() && len(h.acct(s).polls) > 0
	}
	polls := map[uint32]uint32{}
	var idx uint32
	err = tx.Bucket(bWAL).ForEach(func(_, rec []byte) error {
		_, err := decodeWAL(rec, func(aid uint32, _ int64, _ int) error {
			idx = polls[aid]
			polls[aid] = idx + 1
			return nil
		}, func(e *walEntry) error {
			i, ok := h.indexOf(e.sid)
			if !ok {
				return nil // pruned by retention
			}
			x := &st[i]
			if x.pending {
				// A series present when the block began starts its chunk
				// at the account's first poll, changed there or not.
				if idx != 0 {
					x.w.add(0, x.v, x.v, true)
				}
				x.pending = false
			}
			prev := x.v
			if !e.absent {
				x.v = addVals(x.v, e.d)
			}
			x.w.add(idx, prev, x.v, !e.absent)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write-ahead log: %w", err)
	}
	out := make([][]byte, len(st))
	for i := range st {
		x := &st[i]
		if x.pending {
			x.w.add(0, x.v, x.v, true)
		}
		out[i] = x.w.buf
	}
	return out, nil
}

// headChunk rebuilds s's chunk of the head block from the log.
func (h *head) headChunk(tx *bbolt.Tx, s *series) ([]byte, error) {
	if len(h.acct(s).polls) == 0 {
		return nil, nil
	}
	if h.legacy {
		i, _ := h.indexOf(s.id)
		if int64(i) < int64(len(h.legacyChunks)) {
			return h.legacyChunks[i], nil
		}
		return nil, fmt.Errorf("%w: head chunks not rebuilt", errCorrupt)
	}
	wb := tx.Bucket(bWAL)
	var rec []byte
	recSeq := uint32(0)
	chunk, err := h.linkedChunk(s, func(seq uint32) []byte {
		if rec == nil || seq != recSeq {
			rec, recSeq = wb.Get(u64(uint64(seq))), seq
		}
		return rec
	}, &chunkScratch{})
	return chunk, err
}

// point is one log entry of a series, or one point of its chunk: an
// account poll index and the state from there on.
type point struct {
	idx     uint32
	present bool
	v       vals
}

// chunkScratch is space linkedChunk reuses from one series to the next.
type chunkScratch struct{ back, fwd []point }

// linkedChunk rebuilds s's chunk of the head block: back from its newest
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
		e, err := readLinkedEntry(r[p:])
		if err != nil {
			return nil, err
		}
		if e.sid != s.id || e.back > idx {
			return nil, fmt.Errorf("%w: log link of series %d", errCorrupt, s.id)
		}
		back = append(back, point{idx, !e.absent, v})
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
	// Forward, with chunkWriter's rules: a point where the state changed,
	// and a series present when the block began starts its chunk at the
	// account's first poll, changed there or not.
	fwd := sc.fwd[:0]
	defer func() { sc.fwd = fwd }()
	var cur vals
	present := false
	add := func(idx uint32, next vals, p bool) {
		if p == present && (!p || next == cur) {
			return
		}
		fwd = append(fwd, point{idx, p, next})
		present = p
		if p {
			cur = next
		}
	}
	start := v
	pending := s.open()
	for i := len(back) - 1; i >= 0; i-- {
		p := back[i]
		if pending && p.idx != 0 {
			add(0, start, true)
		}
		pending = false
		add(p.idx, p.v, p.present)
	}
	if pending {
		add(0, start, true)
	}
	return encodeChunk(fwd), nil
}

// readLinkedEntry decodes the linked log entry at the start of b.
func readLinkedEntry(b []byte) (walEntry, error) {
	var e walEntry
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
		return e, errCorrupt
	}
	if e.back, ok = uv(); !ok {
		return e, errCorrupt
	}
	if e.back != 0 {
		if e.prev, ok = uv(); !ok {
			return e, errCorrupt
		}
	}
	_, absent, err := readPointBody(b[p:], &e.d)
	e.absent = absent
	return e, err
}

// buildLegacyChunks rebuilds every head chunk of a log without links, for
// a reader.
func (h *head) buildLegacyChunks(tx *bbolt.Tx) error {
	cs, err := h.scanChunks(tx)
	if err != nil {
		return err
	}
	h.legacyChunks = cs
	return nil
}

// upgradeLog rewrites a log without links as linked records under the
// same keys, and links the series to them.
func (h *head) upgradeLog(tx *bbolt.Tx) error {
	wb := tx.Bucket(bWAL)
	type record struct{ k, v []byte }
	var recs []record
	if err := wb.ForEach(func(k, v []byte) error {
		recs = append(recs, record{slices.Clone(k), slices.Clone(v)})
		return nil
	}); err != nil {
		return err
	}
	for _, a := range h.acctList {
		a.polls, a.locs = a.polls[:0], a.locs[:0]
	}
	h.each(func(_ uint32, s *series) { s.lastIdx, s.lastOff = 0, 0 })
	wb.FillPercent = 1
	for _, r := range recs {
		var polls []walPoll
		var cur vals // values are not needed: bodies are copied as deltas
		if _, err := decodeWAL(r.v, func(aid uint32, t int64, _ int) error {
			a := h.acctByID[aid]
			if a == nil {
				return fmt.Errorf("%w: poll of unknown account %d", errCorrupt, aid)
			}
			polls = append(polls, walPoll{aid: aid, t: t, acct: a, idx: uint32(len(a.polls))})
			a.polls = append(a.polls, t)
			a.locs = append(a.locs, walLoc{})
			return nil
		}, func(e *walEntry) error {
			s := h.get(e.sid)
			if s == nil {
				return nil // pruned by retention
			}
			p := &polls[len(polls)-1]
			h.logEntry(p, s, p.idx, cur, e.d, e.absent)
			return nil
		}); err != nil {
			return err
		}
		if len(r.k) != 8 {
			return errCorrupt
		}
		v := encodeWAL(polls)
		seq := binary.BigEndian.Uint64(r.k)
		for _, p := range polls {
			p.acct.locs[p.idx] = walLoc{seq: uint32(seq), base: uint32(p.base)}
		}
		if err := wb.Put(r.k, v); err != nil {
			return err
		}
	}
	h.legacy, h.legacyChunks = false, nil
	return nil
}

// fold writes the head block as chunks and poll-time logs, checkpoints
// the last values and empties the write-ahead log.
func (h *head) fold(tx *bbolt.Tx) error {
	if !h.hasBlock {
		return nil
	}
	chunks := tx.Bucket(bChunks)
	chunks.FillPercent = 1 // keys are appended in order
	put := func(s *series, c []byte) error {
		if len(c) == 0 {
			return nil
		}
		if err := chunks.Put(blockKey(h.block, s.id), c); err != nil {
			return fmt.Errorf("fold block %d: %w", h.block, err)
		}
		return nil
	}
	if h.legacy {
		cs, err := h.scanChunks(tx)
		if err != nil {
			return fmt.Errorf("fold block %d: %w", h.block, err)
		}
		for i, c := range cs {
			s := h.ser(uint32(i))
			if c, err = recode(c); err != nil {
				return fmt.Errorf("fold block %d: series %s: %w", h.block, h.key(s), err)
			}
			if err := put(s, c); err != nil {
				return err
			}
		}
	} else {
		// The records stay mapped for the transaction: index them once,
		// then follow each series' links in memory.
		recs := map[uint32][]byte{}
		if err := tx.Bucket(bWAL).ForEach(func(k, v []byte) error {
			if len(k) == 8 {
				recs[uint32(binary.BigEndian.Uint64(k))] = v
			}
			return nil
		}); err != nil {
			return fmt.Errorf("fold block %d: %w", h.block, err)
		}
		rec := func(seq uint32) []byte { return recs[seq] }
		var sc chunkScratch
		for i := range h.n {
			s := h.ser(i)
			c, err := h.linkedChunk(s, rec, &sc)
			if err != nil {
				return fmt.Errorf("fold block %d: series %s: %w", h.block, h.key(s), err)
			}
			if err := put(s, c); err != nil {
				return err
			}
		}
	}
	polls := tx.Bucket(bPolls)
	polls.FillPercent = 1
	accts := slices.Clone(h.acctList)
	slices.SortFunc(accts, func(x, y *account) int { return cmp.Compare(x.id, y.id) })
	for _, a := range accts {
		if len(a.polls) == 0 {
			continue
		}
		if err := polls.Put(blockKey(h.block, a.id), appendPollTimes(nil, a.polls)); err != nil {
			return fmt.Errorf("fold block %d: %w", h.block, err)
		}
		a.polls, a.locs = a.polls[:0], a.locs[:0]
	}
	h.each(func(_ uint32, s *series) {
		s.setOpen(s.present())
		s.lastIdx, s.lastOff = 0, 0
	})
	h.legacy, h.legacyChunks = false, nil
	if err := tx.Bucket(bMeta).Put(kHeads, h.checkpoint()); err != nil {
		return fmt.Errorf("fold block %d: checkpoint: %w", h.block, err)
	}
	if err := tx.DeleteBucket(bWAL); err != nil {
		return fmt.Errorf("fold block %d: clear log: %w", h.block, err)
	}
	if _, err := tx.CreateBucket(bWAL); err != nil {
		return fmt.Errorf("fold block %d: clear log: %w", h.block, err)
	}
	return nil
}

// record writes the snapshots of a batch: in time order, folding the head
// block when a poll starts a new one.
func (s *Store) record(tx *bbolt.Tx, h *head, b *Batch, batchTime time.Time) error {
	snaps := make([]*quota.Snapshot, 0, len(b.Snapshots))
	for i := range b.Snapshots {
		snaps = append(snaps, &b.Snapshots[i])
	}
	at := func(sn *quota.Snapshot) int64 {
		if sn.Time.IsZero() {
			return ms(batchTime)
		}
		return ms(sn.Time)
	}
	slices.SortStableFunc(snaps, func(x, y *quota.Snapshot) int { return cmp.Compare(at(x), at(y)) })
	var wal []walPoll
	// flush writes the polls collected so far as one log record.
	flush := func() error {
		if len(wal) == 0 {
			return nil
		}
		wb := tx.Bucket(bWAL)
		wb.FillPercent = 1
		seq, err := wb.NextSequence()
		if err != nil {
			return fmt.Errorf("write-ahead log: %w", err)
		}
		if seq > 1<<32-1 {
			return fmt.Errorf("write-ahead log: too many records")
		}
		rec := encodeWAL(wal)
		for _, p := range wal {
			p.acct.locs[p.idx] = walLoc{seq: uint32(seq), base: uint32(p.base)}
		}
		if err := wb.Put(u64(seq), rec); err != nil {
			return fmt.Errorf("write-ahead log: %w", err)
		}
		wal = wal[:0]
		return nil
	}
	for _, sn := range snaps {
		t := at(sn)
		blk := blockOf(t)
		if blk < 0 || blk > 1<<32-1 {
			s.log.Warn("store: snapshot time out of range; not recorded", "account", sn.Account, "time", sn.Time)
			continue
		}
		a, err := h.account(tx, sn.Account)
		if err != nil {
			return err
		}
		if a.last != 0 && t <= a.last || h.hasBlock && uint32(blk) < h.block {
			s.log.Warn("store: snapshot not after the account's last poll (clock stepped back?); not recorded",
				"account", sn.Account, "time", time.UnixMilli(t).UTC(), "last", time.UnixMilli(a.last).UTC())
			continue
		}
		if !h.hasBlock || uint32(blk) > h.block {
			// The fold reads the block back from the log: write this
			// batch's earlier polls there first.
			if err := flush(); err != nil {
				return err
			}
			if err := h.fold(tx); err != nil {
				return err
			}
			h.block, h.hasBlock = uint32(blk), true
			if err := tx.Bucket(bMeta).Put(kHeadBlock, u32(h.block)); err != nil {
				return fmt.Errorf("head block: %w", err)
			}
		}
		wal = append(wal, walPoll{})
		if err := h.poll(tx, a, t, sn.Entries, &wal[len(wal)-1]); err != nil {
			return err
		}
	}
	return flush()
}
