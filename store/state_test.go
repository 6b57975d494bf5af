package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := Open(path, Options{NoSync: true, Now: func() time.Time { return start }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st, path
}

func ik(rule, project string) quota.InstanceKey {
	return quota.InstanceKey{Rule: rule, Account: "alice", Project: project, Resource: quota.DiskSpace}
}

func TestCommitState(t *testing.T) {
	st, path := openTemp(t)
	in1 := quota.Instance{Key: ik("r1", "p1"), State: quota.StateFiring, Since: start, Skipped: map[string]time.Time{"no room": start}}
	in2 := quota.Instance{Key: ik("r2", "p1"), State: quota.StatePending, Since: start}
	acc := quota.AccountState{Account: "alice", Failures: 2, FailingSince: start, LastError: "503"}
	require.NoError(t, st.Commit(&Batch{
		Time:      start,
		Projects:  []quota.Project{{ID: "p1", Name: "one"}, {ID: "u1", Name: "system:u1", System: true}},
		Instances: []quota.Instance{in2, in1},
		Accounts:  []quota.AccountState{acc},
		Outbox:    []Outgoing{{Notifier: "ops", Event: quota.Event{Kind: quota.EventFiring, Key: in1.Key, DaysToFull: quota.Never}}},
	}))
	in2.State = quota.StateFiring
	require.NoError(t, st.Commit(&Batch{
		Time:      start.Add(time.Minute),
		Projects:  []quota.Project{{ID: "p1", Name: "renamed"}},
		Instances: []quota.Instance{in2},
		Deleted:   []quota.InstanceKey{in1.Key, ik("never", "existed")},
	}))

	tests := []struct {
		name string
		st   func() *Store
	}{
		{"same store", func() *Store { return st }},
		{"after release", func() *Store { require.NoError(t, st.Release()); return st }},
		{"read-only", func() *Store {
			require.NoError(t, st.Release())
			ro, err := Open(path, Options{ReadOnly: true})
			require.NoError(t, err)
			t.Cleanup(func() { _ = ro.Close() })
			return ro
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.st()
			ps, err := s.Projects()
			require.NoError(t, err)
			require.Equal(t, map[string]quota.Project{"p1": {ID: "p1", Name: "renamed"}, "u1": {ID: "u1", Name: "system:u1", System: true}}, ps)
			ins, err := s.Instances()
			require.NoError(t, err)
			require.Equal(t, []quota.Instance{in2}, ins)
			accs, err := s.Accounts()
			require.NoError(t, err)
			require.Equal(t, []quota.AccountState{acc}, accs)
			due, err := s.Due("ops", start)
			require.NoError(t, err)
			require.Len(t, due, 1)
			require.Equal(t, quota.EventFiring, due[0].Event.Kind)
			require.True(t, due[0].Event.DaysToFull.IsNever())
			require.Equal(t, start, due[0].Enqueued)
		})
	}
	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	require.ErrorIs(t, ro.Commit(&Batch{}), ErrReadOnly)
}

// A move whose answer was lost is unknown until read back: applied (then
// verified) or failed; given up on, the failure is marked interrupted.
// Unfinished lists intents and unknown moves alike.
func TestJournalUnknown(t *testing.T) {
	st, _ := openTemp(t)
	mv := quota.Move{Rule: "r", Account: "alice", Kind: quota.KindContainer, ItemID: "c1", From: "A", To: "B"}
	ids := make([]uint64, 4)
	for i := range ids {
		id, err := st.Intent(quota.Action{Time: start, Move: mv})
		require.NoError(t, err)
		ids[i] = id
	}
	steps := []struct {
		up      ActionUpdate
		wantErr error
	}{
		{ActionUpdate{ID: ids[0], State: quota.ActionUnknown}, nil},
		{ActionUpdate{ID: ids[0], State: quota.ActionApplied}, nil},
		{ActionUpdate{ID: ids[0], State: quota.ActionVerified}, nil},
		{ActionUpdate{ID: ids[1], State: quota.ActionUnknown}, nil},
		{ActionUpdate{ID: ids[1], State: quota.ActionFailed, Error: "interrupted", Interrupted: true}, nil},
		{ActionUpdate{ID: ids[1], State: quota.ActionUnknown}, ErrTransition},
		{ActionUpdate{ID: ids[2], State: quota.ActionUnknown}, nil},
		{ActionUpdate{ID: ids[2], State: quota.ActionUnknown}, ErrTransition},
		{ActionUpdate{ID: ids[2], State: quota.ActionVerified}, ErrTransition},
		// Interrupted means something only for a failure.
		{ActionUpdate{ID: ids[3], State: quota.ActionApplied, Interrupted: true}, nil},
	}
	for i, s := range steps {
		s.up.Time = start.Add(time.Duration(i) * time.Minute)
		err := st.Commit(&Batch{Time: start, Actions: []ActionUpdate{s.up}})
		if s.wantErr != nil {
			require.ErrorIs(t, err, s.wantErr, "step %d", i)
		} else {
			require.NoError(t, err, "step %d", i)
		}
	}
	as, err := st.Actions(start, start)
	require.NoError(t, err)
	require.Len(t, as, 4)
	got := func(a quota.Action) [2]any { return [2]any{a.State, a.Interrupted} }
	require.Equal(t, [2]any{quota.ActionVerified, false}, got(as[0]))
	require.Equal(t, [2]any{quota.ActionFailed, true}, got(as[1]))
	require.True(t, as[1].Open() == false && !as[1].Refused(), "an interrupted move is neither open nor a refusal")
	require.Equal(t, [2]any{quota.ActionUnknown, false}, got(as[2]))
	require.Equal(t, [2]any{quota.ActionApplied, false}, got(as[3]))
	open, err := st.Unfinished()
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, ids[2], open[0].ID)
}

