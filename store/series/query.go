package series

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series/chunkenc"
)

// blockData returns the poll times of s's account and s's chunk in block
// b; chunk is nil when the series was absent all block.
func (h *head) blockData(bk *buckets, s *series, b uint32) (polls []int64, chunk []byte, err error) {
	if h.hasBlock && b == h.block {
		chunk, err := h.openChunk(bk, s)
		return h.acct(s).polls, chunk, err
	}
	chunk, err = h.sealedChunk(bk, b, s.id)
	if err != nil || chunk == nil {
		return nil, nil, err
	}
	pv := bk.polls().Get(blockKey(b, h.acct(s).id))
	if pv == nil {
		return nil, nil, fmt.Errorf("%w: block %d has no poll times for account %s", errCorrupt, b, h.acct(s).name)
	}
	polls, err = chunkenc.ReadPollTimes(pv)
	return polls, chunk, err
}

// blockRange clamps [from,to] (ms) to the blocks that may hold data: from
// the first with poll times (a week pack may begin days before it, and
// Retain deletes a block's chunks before its poll times), and the first
// Retain keeps.
func (h *head) blockRange(bk *buckets, from, to int64) (lo, hi int64, ok bool) {
	if !h.hasBlock {
		return 0, 0, false
	}
	first := int64(h.block)
	if k, _ := bk.polls().Cursor().First(); len(k) == 8 {
		first = min(first, int64(keyBlock(k)))
	}
	first = max(first, retainedFrom(bk))
	lo, hi = max(blockOf(from), first), min(blockOf(to), int64(h.block))
	return lo, hi, lo <= hi
}

