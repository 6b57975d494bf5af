package series

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series/chunkenc"
)

// Block is the history of every series over one day block, read at once
// for a reader of all series in time order (the backtest): each day pack
// of a sealed block is decompressed once for its 512 series, and each week
// pack of its week once for the day's chunks of its 96, where a query of
// one series decompresses a pack per series and block or week. It holds its own
// copy of what it read, so it outlives the transaction. Next walks the
// block's polls in time order.
type Block struct {
	// Start and End bound the block: [Start, End).
	Start, End time.Time

	accts   []*blockAcct
	cur     *blockAcct
	t       int64
	changes []Change
	err     error
}

// Change is a series present at a poll where, at the poll before, it was
// absent or had other values. At the block's first poll, every series
// present is a change; so are the first polls of the series a block
// begins to see.
type Change struct {
	// ID is the series' id in the store: the same in every block, so a
	// reader looks its Key up once.
	ID    uint32
	ser   int32 // in the account's series of the block
	Quota quota.Quota
}

type blockAcct struct {
	name  string
	id    uint32
	polls []int64 // ms
	ser   []blockSer
	// due[i] is the first of the series whose next point is at poll i,
	// each linking to the next in link; -1 ends a list.
	due  []int32
	link []int32
	at   int // the next poll
}

// blockSer is one series of a block; its cursor is at its next point.
type blockSer struct {
	c   chunkenc.Cursor
	id  uint32
	key quota.Key
}