func TestJournal(t *testing.T) {
	st, _ := openTemp(t)
	mv := func(item, from, to string) quota.Move {
		return quota.Move{Rule: "r", Account: "alice", Kind: quota.KindContainer, ItemID: item, ItemName: item, From: from, To: to,
			Quantities: quota.Quantities{quota.DiskSpace: 10}}
	}
	id1, err := st.Intent(quota.Action{Time: start, Move: mv("c1", "A", "B")})
	require.NoError(t, err)
	id2, err := st.Intent(quota.Action{Time: start.Add(time.Hour), Move: mv("c2", "B", "C")})
	require.NoError(t, err)
	id3, err := st.Intent(quota.Action{Move: mv("c1", "B", "D"), DryRun: true}) // Now() stamps it
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, []uint64{id1, id2, id3})

	steps := []struct {
		id      uint64
		to      quota.ActionState
		errText string
		wantErr error
	}{
		{id1, quota.ActionApplied, "", nil},
		{id1, quota.ActionVerified, "", nil},
		{id1, quota.ActionFailed, "x", ErrTransition},
		{id2, quota.ActionVerified, "", ErrTransition},
		{id2, quota.ActionFailed, "interrupted", nil},
		{id2, quota.ActionApplied, "", ErrTransition},
		{id3, quota.ActionIntent, "", ErrTransition},
		{99, quota.ActionApplied, "", ErrNotFound},
	}
	for i, s := range steps {
		err := st.SetActionState(s.id, s.to, s.errText, start.Add(time.Duration(i)*time.Minute))
		if s.wantErr != nil {
			require.ErrorIs(t, err, s.wantErr, "step %d", i)
		} else {
			require.NoError(t, err, "step %d", i)
		}
	}
	ids := func(as []quota.Action, err error) []uint64 {
		require.NoError(t, err)
		var out []uint64
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	queries := []struct {
		name string
		got  []uint64
		want []uint64
	}{
		{"all", ids(st.Actions(start, start.Add(time.Hour))), []uint64{1, 2, 3}},
		{"window", ids(st.Actions(start.Add(time.Minute), start.Add(time.Hour))), []uint64{2}},
		{"item c1", ids(st.ActionsForItem(quota.KindContainer, "c1")), []uint64{1, 3}},
		{"item kind differs", ids(st.ActionsForItem(quota.KindVolume, "c1")), nil},
		{"project B", ids(st.ActionsForProject("B", start)), []uint64{1, 2, 3}},
		{"project B later", ids(st.ActionsForProject("B", start.Add(time.Minute))), []uint64{2}},
		{"project D", ids(st.ActionsForProject("D", start)), []uint64{3}},
		{"unfinished", ids(st.Unfinished()), []uint64{3}},
	}
	for _, q := range queries {
		require.Equal(t, q.want, q.got, q.name)
	}
	as, err := st.ActionsForItem(quota.KindContainer, "c2")
	require.NoError(t, err)
	require.Equal(t, quota.ActionFailed, as[0].State)
	require.Equal(t, "interrupted", as[0].Error)
	require.Equal(t, start.Add(4*time.Minute), as[0].Updated)
	require.Equal(t, "C", as[0].To)
}

