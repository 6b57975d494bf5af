package series

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/store/series/chunkenc"
)

// Week packs. A day pack holds 512 series: a query of one series over 30
// days would decompress 30 of them, some 15,000 series-days, to read 30.
// Once a week (weekDays aligned day blocks, block/weekDays) is complete,
// the writer rewrites its day packs as week packs: each holds, for the
// series of one group of weekGroup consecutive ids, every chunk of the
// week, so such a query decompresses four or five small week packs and
// the day packs of at most six newer days. A series' days resemble each
// other, so they compress together as well as a day's series do, or
// better.
//
// A week pack is keyed (week, first id of its group), in its own bucket,
// and is weekMarker, then a zstd frame of, per chunk in order of (series
// id, day): the distance of id<<3|day from the previous chunk's (the
// first from the group's first id<<3), the length of the rest, then the
// chunk's shift byte, its first point's poll index and values, and its
// points after the first. The first values are a change from those of
// the series' chunk before (a series' days resemble each other), or for
// its first chunk from the previous series' first chunk's (series of a
// group often share limits), so that a reader of one series skips the
// other series' chunks but their first.
//
// The rewrite goes a few groups at a time in each Append, weekBatch chunks
// or enough that a week takes at most weekSteps Appends, so no cycle pauses
// long and every schedule keeps up; each step is one transaction, so a
// week may be partly in both forms, and readers take a series' chunks of
// the week from its group's week pack if there is one, else from the day
// packs. Groups are rewritten in id order, each in one step, and a day
// pack goes only once every series it holds has been rewritten: a group
// with no week pack has nothing in the week, or is still in day packs.
const (
	weekDays   = 7
	weekGroup  = 96
	weekMarker = 0xfe
	weekBatch  = 8192
	// weekSteps bounds how many steps a week takes, so that a large
	// store's weeks, or the backlog of a store written before week packs,
	// are rewritten at any schedule: at 800,000 series a step of
	// weekBatch chunks would take 684 cycles a week, more than an hourly
	// schedule runs.
	weekSteps = 48
)

// bWeeks holds the week packs: week, first series id of the group -> pack.
// The writer makes it at its first rewrite; a store without it has none.
var bWeeks = []byte("history_weeks")

// kRetained (in the head bucket) is the first block Retain keeps: readers
// stop there at once, though a week pack may hold older days for a week
// more.
var kRetained = []byte("retained")

func weekKey(w, g uint32) []byte { return blockKey(w, g) }

func keyBlock(k []byte) uint32 { return binary.BigEndian.Uint32(k[:4]) }
func keyID(k []byte) uint32    { return binary.BigEndian.Uint32(k[4:]) }

// weekCache is what a query keeps of the week packs in one transaction.
type weekCache struct {
	looked bool
	b      *bbolt.Bucket // nil: no week packs
	// The chunks of series id in week w, from its group g's week pack
	// (found, if there is one), so that one pack serves its seven days.
	valid    bool
	w, g, id uint32
	found    bool
	days     [weekDays][]byte
	raw      []byte // a decompressed week pack, reused
}

// weeks returns the week packs' bucket, or nil.
func (bk *buckets) weeks() *bbolt.Bucket {
	if !bk.wk.looked {
		bk.wk.b, bk.wk.looked = bk.tx.Bucket(bWeeks), true
	}
	return bk.wk.b
}

// retainedFrom is the first block Retain keeps; 0 if it never ran.
func retainedFrom(bk *buckets) int64 {
	if hb := bk.head(); hb != nil {
		if v := hb.Get(kRetained); len(v) == 4 {
			return int64(binary.BigEndian.Uint32(v))
		}
	}
	return 0
}

