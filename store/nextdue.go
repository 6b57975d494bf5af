package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// NextDue returns when notifier's outbox can next make progress: the next
// attempt time of its first live message, which every later message waits
// for (see Due). ok is false when the notifier has no live message.
func (s *Store) NextDue(notifier string) (next time.Time, ok bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			// Only the fields needed here; skip decoding the event.
			var m struct {
				Notifier    string    `json:"notifier"`
				NextAttempt time.Time `json:"next_attempt"`
				Dead        bool      `json:"dead"`
			}
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if m.Notifier == notifier && !m.Dead {
				next, ok = m.NextAttempt, true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: outbox next due: %w", err)
	}
	return next, ok, nil
}