func TestOutbox(t *testing.T) {
	st, _ := openTemp(t)
	ev := func(rule string) quota.Event { return quota.Event{Kind: quota.EventFiring, Key: ik(rule, "p")} }
	require.NoError(t, st.Commit(&Batch{Time: start, Outbox: []Outgoing{
		{"ops", ev("a")}, {"dev", ev("b")}, {"ops", ev("c")}, {"ops", ev("d")}, {"dev", ev("e")},
	}}))
	rules := func(ms []Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Event.Key.Rule)
		}
		return out
	}
	due := func(n string, at time.Time) []Message {
		ms, err := st.Due(n, at)
		require.NoError(t, err)
		return ms
	}
	ops := due("ops", start)
	require.Equal(t, []string{"a", "c", "d"}, rules(ops))
	require.Equal(t, []string{"b", "e"}, rules(due("dev", start)))
	require.Empty(t, due("ops", start.Add(-time.Second)), "not yet enqueued")

	// "a" delivered, "c" fails: "d" must wait behind it.
	require.NoError(t, st.Delivered(ops[0].ID))
	require.NoError(t, st.Failed(ops[1].ID, start.Add(10*time.Second), "429"))
	require.Empty(t, due("ops", start.Add(5*time.Second)))
	require.Equal(t, []string{"b", "e"}, rules(due("dev", start.Add(5*time.Second))), "another notifier is not held up")
	again := due("ops", start.Add(10*time.Second))
	require.Equal(t, []string{"c", "d"}, rules(again))
	require.Equal(t, 1, again[0].Attempts)
	require.Equal(t, "429", again[0].LastError)

	// A dead message is kept but no longer blocks or is due.
	require.NoError(t, st.Dead(again[0].ID, "invalid_auth"))
	require.Equal(t, []string{"d"}, rules(due("ops", start.Add(10*time.Second))))
	p, d, err := st.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, []int{3, 1}, []int{p, d})

	require.ErrorIs(t, st.Failed(12345, start, "x"), ErrNotFound)
	require.ErrorIs(t, st.Dead(12345, "x"), ErrNotFound)
	require.NoError(t, st.Delivered(again[1].ID, 12345))
	p, d, err = st.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, []int{2, 1}, []int{p, d})
}

