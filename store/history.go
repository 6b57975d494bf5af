package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// blockMs is the span of one history block. Chunks are per (block, series);
// the newest ("head") block lives in the write-ahead log and in memory
// until the first poll of the next block folds it into chunks.
const blockMs = int64(24 * time.Hour / time.Millisecond)

type series struct {
	// project and resource are interned; the account is acct's.
	project, resource string
	id                uint32
	acct              *account
	cur               vals  // values at the last poll where present (kept while absent)
	present           bool  // present at the account's last poll
	seen              int64 // last poll where present, when absent (ms)
	w                 chunkWriter
	gen               uint32
}

func (s *series) key() quota.Key {
	return quota.Key{Account: s.acct.name, Project: s.project, Resource: s.resource}
}

// lastSeen returns the time (ms) of the last poll where the series was
// present, or 0.
func (s *series) lastSeen() int64 {
	if s.present {
		return s.acct.last
	}
	return s.seen
}

type account struct {
	name   string
	id     uint32
	series []*series
	polls  []int64 // poll times (ms) in the head block
	last   int64   // last poll time (ms), any block
	// order is the series of the last snapshot, by entry position: polls
	// list entries in a stable order, so most lookups skip the map.
	order, spare []*series
}

// head is the in-memory state of the history: the last values of every
// series, and the encoded head block.
type head struct {
	block    uint32
	hasBlock bool
	// series finds a series by a hash of its key: a map of 8-byte keys is
	// a fraction of the size of one keyed by three strings. Keys whose hash
	// is taken (practically never) go to collide.
	hash     func(quota.Key) uint64
	series   map[uint64]*series
	collide  map[quota.Key]*series
	byID     []*series // by id; nil once forgotten
	list     []*series // by id, without gaps
	accts    map[string]*account
	acctByID map[uint32]*account
	gen      uint32
	strs     map[string]string // interned project and resource names
}

// intern returns one shared copy of a name, so 80,000 series of a few
// thousand projects and ten resources do not each hold their own.
func (h *head) intern(x string) string {
	if y, ok := h.strs[x]; ok {
		return y
	}
	x = strings.Clone(x)
	h.strs[x] = x
	return x
}

// lookup returns the series with key k, or nil.
func (h *head) lookup(k quota.Key) *series {
	if s := h.series[h.hash(k)]; s != nil && s.project == k.Project && s.resource == k.Resource && s.acct.name == k.Account {
		return s
	}
	return h.collide[k]
}

func (h *head) index(s *series) {
	k := s.key()
	hv := h.hash(k)
	if h.series[hv] == nil {
		h.series[hv] = s
		return
	}
	if h.collide == nil {
		h.collide = map[quota.Key]*series{}
	}
	h.collide[k] = s
}

func (h *head) unindex(s *series) {
	k := s.key()
	hv := h.hash(k)
	if h.series[hv] == s {
		delete(h.series, hv)
		return
	}
	delete(h.collide, k)
}

// get returns the series with id, or nil.
func (h *head) get(id uint32) *series {
	if int64(id) < int64(len(h.byID)) {
		return h.byID[id]
	}
	return nil
}

