package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// The host that last wrote the store, in the meta bucket. The writer's
// lock (lock.go) sees only processes of this host; a copy of the store,
// or one on a filesystem shared with another host, needs this record to
// show that another instance may be acting on the same state.
var kWriter = []byte("writer")

// ErrOtherHost: the store was last written by another host. Callers may
// test for it with errors.Is.
var ErrOtherHost = errors.New("store was last written by another host")

// writerRecord is the value of kWriter.
type writerRecord struct {
	Host string    `json:"host"`
	Time time.Time `json:"time"`
}

// otherHostError names the store, both hosts and when the other one
// wrote, and matches ErrOtherHost. An unreadable record (bad) is treated
// as another host's: whoever wrote it is unknown.
type otherHostError struct {
	path, other, this string
	at, now           time.Time
	bad               error
}

func (e *otherHostError) Error() string {
	if e.bad != nil {
		return fmt.Sprintf("store %s has an unreadable record of its last writer (%v); "+
			"make sure no other quotawatch acts on it, then pass --takeover", e.path, e.bad)
	}
	ago := ""
	if d := e.now.Sub(e.at); d >= 0 {
		ago = fmt.Sprintf(" (%s ago)", d.Round(time.Second))
	}
	return fmt.Sprintf("store %s was last written by host %s at %s%s, not by this host (%s); "+
		"two instances on one store's state would act twice: make sure the quotawatch there is stopped, then pass --takeover",
		e.path, e.other, e.at.UTC().Format("2006-01-02 15:04:05 UTC"), ago, e.this)
}

func (e *otherHostError) Is(target error) bool { return target == ErrOtherHost }

// Writer returns the host id of the store's last writer and when it last
// claimed the store; an empty host if none is recorded (a new store, or
// one from before the record existed).
func (s *Store) Writer() (host string, at time.Time, err error) {
	var rec writerRecord
	err = s.view(func(tx *bbolt.Tx) error {
		var err error
		rec, err = readWriter(tx)
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store: read the writer: %w", err)
	}
	return rec.Host, rec.Time, nil
}

// ClaimWriter records host as the store's writer, now. A store last
// written by another host is refused with an error matching ErrOtherHost,
// and left unchanged, unless takeover is set. A store without a record is
// simply claimed. Calling it again refreshes the time, and finds out
// whether another host has claimed the store meanwhile.
func (s *Store) ClaimWriter(host string, takeover bool) error {
	if host == "" {
		return errors.New("store: claim the writer: no host id")
	}
	var other *otherHostError
	err := s.update(func(tx *bbolt.Tx) error {
		now := s.now()
		rec, err := readWriter(tx)
		if err != nil && !takeover {
			other = &otherHostError{path: s.path, this: host, bad: err}
			return other
		}
		if rec.Host != "" && rec.Host != host && !takeover {
			other = &otherHostError{path: s.path, other: rec.Host, this: host, at: rec.Time, now: now}
			return other
		}
		v, err := json.Marshal(writerRecord{Host: host, Time: now.UTC()})
		if err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kWriter, v)
	})
	switch {
	case other != nil:
		return other // names the store and says what to do
	case err != nil:
		return fmt.Errorf("store: claim the writer: %w", err)
	}
	return nil
}

// readWriter reads the record; a missing one is the zero record.
func readWriter(tx *bbolt.Tx) (writerRecord, error) {
	var rec writerRecord
	m := tx.Bucket(bMeta)
	if m == nil {
		return rec, nil
	}
	v := m.Get(kWriter)
	if v == nil {
		return rec, nil
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return writerRecord{}, fmt.Errorf("meta %s: %w", kWriter, err)
	}
	return rec, nil
}