func TestThreads(t *testing.T) {
	st, _ := openTemp(t)
	k1, k2 := ik("r", "p1"), ik("r", "p2")
	require.NoError(t, st.SetThread("ops", k1, Thread{Channel: "C1", TS: "1.1"}))
	require.NoError(t, st.SetThread("dev", k1, Thread{Channel: "C2", TS: "2.2"}))
	require.NoError(t, st.SetThread("ops", k1, Thread{Channel: "C1", TS: "1.3"}))
	tests := []struct {
		notifier string
		key      quota.InstanceKey
		want     Thread
		ok       bool
	}{
		{"ops", k1, Thread{"C1", "1.3"}, true},
		{"dev", k1, Thread{"C2", "2.2"}, true},
		{"ops", k2, Thread{}, false},
		{"ops\x00r", k1, Thread{}, false},
	}
	for _, tt := range tests {
		got, ok, err := st.Thread(tt.notifier, tt.key)
		require.NoError(t, err)
		require.Equal(t, tt.ok, ok, "%s %s", tt.notifier, tt.key)
		require.Equal(t, tt.want, got)
	}
	require.NoError(t, st.DeleteThread("ops", k1))
	_, ok, err := st.Thread("ops", k1)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestLocking(t *testing.T) {
	st, path := openTemp(t)
	require.NoError(t, st.Commit(&Batch{Time: start, Projects: []quota.Project{{ID: "p"}}}))

	// A second writer fails clearly within its timeout.
	began := time.Now()
	_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	require.ErrorIs(t, err, ErrLocked)
	require.EqualError(t, err, "store "+path+" is locked by another quotawatch process (waited 200ms)")
	require.Less(t, time.Since(began), 5*time.Second)

	// A reader waits for the cycle, then fails naming the file.
	_, err = Open(path, Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	require.ErrorIs(t, err, ErrLocked)
	require.Contains(t, err.Error(), "store "+path+" is locked by a running quotawatch cycle")

	// Between cycles readers get in, and the writer's next call waits.
	require.NoError(t, st.Release())
	ro, err := Open(path, Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	ps, err := ro.Projects()
	require.NoError(t, err)
	require.Contains(t, ps, "p")
	st.opt.LockTimeout = 200 * time.Millisecond
	err = st.Commit(&Batch{})
	require.ErrorIs(t, err, ErrLocked)
	require.Contains(t, err.Error(), path)
	require.NoError(t, ro.Close())
	require.NoError(t, st.Commit(&Batch{Time: start, Projects: []quota.Project{{ID: "q"}}}))

	// A second writer still cannot get in while the first is released.
	require.NoError(t, st.Release())
	_, err = Open(path, Options{LockTimeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, ErrLocked)

	// Once closed, the next writer gets in and sees everything.
	require.NoError(t, st.Close())
	_, err = st.Projects()
	require.ErrorIs(t, err, ErrClosed)
	st2, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer st2.Close()
	ps, err = st2.Projects()
	require.NoError(t, err)
	require.Len(t, ps, 2)
}

func TestSchema(t *testing.T) {
	tests := []struct {
		name    string
		version []byte // nil: leave as written
		ro      bool
		wantErr string
	}{
		{"current", nil, false, ""},
		{"current read-only", nil, true, ""},
		{"newer", u32(SchemaVersion + 1), false, "has schema version 3, newer than the 2 this quotawatch understands"},
		{"newer read-only", u32(SchemaVersion + 1), true, "has schema version 3, newer"},
		{"version 1", u32(1), false, ""},
		{"version 1 read-only", u32(1), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.db")
			st, err := Open(path, Options{})
			require.NoError(t, err)
			require.NoError(t, st.Close())
			if tt.version != nil {
				db, err := bbolt.Open(path, 0o600, nil)
				require.NoError(t, err)
				require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, tt.version) }))
				require.NoError(t, db.Close())
			}
			st, err = Open(path, Options{ReadOnly: tt.ro})
			if tt.wantErr == "" {
				require.NoError(t, err)
				_, err = st.Keys() // reads
				require.NoError(t, err)
				require.NoError(t, st.Close())
				db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
				require.NoError(t, err)
				var ver uint32
				require.NoError(t, db.View(func(tx *bbolt.Tx) error { ver = binary.BigEndian.Uint32(tx.Bucket(bMeta).Get(kSchema)); return nil }))
				require.NoError(t, db.Close())
				want := uint32(SchemaVersion)
				if tt.ro && tt.version != nil {
					want = 1 // a reader leaves it as it is
				}
				require.Equal(t, want, ver, "the version on disk")
				return
			}
			require.ErrorIs(t, err, ErrSchema)
			require.Contains(t, err.Error(), path)
			require.Contains(t, err.Error(), tt.wantErr)
			// The refused open gave up its daemon lock.
			f, err := acquireLock(path, 100*time.Millisecond)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
	// A read-only open of a file nobody initialised is refused clearly.
	path := filepath.Join(t.TempDir(), "empty.db")
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = Open(path, Options{ReadOnly: true})
	require.ErrorIs(t, err, ErrSchema)
}

func TestBackup(t *testing.T) {
	sc := scenario{seed: 21, accounts: 2, series: 5, polls: 400, step: 300_000, pChange: 0.2, pAbsent: 0.05}
	st, m, _ := runScenario(t, sc)
	_, err := st.Intent(quota.Action{Time: start, Move: quota.Move{ItemID: "c"}})
	require.NoError(t, err)

	var buf bytes.Buffer
	n, err := st.Backup(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)

	dir := t.TempDir()
	streamed := filepath.Join(dir, "streamed.db")
	require.NoError(t, os.WriteFile(streamed, buf.Bytes(), 0o600))
	copied := filepath.Join(dir, "copied.db")
	require.NoError(t, st.BackupFile(copied, BackupOptions{}))
	fi, err := os.Stat(copied)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	compacted := filepath.Join(dir, "compacted.db")
	require.NoError(t, st.Compact(compacted))
	require.Error(t, st.Compact(compacted), "never overwrites")

	// Writing goes on after the backup; the copies hold the state at backup time.
	require.NoError(t, st.Commit(&Batch{Time: start.Add(40 * 24 * time.Hour), Snapshots: []quota.Snapshot{{Account: "acct0", Time: start.Add(40 * 24 * time.Hour)}}}))

	for _, p := range []string{streamed, copied, compacted} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := Open(p, Options{ReadOnly: true})
			require.NoError(t, err)
			defer b.Close()
			checkAgainstModel(t, b, m, 5)
			as, err := b.Unfinished()
			require.NoError(t, err)
			require.Len(t, as, 1)
		})
	}
	err = st.BackupFile(filepath.Join(dir, "missing", "x.db"), BackupOptions{})
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrLocked))
}

