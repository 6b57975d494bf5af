package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// bSessions holds, per account, what its last token request answered, so
// that a process running one cycle (`once` from a timer) needs no token
// request of its own, as a running daemon does not. Created on first use.
var bSessions = []byte("sessions") // account -> Session as JSON

// Session is an account's last token answer: Key says for which identity
// endpoint and token it holds (the caller's digest, never the token), Data
// is the answer as the caller encoded it.
type Session struct {
	Key  string          `json:"key"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// Session returns the account's last token answer, if recorded.
func (s *Store) Session(account string) (Session, bool, error) {
	ss, ok, err := readRecord[Session](s, bSessions, account)
	if err != nil {
		return Session{}, false, fmt.Errorf("store: session: %w", err)
	}
	return ss, ok, nil
}

// SetSession records the account's last token answer.
func (s *Store) SetSession(account string, ss Session) error {
	ss.Time = ss.Time.UTC()
	if err := writeRecord(s, bSessions, account, ss); err != nil {
		return fmt.Errorf("store: session of %s: %w", account, err)
	}
	return nil
}
