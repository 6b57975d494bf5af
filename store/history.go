package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// blockData returns the poll times of s's account and s's chunk in block
// b; chunk is nil when the series was absent all block.
func (h *head) blockData(tx *bbolt.Tx, s *series, b uint32) (polls []int64, chunk []byte, err error) {
	if h.hasBlock && b == h.block {
		chunk, err := h.headChunk(tx, s)
		return h.acct(s).polls, chunk, err
	}
	chunk = tx.Bucket(bChunks).Get(blockKey(b, s.id))
	if chunk == nil {
		return nil, nil, nil
	}
	pv := tx.Bucket(bPolls).Get(blockKey(b, h.acct(s).id))
	if pv == nil {
		return nil, nil, fmt.Errorf("%w: block %d has no poll times for account %s", errCorrupt, b, h.acct(s).name)
	}
	polls, err = readPollTimes(pv)
	return polls, chunk, err
}

// blockRange clamps [from,to] (ms) to the blocks that may hold data.
func (h *head) blockRange(tx *bbolt.Tx, from, to int64) (lo, hi int64, ok bool) {
	if !h.hasBlock {
		return 0, 0, false
	}
	first := int64(h.block)
	if k, _ := tx.Bucket(bChunks).Cursor().First(); k != nil {
		first = int64(binary.BigEndian.Uint32(k[:4]))
	}
	lo, hi = max(blockOf(from), first), min(blockOf(to), int64(h.block))
	return lo, hi, lo <= hi
}