// TestBackupWhileWriting holds a backup open on a slow reader while a
// cycle commits: the commit must not wait, and the copy must not see it.
func TestBackupWhileWriting(t *testing.T) {
	st, _ := openTemp(t)
	require.NoError(t, st.Commit(&Batch{Time: start, Projects: []quota.Project{{ID: "before"}}}))
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := st.Backup(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	head := make([]byte, 4096)
	_, err := io.ReadFull(pr, head) // the copy has begun and is blocked
	require.NoError(t, err)
	require.NoError(t, st.Commit(&Batch{Time: start, Projects: []quota.Project{{ID: "after"}}}))
	rest, err := io.ReadAll(pr)
	require.NoError(t, err)
	require.NoError(t, <-done)

	p := filepath.Join(t.TempDir(), "b.db")
	require.NoError(t, os.WriteFile(p, append(head, rest...), 0o600))
	b, err := Open(p, Options{ReadOnly: true})
	require.NoError(t, err)
	defer b.Close()
	ps, err := b.Projects()
	require.NoError(t, err)
	require.Contains(t, ps, "before")
	require.NotContains(t, ps, "after")
}

// TestConcurrentUse runs queries from several goroutines while cycles
// commit and the handle is released, for the race detector.
func TestConcurrentUse(t *testing.T) {
	st, _ := openTemp(t)
	k := quota.Key{Account: "a", Project: "p", Resource: "r"}
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if _, err := st.Series(k, start, start.Add(48*time.Hour)); err != nil {
					errs <- err
					return
				}
				if _, err := st.Latest(); err != nil {
					errs <- err
					return
				}
				if _, _, err := st.At(k, start.Add(time.Hour)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 400 {
		at := start.Add(time.Duration(i) * 10 * time.Minute)
		require.NoError(t, st.Commit(&Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "a", Time: at,
			Entries: []quota.Entry{{Project: "p", Resource: "r", Quota: quota.Quota{Usage: int64(i / 3)}}}}}}))
		if i%7 == 0 {
			require.NoError(t, st.Release())
		}
	}
	close(stop)
	for range 3 {
		require.NoError(t, <-errs)
	}
	got, err := st.Series(k, start, start.Add(100*time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 400)
	require.Equal(t, int64(133), got[399].Usage)
}

