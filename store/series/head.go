package series

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/quotawatch/quotawatch/quota"
)

// blockMs is the span of one history block. Chunks are per (block, series);
// the newest (open) block lives in the open-block log until the first poll
// of the next block folds it into chunks.
const blockMs = int64(24 * time.Hour / time.Millisecond)

// seriesPage is how many series one page of the head's arena holds. Pages
// never move, so a *series stays valid while the cache grows, and growth
// neither copies the cache nor leaves more than one page of slack.
const seriesPage = 1024

// series is one quota series in the head cache: 80 bytes. It holds no
// pointers, so the arena costs the garbage collector nothing to scan.
type series struct {
	cur  vals  // values at the last poll where present (kept while absent)
	seen int64 // last poll where present, when absent (ms)
	id   uint32
	// acct is the account's index in head.acctList, with the flags
	// fPresent and fOpen in its top bits.
	acct uint32
	// project and resource are indexes in head.names.
	project, resource uint32
	// lastIdx is 1 + the account poll index of the series' newest entry in
	// the open block's log (0: none), lastOff its offset among that poll's
	// entries; each entry links back to the one before, so a query reads
	// only its own series' entries.
	lastIdx, lastOff uint32
}

// Flags in series.acct.
const (
	fPresent = 1 << 31 // present at the account's last poll
	fOpen    = 1 << 30 // present when the open block began
	acctMask = fOpen - 1
)

func (s *series) present() bool { return s.acct&fPresent != 0 }
func (s *series) open() bool    { return s.acct&fOpen != 0 }

func (s *series) setPresent(p bool) {
	s.acct &^= fPresent
	if p {
		s.acct |= fPresent
	}
}

func (s *series) setOpen(o bool) {
	s.acct &^= fOpen
	if o {
		s.acct |= fOpen
	}
}

type account struct {
	name   string
	id     uint32
	idx    uint32   // index in head.acctList
	series []uint32 // arena indexes
	polls  []int64  // poll times (ms) in the open block
	locs   []logLoc // where each of those polls is in the log
	last   int64    // last poll time (ms), any block
	// order is the series of the last snapshot, by entry position: polls
	// list entries in a stable order, so most lookups skip the index.
	order []uint32
}

// logLoc places one account poll in the open-block log: the record's key
// and the offset of the poll's entries in it.
type logLoc struct{ seq, base uint32 }

// head is the in-memory state of the history: the last values of every
// series and where their open-block changes are in the log. The changes
// themselves stay on disk.
type head struct {
	block    uint32
	hasBlock bool
	// hash is the series index's hash of a key's interned parts (account
	// index, project and resource name indexes); slots is an
	// open-addressing table of arena index + 1 (0: empty), at most
	// three-quarters full. It is built by a lookup after the first few: a
	// reader that lists every series, or looks up one, never needs it.
	// Readers run at once, so the lookup that builds it holds indexMu.
	hash    func(acct, project, resource uint32) uint64
	slots   []uint32
	indexed atomic.Bool
	scans   atomic.Int32 // lookups answered by a scan, before the table is built
	indexMu sync.Mutex
	pages   [][]series
	n       uint32   // series in the arena, in id order
	byID    []uint32 // arena index + 1 by series id; 0 once forgotten
	accts   map[string]*account
	// acctByID and acctList find an account by id and by index.
	acctByID map[uint32]*account
	acctList []*account
	// marks has a bit per arena index: the series a poll listed.
	marks   []uint64
	names   []string // interned project and resource names
	nameIdx map[string]uint32
	codec   codec // for sealed packs
	// snapSeq is the last log record the head snapshot includes; 0: none
	// in this block.
	snapSeq uint64
	// lazy holds the snapshot's series not restored yet; nil once a write
	// has settled them all, or when the head was loaded without one.
	lazy *lazySeries
	// legacyMax is the highest id registered one value per series;
	// dirtyGroups the registry groups to write at the end of a write.
	legacyMax   uint32
	dirtyGroups []uint32
}

func newHead() *head {
	return &head{
		hash:     hashParts,
		accts:    map[string]*account{},
		acctByID: map[uint32]*account{},
		nameIdx:  map[string]uint32{},
	}
}

// ser returns the series at arena index i.
func (h *head) ser(i uint32) *series { return &h.pages[i/seriesPage][i%seriesPage] }

func (h *head) key(s *series) quota.Key {
	return quota.Key{Account: h.acctList[s.acct&acctMask].name, Project: h.names[s.project], Resource: h.names[s.resource]}
}

func (h *head) acct(s *series) *account { return h.acctList[s.acct&acctMask] }

// lastSeen returns the time (ms) of the last poll where the series was
// present, or 0.
func (h *head) lastSeen(s *series) int64 {
	if s.present() {
		return h.acct(s).last
	}
	return s.seen
}

