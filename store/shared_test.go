package store

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

type recMirror struct {
	calls [][]Op
	seqs  []Sequences
	err   error
}

func (m *recMirror) Mirror(ops []Op, seq Sequences) error {
	if m.err != nil {
		return m.err
	}
	m.calls = append(m.calls, append([]Op(nil), ops...))
	m.seqs = append(m.seqs, seq)
	return nil
}

func TestMirrorSeesSharedChangesOnly(t *testing.T) {
	st, _ := openTemp(t)
	m := &recMirror{}
	st.SetMirror(m)

	// History and names alone are not shared: the mirror is not asked.
	require.NoError(t, st.Commit(&Batch{Time: start, Projects: []quota.Project{{ID: "p1", Name: "one"}}}))
	require.Empty(t, m.calls)

	in := quota.Instance{Key: ik("r1", "p1"), State: quota.StateFiring, Since: start}
	require.NoError(t, st.Commit(&Batch{Time: start, Instances: []quota.Instance{in},
		Outbox: []Outgoing{{Notifier: "slack", Event: quota.Event{Kind: quota.EventFiring, Key: in.Key}}}}))
	require.Len(t, m.calls, 1)
	buckets := map[string]int{}
	for _, op := range m.calls[0] {
		buckets[op.Bucket]++
		require.NotNil(t, op.Value)
	}
	require.Equal(t, map[string]int{"rule_instances": 1, "outbox": 1}, buckets)
	require.Equal(t, uint64(1), m.seqs[0].Outbox)

	id, err := st.Intent(quota.Action{Move: quota.Move{Rule: "r1", ItemID: "c1"}})
	require.NoError(t, err)
	require.Len(t, m.calls, 2)
	require.Equal(t, "actions", m.calls[1][0].Bucket)
	require.Equal(t, id, m.seqs[1].Actions)

	require.NoError(t, st.Delivered(1))
	require.Len(t, m.calls, 3)
	require.Nil(t, m.calls[2][0].Value, "a delivered message is a delete")
	// Deleting what is not there changes nothing and is not mirrored.
	require.NoError(t, st.Delivered(1))
	require.Len(t, m.calls, 3)
}

func TestMirrorRefusalRollsBack(t *testing.T) {
	st, _ := openTemp(t)
	refused := errors.New("not the leader")
	st.SetMirror(&recMirror{err: refused})
	_, err := st.Intent(quota.Action{Move: quota.Move{Rule: "r1", ItemID: "c1"}})
	require.ErrorIs(t, err, refused)
	st.SetMirror(nil)
	acts, err := st.Unfinished()
	require.NoError(t, err)
	require.Empty(t, acts, "a refused intent is not journaled")
	// The id was not used either.
	id, err := st.Intent(quota.Action{Move: quota.Move{Rule: "r1", ItemID: "c1"}})
	require.NoError(t, err)
	require.Equal(t, uint64(1), id)
}

func TestApplyShared(t *testing.T) {
	src, _ := openTemp(t)
	in1 := quota.Instance{Key: ik("r1", "p1"), State: quota.StateFiring, Since: start}
	in2 := quota.Instance{Key: ik("r1", "p2"), State: quota.StatePending, Since: start}
	require.NoError(t, src.Commit(&Batch{Time: start, Instances: []quota.Instance{in1, in2},
		Outbox: []Outgoing{{Notifier: "slack", Event: quota.Event{Kind: quota.EventFiring, Key: in1.Key}}}}))
	id, err := src.Intent(quota.Action{Move: quota.Move{Rule: "r1", ItemID: "c1"}})
	require.NoError(t, err)
	full, err := src.SharedState()
	require.NoError(t, err)

	dst, _ := openTemp(t)
	// dst has an instance src does not, and an old journal entry of its own.
	stale := quota.Instance{Key: ik("r9", "p9"), State: quota.StateFiring, Since: start}
	require.NoError(t, dst.Commit(&Batch{Time: start, Instances: []quota.Instance{stale}}))
	var ups []SharedUpdate
	for _, b := range SharedBuckets() {
		ups = append(ups, SharedUpdate{Bucket: b, Entries: full.Buckets[b]})
	}
	require.NoError(t, dst.ApplyShared(ups, full.Seq))

	got, err := dst.Instances()
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, in1.Key, got[0].Key)
	open, err := dst.Unfinished()
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, id, open[0].ID)
	pending, _, err := dst.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	// Ids go on from the shared counters.
	next, err := dst.Intent(quota.Action{Move: quota.Move{Rule: "r1", ItemID: "c2"}})
	require.NoError(t, err)
	require.Equal(t, id+1, next)

	// A scoped update touches only its keys; the journal is never pruned.
	require.NoError(t, dst.ApplyShared([]SharedUpdate{
		{Bucket: "rule_instances", Scope: func(k []byte) bool { return string(k) == string(instanceKey(in2.Key)) }},
		{Bucket: "actions", Entries: map[string][]byte{}},
	}, Sequences{}))
	got, err = dst.Instances()
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, in1.Key, got[0].Key)
	open, err = dst.Unfinished()
	require.NoError(t, err)
	require.Len(t, open, 2)

	require.ErrorIs(t, dst.ApplyShared([]SharedUpdate{{Bucket: "projects"}}, Sequences{}), ErrNotShared)
}