func newHead() *head {
	seed := maphash.MakeSeed()
	return &head{
		hash:     func(k quota.Key) uint64 { return maphash.Comparable(seed, k) },
		series:   map[uint64]*series{},
		strs:     map[string]string{},
		accts:    map[string]*account{},
		acctByID: map[uint32]*account{},
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func blockOf(t int64) int64 {
	if t < 0 {
		return -1
	}
	return t / blockMs
}

func (h *head) addAccount(id uint32, name string) *account {
	a := &account{name: name, id: id}
	h.accts[name] = a
	h.acctByID[id] = a
	return a
}

func (h *head) addSeries(id uint32, a *account, project, resource string) *series {
	s := &series{project: h.intern(project), resource: h.intern(resource), id: id, acct: a}
	h.index(s)
	for int64(len(h.byID)) <= int64(id) {
		h.byID = append(h.byID, nil)
	}
	h.byID[id] = s
	h.list = append(h.list, s)
	a.series = append(a.series, s)
	return s
}

func encodeSeriesValue(aid uint32, project, resource string) []byte {
	b := binary.AppendUvarint(nil, uint64(aid))
	b = binary.AppendUvarint(b, uint64(len(project)))
	b = append(b, project...)
	return append(b, resource...)
}

func decodeSeriesValue(v []byte) (aid uint32, project, resource string, err error) {
	a, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, "", "", errCorrupt
	}
	v = v[n:]
	l, n := binary.Uvarint(v)
	if n <= 0 || l > uint64(len(v)-n) {
		return 0, "", "", errCorrupt
	}
	v = v[n:]
	return uint32(a), string(v[:l]), string(v[l:]), nil
}

// loadHead rebuilds the cache: registries, the checkpoint written at the
// last fold, then the write-ahead log of the head block.
func loadHead(tx *bbolt.Tx) (*head, error) {
	h := newHead()
	if err := tx.Bucket(bAccts).ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			return errCorrupt
		}
		h.addAccount(binary.BigEndian.Uint32(k), string(v))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if err := tx.Bucket(bSeries).ForEach(func(k, v []byte) error {
		aid, p, r, err := decodeSeriesValue(v)
		if err != nil || len(k) != 4 {
			return errCorrupt
		}
		a := h.acctByID[aid]
		if a == nil {
			return fmt.Errorf("%w: series of unknown account %d", errCorrupt, aid)
		}
		h.addSeries(binary.BigEndian.Uint32(k), a, p, r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("series: %w", err)
	}
	meta := tx.Bucket(bMeta)
	if v := meta.Get(kHeadBlock); len(v) == 4 {
		h.block, h.hasBlock = binary.BigEndian.Uint32(v), true
	}
	if err := h.readCheckpoint(meta.Get(kHeads)); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := tx.Bucket(bWAL).ForEach(func(k, v []byte) error { return h.replay(v) }); err != nil {
		return nil, fmt.Errorf("write-ahead log: %w", err)
	}
	return h, nil
}

// Checkpoint: accounts (id, last poll), then series (id, present, seen,
// values), as varints.
func (h *head) checkpoint() []byte {
	b := binary.AppendUvarint(nil, uint64(len(h.acctByID)))
	for _, a := range h.acctByID {
		b = binary.AppendUvarint(b, uint64(a.id))
		b = binary.AppendVarint(b, a.last)
	}
	b = binary.AppendUvarint(b, uint64(len(h.list)))
	for _, s := range h.list {
		b = binary.AppendUvarint(b, uint64(s.id))
		p := byte(0)
		if s.present {
			p = 1
		}
		b = append(b, p)
		b = binary.AppendVarint(b, s.seen)
		for _, x := range s.cur {
			b = binary.AppendVarint(b, x)
		}
	}
	return b
}

func (h *head) readCheckpoint(b []byte) error {
	if b == nil {
		return nil
	}
	uv := func() uint64 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return x
	}
	sv := func() int64 {
		x, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return x
	}
	na := uv()
	for i := uint64(0); i < na && b != nil; i++ {
		id, last := uint32(uv()), sv()
		if a := h.acctByID[id]; a != nil {
			a.last = last
		}
	}
	ns := uv()
	for i := uint64(0); i < ns && b != nil; i++ {
		id := uint32(uv())
		if len(b) == 0 {
			return errCorrupt
		}
		present := b[0] == 1
		b = b[1:]
		seen := sv()
		var v vals
		for j := range v {
			v[j] = sv()
		}
		if s := h.get(id); s != nil {
			s.present, s.seen, s.cur = present, seen, v
		}
	}
	if b == nil {
		return errCorrupt
	}
	return nil
}

// walPoll collects one account poll for the write-ahead log.
type walPoll struct {
	aid     uint32
	t       int64
	n       int
	entries []byte
}

func encodeWAL(polls []walPoll) []byte {
	size := 8
	for _, p := range polls {
		size += 24 + len(p.entries)
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(polls)))
	for _, p := range polls {
		b = binary.AppendUvarint(b, uint64(p.aid))
		b = binary.AppendVarint(b, p.t)
		b = binary.AppendUvarint(b, uint64(p.n))
		b = append(b, p.entries...)
	}
	return b
}

