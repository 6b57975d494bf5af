package store

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.db")

// fixtureBatches is a deterministic history of three days with churn.
func fixtureBatches() []*Batch {
	var bs []*Batch
	for i := range 3 * 24 * 4 {
		at := start.Add(time.Duration(i)*15*time.Minute + time.Duration(i%7)*time.Second)
		var es []quota.Entry
		for s := range 6 {
			if (i/10+s)%5 == 0 {
				continue
			}
			u := int64(s+1)*quota.GiB + int64(i/(s+2))*quota.MiB
			es = append(es, quota.Entry{Project: fmt.Sprintf("proj-%d", s%2), Resource: quota.KnownResources()[s],
				Quota: quota.Quota{Usage: u, Limit: 50 * quota.GiB, ProjectUsage: u + int64(s)*quota.GiB, ProjectLimit: 100 * quota.GiB, Pending: int64(i % 2)}})
		}
		bs = append(bs, &Batch{Time: at, Snapshots: []quota.Snapshot{{Account: "alice", Time: at, Entries: es}}})
	}
	return bs
}

// TestFixtureV1 reads a store written by schema version 1, so a later
// change to the layout cannot silently break existing files.
func TestFixtureV1(t *testing.T) {
	path := filepath.Join("testdata", "v1.db")
	key := quota.InstanceKey{Rule: "full", Account: "alice", Project: "proj-0", Resource: quota.DiskSpace}
	if *update {
		tmp := filepath.Join(t.TempDir(), "v1.db")
		st, err := Open(tmp, Options{NoSync: true})
		require.NoError(t, err)
		for _, b := range fixtureBatches() {
			require.NoError(t, st.Commit(b))
		}
		require.NoError(t, st.Commit(&Batch{Time: start, Instances: []quota.Instance{{Key: key, State: quota.StateFiring, Since: start}},
			Outbox: []Outgoing{{Notifier: "ops", Event: quota.Event{Kind: quota.EventFiring, Key: key}}}}))
		id, err := st.Intent(quota.Action{Time: start, Move: quota.Move{Kind: quota.KindContainer, ItemID: "c1", From: "proj-0", To: "proj-1"}})
		require.NoError(t, err)
		require.NoError(t, st.SetActionState(id, quota.ActionApplied, "", start))
		require.NoError(t, st.SetThread("ops", key, Thread{Channel: "C1", TS: "1.2"}))
		require.NoError(t, os.Remove(path))
		require.NoError(t, st.Compact(path))
		require.NoError(t, st.Close())
	}
	st, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer st.Close()
	m := &model{polls: map[string][]modelPoll{}}
	for _, b := range fixtureBatches() {
		m.add(b.Snapshots[0])
	}
	checkAgainstModel(t, st, m, 3)
	ins, err := st.Instances()
	require.NoError(t, err)
	require.Equal(t, []quota.Instance{{Key: key, State: quota.StateFiring, Since: start}}, ins)
	as, err := st.ActionsForItem(quota.KindContainer, "c1")
	require.NoError(t, err)
	require.Len(t, as, 1)
	require.Equal(t, quota.ActionApplied, as[0].State)
	due, err := st.Due("ops", start)
	require.NoError(t, err)
	require.Len(t, due, 1)
	th, ok, err := st.Thread("ops", key)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, Thread{Channel: "C1", TS: "1.2"}, th)
}