// walk calls fn for each poll of k's account in [from,to] (ms) where the
// series was present, in time order; fn returns false to stop. grow, if
// set, is first told how many polls the range holds at most.
func (h *head) walk(tx *bbolt.Tx, s *series, from, to int64, grow func(int), fn func(t int64, v vals) bool) error {
	lo, hi, ok := h.blockRange(tx, from, to)
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
		polls, chunk, err := h.blockData(tx, s, uint32(b))
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
		err := expandChunk(bl.chunk, len(polls), func(i int, present bool, v vals) bool {
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
func (h *head) at(tx *bbolt.Tx, s *series, t int64) (quota.Sample, bool, error) {
	if seen := h.lastSeen(s); seen == 0 {
		return quota.Sample{}, false, nil
	} else if t >= seen && (!s.present() || t >= h.acct(s).last) {
		// Values are kept while a series is absent, so the cache answers.
		return quota.Sample{Time: time.UnixMilli(seen).UTC(), Quota: s.cur.quota()}, true, nil
	}
	lo, hi, ok := h.blockRange(tx, 0, t)
	if !ok {
		return quota.Sample{}, false, nil
	}
	for b := hi; b >= lo; b-- {
		polls, chunk, err := h.blockData(tx, s, uint32(b))
		if err != nil {
			return quota.Sample{}, false, err
		}
		if len(chunk) == 0 {
			continue
		}
		found := false
		var ft int64
		var fv vals
		err = expandChunk(chunk, len(polls), func(i int, present bool, v vals) bool {
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
			return quota.Sample{Time: time.UnixMilli(ft).UTC(), Quota: fv.quota()}, true, nil
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
func (s *Store) At(k quota.Key, t time.Time) (quota.Sample, bool, error) {
	var out quota.Sample
	var ok bool
	err := s.view(func(tx *bbolt.Tx, h *head) error {
		sr := h.lookup(k)
		if sr == nil {
			return nil
		}
		var err error
		out, ok, err = h.at(tx, sr, ms(t))
		return err
	})
	if err != nil {
		return quota.Sample{}, false, fmt.Errorf("store: at %s: %w", k, err)
	}
	return out, ok, nil
}

// Series returns one sample per poll of the series' account in [from,to]
// where the series was present, as observed.
func (s *Store) Series(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	var out []quota.Sample
	err := s.view(func(tx *bbolt.Tx, h *head) error {
		sr := h.lookup(k)
		if sr == nil {
			return nil
		}
		grow := func(n int) { out = make([]quota.Sample, 0, n) }
		return h.walk(tx, sr, ms(from), ms(to), grow, func(t int64, v vals) bool {
			out = append(out, quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: v.quota()})
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: series %s: %w", k, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Changes returns the value in force at from (as At(from) reports it, with
// its own observation time), then every poll in (from,to] whose values
// differ from the previous sample returned. A series reappearing with
// unchanged values is not a change.
func (s *Store) Changes(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	var out []quota.Sample
	err := s.view(func(tx *bbolt.Tx, h *head) error {
		sr := h.lookup(k)
		if sr == nil {
			return nil
		}
		f := ms(from)
		first, ok, err := h.at(tx, sr, f)
		if err != nil {
			return err
		}
		var last vals
		if ok {
			out = append(out, first)
			last = valsOf(first.Quota)
		}
		return h.walk(tx, sr, f+1, ms(to), nil, func(t int64, v vals) bool {
			if !ok || v != last {
				out = append(out, quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: v.quota()})
				last, ok = v, true
			}
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: changes %s: %w", k, err)
	}
	return out, nil
}

// Downsample returns up to n samples at evenly spaced times from..to (both
// included; n == 1 gives to), each carrying the values At would report
// for that time. Times before the first observation are left out.
func (s *Store) Downsample(k quota.Key, from, to time.Time, n int) ([]quota.Sample, error) {
	if n <= 0 || to.Before(from) {
		return nil, nil
	}
	ch, err := s.Changes(k, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: downsample: %w", err)
	}
	if len(ch) == 0 {
		return nil, nil
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
func (s *Store) LastSeen(k quota.Key) (time.Time, bool, error) {
	var t int64
	err := s.view(func(tx *bbolt.Tx, h *head) error {
		if sr := h.lookup(k); sr != nil {
			t = h.lastSeen(sr)
		}
		return nil
	})
	if err != nil || t == 0 {
		return time.Time{}, false, err
	}
	return time.UnixMilli(t).UTC(), true, nil
}

// Latest returns the last observed values of every series, sorted by key.
func (s *Store) Latest() ([]Latest, error) {
	var out []Latest
	err := s.view(func(tx *bbolt.Tx, h *head) error {
		out = make([]Latest, 0, h.n)
		h.each(func(_ uint32, sr *series) {
			if t := h.lastSeen(sr); t != 0 {
				out = append(out, Latest{Key: h.key(sr), Sample: quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: sr.cur.quota()}})
			}
		})
		return nil
	})
	slices.SortFunc(out, func(a, b Latest) int { return compareKeys(a.Key, b.Key) })
	return out, err
}

func compareKeys(a, b quota.Key) int {
	return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Resource, b.Resource))
}

// Keys returns every known series, sorted.
func (s *Store) Keys() ([]quota.Key, error) {
	var out []quota.Key
	err := s.view(func(tx *bbolt.Tx, h *head) error {
		out = make([]quota.Key, 0, h.n)
		h.each(func(_ uint32, sr *series) { out = append(out, h.key(sr)) })
		return nil
	})
	slices.SortFunc(out, compareKeys)
	return out, err
}

// retainBatch bounds each retention transaction so a cycle never waits
// long for it.
const retainBatch = 2000

// Retain deletes history older than before, a whole day block at a time
// (the block holding before is kept, so up to a day more is retained), in
// small transactions. Series last seen before the oldest kept block are
// forgotten.
func (s *Store) Retain(ctx context.Context, before time.Time) error {
	cut := blockOf(ms(before))
	if cut <= 0 {
		return nil
	}
	for _, bucket := range [][]byte{bChunks, bPolls} {
		for {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("store: retain: %w", err)
			}
			n := 0
			err := s.updateHistory(func(tx *bbolt.Tx, h *head) error {
				limit := min(cut, int64(h.block))
				if !h.hasBlock {
					return nil
				}
				b := tx.Bucket(bucket)
				var keys [][]byte
				c := b.Cursor()
				// Collect first: deleting while iterating can skip keys.
				for k, _ := c.First(); k != nil && len(keys) < retainBatch; k, _ = c.Next() {
					if int64(binary.BigEndian.Uint32(k[:4])) >= limit {
						break
					}
					keys = append(keys, slices.Clone(k))
				}
				for _, k := range keys {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				n = len(keys)
				return nil
			})
			if err != nil {
				return fmt.Errorf("store: retain: %w", err)
			}
			if n < retainBatch {
				break
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: retain: %w", err)
	}
	err := s.updateHistory(func(tx *bbolt.Tx, h *head) error {
		limit := min(cut, int64(h.block)) * blockMs
		// A series goes once it has no chunk in the head block either.
		var ids []uint32
		var err error
		h.each(func(_ uint32, sr *series) {
			if err != nil || sr.present() || sr.seen >= limit {
				return
			}
			if sr.lastIdx != 0 {
				var c []byte
				if c, err = h.headChunk(tx, sr); err != nil || len(c) != 0 {
					return
				}
			}
			ids = append(ids, sr.id)
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		b := tx.Bucket(bSeries)
		for _, id := range ids {
			if err := b.Delete(u32(id)); err != nil {
				return err
			}
		}
		gone := func(sr *series) bool { _, ok := slices.BinarySearch(ids, sr.id); return ok }
		h.forget(gone)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: retain: forget series: %w", err)
	}
	return nil
}
