package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// The shared state is what another instance needs to go on deciding where
// this one stopped: rule instance states (with their `for` timers), account
// poll states, the journal (cooldowns, proposals, open moves), the outbox,
// incident threads and silences. History, project names and listings are
// not in it: every instance polls and records those itself.
var sharedBuckets = [][]byte{bInstances, bAccounts, bActions, bOutbox, bThreads, bSilences}

// SharedBuckets names the buckets of the shared state, in a fixed order.
func SharedBuckets() []string {
	out := make([]string, len(sharedBuckets))
	for i, b := range sharedBuckets {
		out[i] = string(b)
	}
	return out
}

// JournalBucket is the shared bucket of the journal: its entries are only
// ever added to or updated when loaded from elsewhere, never deleted, since
// the journal a peer shares is a recent window of the whole.
const JournalBucket = "actions"

// Op is one change to a shared bucket; a nil Value deletes Key.
type Op struct {
	Bucket string
	Key    []byte
	Value  []byte
}

// Sequences are the id counters of the shared buckets that hand out ids,
// so that an instance taking over never reuses an id.
type Sequences struct {
	Actions  uint64 `json:"actions"`
	Outbox   uint64 `json:"outbox"`
	Silences uint64 `json:"silences"`
}

// Mirror is told, inside every write transaction that changes the shared
// state and before that transaction commits, what it changed and the id
// counters after it. An error rolls the transaction back, so the store
// never holds a decision its mirror refused.
type Mirror interface {
	Mirror(ops []Op, seq Sequences) error
}

// ErrShare: the mirror refused a write, which was rolled back.
var ErrShare = errors.New("share state")

// SetMirror makes m the mirror of every later write (nil: none).
func (s *Store) SetMirror(m Mirror) {
	s.mu.Lock()
	s.mirror = m
	s.mu.Unlock()
}

// sharedBucket is a shared bucket in a write transaction: its changes are
// recorded for the mirror.
type sharedBucket struct {
	*bbolt.Bucket
	name string
	s    *Store
}

func (b sharedBucket) Put(k, v []byte) error {
	if err := b.Bucket.Put(k, v); err != nil {
		return err
	}
	b.s.ops = append(b.s.ops, Op{Bucket: b.name, Key: slices.Clone(k), Value: slices.Clone(v)})
	return nil
}

func (b sharedBucket) Delete(k []byte) error {
	if b.Get(k) == nil {
		return nil
	}
	if err := b.Bucket.Delete(k); err != nil {
		return err
	}
	b.s.ops = append(b.s.ops, Op{Bucket: b.name, Key: slices.Clone(k)})
	return nil
}

// shared returns a shared bucket of a write transaction; s.mu is held.
func (s *Store) shared(tx *bbolt.Tx, name []byte) sharedBucket {
	return sharedBucket{Bucket: tx.Bucket(name), name: string(name), s: s}
}

func (s *Store) sharedSilences(tx *bbolt.Tx) (sharedBucket, error) {
	b, err := silencesBucket(tx)
	if err != nil {
		return sharedBucket{}, err
	}
	return sharedBucket{Bucket: b, name: string(bSilences), s: s}, nil
}

func sequences(tx *bbolt.Tx) Sequences {
	var q Sequences
	if b := tx.Bucket(bActions); b != nil {
		q.Actions = b.Sequence()
	}
	if b := tx.Bucket(bOutbox); b != nil {
		q.Outbox = b.Sequence()
	}
	if b := tx.Bucket(bSilences); b != nil {
		q.Silences = b.Sequence()
	}
	return q
}

// SharedState is the whole shared state: every entry of every shared
// bucket, by bucket and key, and the id counters.
type SharedState struct {
	Buckets map[string]map[string][]byte
	Seq     Sequences
}

// SharedState reads the whole shared state.
func (s *Store) SharedState() (SharedState, error) {
	st := SharedState{Buckets: map[string]map[string][]byte{}}
	err := s.view(func(tx *bbolt.Tx) error {
		for _, name := range sharedBuckets {
			m := map[string][]byte{}
			st.Buckets[string(name)] = m
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			if err := b.ForEach(func(k, v []byte) error {
				m[string(k)] = slices.Clone(v)
				return nil
			}); err != nil {
				return err
			}
		}
		st.Seq = sequences(tx)
		return nil
	})
	if err != nil {
		return SharedState{}, fmt.Errorf("store: shared state: %w", err)
	}
	return st, nil
}

// ErrNotShared: a bucket name that is not one of the shared state's.
var ErrNotShared = errors.New("not a shared bucket")

// ApplyShared makes the entries of bucket whose keys scope accepts exactly
// entries, without telling the mirror: it is how an instance takes in the
// shared state another one wrote. In the journal, entries are only added
// or updated (the shared journal is a recent window of this store's). The
// id counters are raised to seq where they are below it. A nil scope
// means every key.
func (s *Store) ApplyShared(updates []SharedUpdate, seq Sequences) error {
	err := s.writeTx(func(tx *bbolt.Tx) error {
		for _, u := range updates {
			if !slices.ContainsFunc(sharedBuckets, func(b []byte) bool { return string(b) == u.Bucket }) {
				return fmt.Errorf("%w: %q", ErrNotShared, u.Bucket)
			}
			b, err := tx.CreateBucketIfNotExists([]byte(u.Bucket))
			if err != nil {
				return err
			}
			if u.Bucket != JournalBucket {
				var gone [][]byte
				if err := b.ForEach(func(k, _ []byte) error {
					if (u.Scope == nil || u.Scope(k)) && u.Entries[string(k)] == nil {
						gone = append(gone, slices.Clone(k))
					}
					return nil
				}); err != nil {
					return err
				}
				for _, k := range gone {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
			}
			for k, v := range u.Entries {
				if old := b.Get([]byte(k)); old != nil && bytes.Equal(old, v) {
					continue
				}
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		for name, n := range map[string]uint64{string(bActions): seq.Actions, string(bOutbox): seq.Outbox, string(bSilences): seq.Silences} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if b.Sequence() < n {
				if err := b.SetSequence(n); err != nil {
					return err
				}
			}
		}
		return nil
	}, false, false)
	if err != nil {
		return fmt.Errorf("store: apply shared state: %w", err)
	}
	return nil
}

// SharedUpdate is what ApplyShared makes of one bucket: the entries whose
// keys Scope accepts (nil: all) become exactly Entries.
type SharedUpdate struct {
	Bucket  string
	Scope   func(key []byte) bool
	Entries map[string][]byte
}