// replay applies one write-ahead log record.
func (h *head) replay(b []byte) error {
	np, n := binary.Uvarint(b)
	if n <= 0 {
		return errCorrupt
	}
	b = b[n:]
	for range np {
		aid, n1 := binary.Uvarint(b)
		if n1 <= 0 {
			return errCorrupt
		}
		b = b[n1:]
		t, n2 := binary.Varint(b)
		if n2 <= 0 {
			return errCorrupt
		}
		b = b[n2:]
		ne, n3 := binary.Uvarint(b)
		if n3 <= 0 {
			return errCorrupt
		}
		b = b[n3:]
		a := h.acctByID[uint32(aid)]
		if a == nil {
			return fmt.Errorf("%w: poll of unknown account %d", errCorrupt, aid)
		}
		idx := uint32(len(a.polls))
		prevLast := a.last
		a.polls = append(a.polls, t)
		a.last = t
		h.gen++
		for range ne {
			sid, n := binary.Uvarint(b)
			if n <= 0 {
				return errCorrupt
			}
			b = b[n:]
			s := h.get(uint32(sid))
			var scratch vals
			target := &scratch
			if s != nil {
				target = &s.cur
			}
			old := *target
			m, absent, err := readPointBody(b, target)
			if err != nil {
				return err
			}
			b = b[m:]
			if s == nil {
				continue // pruned by retention
			}
			s.gen = h.gen
			if absent {
				s.present = false
				s.seen = prevLast
			} else {
				s.present = true
			}
			s.w.add(idx, old, s.cur, s.present)
		}
		if idx == 0 {
			// First poll of the block: unchanged series start their chunk.
			for _, s := range a.series {
				if s.gen != h.gen && s.present {
					s.w.add(0, s.cur, s.cur, true)
				}
			}
		}
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

// poll records one snapshot of account a at time t (ms), updating the
// cache and appending the changes to wp.
func (h *head) poll(tx *bbolt.Tx, a *account, t int64, entries []quota.Entry, wp *walPoll) error {
	idx := uint32(len(a.polls))
	prevLast := a.last
	a.polls = append(a.polls, t)
	a.last = t
	h.gen++
	wp.aid, wp.t = a.id, t
	order := a.spare[:0]
	for i := range entries {
		e := &entries[i]
		var s *series
		if i < len(a.order) {
			if c := a.order[i]; c.project == e.Project && c.resource == e.Resource {
				s = c
			}
		}
		if s == nil {
			s = h.lookup(quota.Key{Account: a.name, Project: e.Project, Resource: e.Resource})
		}
		if s == nil {
			var err error
			if s, err = h.register(tx, a, e.Project, e.Resource); err != nil {
				return err
			}
		}
		order = append(order, s)
		if s.gen == h.gen {
			continue // duplicate entry in one snapshot: first wins
		}
		s.gen = h.gen
		v := valsOf(e.Quota)
		s.w.add(idx, s.cur, v, true)
		if !s.present || v != s.cur {
			wp.entries = binary.AppendUvarint(wp.entries, uint64(s.id))
			wp.entries = appendPointBody(wp.entries, s.cur, v, false)
			wp.n++
			s.cur, s.present = v, true
		}
	}
	for _, s := range a.series {
		if s.gen != h.gen && s.present {
			wp.entries = binary.AppendUvarint(wp.entries, uint64(s.id))
			wp.entries = appendPointBody(wp.entries, s.cur, s.cur, true)
			wp.n++
			s.present = false
			s.seen = prevLast
			s.w.add(idx, s.cur, s.cur, false)
		}
	}
	a.order, a.spare = order, a.order
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

func (h *head) register(tx *bbolt.Tx, a *account, project, resource string) (*series, error) {
	b := tx.Bucket(bSeries)
	seq, err := b.NextSequence()
	if err != nil {
		return nil, fmt.Errorf("register series: %w", err)
	}
	if seq > 1<<32-1 {
		return nil, fmt.Errorf("register series: too many series")
	}
	b.FillPercent = 0.9
	if err := b.Put(u32(uint32(seq)), encodeSeriesValue(a.id, project, resource)); err != nil {
		return nil, fmt.Errorf("register series %s/%s/%s: %w", a.name, project, resource, err)
	}
	return h.addSeries(uint32(seq), a, project, resource), nil
}

// fold writes the head block as chunks and poll-time logs, checkpoints
// the last values and empties the write-ahead log.
func (h *head) fold(tx *bbolt.Tx) error {
	if !h.hasBlock {
		return nil
	}
	chunks := tx.Bucket(bChunks)
	chunks.FillPercent = 1 // keys are appended in order
	for _, s := range h.list {
		if len(s.w.buf) == 0 {
			s.w.reset()
			continue
		}
		// bbolt keeps the value slice until commit: hand it over, and size
		// the next block's buffer after this one's to avoid growth slack.
		buf := s.w.buf
		s.w = chunkWriter{buf: make([]byte, 0, len(buf)+len(buf)/8+8)}
		buf, err := recode(buf)
		if err != nil {
			return fmt.Errorf("fold block %d: series %s: %w", h.block, s.key(), err)
		}
		if err := chunks.Put(blockKey(h.block, s.id), buf); err != nil {
			return fmt.Errorf("fold block %d: %w", h.block, err)
		}
	}
	polls := tx.Bucket(bPolls)
	polls.FillPercent = 1
	ids := make([]uint32, 0, len(h.acctByID))
	for id, a := range h.acctByID {
		if len(a.polls) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		a := h.acctByID[id]
		if err := polls.Put(blockKey(h.block, id), appendPollTimes(nil, a.polls)); err != nil {
			return fmt.Errorf("fold block %d: %w", h.block, err)
		}
		a.polls = a.polls[:0]
	}
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
			if err := h.fold(tx); err != nil {
				return err
			}
			wal = wal[:0]
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
	if len(wal) == 0 {
		return nil
	}
	wb := tx.Bucket(bWAL)
	wb.FillPercent = 1
	seq, err := wb.NextSequence()
	if err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	if err := wb.Put(u64(seq), encodeWAL(wal)); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	return nil
}

// blockData returns the poll times of s's account and s's chunk in block
// b; chunk is nil when the series was absent all block.
func (h *head) blockData(tx *bbolt.Tx, s *series, b uint32) (polls []int64, chunk []byte, err error) {
	if h.hasBlock && b == h.block {
		return s.acct.polls, s.w.buf, nil
	}
	chunk = tx.Bucket(bChunks).Get(blockKey(b, s.id))
	if chunk == nil {
		return nil, nil, nil
	}
	pv := tx.Bucket(bPolls).Get(blockKey(b, s.acct.id))
	if pv == nil {
		return nil, nil, fmt.Errorf("%w: block %d has no poll times for account %s", errCorrupt, b, s.acct.name)
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
			return fmt.Errorf("series %s block %d: %w", s.key(), bl.n, err)
		}
		if stop {
			return nil
		}
	}
	return nil
}

// at finds the last poll <= t (ms) where s was present.
func (h *head) at(tx *bbolt.Tx, s *series, t int64) (quota.Sample, bool, error) {
	if seen := s.lastSeen(); seen == 0 {
		return quota.Sample{}, false, nil
	} else if t >= seen && (!s.present || t >= s.acct.last) {
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
			return quota.Sample{}, false, fmt.Errorf("series %s block %d: %w", s.key(), b, err)
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
			t = sr.lastSeen()
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
		out = make([]Latest, 0, len(h.list))
		for _, sr := range h.list {
			if t := sr.lastSeen(); t != 0 {
				out = append(out, Latest{Key: sr.key(), Sample: quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: sr.cur.quota()}})
			}
		}
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
		out = make([]quota.Key, 0, len(h.list))
		for _, sr := range h.list {
			out = append(out, sr.key())
		}
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
		var gone []*series
		for _, sr := range h.list {
			if !sr.present && sr.seen < limit && len(sr.w.buf) == 0 {
				gone = append(gone, sr)
			}
		}
		if len(gone) == 0 {
			return nil
		}
		b := tx.Bucket(bSeries)
		for _, sr := range gone {
			if err := b.Delete(u32(sr.id)); err != nil {
				return err
			}
			h.unindex(sr)
			h.byID[sr.id] = nil
			sr.acct.series = slices.DeleteFunc(sr.acct.series, func(x *series) bool { return x == sr })
		}
		h.list = slices.DeleteFunc(h.list, func(x *series) bool { return h.byID[x.id] != x })
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: retain: forget series: %w", err)
	}
	return nil
}