// intern returns the index of one shared copy of a name, so 80,000 series
// of a few thousand projects and ten resources do not each hold their own.
func (h *head) intern(x string) uint32 {
	if i, ok := h.nameIdx[x]; ok {
		return i
	}
	i := uint32(len(h.names))
	x = strings.Clone(x) // not the caller's buffer, which may be large
	h.names = append(h.names, x)
	h.nameIdx[x] = i
	return i
}

// hashParts mixes a key's interned parts (SplitMix64's finaliser). The
// parts are small integers handed out in order, not names a cloud chose,
// so the table needs no random seed; hashing them costs no string read.
func hashParts(acct, project, resource uint32) uint64 {
	x := uint64(project)<<32 | uint64(resource)
	x += (uint64(acct) + 1) * 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (h *head) hashOf(s *series) uint64 { return h.hash(s.acct&acctMask, s.project, s.resource) }

// find returns the arena index of the series with key k.
func (h *head) find(k quota.Key) (uint32, bool) {
	a := h.accts[k.Account]
	if a == nil {
		return 0, false
	}
	p, ok := h.nameIdx[k.Project]
	if !ok {
		return 0, false
	}
	r, ok := h.nameIdx[k.Resource]
	if !ok {
		return 0, false
	}
	if !h.indexed.Load() {
		if h.scans.Add(1) <= scanLookups {
			// A command looks up a series or two: comparing the account's
			// series costs less than building the table.
			for _, i := range a.series {
				if s := h.ser(i); s.project == p && s.resource == r {
					return i, true
				}
			}
			return 0, false
		}
		h.indexMu.Lock()
		if !h.indexed.Load() {
			h.buildIndex()
		}
		h.indexMu.Unlock()
	}
	mask := uint64(len(h.slots) - 1)
	for i := h.hash(a.idx, p, r) & mask; ; i = (i + 1) & mask {
		v := h.slots[i]
		if v == 0 {
			return 0, false
		}
		if s := h.ser(v - 1); s.project == p && s.resource == r && s.acct&acctMask == a.idx {
			return v - 1, true
		}
	}
}

// scanLookups is how many lookups scan the series before the first builds
// the hash table.
const scanLookups = 8

// buildIndex builds the hash table of every series, sized once.
func (h *head) buildIndex() {
	size := 16
	for uint64(size)*3 < (uint64(h.n)+1)*4 {
		size *= 2
	}
	h.resize(size)
	h.indexed.Store(true)
}

// lookup returns the series with key k, or nil.
func (h *head) lookup(k quota.Key) *series {
	if i, ok := h.find(k); ok {
		return h.ser(i)
	}
	return nil
}

// index adds arena index i to the hash table, once it is built.
func (h *head) index(i uint32) {
	if !h.indexed.Load() {
		return
	}
	if uint64(h.n)*4 > uint64(len(h.slots))*3 {
		h.resize(max(16, 2*len(h.slots))) // places i too
		return
	}
	h.place(i)
}

func (h *head) place(i uint32) {
	mask := uint64(len(h.slots) - 1)
	p := h.hashOf(h.ser(i)) & mask
	for h.slots[p] != 0 {
		p = (p + 1) & mask
	}
	h.slots[p] = i + 1
}

// resize rebuilds the hash table with size slots (a power of two).
func (h *head) resize(size int) {
	h.slots = make([]uint32, size)
	for i := range h.n {
		h.place(i)
	}
}

// unindex removes s from the hash table, shifting back the entries that
// probed past it so that no lookup stops early.
func (h *head) unindex(s *series) {
	if !h.indexed.Load() {
		return
	}
	mask := uint64(len(h.slots) - 1)
	p := h.hashOf(s) & mask
	for {
		v := h.slots[p]
		if v == 0 {
			return
		}
		if h.ser(v-1) == s {
			break
		}
		p = (p + 1) & mask
	}
	for q := (p + 1) & mask; h.slots[q] != 0; q = (q + 1) & mask {
		home := h.hashOf(h.ser(h.slots[q]-1)) & mask
		// The entry at q stays if its home lies cyclically in (p, q].
		if p <= q && p < home && home <= q || p > q && (p < home || home <= q) {
			continue
		}
		h.slots[p] = h.slots[q]
		p = q
	}
	h.slots[p] = 0
}

// indexOf returns the arena index of the series with id.
func (h *head) indexOf(id uint32) (uint32, bool) {
	if int64(id) < int64(len(h.byID)) && h.byID[id] != 0 {
		return h.byID[id] - 1, true
	}
	return 0, false
}

// get returns the series with id, or nil.
func (h *head) get(id uint32) *series {
	if i, ok := h.indexOf(id); ok {
		return h.ser(i)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func blockOf(t int64) int64 {
	if t < 0 {
		return -1
	}
	return t / blockMs
}

func (h *head) addAccount(id uint32, name string) *account {
	if len(h.acctList) > acctMask {
		panic("series: too many accounts") // a billion: not a real store
	}
	a := &account{name: name, id: id, idx: uint32(len(h.acctList))}
	h.accts[name] = a
	h.acctByID[id] = a
	h.acctList = append(h.acctList, a)
	return a
}

func (h *head) addSeries(id uint32, a *account, project, resource string) *series {
	return h.push(series{id: id, acct: a.idx, project: h.intern(project), resource: h.intern(resource)})
}

// push appends s to the arena (ids must ascend) and indexes it.
func (h *head) push(s series) *series {
	i := h.n
	if i%seriesPage == 0 {
		h.pages = append(h.pages, make([]series, seriesPage))
	}
	h.n++
	p := h.ser(i)
	*p = s
	for int64(len(h.byID)) <= int64(s.id) {
		h.byID = append(h.byID, 0)
	}
	h.byID[s.id] = i + 1
	a := h.acctList[s.acct&acctMask]
	a.series = append(a.series, i)
	h.index(i)
	return p
}

// each calls fn for every series, in id order.
func (h *head) each(fn func(i uint32, s *series)) {
	for i := range h.n {
		fn(i, h.ser(i))
	}
}

// forget drops the series gone says so and rebuilds the arena and its
// indexes without them.
func (h *head) forget(gone func(s *series) bool) {
	pages, n := h.pages, h.n
	h.pages, h.n, h.slots = nil, 0, nil
	h.indexed.Store(false)
	clear(h.byID)
	for _, a := range h.acctList {
		a.series, a.order = a.series[:0], nil
	}
	for i := range n {
		if s := &pages[i/seriesPage][i%seriesPage]; !gone(s) {
			h.push(*s)
		}
	}
}

// memBytes is the heap the cache holds, counted from its capacities.
func (h *head) memBytes() int64 {
	b := int64(len(h.pages))*seriesPage*int64(unsafe.Sizeof(series{})) + int64(cap(h.pages))*24 +
		int64(cap(h.slots)+cap(h.byID))*4 + int64(cap(h.marks))*8
	for _, a := range h.acctList {
		b += int64(cap(a.series)+cap(a.order))*4 + int64(cap(a.polls))*8 + int64(cap(a.locs))*8 + 128
	}
	for _, x := range h.names {
		b += int64(len(x)) + 16 + 40 // the string, its slice slot and its map entry
	}
	if lz := h.lazy; lz != nil {
		b += int64(cap(lz.snap)) + int64(cap(lz.off))*4 + int64(cap(lz.restored)+cap(lz.replayed)+cap(lz.seenSet))*8
	}
	return b
}

func encodeSeriesValue(aid uint32, project, resource string) []byte {
	b := binary.AppendUvarint(nil, uint64(aid))
	b = binary.AppendUvarint(b, uint64(len(project)))
	b = append(b, project...)
	return append(b, resource...)
}

// splitSeriesValue decodes a series registry value (encodeSeriesValue)
// without copying the names.
func splitSeriesValue(v []byte) (aid uint32, project, resource []byte, err error) {
	a, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, nil, nil, errCorrupt
	}
	v = v[n:]
	l, n := binary.Uvarint(v)
	if n <= 0 || l > uint64(len(v)-n) {
		return 0, nil, nil, errCorrupt
	}
	v = v[n:]
	return uint32(a), v[:l], v[l:], nil
}

// internBytes is intern of a name read from the file.
func (h *head) internBytes(x []byte) uint32 {
	if i, ok := h.nameIdx[string(x)]; ok { // no copy for a lookup
		return i
	}
	return h.intern(string(x))
}

// keySet is a set of series keys, looked up by the registry's bytes.
// Its projects and resources let the registry skip the groups that name
// none of them.
type keySet struct {
	m                   map[string]struct{}
	projects, resources map[string]bool
	buf                 []byte
}

func newKeySet(keys []quota.Key) *keySet {
	ks := &keySet{m: make(map[string]struct{}, len(keys)), projects: map[string]bool{}, resources: map[string]bool{}}
	for _, k := range keys {
		ks.m[string(ks.join(k.Account, []byte(k.Project), []byte(k.Resource)))] = struct{}{}
		ks.projects[k.Project], ks.resources[k.Resource] = true, true
	}
	return ks
}

// join writes the parts to buf, NUL-separated: names hold no NUL.
func (ks *keySet) join(account string, project, resource []byte) []byte {
	ks.buf = append(append(append(append(append(ks.buf[:0], account...), 0), project...), 0), resource...)
	return ks.buf
}

func (ks *keySet) has(account string, project, resource []byte) bool {
	_, ok := ks.m[string(ks.join(account, project, resource))] // no copy for a lookup
	return ok
}

// nameCache remembers the names interned last, by a cheap hash of their
// length and last byte, for one read of the registry: it lists a
// project's resources one after another, and the same few resources over
// and over, so most names are found without hashing them for the map.
// The names it holds are the transaction's bytes.
type nameCache [64]struct {
	name []byte
	idx  uint32
}

func (c *nameCache) intern(h *head, x []byte) uint32 {
	slot := uint(len(x)) * 7
	if len(x) > 0 {
		slot += uint(x[len(x)-1])
	}
	e := &c[slot%uint(len(c))]
	if e.name != nil && string(e.name) == string(x) {
		return e.idx
	}
	i := h.internBytes(x)
	e.name, e.idx = x, i
	return i
}

// loadHead rebuilds the cache: registries, the checkpoint written at the
// last fold, then the log of the open block. With only, it holds only the
// series only keeps: their values are restored at once, and what the
// other series are is never read.
func loadHead(bk *buckets, only *keySet) (*head, error) {
	h := newHead()
	if err := bk.accts().ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			return errCorrupt
		}
		h.addAccount(binary.BigEndian.Uint32(k), string(v))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	// The ids handed out bound the series; most are still known.
	if n := int(min(bk.series().Sequence(), 1<<32-1)); n > 0 && only == nil {
		// Sized once rather than by doubling; a project has a few
		// resources, so names are a fraction of the series.
		h.pages = make([][]series, 0, (n+seriesPage-1)/seriesPage)
		h.byID = make([]uint32, 0, n+1)
		h.nameIdx = make(map[string]uint32, n/4+16)
		h.names = make([]string, 0, n/4+16)
	}
	var nc nameCache
	var a *account
	rc := newRegCursor(bk, only)
	for {
		e, ok, err := rc.next()
		if err != nil {
			return nil, fmt.Errorf("series: %w", err)
		}
		if !ok {
			break
		}
		if a == nil || a.id != e.aid {
			if a = h.acctByID[e.aid]; a == nil {
				return nil, fmt.Errorf("series: %w: series of unknown account %d", errCorrupt, e.aid)
			}
		}
		if only != nil && !only.has(a.name, e.project, e.resource) {
			continue
		}
		// Interned from the bytes: 80,000 series share a few thousand
		// names, so most need no string of their own.
		h.push(series{id: e.id, acct: a.idx, project: nc.intern(h, e.project), resource: nc.intern(h, e.resource)})
	}
	h.legacyMax = rc.legacyMax
	if v := bk.head().Get(kBlock); len(v) == 4 {
		h.block, h.hasBlock = binary.BigEndian.Uint32(v), true
	}
	if v := bk.head().Get(kSnapshot); v != nil {
		seq, ok, err := h.readSnapshotLazy(v, only == nil)
		if err != nil {
			return nil, fmt.Errorf("head snapshot: %w", err)
		}
		if ok {
			h.snapSeq = seq
			if err := h.replayLog(bk.log(), seq); err != nil {
				return nil, fmt.Errorf("open-block log: %w", err)
			}
			if only != nil {
				// The snapshot is the transaction's: restore now.
				if err := h.settle(); err != nil {
					return nil, fmt.Errorf("head snapshot: %w", err)
				}
			}
			return h, nil
		}
	}
	if err := h.readCheckpoint(bk.head().Get(kCheckpoint)); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	h.each(func(_ uint32, s *series) { s.setOpen(s.present()) })
	if err := h.replayLog(bk.log(), 0); err != nil {
		return nil, fmt.Errorf("open-block log: %w", err)
	}
	return h, nil
}

// Checkpoint: accounts (id, last poll), then series (id, present, seen,
// values), as varints.
func (h *head) checkpoint() []byte {
	b := binary.AppendUvarint(nil, uint64(len(h.acctByID)))
	for _, a := range h.acctList {
		b = binary.AppendUvarint(b, uint64(a.id))
		b = binary.AppendVarint(b, a.last)
	}
	b = binary.AppendUvarint(b, uint64(h.n))
	h.each(func(_ uint32, s *series) {
		b = binary.AppendUvarint(b, uint64(s.id))
		p := byte(0)
		if s.present() {
			p = 1
		}
		b = append(b, p)
		b = binary.AppendVarint(b, s.seen)
		for _, x := range s.cur {
			b = binary.AppendVarint(b, x)
		}
	})
	return b
}

// readCheckpoint restores the accounts' last polls and the series' last
// values from a checkpoint.
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
		if a := h.acctByID[id]; b != nil && a != nil {
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
		if s := h.get(id); b != nil && s != nil {
			s.setPresent(present)
			s.seen, s.cur = seen, v
		}
	}
	if b == nil {
		return errCorrupt
	}
	return nil
}