// walk calls fn for each poll of s's account in [from,to] (ms) where the
// series was present, in time order; fn returns false to stop. grow, if
// set, is first told how many polls the range holds at most.
func (h *head) walk(bk *buckets, s *series, from, to int64, grow func(int), fn func(t int64, v vals) bool) error {
	lo, hi, ok := h.blockRange(bk, from, to)
	if !ok {
		return nil
	}
	type block struct {
		n     int64
		polls []int64
		chunk []byte
	}
	blocks := make([]block, 0, hi-lo+1)
	total := 0
	for b := lo; b <= hi; b++ {
		polls, chunk, err := h.blockData(bk, s, uint32(b))
		if err != nil {
			return err
		}
		if len(chunk) > 0 {
			blocks = append(blocks, block{b, polls, chunk})
			total += len(polls)
		}
	}
	if grow != nil {
		grow(total)
	}
	for _, bl := range blocks {
		polls := bl.polls
		stop := false
		err := chunkenc.Expand(bl.chunk, len(polls), func(i int, present bool, v vals) bool {
			t := polls[i]
			if t > to {
				stop = true
				return false
			}
			if present && t >= from && !fn(t, v) {
				stop = true
				return false
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("series %s block %d: %w", h.key(s), bl.n, err)
		}
		if stop {
			return nil
		}
	}
	return nil
}

// at finds the last poll <= t (ms) where s was present.
func (h *head) at(bk *buckets, s *series, t int64) (quota.Sample, bool, error) {
	if seen := h.lastSeen(s); seen == 0 {
		return quota.Sample{}, false, nil
	} else if t >= seen && (!s.present() || t >= h.acct(s).last) {
		// Values are kept while a series is absent, so the cache answers.
		return quota.Sample{Time: time.UnixMilli(seen).UTC(), Quota: quotaOf(s.cur)}, true, nil
	}
	lo, hi, ok := h.blockRange(bk, 0, t)
	if !ok {
		return quota.Sample{}, false, nil
	}
	for b := hi; b >= lo; b-- {
		polls, chunk, err := h.blockData(bk, s, uint32(b))
		if err != nil {
			return quota.Sample{}, false, err
		}
		if len(chunk) == 0 {
			continue
		}
		found := false
		var ft int64
		var fv vals
		err = chunkenc.Expand(chunk, len(polls), func(i int, present bool, v vals) bool {
			if polls[i] > t {
				return false
			}
			if present {
				found, ft, fv = true, polls[i], v
			}
			return true
		})
		if err != nil {
			return quota.Sample{}, false, fmt.Errorf("series %s block %d: %w", h.key(s), b, err)
		}
		if found {
			return quota.Sample{Time: time.UnixMilli(ft).UTC(), Quota: quotaOf(fv)}, true, nil
		}
	}
	return quota.Sample{}, false, nil
}

// Latest is the newest observation of one series.
type Latest struct {
	Key    quota.Key
	Sample quota.Sample
}

// At returns the series' values at the latest poll at or before t where
// the series was present. Times are kept to the millisecond.
func (e *Engine) At(tx *bbolt.Tx, k quota.Key, t time.Time) (quota.Sample, bool, error) {
	s, err := e.h.lookupRestored(k)
	if s == nil || err != nil {
		return quota.Sample{}, false, err
	}
	bk, err := open(tx, false)
	if err != nil {
		return quota.Sample{}, false, err
	}
	return e.h.at(bk, s, ms(t))
}

// Series returns one sample per poll of the series' account in [from,to]
// where the series was present, as observed; nil if none.
func (e *Engine) Series(tx *bbolt.Tx, k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	s, err := e.h.lookupRestored(k)
	if s == nil || err != nil {
		return nil, err
	}
	bk, err := open(tx, false)
	if err != nil {
		return nil, err
	}
	var out []quota.Sample
	grow := func(n int) { out = make([]quota.Sample, 0, n) }
	err = e.h.walk(bk, s, ms(from), ms(to), grow, func(t int64, v vals) bool {
		out = append(out, quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: quotaOf(v)})
		return true
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// Changes returns the value in force at from (as At(from) reports it, with
// its own observation time), then every poll in (from,to] whose values
// differ from the previous sample returned. A series reappearing with
// unchanged values is not a change.
func (e *Engine) Changes(tx *bbolt.Tx, k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	s, err := e.h.lookupRestored(k)
	if s == nil || err != nil {
		return nil, err
	}
	bk, err := open(tx, false)
	if err != nil {
		return nil, err
	}
	f := ms(from)
	first, ok, err := e.h.at(bk, s, f)
	if err != nil {
		return nil, err
	}
	var out []quota.Sample
	var last vals
	if ok {
		out = append(out, first)
		last = valsOf(first.Quota)
	}
	err = e.h.walk(bk, s, f+1, ms(to), nil, func(t int64, v vals) bool {
		if !ok || v != last {
			out = append(out, quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: quotaOf(v)})
			last, ok = v, true
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Downsample returns up to n samples at evenly spaced times from..to (both
// included; n == 1 gives to), each carrying the values At would report
// for that time. Times before the first observation are left out.
func (e *Engine) Downsample(tx *bbolt.Tx, k quota.Key, from, to time.Time, n int) ([]quota.Sample, error) {
	if n <= 0 || to.Before(from) {
		return nil, nil
	}
	ch, err := e.Changes(tx, k, from, to)
	if err != nil || len(ch) == 0 {
		return nil, err
	}
	out := make([]quota.Sample, 0, n)
	span := to.Sub(from)
	j := -1
	for i := range n {
		t := to
		if n > 1 {
			t = from.Add(time.Duration(float64(span) * float64(i) / float64(n-1)))
		}
		tm := ms(t)
		for j+1 < len(ch) && ms(ch[j+1].Time) <= tm {
			j++
		}
		if j >= 0 {
			out = append(out, quota.Sample{Time: t, Quota: ch[j].Quota})
		}
	}
	return out, nil
}

// LastSeen returns the time of the last poll where the series was present.
func (e *Engine) LastSeen(k quota.Key) (time.Time, bool, error) {
	var t int64
	s, err := e.h.lookupRestored(k)
	if err != nil {
		return time.Time{}, false, err
	}
	if s != nil {
		t = e.h.lastSeen(s)
	}
	if t == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(t).UTC(), true, nil
}

// Latest returns the last observed values of every series, sorted by key.
func (e *Engine) Latest() ([]Latest, error) {
	if err := e.h.restoreAll(); err != nil {
		return nil, err
	}
	return e.latest(e.h.sorted()), nil
}

// LatestUnsorted is Latest in no order, for a caller that sorts the
// series its own way.
func (e *Engine) LatestUnsorted() ([]Latest, error) {
	if err := e.h.restoreAll(); err != nil {
		return nil, err
	}
	order := make([]uint32, e.h.n)
	for i := range order {
		order[i] = uint32(i)
	}
	return e.latest(order), nil
}

func (e *Engine) latest(order []uint32) []Latest {
	h := e.h
	out := make([]Latest, 0, len(order))
	for _, i := range order {
		s := h.ser(i)
		if t := h.lastSeen(s); t != 0 {
			out = append(out, Latest{Key: h.key(s), Sample: quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: quotaOf(s.cur)}})
		}
	}
	return out
}

// SelectKeys returns the known series whose account, project and
// resource each match (a nil func matches all), in no order. Each distinct
// name is matched once: a caller that wants a few series of many need not
// have every key listed, sorted and matched.
func (e *Engine) SelectKeys(account, project, resource func(name string) bool) []quota.Key {
	h := e.h
	// Each name's answer, by its index: 0 not asked yet, 1 yes, 2 no.
	memo := func(match func(string) bool, n int) func(i uint32, name string) bool {
		if match == nil {
			return func(uint32, string) bool { return true }
		}
		known := make([]uint8, n)
		return func(i uint32, name string) bool {
			if known[i] == 0 {
				known[i] = 2
				if match(name) {
					known[i] = 1
				}
			}
			return known[i] == 1
		}
	}
	acctOK, projectOK, resourceOK := memo(account, len(h.acctList)), memo(project, len(h.names)), memo(resource, len(h.names))
	var out []quota.Key
	h.each(func(_ uint32, s *series) {
		a := h.acct(s)
		if resourceOK(s.resource, h.names[s.resource]) && acctOK(a.idx, a.name) && projectOK(s.project, h.names[s.project]) {
			out = append(out, h.key(s))
		}
	})
	return out
}

// Keys returns every known series, sorted.
func (e *Engine) Keys() []quota.Key {
	h := e.h
	order := h.sorted()
	out := make([]quota.Key, len(order))
	for j, i := range order {
		out[j] = h.key(h.ser(i))
	}
	return out
}

// sorted returns the arena indexes of every series in key order. It ranks
// the few distinct names once and sorts the series by their ranks: the
// names of 80,000 series are a few thousand strings, and comparing ranks
// reads no string.
func (h *head) sorted() []uint32 {
	nameRank := rankOf(len(h.names), func(i, j int) int { return cmp.Compare(h.names[i], h.names[j]) })
	acctRank := rankOf(len(h.acctList), func(i, j int) int { return cmp.Compare(h.acctList[i].name, h.acctList[j].name) })
	type ranked struct {
		acct, project, resource uint32
		i                       uint32
	}
	keys := make([]ranked, h.n)
	h.each(func(i uint32, s *series) {
		keys[i] = ranked{acctRank[s.acct&acctMask], nameRank[s.project], nameRank[s.resource], i}
	})
	byKey := func(a, b ranked) int {
		if a.acct != b.acct {
			return cmp.Compare(a.acct, b.acct)
		}
		if a.project != b.project {
			return cmp.Compare(a.project, b.project)
		}
		return cmp.Compare(a.resource, b.resource)
	}
	// Series registered in key order, as a first poll lists them, are
	// found in order in one pass.
	if !slices.IsSortedFunc(keys, byKey) {
		slices.SortFunc(keys, byKey)
	}
	out := make([]uint32, len(keys))
	for j, k := range keys {
		out[j] = k.i
	}
	return out
}

// rankOf returns the rank of each of n items in the order of by; equal
// items share a rank.
func rankOf(n int, by func(i, j int) int) []uint32 {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, by)
	rank := make([]uint32, n)
	r := uint32(0)
	for j, i := range idx {
		if j > 0 && by(idx[j-1], i) != 0 {
			r++
		}
		rank[i] = r
	}
	return rank
}

// Retain deletes history older than before, a whole day block at a time
// (the block holding before is kept, so up to a day more is retained),
// deleting at most batch keys per transaction so that writers in between
// never wait long, then forgets the series last seen before the oldest
// block kept. Queries stop at the kept block at once, but a sealed week's
// packs, which hold its seven days together, go only once the whole week
// is before the cut: up to a week more of the file is retained. update
// runs fn in a write transaction of its own, with the engine in force for
// that transaction.
func Retain(ctx context.Context, before time.Time, batch int, update func(fn func(tx *bbolt.Tx, e *Engine) error) error) error {
	cut := blockOf(ms(before))
	if cut <= 0 {
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := 0
		err := update(func(tx *bbolt.Tx, e *Engine) error {
			if e.partial {
				return errPartial
			}
			bk, err := open(tx, true)
			if err != nil {
				return err
			}
			if err := e.h.settle(); err != nil {
				return err
			}
			n, err = e.h.dropBlocks(bk, cut, batch)
			return err
		})
		if err != nil {
			return err
		}
		if n < batch {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := update(func(tx *bbolt.Tx, e *Engine) error {
		if e.partial {
			return errPartial
		}
		bk, err := open(tx, true)
		if err != nil {
			return err
		}
		if err := e.h.settle(); err != nil {
			return err
		}
		return e.h.forgetBefore(bk, cut)
	})
	if err != nil {
		return fmt.Errorf("forget series: %w", err)
	}
	return nil
}

// dropBlocks records that blocks before cut (never the open block) are
// gone, then deletes up to max keys of their day packs, the week packs of
// weeks wholly before it, and their poll times, and returns how many.
func (h *head) dropBlocks(bk *buckets, cut int64, max int) (int, error) {
	if !h.hasBlock {
		return 0, nil
	}
	limit := min(cut, int64(h.block))
	if limit > retainedFrom(bk) {
		if err := bk.head().Put(kRetained, u32(uint32(limit))); err != nil {
			return 0, err
		}
	}
	n := 0
	drop := func(b *bbolt.Bucket, gone func(k []byte) bool) error {
		var keys [][]byte
		c := b.Cursor()
		// Collect first: deleting while iterating can skip keys.
		for k, _ := c.First(); k != nil && n+len(keys) < max && gone(k); k, _ = c.Next() {
			keys = append(keys, slices.Clone(k))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n += len(keys)
		return nil
	}
	before := func(k []byte) bool { return int64(binary.BigEndian.Uint32(k[:4])) < limit }
	if err := drop(bk.chunks(), before); err != nil {
		return n, err
	}
	if wb := bk.weeks(); wb != nil {
		if err := drop(wb, func(k []byte) bool { return (int64(keyBlock(k))+1)*weekDays <= limit }); err != nil {
			return n, err
		}
	}
	if err := drop(bk.polls(), before); err != nil {
		return n, err
	}
	return n, nil
}

// forgetBefore forgets the series last seen before block cut (or the open
// block, if earlier) that have no entry left in the open block either.
func (h *head) forgetBefore(bk *buckets, cut int64) error {
	limit := min(cut, int64(h.block)) * blockMs
	var ids []uint32
	var err error
	h.each(func(_ uint32, s *series) {
		if err != nil || s.present() || s.seen >= limit {
			return
		}
		if s.lastIdx != 0 {
			var c []byte
			if c, err = h.openChunk(bk, s); err != nil || len(c) != 0 {
				return
			}
		}
		ids = append(ids, s.id)
	})
	if err != nil || len(ids) == 0 {
		return err
	}
	for _, id := range ids {
		if id > h.legacyMax {
			h.regDirty(id)
		} else if err := bk.series().Delete(u32(id)); err != nil {
			return err
		}
	}
	h.forget(func(s *series) bool { _, ok := slices.BinarySearch(ids, s.id); return ok })
	return h.putRegistry(bk)
}