// ReadBlock reads the day block holding t, sealed or open. A block with no
// history has no polls.
func (e *Engine) ReadBlock(tx *bbolt.Tx, t time.Time) (*Block, error) {
	h := e.h
	b := blockOf(ms(t))
	blk := &Block{Start: time.UnixMilli(b * blockMs).UTC(), End: time.UnixMilli((b + 1) * blockMs).UTC()}
	if !h.hasBlock || b < 0 || b > int64(h.block) {
		return blk, nil
	}
	bk, err := open(tx, false)
	if err != nil {
		return nil, err
	}
	if b < retainedFrom(bk) {
		return blk, nil // what is left of it goes with its week
	}
	open := b == int64(h.block)
	byAcct := map[uint32]*blockAcct{}
	add := func(s *series, chunk []byte) error {
		a := h.acct(s)
		ba := byAcct[a.idx]
		if ba == nil {
			ba = &blockAcct{name: a.name, id: a.id}
			if open {
				ba.polls = slices.Clone(a.polls)
			} else {
				pv := bk.polls().Get(blockKey(uint32(b), a.id))
				if pv == nil {
					return fmt.Errorf("%w: block %d has no poll times for account %s", errCorrupt, b, a.name)
				}
				if ba.polls, err = chunkenc.ReadPollTimes(pv); err != nil {
					return fmt.Errorf("block %d poll times of %s: %w", b, a.name, err)
				}
			}
			ba.due = make([]int32, len(ba.polls))
			for i := range ba.due {
				ba.due[i] = -1
			}
			// At most every series of the account.
			ba.ser = make([]blockSer, 0, len(a.series))
			ba.link = make([]int32, 0, len(a.series))
			byAcct[a.idx] = ba
		}
		ba.ser = append(ba.ser, blockSer{c: chunkenc.NewCursor(chunk), id: s.id, key: h.key(s)})
		bs := &ba.ser[len(ba.ser)-1]
		ok, err := bs.c.Next()
		if err == nil && ok && int(bs.c.Idx()) >= len(ba.polls) {
			err = fmt.Errorf("%w: point at poll %d beyond %d polls", errCorrupt, bs.c.Idx(), len(ba.polls))
		}
		if err != nil || !ok {
			ba.ser = ba.ser[:len(ba.ser)-1]
			if err != nil {
				return fmt.Errorf("series %s block %d: %w", bs.key, b, err)
			}
			return nil
		}
		j := int32(len(ba.ser) - 1)
		ba.link = append(ba.link, ba.due[bs.c.Idx()])
		ba.due[bs.c.Idx()] = j
		return nil
	}
	if open {
		// The open day's chunks start from each series' place in the log,
		// which a head loaded from its snapshot restores only when asked.
		if err := h.restoreAll(); err != nil {
			return nil, err
		}
		// The records stay mapped for the transaction: index them once,
		// as a fold does; the chunks built from them are the block's own.
		recs := map[uint32][]byte{}
		if err := bk.log().ForEach(func(k, v []byte) error {
			if len(k) == 8 {
				recs[uint32(binary.BigEndian.Uint64(k))] = v
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("block %d: %w", b, err)
		}
		var sc chunkScratch
		for i := range h.n {
			s := h.ser(i)
			c, err := h.linkedChunk(s, func(seq uint32) []byte { return recs[seq] }, &sc)
			if err != nil {
				return nil, fmt.Errorf("series %s block %d: %w", h.key(s), b, err)
			}
			if len(c) > 0 {
				if err := add(s, c); err != nil {
					return nil, err
				}
			}
		}
	} else if err := h.readSealed(bk, uint32(b), func(id uint32, chunk []byte) error {
		if s := h.get(id); s != nil {
			return add(s, chunk)
		}
		return nil // forgotten since
	}); err != nil {
		return nil, err
	}
	most := 0
	for _, ba := range byAcct {
		blk.accts = append(blk.accts, ba)
		most = max(most, len(ba.ser))
	}
	// A block's first poll of an account tells all of its series.
	blk.changes = make([]Change, 0, most)
	slices.SortFunc(blk.accts, func(x, y *blockAcct) int { return cmp.Compare(x.id, y.id) })
	return blk, nil
}

// readSealed calls fn with every chunk of sealed block b, in id order,
// each in space of its own: from the week packs of its week, and from its
// day packs those of series whose group has no week pack.
func (h *head) readSealed(bk *buckets, b uint32, fn func(id uint32, chunk []byte) error) error {
	if err := h.codec.init(); err != nil {
		return err
	}
	type idChunk struct {
		id    uint32
		chunk []byte
	}
	var got []idChunk
	var packed []uint32 // the groups with a week pack, in order
	var raw []byte      // a decompressed pack, reused: chunks are copied out
	if wb := bk.weeks(); wb != nil {
		w := b / weekDays
		c := wb.Cursor()
		for k, v := c.Seek(weekKey(w, 0)); len(k) == 8 && keyBlock(k) == w; k, v = c.Next() {
			g := keyID(k)
			packed = append(packed, g)
			var err error
			if raw, err = h.decodeWeek(v, raw[:0]); err == nil {
				err = eachInWeek(raw, g, int(b%weekDays), func(id uint32, chunk []byte) {
					got = append(got, idChunk{id, chunk})
				})
			}
			if err != nil {
				return weekErr(b, w, g, err)
			}
		}
	}
	inWeekPack := func(id uint32) bool {
		_, ok := slices.BinarySearch(packed, id/weekGroup*weekGroup)
		return ok
	}
	weekChunks := len(got)
	c := bk.chunks().Cursor()
	for k, v := c.Seek(blockKey(b, 0)); k != nil; k, v = c.Next() {
		if len(k) != 8 || keyBlock(k) != b {
			break
		}
		first := keyID(k)
		if len(v) == 0 || v[0] != packMarker {
			// A block sealed one value per series.
			if len(v) > 0 && !inWeekPack(first) {
				got = append(got, idChunk{first, slices.Clone(v)})
			}
			continue
		}
		var err error
		if raw, err = h.codec.dec.DecodeAll(v[1:], raw[:0]); err != nil {
			return fmt.Errorf("%w: block %d pack %d: %v", errCorrupt, b, first, err)
		}
		err = eachInPack(raw, first, func(id uint32, chunk []byte) error {
			if !inWeekPack(id) {
				got = append(got, idChunk{id, chunk})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("block %d pack %d: %w", b, first, err)
		}
	}
	// Week packs hold the groups rewritten so far, the first ids.
	if byID := func(x, y idChunk) int { return cmp.Compare(x.id, y.id) }; weekChunks > 0 && weekChunks < len(got) && !slices.IsSortedFunc(got, byID) {
		slices.SortStableFunc(got, byID)
	}
	for _, x := range got {
		if err := fn(x.id, x.chunk); err != nil {
			return err
		}
	}
	return nil
}

// Next moves to the block's next poll, in time order (accounts in id
// order at equal times); it returns false after the last, or on an error
// (see Err).
func (b *Block) Next() bool {
	if b.err != nil {
		return false
	}
	var a *blockAcct
	for _, x := range b.accts {
		if x.at < len(x.polls) && (a == nil || x.polls[x.at] < a.polls[a.at]) {
			a = x
		}
	}
	if a == nil {
		return false
	}
	i := a.at
	a.at++
	b.cur, b.t = a, a.polls[i]
	b.changes = b.changes[:0]
	for j := a.due[i]; j >= 0; {
		s := &a.ser[j]
		next := a.link[j]
		if s.c.Present() {
			b.changes = append(b.changes, Change{ID: s.id, ser: j, Quota: quotaOf(*s.c.Vals())})
		}
		ok, err := s.c.Next()
		switch {
		case err != nil:
			b.err = fmt.Errorf("series %s block from %s: %w", s.key, b.Start.Format(time.DateOnly), err)
			return false
		case ok && (s.c.Idx() <= uint32(i) || int(s.c.Idx()) >= len(a.polls)):
			b.err = fmt.Errorf("%w: series %s block from %s: point at poll %d after poll %d of %d", errCorrupt, s.key,
				b.Start.Format(time.DateOnly), s.c.Idx(), i, len(a.polls))
			return false
		case ok:
			a.link[j] = a.due[s.c.Idx()]
			a.due[s.c.Idx()] = j
		}
		j = next
	}
	return true
}

// Poll returns the account and the time of the current poll.
func (b *Block) Poll() (account string, t time.Time) {
	return b.cur.name, time.UnixMilli(b.t).UTC()
}

// PollMs is the current poll's time in milliseconds.
func (b *Block) PollMs() int64 { return b.t }

// Changes returns the series that changed at the current poll. The slice
// is reused by Next.
func (b *Block) Changes() []Change { return b.changes }

// Key returns the key of the series of a change of the current poll.
func (b *Block) Key(c *Change) quota.Key { return b.cur.ser[c.ser].key }

// Err returns the error that stopped Next, if any.
func (b *Block) Err() error { return b.err }
