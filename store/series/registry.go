package series

import (
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// The registry names every series: its account, project and resource.
// It is packed: the series of regGroup consecutive ids share one value,
// keyed by the group's number, with the group's distinct names once and
// each series as small indexes into them. One value per series cost a
// bbolt element, a key and a copy of its names each; the first poll of
// 800,000 series made as many elements in one transaction (a quarter of a
// gigabyte of bbolt's node memory), and reading them back cost an open
// most of its time.
//
// A group value is regVersion, the names (count, then each as length and
// bytes), then the series (count, then each as the id's distance from the
// previous one, the first from the group's first id, the account id and
// the indexes of its project and resource names), all uvarints.
//
// Stores written before keep one value per series in history_series,
// which is still read and deleted from, never written; its ids all come
// before the packed ones, as ids ascend. Both take ids from
// history_series' sequence.
const (
	regGroup   = 1024
	regVersion = 1
)

var bRegistry = []byte("history_registry") // group -> packed series

// regEntry is one series of the registry, its names in the transaction's
// memory.
type regEntry struct {
	id, aid           uint32
	project, resource []byte
}

// regCursor reads the registry in id order, from both its forms.
type regCursor struct {
	legacy *bbolt.Cursor // history_series, or nil
	groups *bbolt.Cursor // history_registry, or nil

	old, cur  regEntry
	oldOK     bool
	curOK     bool
	names     [][]byte
	r         varints
	group     uint32 // the group at r
	left      uint64 // series left in it
	prev      uint32 // the previous id in it
	first     bool   // its first series is next
	started   bool
	legacyMax uint32
	// only, if set, filters the packed series by their names; wants
	// holds its flags for the group's names.
	only  *keySet
	wants []uint8
}

func newRegCursor(bk *buckets, only *keySet) *regCursor {
	c := &regCursor{only: only}
	if b := bk.series(); b != nil {
		c.legacy = b.Cursor()
	}
	if b := bk.registry(); b != nil {
		c.groups = b.Cursor()
	}
	return c
}

// next returns the series with the next id.
func (c *regCursor) next() (regEntry, bool, error) {
	if !c.started {
		c.started = true
		if c.legacy != nil {
			k, v := c.legacy.First()
			if err := c.readLegacy(k, v); err != nil {
				return regEntry{}, false, err
			}
		}
		if c.groups != nil {
			k, v := c.groups.First()
			if err := c.readGroup(k, v); err != nil {
				return regEntry{}, false, err
			}
		}
		if err := c.advance(); err != nil {
			return regEntry{}, false, err
		}
	}
	switch {
	case c.oldOK && (!c.curOK || c.old.id < c.cur.id):
		e := c.old
		if e.id > c.legacyMax {
			c.legacyMax = e.id
		}
		k, v := c.legacy.Next()
		return e, true, c.readLegacy(k, v)
	case c.curOK:
		if c.oldOK && c.old.id == c.cur.id {
			return regEntry{}, false, fmt.Errorf("%w: series %d registered twice", errCorrupt, c.cur.id)
		}
		e := c.cur
		return e, true, c.advance()
	}
	return regEntry{}, false, nil
}

func (c *regCursor) readLegacy(k, v []byte) error {
	c.oldOK = k != nil
	if k == nil {
		return nil
	}
	aid, p, r, err := splitSeriesValue(v)
	if err != nil || len(k) != 4 {
		return errCorrupt
	}
	c.old = regEntry{id: binary.BigEndian.Uint32(k), aid: aid, project: p, resource: r}
	return nil
}

// readGroup starts reading the group at k, or ends the groups.
func (c *regCursor) readGroup(k, v []byte) error {
	c.left, c.r = 0, varints{}
	if k == nil {
		c.groups = nil
		return nil
	}
	if len(k) != 4 || len(v) == 0 || v[0] != regVersion {
		return fmt.Errorf("%w: registry group %x", errCorrupt, k)
	}
	g := binary.BigEndian.Uint32(k)
	if g > (1<<32-1)/regGroup {
		return fmt.Errorf("%w: registry group %d", errCorrupt, g)
	}
	c.group, c.first = g, true
	c.r = varints{b: v, p: 1}
	n := c.r.uv()
	if n > uint64(len(v)) {
		return fmt.Errorf("%w: registry group %d", errCorrupt, g)
	}
	c.names = c.names[:0]
	for range n {
		l := c.r.uv()
		if c.r.bad || l > uint64(c.r.rest()) {
			return fmt.Errorf("%w: registry group %d", errCorrupt, g)
		}
		c.names = append(c.names, v[c.r.p:c.r.p+int(l)])
		c.r.p += int(l)
	}
	c.left = c.r.uv()
	if c.r.bad || c.left > uint64(c.r.rest()) || c.left > regGroup {
		return fmt.Errorf("%w: registry group %d", errCorrupt, g)
	}
	c.prev = g * regGroup
	if c.only != nil {
		c.filterGroup()
	}
	return nil
}

// advance reads the next packed series into cur; with a filter, the
// next whose names it wants.
func (c *regCursor) advance() error {
	for {
		for c.left == 0 {
			if c.groups == nil {
				c.curOK = false
				return nil
			}
			if c.r.rest() != 0 {
				return fmt.Errorf("%w: registry group %d: bytes after its series", errCorrupt, c.group)
			}
			if err := c.readGroup(c.groups.Next()); err != nil {
				return err
			}
		}
		d := c.r.uv()
		aid, p, r := c.r.uv(), c.r.uv(), c.r.uv()
		id := uint64(c.prev) + d
		if c.r.bad || !c.first && d == 0 || id >= uint64(c.group+1)*regGroup ||
			p >= uint64(len(c.names)) || r >= uint64(len(c.names)) || aid > 1<<32-1 {
			return fmt.Errorf("%w: registry group %d", errCorrupt, c.group)
		}
		c.left--
		c.first = false
		c.prev = uint32(id)
		if c.only != nil && (c.wants[p]&wantProject == 0 || c.wants[r]&wantResource == 0) {
			continue
		}
		c.cur, c.curOK = regEntry{id: uint32(id), aid: uint32(aid), project: c.names[p], resource: c.names[r]}, true
		return nil
	}
}

// Flags of a group's names, for a filter.
const (
	wantProject = 1 << iota
	wantResource
)

// filterGroup marks the names of the group just read that the filter
// wants, and skips the group if it names no series the filter wants.
func (c *regCursor) filterGroup() {
	c.wants = c.wants[:0]
	var seen uint8
	for _, n := range c.names {
		var f uint8
		if c.only.projects[string(n)] {
			f |= wantProject
		}
		if c.only.resources[string(n)] {
			f |= wantResource
		}
		seen |= f
		c.wants = append(c.wants, f)
	}
	if seen != wantProject|wantResource {
		c.left, c.r.p = 0, len(c.r.b)
	}
}

// regDirty notes that the group of series id must be written.
func (h *head) regDirty(id uint32) {
	g := id / regGroup
	if n := len(h.dirtyGroups); n == 0 || h.dirtyGroups[n-1] != g {
		h.dirtyGroups = append(h.dirtyGroups, g)
	}
}

// putRegistry writes the groups changed since the last call from the
// head, which holds every registered series: a group is written once per
// transaction, however many of its series it registers.
func (h *head) putRegistry(bk *buckets) error {
	if len(h.dirtyGroups) == 0 {
		return nil
	}
	slices.Sort(h.dirtyGroups)
	groups := slices.Compact(h.dirtyGroups)
	b := bk.registry()
	if b == nil {
		var err error
		if b, err = bk.tx.CreateBucketIfNotExists(bRegistry); err != nil {
			return fmt.Errorf("registry: %w", err)
		}
		bk.b[iRegistry] = b
	}
	b.FillPercent = 0.9
	local := map[uint32]uint64{} // h.names index -> the group's
	var names []uint32
	var ents, v []byte
	for _, g := range groups {
		clear(local)
		names, ents = names[:0], ents[:0]
		name := func(i uint32) uint64 {
			if x, ok := local[i]; ok {
				return x
			}
			x := uint64(len(names))
			local[i] = x
			names = append(names, i)
			return x
		}
		n, prev := 0, g*regGroup
		for id64 := uint64(max(g*regGroup, h.legacyMax+1)); id64 < uint64(g+1)*regGroup; id64++ {
			id := uint32(id64)
			s := h.get(id)
			if s == nil {
				continue
			}
			ents = binary.AppendUvarint(ents, uint64(id-prev))
			ents = binary.AppendUvarint(ents, uint64(h.acct(s).id))
			ents = binary.AppendUvarint(ents, name(s.project))
			ents = binary.AppendUvarint(ents, name(s.resource))
			prev = id
			n++
		}
		if n == 0 {
			if err := b.Delete(u32(g)); err != nil {
				return fmt.Errorf("registry group %d: %w", g, err)
			}
			continue
		}
		v = append(v[:0], regVersion)
		v = binary.AppendUvarint(v, uint64(len(names)))
		for _, i := range names {
			v = binary.AppendUvarint(v, uint64(len(h.names[i])))
			v = append(v, h.names[i]...)
		}
		v = binary.AppendUvarint(v, uint64(n))
		v = append(v, ents...)
		// bbolt keeps the value until the commit: it needs its own.
		if err := b.Put(u32(g), slices.Clone(v)); err != nil {
			return fmt.Errorf("registry group %d: %w", g, err)
		}
	}
	h.dirtyGroups = h.dirtyGroups[:0]
	return nil
}
