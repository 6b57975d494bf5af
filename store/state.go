package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series"
)

// Outgoing is an event to enqueue for one notifier.
type Outgoing struct {
	Notifier string
	Event    quota.Event
}

// Batch is everything one cycle changed; Commit writes it in one
// transaction.
type Batch struct {
	// Time is the cycle's time; it stamps outbox messages and stands in
	// for a snapshot without a time. Zero means Options.Now().
	Time time.Time
	// Snapshots are the polls of this cycle (one per account). History
	// stores changes only; a series missing from its account's snapshot
	// is recorded as absent from that poll on.
	Snapshots []quota.Snapshot
	// Projects are upserted by id.
	Projects []quota.Project
	// Instances are changed rule states (upsert).
	Instances []quota.Instance
	// Deleted are rule instances that no longer exist.
	Deleted []quota.InstanceKey
	// Accounts are changed account poll states (upsert).
	Accounts []quota.AccountState
	// Outbox holds events enqueued with the state that caused them.
	Outbox []Outgoing
	// Actions are journal outcomes recorded with the events that tell of
	// them, so a move is never recorded without its announcement.
	Actions []ActionUpdate
}

// ActionUpdate moves a journal entry to a new state (see SetActionState).
type ActionUpdate struct {
	ID    uint64
	State quota.ActionState
	Error string
	Time  time.Time
	// Interrupted marks a failure given up on after the settle window
	// rather than answered by the cloud.
	Interrupted bool
}

