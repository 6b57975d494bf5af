package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// bItems keeps the item listings the daemon made: (account, project,
// kind, time) -> the items. Created on first use in older files.
var bItems = []byte("items")

// Listing is what listing the items of one kind in one project returned,
// and when. Only what planning reads is kept: id, name, owner and
// quantities.
type Listing struct {
	Time    time.Time
	Account string
	Project string
	Kind    quota.Kind
	Items   []quota.Item
}

// listedItem is an item as stored.
type listedItem struct {
	ID         string           `json:"id"`
	Name       string           `json:"name,omitempty"`
	Owner      string           `json:"owner,omitempty"`
	Quantities quota.Quantities `json:"q,omitempty"`
	Busy       string           `json:"busy,omitempty"`
	Shared     bool             `json:"shared,omitempty"`
}

func listingPrefix(account, project string, kind quota.Kind) []byte {
	b := make([]byte, 0, len(account)+len(project)+len(kind)+3)
	b = append(b, account...)
	b = append(b, 0)
	b = append(b, project...)
	b = append(b, 0)
	b = append(b, kind...)
	return append(b, 0)
}

func encodeListing(items []quota.Item) ([]byte, error) {
	out := make([]listedItem, len(items))
	for i, it := range items {
		out[i] = listedItem{ID: it.ID, Name: it.Name, Owner: it.Owner, Quantities: it.Quantities, Busy: it.Busy, Shared: it.Shared}
	}
	return json.Marshal(out)
}

// RecordListings keeps the listings of a cycle. A listing equal to the
// newest one kept for its (account, project, kind) is not written again,
// so a project listed every cycle costs one record per change. Listings of
// the same key older than retention are dropped, except the newest of
// them, which is still in force (retention <= 0 keeps everything).
func (s *Store) RecordListings(ls []Listing, retention time.Duration) error {
	type rec struct {
		prefix, key, val []byte
		cut              int64
	}
	var recs []rec
	for _, l := range ls {
		v, err := encodeListing(l.Items)
		if err != nil {
			return fmt.Errorf("store: encode listing: %w", err)
		}
		p := listingPrefix(l.Account, l.Project, l.Kind)
		k := binary.BigEndian.AppendUint64(bytes.Clone(p), uint64(l.Time.UnixMilli()))
		cut := int64(-1)
		if retention > 0 {
			cut = l.Time.Add(-retention).UnixMilli()
		}
		recs = append(recs, rec{p, k, v, cut})
	}
	// Most cycles list what the last one did: find out in a read first, so
	// such a cycle writes nothing.
	var changed []rec
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bItems)
		for _, r := range recs {
			if b == nil {
				changed = append(changed, r)
				continue
			}
			if _, v := newestBefore(b.Cursor(), r.prefix, r.key); v == nil || !bytes.Equal(v, r.val) {
				changed = append(changed, r)
			}
		}
		return nil
	})
	if err != nil || len(changed) == 0 {
		return err
	}
	err = s.update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bItems)
		if err != nil {
			return err
		}
		for _, r := range changed {
			if err := b.Put(r.key, r.val); err != nil {
				return err
			}
			if r.cut < 0 {
				continue
			}
			// Drop the expired ones but the newest of them.
			var old [][]byte
			c := b.Cursor()
			for k, _ := c.Seek(r.prefix); k != nil && bytes.HasPrefix(k, r.prefix) && len(k) == len(r.prefix)+8; k, _ = c.Next() {
				if int64(binary.BigEndian.Uint64(k[len(r.prefix):])) >= r.cut {
					break
				}
				old = append(old, bytes.Clone(k))
			}
			for _, k := range old[:max(len(old)-1, 0)] {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record item listings: %w", err)
	}
	return nil
}

// newestBefore returns the newest entry of prefix with a key at or before
// key, or nil.
func newestBefore(c *bbolt.Cursor, prefix, key []byte) ([]byte, []byte) {
	k, v := c.Seek(key)
	if k != nil && bytes.Equal(k, key) {
		return k, v
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
		return nil, nil
	}
	return k, v
}

// Listings returns the listings made in (from,to], and for each (account,
// project, kind) the newest made at or before from, which was still in
// force then; oldest first per key.
func (s *Store) Listings(from, to time.Time) ([]Listing, error) {
	var out []Listing
	f, t := from.UnixMilli(), to.UnixMilli()
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bItems)
		if b == nil {
			return nil
		}
		var held *Listing // the newest at or before from of the current key
		var heldPrefix []byte
		flush := func() {
			if held != nil {
				out = append(out, *held)
				held = nil
			}
		}
		err := b.ForEach(func(k, v []byte) error {
			if len(k) < 11 {
				return nil
			}
			at := int64(binary.BigEndian.Uint64(k[len(k)-8:]))
			prefix := k[:len(k)-8]
			if !bytes.Equal(prefix, heldPrefix) {
				flush()
				heldPrefix = bytes.Clone(prefix)
			}
			if at > t {
				return nil
			}
			parts := bytes.Split(prefix[:len(prefix)-1], []byte{0})
			if len(parts) != 3 {
				return fmt.Errorf("%w: bad item listing key %q", errCorruptListing, k)
			}
			var items []listedItem
			if err := json.Unmarshal(v, &items); err != nil {
				return fmt.Errorf("%w: listing %q: %v", errCorruptListing, k, err)
			}
			l := Listing{Time: time.UnixMilli(at).UTC(), Account: string(parts[0]), Project: string(parts[1]), Kind: quota.Kind(parts[2])}
			l.Items = make([]quota.Item, len(items))
			for i, it := range items {
				l.Items[i] = quota.Item{Kind: l.Kind, ID: it.ID, Name: it.Name, Owner: it.Owner, Project: l.Project,
					Quantities: it.Quantities, Busy: it.Busy, Shared: it.Shared}
			}
			if at <= f {
				held = &l
				return nil
			}
			flush()
			out = append(out, l)
			return nil
		})
		flush()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read item listings: %w", err)
	}
	return out, nil
}

var errCorruptListing = errors.New("corrupt item listing")
