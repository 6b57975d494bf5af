package store

import (
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// bListings holds, per account, when its projects were last listed, so
// that separate runs (`once` from a timer) list names as rarely as a
// running daemon does. Created on first use in older files.
var bListings = []byte("project_listings") // account -> ProjectListing as JSON

// ProjectListing is what an account's last full listing of its projects left:
// when it was made, and the account user's membership state per project
// (nil when the cloud told none).
type ProjectListing struct {
	Time        time.Time         `json:"time"`
	Memberships map[string]string `json:"memberships,omitempty"`
}

// ProjectsListed returns the account's last full listing of its projects,
// if ever recorded.
func (s *Store) ProjectsListed(account string) (ProjectListing, bool, error) {
	var l ProjectListing
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
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("%s: %w", account, err)
		}
		ok = true
		return nil
	})
	if err != nil {
		return ProjectListing{}, false, fmt.Errorf("store: project listing: %w", err)
	}
	return l, ok, nil
}

// SetProjectsListed records the account's last full listing of its
// projects.
func (s *Store) SetProjectsListed(account string, l ProjectListing) error {
	l.Time = l.Time.UTC()
	v, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("store: project listing: %w", err)
	}
	err = s.update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bListings)
		if err != nil {
			return err
		}
		return b.Put([]byte(account), v)
	})
	if err != nil {
		return fmt.Errorf("store: project listing of %s: %w", account, err)
	}
	return nil
}