// Commit writes the batch in one bbolt write transaction. A snapshot whose
// time is not after its account's previous poll is logged and skipped.
func (s *Store) Commit(b *Batch) error {
	bt := b.Time
	if bt.IsZero() {
		bt = s.now()
	}
	err := s.updateHistory(func(tx *bbolt.Tx, e *series.Engine) error {
		// A batch of other state (names, a journal entry) does no
		// history work, such as a step of a week's rewrite.
		if len(b.Snapshots) > 0 {
			if err := e.Append(tx, b.Snapshots, bt); err != nil {
				return err
			}
		}
		pb := tx.Bucket(bProjects)
		for _, p := range b.Projects {
			if err := putJSON(pb, []byte(p.ID), p); err != nil {
				return fmt.Errorf("project %s: %w", p.ID, err)
			}
		}
		ib := s.shared(tx, bInstances)
		for _, in := range b.Instances {
			if err := putJSON(ib, instanceKey(in.Key), in); err != nil {
				return fmt.Errorf("instance %s: %w", in.Key, err)
			}
		}
		for _, k := range b.Deleted {
			if err := ib.Delete(instanceKey(k)); err != nil {
				return fmt.Errorf("delete instance %s: %w", k, err)
			}
		}
		for _, u := range b.Actions {
			if err := s.setActionState(tx, u); err != nil {
				return fmt.Errorf("action %d: %w", u.ID, err)
			}
		}
		ab := s.shared(tx, bAccounts)
		for _, a := range b.Accounts {
			if err := putJSON(ab, []byte(a.Account), a); err != nil {
				return fmt.Errorf("account state %s: %w", a.Account, err)
			}
		}
		ob := s.shared(tx, bOutbox)
		for _, o := range b.Outbox {
			id, err := ob.NextSequence()
			if err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
			m := Message{ID: id, Notifier: o.Notifier, Event: o.Event, Enqueued: bt, NextAttempt: bt}
			if err := putJSON(ob, u64(id), m); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func putJSON(b interface{ Put(k, v []byte) error }, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// instanceKey joins the parts with NUL, which names never contain, so the
// key is unambiguous and sorts by rule first.
func instanceKey(k quota.InstanceKey) []byte {
	return []byte(k.Rule + "\x00" + k.Account + "\x00" + k.Project + "\x00" + k.Resource)
}

// readAll decodes every value of a bucket into a slice.
func readAll[T any](s *Store, bucket []byte, what string) ([]T, error) {
	var out []T
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("%s %q: %w", what, k, err)
			}
			out = append(out, x)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// Projects returns the known projects by id.
func (s *Store) Projects() (map[string]quota.Project, error) {
	var m map[string]quota.Project
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bProjects)
		m = make(map[string]quota.Project, b.Stats().KeyN) // counted by page, not by key
		return b.ForEach(func(k, v []byte) error {
			p, err := decodeProject(v)
			if err != nil {
				return fmt.Errorf("projects %q: %w", k, err)
			}
			m[p.ID] = p
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: projects: %w", err)
	}
	return m, nil
}

// Instances returns every stored rule instance, ordered by key.
func (s *Store) Instances() ([]quota.Instance, error) {
	return readAll[quota.Instance](s, bInstances, "instances")
}

// Accounts returns every stored account poll state, ordered by account.
func (s *Store) Accounts() ([]quota.AccountState, error) {
	return readAll[quota.AccountState](s, bAccounts, "account states")
}

// Intent journals a move about to be made and returns its id. It is its
// own transaction: the intent must be durable before the API call.
// Updated, when set, is when the intent was journaled (Time may be its
// cycle's time); it defaults to Time.
func (s *Store) Intent(a quota.Action) (uint64, error) {
	if a.Time.IsZero() {
		a.Time = s.now()
	}
	a.State = quota.ActionIntent
	if a.Updated.IsZero() {
		a.Updated = a.Time
	}
	a.Error = ""
	err := s.update(func(tx *bbolt.Tx) error {
		b := s.shared(tx, bActions)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		a.ID = id
		return putJSON(b, u64(id), a)
	})
	if err != nil {
		return 0, fmt.Errorf("store: journal intent: %w", err)
	}
	return a.ID, nil
}

// allowed lists the action lifecycle: intent -> applied | failed |
// unknown, unknown -> applied | failed once read back, and applied ->
// verified, or failed when reading the item back disagrees.
var allowed = map[quota.ActionState][]quota.ActionState{
	quota.ActionIntent:  {quota.ActionApplied, quota.ActionFailed, quota.ActionUnknown},
	quota.ActionUnknown: {quota.ActionApplied, quota.ActionFailed},
	quota.ActionApplied: {quota.ActionVerified, quota.ActionFailed},
}

// SetActionState records an outcome of journal entry id.
func (s *Store) SetActionState(id uint64, st quota.ActionState, errText string, t time.Time) error {
	err := s.update(func(tx *bbolt.Tx) error {
		return s.setActionState(tx, ActionUpdate{ID: id, State: st, Error: errText, Time: t})
	})
	if err != nil {
		return fmt.Errorf("store: action %d: %w", id, err)
	}
	return nil
}

// setActionState applies one transition inside a write transaction.
func (s *Store) setActionState(tx *bbolt.Tx, u ActionUpdate) error {
	b := s.shared(tx, bActions)
	v := b.Get(u64(u.ID))
	if v == nil {
		return ErrNotFound
	}
	var a quota.Action
	if err := json.Unmarshal(v, &a); err != nil {
		return err
	}
	ok := false
	for _, next := range allowed[a.State] {
		ok = ok || next == u.State
	}
	if !ok {
		return fmt.Errorf("%w: %s to %s", ErrTransition, a.State, u.State)
	}
	a.State, a.Error, a.Updated = u.State, u.Error, u.Time
	a.Interrupted = u.Interrupted && u.State == quota.ActionFailed
	return putJSON(b, u64(u.ID), a)
}

// actions returns the journal entries keep accepts, in id order.
func (s *Store) actions(keep func(*quota.Action) bool) ([]quota.Action, error) {
	var out []quota.Action
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bActions).ForEach(func(k, v []byte) error {
			var a quota.Action
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("action %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if keep(&a) {
				out = append(out, a)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: actions: %w", err)
	}
	return out, nil
}

// Actions returns the journal entries made in [from,to], oldest first.
func (s *Store) Actions(from, to time.Time) ([]quota.Action, error) {
	return s.actions(func(a *quota.Action) bool { return !a.Time.Before(from) && !a.Time.After(to) })
}

// ActionsForItem returns every journal entry about one item, oldest first.
func (s *Store) ActionsForItem(kind quota.Kind, id string) ([]quota.Action, error) {
	return s.actions(func(a *quota.Action) bool { return a.Kind == kind && a.ItemID == id })
}

// ActionsForProject returns the journal entries since a time that moved
// something out of or into project, oldest first.
func (s *Store) ActionsForProject(project string, since time.Time) ([]quota.Action, error) {
	return s.actions(func(a *quota.Action) bool {
		return (a.From == project || a.To == project) && !a.Time.Before(since)
	})
}

// Unfinished returns the moves without an outcome (intent or unknown), to
// reconcile.
func (s *Store) Unfinished() ([]quota.Action, error) {
	return s.actions(func(a *quota.Action) bool { return a.Open() })
}

// Message is one notification waiting in the outbox.
type Message struct {
	ID          uint64      `json:"id"`
	Notifier    string      `json:"notifier"`
	Event       quota.Event `json:"event"`
	Enqueued    time.Time   `json:"enqueued"`
	Attempts    int         `json:"attempts"`
	NextAttempt time.Time   `json:"next_attempt"`
	LastError   string      `json:"last_error,omitempty"`
	Dead        bool        `json:"dead,omitempty"`
}

// Due returns the messages of notifier ready to send at now, in enqueue
// order. It stops at the first live message of that notifier that is not
// yet due, so a later message never overtakes an earlier one.
func (s *Store) Due(notifier string, now time.Time) ([]Message, error) {
	var out []Message
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if m.Notifier != notifier || m.Dead {
				continue
			}
			if m.NextAttempt.After(now) {
				return nil
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: outbox due: %w", err)
	}
	return out, nil
}

// Delivered removes messages from the outbox; unknown ids are ignored.
func (s *Store) Delivered(ids ...uint64) error {
	err := s.update(func(tx *bbolt.Tx) error {
		b := s.shared(tx, bOutbox)
		for _, id := range ids {
			if err := b.Delete(u64(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: outbox delivered: %w", err)
	}
	return nil
}

func (s *Store) updateMessage(id uint64, what string, fn func(*Message)) error {
	err := s.update(func(tx *bbolt.Tx) error {
		b := s.shared(tx, bOutbox)
		v := b.Get(u64(id))
		if v == nil {
			return ErrNotFound
		}
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		fn(&m)
		return putJSON(b, u64(id), m)
	})
	if err != nil {
		return fmt.Errorf("store: outbox %s %d: %w", what, id, err)
	}
	return nil
}

// Failed records a failed attempt; the message is due again at next.
func (s *Store) Failed(id uint64, next time.Time, errText string) error {
	return s.updateMessage(id, "failed", func(m *Message) {
		m.Attempts++
		m.NextAttempt = next
		m.LastError = errText
	})
}

// Dead marks a message as permanently undeliverable: it is kept for
// inspection and never due again.
func (s *Store) Dead(id uint64, errText string) error {
	return s.updateMessage(id, "dead", func(m *Message) {
		m.Attempts++
		m.Dead = true
		m.LastError = errText
	})
}

// OutboxLen counts live and dead messages.
func (s *Store) OutboxLen() (pending, dead int, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
			// Only the flag matters here; skip a full decode.
			var m struct {
				Dead bool `json:"dead"`
			}
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if m.Dead {
				dead++
			} else {
				pending++
			}
			return nil
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: outbox length: %w", err)
	}
	return pending, dead, nil
}

// Thread is the Slack message that heads an incident's thread.
type Thread struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

func threadKey(notifier string, k quota.InstanceKey) []byte {
	return append([]byte(notifier+"\x00"), instanceKey(k)...)
}

// Thread returns the thread of an incident for a notifier.
func (s *Store) Thread(notifier string, k quota.InstanceKey) (Thread, bool, error) {
	var t Thread
	var ok bool
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bThreads).Get(threadKey(notifier, k))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &t)
	})
	if err != nil {
		return Thread{}, false, fmt.Errorf("store: thread %s %s: %w", notifier, k, err)
	}
	return t, ok, nil
}

// SetThread records the thread of an incident for a notifier.
func (s *Store) SetThread(notifier string, k quota.InstanceKey, t Thread) error {
	err := s.update(func(tx *bbolt.Tx) error {
		return putJSON(s.shared(tx, bThreads), threadKey(notifier, k), t)
	})
	if err != nil {
		return fmt.Errorf("store: set thread %s %s: %w", notifier, k, err)
	}
	return nil
}

// DeleteThread forgets the thread of an incident (after it resolved).
func (s *Store) DeleteThread(notifier string, k quota.InstanceKey) error {
	err := s.update(func(tx *bbolt.Tx) error {
		return s.shared(tx, bThreads).Delete(threadKey(notifier, k))
	})
	if err != nil {
		return fmt.Errorf("store: delete thread %s %s: %w", notifier, k, err)
	}
	return nil
}

// Compact writes a compacted copy of the store to the new file dst, with
// every page full: a maintenance step after retention freed much space.
// Replace the live file with it only while no quotawatch runs.
func (s *Store) Compact(dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("store: compact: %s already exists", dst)
	}
	out, err := bbolt.Open(dst, 0o600, &bbolt.Options{Timeout: s.opt.LockTimeout, NoSync: true})
	if err != nil {
		return fmt.Errorf("store: compact to %s: %w", dst, err)
	}
	out.AllocSize = 1 << 20
	s.mu.Lock()
	err = s.ensure()
	if err == nil {
		err = bbolt.Compact(out, s.db, 64<<20)
	}
	s.mu.Unlock()
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: compact to %s: %w", dst, err)
	}
	return nil
}

// Stats are figures about the store, for metrics.
type Stats struct {
	// Series is the number of known quota series.
	Series int
	// FileBytes is the size of the file.
	FileBytes int64
	// FreeBytes is space inside the file that bbolt will reuse.
	FreeBytes int64
	// LogBytes is the size of the open block's log, the history not yet
	// folded into chunks.
	LogBytes int64
}

// Stats returns figures about the store.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.viewHistory(func(tx *bbolt.Tx, e *series.Engine) error {
		st.Series = e.Len()
		st.FileBytes = tx.Size()
		ds := tx.DB().Stats()
		st.FreeBytes = int64(ds.FreeAlloc)
		var err error
		st.LogBytes, err = series.LogBytes(tx)
		return err
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	return st, nil
}

// SetAsideOrphans marks dead every live message of a notifier that is not
// in keep (one removed from the configuration), with reason as its error,
// and returns how many it set aside: they could never be delivered.
func (s *Store) SetAsideOrphans(keep []string, reason string) (int, error) {
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		b := s.shared(tx, bOutbox)
		var orphans []Message
		err := b.ForEach(func(k, v []byte) error {
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !m.Dead && !slices.Contains(keep, m.Notifier) {
				orphans = append(orphans, m)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Written after the scan: bbolt cursors do not like changes under them.
		for _, m := range orphans {
			m.Dead, m.LastError = true, reason
			if err := putJSON(b, u64(m.ID), m); err != nil {
				return err
			}
		}
		n = len(orphans)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: outbox orphans: %w", err)
	}
	return n, nil
}

// PruneDead deletes the dead messages enqueued before t, so messages that
// failed for good are kept for inspection for a while, not forever.
func (s *Store) PruneDead(before time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		b := s.shared(tx, bOutbox)
		var gone [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var m struct {
				Dead     bool      `json:"dead"`
				Enqueued time.Time `json:"enqueued"`
			}
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if m.Dead && m.Enqueued.Before(before) {
				gone = append(gone, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(gone)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: outbox prune: %w", err)
	}
	return n, nil
}
