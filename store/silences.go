package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Silence keeps the incidents it matches from being told or acted on
// until Ends. Its matchers are globs; an empty one matches anything. The
// store only keeps silences: what they match is the caller's business.
type Silence struct {
	ID uint64 `json:"id"`
	// Rule, Project (an id or a name) and Resource are the matchers.
	Rule     string `json:"rule,omitempty"`
	Project  string `json:"project,omitempty"`
	Resource string `json:"resource,omitempty"`
	Comment  string `json:"comment"`
	// CreatedBy is who added it (the local user name), for the record.
	CreatedBy string    `json:"created_by,omitempty"`
	Created   time.Time `json:"created"`
	Ends      time.Time `json:"ends"`
	// Expired is set when it was ended early by ExpireSilence.
	Expired bool `json:"expired,omitempty"`
}

// Active reports whether the silence holds at t.
func (s Silence) Active(t time.Time) bool { return !t.Before(s.Created) && t.Before(s.Ends) }

func silenceKey(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

// silencesBucket returns the bucket, creating it in a file from before
// silences existed (a write transaction only).
func silencesBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	if tx.Writable() {
		return tx.CreateBucketIfNotExists(bSilences)
	}
	return tx.Bucket(bSilences), nil
}

// AddSilence records a new silence and returns it with its id; ids are
// never reused.
func (s *Store) AddSilence(sl Silence) (Silence, error) {
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := s.sharedSilences(tx)
		if err != nil {
			return err
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		sl.ID = id
		data, err := json.Marshal(sl)
		if err != nil {
			return err
		}
		return b.Put(silenceKey(id), data)
	})
	if err != nil {
		return Silence{}, fmt.Errorf("store: add silence: %w", err)
	}
	return sl, nil
}

// Silences returns every silence kept, active or not, by id.
func (s *Store) Silences() ([]Silence, error) {
	var out []Silence
	err := s.view(func(tx *bbolt.Tx) error {
		b, _ := silencesBucket(tx)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var sl Silence
			if err := json.Unmarshal(v, &sl); err != nil {
				return fmt.Errorf("silence %x: %w", k, err)
			}
			out = append(out, sl)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: silences: %w", err)
	}
	return out, nil
}

// ExpireSilence ends silence id at t (if it would end later) and returns
// it; ErrNotFound if there is no such silence.
func (s *Store) ExpireSilence(id uint64, t time.Time) (Silence, error) {
	var sl Silence
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := s.sharedSilences(tx)
		if err != nil {
			return err
		}
		v := b.Get(silenceKey(id))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &sl); err != nil {
			return err
		}
		if sl.Ends.After(t) {
			sl.Ends = t
			sl.Expired = true
		}
		data, err := json.Marshal(sl)
		if err != nil {
			return err
		}
		return b.Put(silenceKey(id), data)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Silence{}, fmt.Errorf("store: silence %d: %w", id, ErrNotFound)
		}
		return Silence{}, fmt.Errorf("store: expire silence %d: %w", id, err)
	}
	return sl, nil
}

// PruneSilences deletes the silences that ended before t, and returns how
// many.
func (s *Store) PruneSilences(before time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := s.sharedSilences(tx)
		if err != nil {
			return err
		}
		var old [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			var sl Silence
			if json.Unmarshal(v, &sl) == nil && sl.Ends.Before(before) {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune silences: %w", err)
	}
	return n, nil
}
