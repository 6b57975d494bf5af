package store

import (
	"fmt"
	"time"
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
	l, ok, err := readRecord[ProjectListing](s, bListings, account)
	if err != nil {
		return ProjectListing{}, false, fmt.Errorf("store: project listing: %w", err)
	}
	return l, ok, nil
}

// SetProjectsListed records the account's last full listing of its
// projects.
func (s *Store) SetProjectsListed(account string, l ProjectListing) error {
	l.Time = l.Time.UTC()
	if err := writeRecord(s, bListings, account, l); err != nil {
		return fmt.Errorf("store: project listing of %s: %w", account, err)
	}
	return nil
}
