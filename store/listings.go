package store

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// bListings holds, per account, when its projects were last listed, so
// that separate runs (`once` from a timer) list names as rarely as a
// running daemon does. Created on first use in older files.
var bListings = []byte("project_listings") // account -> RFC 3339 time

// ProjectsListed returns when the account's projects were last listed in
// full, if ever recorded.
func (s *Store) ProjectsListed(account string) (time.Time, bool, error) {
	var t time.Time
	var ok bool
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bListings)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(account))
		if v == nil {
			return nil
		}
		if err := t.UnmarshalText(v); err != nil {
			return fmt.Errorf("%s: %w", account, err)
		}
		ok = true
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: project listing time: %w", err)
	}
	return t, ok, nil
}

// SetProjectsListed records when the account's projects were last listed
// in full.
func (s *Store) SetProjectsListed(account string, t time.Time) error {
	v, err := t.UTC().MarshalText()
	if err != nil {
		return fmt.Errorf("store: project listing time: %w", err)
	}
	err = s.update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bListings)
		if err != nil {
			return err
		}
		return b.Put([]byte(account), v)
	})
	if err != nil {
		return fmt.Errorf("store: project listing time of %s: %w", account, err)
	}
	return nil
}