// weekChunk returns the chunk of series id in sealed block b from its
// group's week pack, and found false if its group has none for the week.
func (h *head) weekChunk(bk *buckets, b, id uint32) (chunk []byte, found bool, err error) {
	wb := bk.weeks()
	if wb == nil {
		return nil, false, nil
	}
	w, g := b/weekDays, id/weekGroup*weekGroup
	wc := &bk.wk
	if !wc.valid || wc.w != w || wc.g != g || wc.id != id {
		wc.valid, wc.w, wc.g, wc.id, wc.found, wc.days = false, w, g, id, false, [weekDays][]byte{}
		if v := wb.Get(weekKey(w, g)); v != nil {
			raw, err := h.decodeWeek(v, wc.raw[:0])
			wc.raw = raw
			if err == nil {
				wc.days, err = findInWeek(raw, g, id)
			}
			if err != nil {
				return nil, false, weekErr(b, w, g, err)
			}
			wc.found = true
		}
		wc.valid = true
	}
	return wc.days[b%weekDays], wc.found, nil
}

// weekErr names the block read and the week pack that failed.
func weekErr(b, w, g uint32, err error) error {
	if !errors.Is(err, errCorrupt) {
		err = fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return fmt.Errorf("block %d week pack %d (blocks %d-%d): %w", b, g, w*weekDays, w*weekDays+weekDays-1, err)
}

// decodeWeek decompresses a week pack into dst.
func (h *head) decodeWeek(v, dst []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != weekMarker {
		return dst, errCorrupt
	}
	if err := h.codec.init(); err != nil {
		return dst, err
	}
	raw, err := h.codec.dec.DecodeAll(v[1:], dst)
	if err == nil && len(raw) == 0 {
		err = errCorrupt // a week pack holds a chunk at least
	}
	return raw, err
}

// weekEntries walks a decompressed week pack of group g: for each chunk,
// in order, fn is told its series id, its day and whether it is its
// series' first in the pack, and returns whether to decode it and
// whether to go on; a decoded chunk is then given to fn. To decode a
// chunk, decode its series' chunks before it and the first chunk of every
// series before, so that the first values add up.
func weekEntries(raw []byte, g uint32, fn func(id uint32, day int, first bool, e *packEntry) (decode, next bool)) error {
	at := uint64(g) << 3
	var seriesFirst, cur chunkenc.Vals
	var e packEntry
	lastID := int64(-1)
	for p := 0; p < len(raw); {
		d, n := binary.Uvarint(raw[p:])
		if n <= 0 || d == 0 && p > 0 {
			return errCorrupt
		}
		p += n
		at += d
		if at>>3 > 1<<32-1 || at&7 >= weekDays {
			return errCorrupt
		}
		l, n := binary.Uvarint(raw[p:])
		if n <= 0 || l > uint64(len(raw)-p-n) {
			return errCorrupt
		}
		p += n
		body := raw[p : p+int(l)]
		p += int(l)
		id := uint32(at >> 3)
		first := int64(id) != lastID
		lastID = int64(id)
		// Decided before decoding: fn reads the entry only when asked.
		decode, next := fn(id, int(at&7), first, nil)
		if decode {
			prev := cur
			if first {
				prev = seriesFirst
			}
			var err error
			if e, err = readWeekBody(body, prev); err != nil {
				return err
			}
			if first {
				seriesFirst = e.first
			}
			cur = e.first
			if _, next = fn(id, int(at&7), first, &e); !next {
				return nil
			}
		} else if !next {
			return nil
		}
	}
	return nil
}

// readWeekBody reads a week pack chunk after its key and length: shift
// byte, first point's poll index and values as a change from prev, then
// the points after it.
func readWeekBody(body []byte, prev chunkenc.Vals) (packEntry, error) {
	e := packEntry{first: prev}
	if len(body) < 2 {
		return e, errCorrupt
	}
	e.shift = body[0]
	idx, n := binary.Uvarint(body[1:])
	if n <= 0 {
		return e, errCorrupt
	}
	e.idx = idx
	m, absent, err := chunkenc.ReadPoint(body[1+n:], &e.first)
	if err != nil || absent {
		return e, errCorrupt
	}
	e.rest = body[1+n+m:]
	return e, nil
}

// findInWeek returns the chunks of series id, by day, from a decompressed
// week pack of group g, copied out. The chunks of the series before it are
// skipped, but for the first values of each one's first chunk.
func findInWeek(raw []byte, g, id uint32) ([weekDays][]byte, error) {
	var days [weekDays][]byte
	var es [weekDays]packEntry
	var have [weekDays]bool
	size := 0
	err := weekEntries(raw, g, func(sid uint32, day int, first bool, e *packEntry) (bool, bool) {
		switch {
		case sid > id:
			return false, false
		case e == nil:
			return sid == id || first, true
		case sid == id:
			es[day], have[day] = *e, true
			size += e.size()
		}
		return true, true
	})
	if err != nil || size == 0 {
		return days, err
	}
	buf := make([]byte, 0, size)
	for d := range days {
		if have[d] {
			start := len(buf)
			buf = es[d].appendChunk(buf)
			days[d] = buf[start:len(buf):len(buf)]
		}
	}
	return days, nil
}

// eachInWeek calls fn with the chunks of one day in a decompressed week
// pack of group g, in id order, each in space of its own.
func eachInWeek(raw []byte, g uint32, day int, fn func(id uint32, chunk []byte)) error {
	var arena []byte
	return weekEntries(raw, g, func(id uint32, d int, first bool, e *packEntry) (bool, bool) {
		switch {
		case e == nil:
			return d <= day || first, true
		case d == day:
			if cap(arena)-len(arena) < e.size() {
				arena = make([]byte, 0, max(len(raw)/weekDays+e.size(), 4096))
			}
			start := len(arena)
			arena = e.appendChunk(arena)
			fn(id, arena[start:len(arena):len(arena)])
		}
		return true, true
	})
}

// weekPacker builds one week pack.
type weekPacker struct {
	raw  []byte
	last uint64 // id<<3 | day of the previous chunk
	n    int
	// The first values of the previous series' first chunk, and of the
	// previous chunk.
	seriesFirst, cur chunkenc.Vals
	point            []byte
}

func (p *weekPacker) reset(g uint32) {
	p.raw, p.last, p.n, p.seriesFirst, p.cur = p.raw[:0], uint64(g)<<3, 0, chunkenc.Vals{}, chunkenc.Vals{}
}

// add appends the chunk of series id on day of the week; chunks come in
// order of (id, day). Its first values are stored as a change from those
// of the series' chunk before, or for its first, of the previous series'
// first: a reader of one series decodes only its own chunks and the first
// of each series before it, and skips the rest by their lengths.
func (p *weekPacker) add(id uint32, day int, chunk []byte) error {
	k := uint64(id)<<3 | uint64(day)
	if k < p.last || p.n > 0 && k == p.last {
		return fmt.Errorf("week pack: chunk of series %d day %d out of order", id, day)
	}
	idx, v, rest, err := splitChunk(chunk)
	if err != nil {
		return fmt.Errorf("series %d day %d: %w", id, day, err)
	}
	first := p.n == 0 || p.last>>3 != uint64(id)
	prev := p.cur
	if first {
		prev = p.seriesFirst
		p.seriesFirst = v
	}
	p.point = chunkenc.AppendPoint(p.point[:0], prev, v, false)
	p.raw = binary.AppendUvarint(p.raw, k-p.last)
	p.raw = binary.AppendUvarint(p.raw, uint64(1+uvarintLen(idx)+len(p.point)+len(rest)))
	p.raw = append(p.raw, chunk[0])
	p.raw = binary.AppendUvarint(p.raw, idx)
	p.raw = append(p.raw, p.point...)
	p.raw = append(p.raw, rest...)
	p.cur, p.last = v, k
	p.n++
	return nil
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// weekEntry is one chunk of a week being rewritten.
type weekEntry struct {
	id    uint32
	day   uint8
	chunk []byte
}

// dayStream reads the chunks of one sealed block's day packs in id order,
// from id from on, a value at a time, and keeps the keys of the values
// wholly read.
type dayStream struct {
	b    uint32
	day  uint8
	from uint32
	c    *bbolt.Cursor
	k, v []byte // the next value not opened; k nil: none left in the block
	// open is the key of the value opened last, chunks what is left of it.
	open   []byte
	chunks []weekEntry
	done   [][]byte
}

func (h *head) newDayStream(bk *buckets, b uint32, day uint8, from uint32, scratch *[]byte) (*dayStream, error) {
	ds := &dayStream{b: b, day: day, from: from, c: bk.chunks().Cursor()}
	key := blockKey(b, from)
	k, v := ds.c.Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		// The value before, if of this block, may hold ids from from on.
		var pk, pv []byte
		if k == nil {
			pk, pv = ds.c.Last()
		} else {
			pk, pv = ds.c.Prev()
		}
		if len(pk) == 8 && keyBlock(pk) == b {
			k, v = pk, pv
		} else {
			k, v = ds.c.Seek(key)
		}
	}
	ds.set(k, v)
	if ds.k != nil && keyID(ds.k) < from {
		if err := ds.openNext(h, scratch); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

func (ds *dayStream) set(k, v []byte) {
	if len(k) != 8 || keyBlock(k) != ds.b {
		k, v = nil, nil
	}
	ds.k, ds.v = k, v
}

// next returns the smallest id not read yet, if any.
func (ds *dayStream) next() (uint32, bool) {
	if len(ds.chunks) > 0 {
		return ds.chunks[0].id, true
	}
	if ds.open != nil {
		ds.done, ds.open = append(ds.done, ds.open), nil
	}
	if ds.k == nil {
		return 0, false
	}
	return keyID(ds.k), true // a value's key is its first id
}

// take appends to out the chunks of ids below end.
func (ds *dayStream) take(h *head, end uint64, out []weekEntry, scratch *[]byte) ([]weekEntry, error) {
	for {
		for len(ds.chunks) > 0 && uint64(ds.chunks[0].id) < end {
			out = append(out, ds.chunks[0])
			ds.chunks = ds.chunks[1:]
		}
		if len(ds.chunks) > 0 {
			return out, nil
		}
		if id, ok := ds.next(); !ok || uint64(id) >= end {
			return out, nil
		}
		if err := ds.openNext(h, scratch); err != nil {
			return out, err
		}
	}
}

// openNext reads the next value's chunks of ids from ds.from on.
func (ds *dayStream) openNext(h *head, scratch *[]byte) error {
	k, v := ds.k, ds.v
	first := keyID(k)
	ds.open, ds.chunks = slices.Clone(k), ds.chunks[:0]
	if len(v) == 0 || v[0] != packMarker {
		// A block sealed one value per series.
		if len(v) > 0 && first >= ds.from {
			ds.chunks = append(ds.chunks, weekEntry{id: first, day: ds.day, chunk: slices.Clone(v)})
		}
	} else {
		raw, err := h.codec.dec.DecodeAll(v[1:], (*scratch)[:0])
		*scratch = raw
		if err != nil {
			return fmt.Errorf("%w: block %d pack %d: %v", errCorrupt, ds.b, first, err)
		}
		err = eachInPack(raw, first, func(id uint32, chunk []byte) error {
			if id >= ds.from {
				ds.chunks = append(ds.chunks, weekEntry{id: id, day: ds.day, chunk: chunk})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("block %d pack %d: %w", ds.b, first, err)
		}
	}
	ds.set(ds.c.Next())
	return nil
}

// sealWeek rewrites the next groups of week w, about budget chunks of
// them, from day packs to week packs, and deletes the day packs wholly
// rewritten; done reports that none is left. It reads and encodes
// everything before it writes: an error of errCorrupt leaves the
// transaction as it was.
func (h *head) sealWeek(bk *buckets, w uint32, budget int) (done bool, err error) {
	if err := h.codec.init(); err != nil {
		return false, err
	}
	enc, err := h.codec.encoder()
	if err != nil {
		return false, err
	}
	// Groups before the last week pack of w are done.
	var from uint32
	if wb := bk.weeks(); wb != nil {
		c := wb.Cursor()
		k, _ := c.Seek(weekKey(w+1, 0))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		if len(k) == 8 && keyBlock(k) == w {
			if keyID(k) > 1<<32-1-weekGroup {
				return false, fmt.Errorf("%w: week pack %d of week %d", errCorrupt, keyID(k), w)
			}
			from = keyID(k) + weekGroup
		}
	}
	var scratch []byte
	streams := make([]*dayStream, 0, weekDays)
	for d := range uint8(weekDays) {
		ds, err := h.newDayStream(bk, w*weekDays+uint32(d), d, from, &scratch)
		if err != nil {
			return false, err
		}
		streams = append(streams, ds)
	}
	type group struct {
		g uint32
		v []byte
	}
	var groups []group
	var pk weekPacker
	var cs []weekEntry
	for n := 0; n < budget; {
		first, any := uint32(0), false
		for _, ds := range streams {
			if id, ok := ds.next(); ok && (!any || id < first) {
				first, any = id, true
			}
		}
		if !any {
			done = true
			break
		}
		g := first / weekGroup * weekGroup
		cs = cs[:0]
		for _, ds := range streams {
			if cs, err = ds.take(h, uint64(g)+weekGroup, cs, &scratch); err != nil {
				return false, err
			}
		}
		if len(cs) == 0 {
			continue // only ids rewritten before
		}
		slices.SortFunc(cs, func(x, y weekEntry) int {
			return cmp.Or(cmp.Compare(x.id, y.id), cmp.Compare(x.day, y.day))
		})
		pk.reset(g)
		for _, e := range cs {
			if err := pk.add(e.id, int(e.day), e.chunk); err != nil {
				return false, fmt.Errorf("%w: week of blocks %d-%d: %v", errCorrupt, w*weekDays, w*weekDays+weekDays-1, err)
			}
		}
		groups = append(groups, group{g, enc.EncodeAll(pk.raw, []byte{weekMarker})})
		n += len(cs)
	}
	if len(groups) > 0 {
		wb, err := bk.tx.CreateBucketIfNotExists(bWeeks)
		if err != nil {
			return false, fmt.Errorf("week packs: %w", err)
		}
		bk.wk = weekCache{looked: true, b: wb}
		wb.FillPercent = 1 // weeks, and groups in them, are appended in order
		for _, gr := range groups {
			if err := wb.Put(weekKey(w, gr.g), gr.v); err != nil {
				return false, fmt.Errorf("week pack %d of week %d: %w", gr.g, w, err)
			}
		}
	}
	for _, ds := range streams {
		for _, k := range ds.done {
			if err := bk.chunks().Delete(k); err != nil {
				return false, fmt.Errorf("day pack %d of block %d: %w", keyID(k), ds.b, err)
			}
		}
	}
	return done, nil
}

// weekState is what the writer knows of the weeks left to rewrite.
type weekState struct {
	// idle: no complete week was left in day packs when the open block
	// was idleAt.
	idle   bool
	idleAt uint32
	// from is the first week to rewrite: one whose day packs do not
	// decode is left as it is (its queries report the damage).
	from uint32
	// step is how many chunks a step rewrites, about: 0 is weekBatch;
	// tests take small steps, or none (< 0) to write day packs only, as
	// stores were written before week packs.
	step int
}

// sealWeeks takes the next step of rewriting the oldest complete week
// still in day packs, if any. It does nothing in an Append that folded,
// which has done enough.
func (e *Engine) sealWeeks(bk *buckets) error {
	h, ws := e.h, &e.weeks
	if !h.hasBlock || bk.folded || ws.step < 0 || ws.idle && ws.idleAt == h.block {
		return nil
	}
	var k []byte
	if b := uint64(ws.from) * weekDays; b <= 1<<32-1 {
		k, _ = bk.chunks().Cursor().Seek(blockKey(uint32(b), 0))
	}
	if k == nil || len(k) != 8 || uint64(keyBlock(k)/weekDays)*weekDays+weekDays > uint64(h.block) {
		ws.idle, ws.idleAt = true, h.block
		return nil
	}
	w := keyBlock(k) / weekDays
	step := ws.step
	if step == 0 {
		step = max(weekBatch, int(h.n)*weekDays/weekSteps)
	}
	_, err := h.sealWeek(bk, w, step)
	if errors.Is(err, errCorrupt) {
		e.log.Warn("store: a sealed week's history does not decode; its day packs are left as they are",
			"blocks", fmt.Sprintf("%d-%d", w*weekDays, w*weekDays+weekDays-1), "err", err)
		ws.from = w + 1
		return nil
	}
	if err != nil {
		return fmt.Errorf("rewrite week of blocks %d-%d: %w", w*weekDays, w*weekDays+weekDays-1, err)
	}
	return nil
}