// TestReaderSeesLaterCycles: a read-only store released between uses
// reloads, so it sees what the daemon committed meanwhile.
func TestReaderSeesLaterCycles(t *testing.T) {
	st, path := openTemp(t)
	k := quota.Key{Account: "a", Project: "p", Resource: "r"}
	commit := func(i int) {
		at := start.Add(time.Duration(i) * 6 * time.Hour) // crosses day blocks
		require.NoError(t, st.Commit(&Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "a", Time: at,
			Entries: []quota.Entry{{Project: "p", Resource: "r", Quota: quota.Quota{Usage: int64(i)}}}}}}))
		require.NoError(t, st.Release())
	}
	commit(0)
	ro, err := Open(path, Options{ReadOnly: true, LockTimeout: time.Second})
	require.NoError(t, err)
	defer ro.Close()
	for i := 1; i <= 6; i++ {
		got, err := ro.Series(k, start, start.Add(10*24*time.Hour))
		require.NoError(t, err)
		require.Len(t, got, i)
		require.NoError(t, ro.Release())
		commit(i)
	}
	l, err := ro.Latest()
	require.NoError(t, err)
	require.Equal(t, int64(6), l[0].Sample.Usage)

	_, err = Open(filepath.Join(t.TempDir(), "missing.db"), Options{ReadOnly: true})
	require.Error(t, err)
	require.Contains(t, err.Error(), "missing.db")
}

func TestStats(t *testing.T) {
	st, _ := openTemp(t)
	s0, err := st.Stats()
	require.NoError(t, err)
	require.Zero(t, s0.Series)
	require.Zero(t, s0.LogBytes)
	at := start.Add(time.Hour)
	require.NoError(t, st.Commit(&Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "a", Time: at, Entries: []quota.Entry{
		{Project: "p", Resource: "r", Quota: quota.Quota{Usage: 1}}, {Project: "p", Resource: "s", Quota: quota.Quota{Usage: 2}}}}}}))
	s1, err := st.Stats()
	require.NoError(t, err)
	require.Equal(t, 2, s1.Series)
	require.Positive(t, s1.LogBytes)
	require.Positive(t, s1.FileBytes)
	at = at.Add(24 * time.Hour) // folds the log into chunks
	require.NoError(t, st.Commit(&Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "a", Time: at}}}))
	s2, err := st.Stats()
	require.NoError(t, err)
	require.Less(t, s2.LogBytes, s1.LogBytes)
}

// An action's outcome commits with the event that tells of it, or not at
// all.
func TestCommitActionWithItsEvent(t *testing.T) {
	st, _ := openTemp(t)
	t0 := start
	id, err := st.Intent(quota.Action{Time: t0, State: quota.ActionIntent, Move: quota.Move{Rule: "r", ItemID: "c1"}})
	require.NoError(t, err)
	ev := quota.Event{Kind: quota.EventAction, Time: t0, Result: quota.ResultApplied}
	require.NoError(t, st.Commit(&Batch{Time: t0, Actions: []ActionUpdate{{ID: id, State: quota.ActionApplied, Time: t0}},
		Outbox: []Outgoing{{Notifier: "ops", Event: ev}}}))
	acts, err := st.Actions(t0.Add(-time.Hour), t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, quota.ActionApplied, acts[0].State)
	due, err := st.Due("ops", t0)
	require.NoError(t, err)
	require.Len(t, due, 1)

	// A transition that is not allowed fails the whole batch: no message.
	err = st.Commit(&Batch{Time: t0, Actions: []ActionUpdate{{ID: id, State: quota.ActionIntent, Time: t0}},
		Outbox: []Outgoing{{Notifier: "ops", Event: ev}}})
	require.ErrorIs(t, err, ErrTransition)
	due, err = st.Due("ops", t0)
	require.NoError(t, err)
	require.Len(t, due, 1)
}

func TestOutboxOrphansAndPrune(t *testing.T) {
	st, _ := openTemp(t)
	ev := quota.Event{Kind: quota.EventPollFailed, Time: start}
	require.NoError(t, st.Commit(&Batch{Time: start, Outbox: []Outgoing{
		{Notifier: "ops", Event: ev}, {Notifier: "gone", Event: ev}, {Notifier: "gone", Event: ev},
	}}))
	n, err := st.SetAsideOrphans([]string{"ops"}, "notifier no longer configured")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	pending, dead, err := st.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	require.Equal(t, 2, dead)
	due, err := st.Due("ops", start)
	require.NoError(t, err)
	require.Len(t, due, 1)

	n, err = st.PruneDead(start)
	require.NoError(t, err)
	require.Zero(t, n, "enqueued at start, not before it")
	n, err = st.PruneDead(start.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	pending, dead, err = st.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	require.Zero(t, dead)
}
