package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// ErrDecided is returned when a proposal was already decided (approved,
// rejected or expired).
var ErrDecided = errors.New("already decided")

// Propose journals a move that waits for approval (state proposed) and,
// in the same transaction, the messages announce returns for it (it sees
// the entry with its id), so a proposal is never journaled untold.
func (s *Store) Propose(a quota.Action, announce func(quota.Action) []Outgoing) (quota.Action, error) {
	if a.Time.IsZero() {
		a.Time = s.now()
	}
	a.State, a.Error = quota.ActionProposed, ""
	if a.Updated.IsZero() {
		a.Updated = a.Time
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b := s.shared(tx, bActions)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		a.ID = id
		a.ProposalID = id
		if err := putJSON(b, u64(id), a); err != nil {
			return err
		}
		return s.enqueue(tx, announce(a), a.Time)
	})
	if err != nil {
		return quota.Action{}, fmt.Errorf("store: journal proposal: %w", err)
	}
	return a, nil
}

// Action returns the journal entry id.
func (s *Store) Action(id uint64) (quota.Action, error) {
	var a quota.Action
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bActions).Get(u64(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &a)
	})
	if err != nil {
		return quota.Action{}, fmt.Errorf("store: action %d: %w", id, err)
	}
	return a, nil
}

// Proposals returns the proposals waiting for a decision, oldest first.
func (s *Store) Proposals() ([]quota.Action, error) {
	return s.actions(func(a *quota.Action) bool { return a.State == quota.ActionProposed })
}

// Decide records the decision on proposal id in one transaction with the
// messages that tell it: decide changes the entry (its state to intent,
// approved, or rejected or expired, with who and why). It fails with
// ErrDecided, and changes nothing, when the proposal is no longer waiting.
func (s *Store) Decide(id uint64, decide func(*quota.Action) error, announce func(quota.Action) []Outgoing) (quota.Action, error) {
	var a quota.Action
	err := s.update(func(tx *bbolt.Tx) error {
		b := s.shared(tx, bActions)
		v := b.Get(u64(id))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &a); err != nil {
			return err
		}
		if a.State != quota.ActionProposed {
			return fmt.Errorf("%w (%s)", ErrDecided, a.State)
		}
		if err := decide(&a); err != nil {
			return err
		}
		switch a.State {
		case quota.ActionIntent, quota.ActionRejected, quota.ActionExpired:
		default:
			return fmt.Errorf("%w: proposed to %s", ErrTransition, a.State)
		}
		a.ID = id
		if err := putJSON(b, u64(id), a); err != nil {
			return err
		}
		return s.enqueue(tx, announce(a), a.Updated)
	})
	if err != nil {
		return a, fmt.Errorf("store: proposal %d: %w", id, err)
	}
	return a, nil
}

// enqueue adds messages to the outbox inside a write transaction.
func (s *Store) enqueue(tx *bbolt.Tx, out []Outgoing, t time.Time) error {
	ob := s.shared(tx, bOutbox)
	for _, o := range out {
		id, err := ob.NextSequence()
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		m := Message{ID: id, Notifier: o.Notifier, Event: o.Event, Enqueued: t, NextAttempt: t}
		if err := putJSON(ob, u64(id), m); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	return nil
}
