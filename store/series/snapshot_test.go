package series

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// headState is what a head holds, by series and account id, for
// comparing two loads.
func headState(h *head) map[string]any {
	out := map[string]any{"block": h.block, "hasBlock": h.hasBlock}
	h.each(func(_ uint32, s *series) {
		out[fmt.Sprint("series ", s.id)] = fmt.Sprint(h.key(s), s.cur, s.seen, s.present(), s.open(), s.lastIdx, s.lastOff)
	})
	for _, a := range h.acctList {
		out["account "+a.name] = fmt.Sprint(a.id, a.last, a.polls, a.locs)
	}
	return out
}

// TestLoadFromSnapshotMatchesFullReplay loads the head from its snapshot
// and the log after it, then from the checkpoint and the whole log, at
// every poll of two days in which series change, vanish, come back and
// appear, and two accounts poll together and apart.
func TestLoadFromSnapshotMatchesFullReplay(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "h.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	every := 2 * time.Hour // 12 polls a day: snapshots within and across blocks
	snapshots := 0
	for i := range 40 {
		at := start.Add(time.Duration(i) * every)
		var es []quota.Entry
		for s := range 30 + i {
			if (s+i)%7 == 0 {
				continue // absent at this poll
			}
			v := int64(1000 * (s + 1))
			if (s*3+i)%4 == 0 {
				v += int64(i) * 10
			}
			es = append(es, quota.Entry{Project: fmt.Sprintf("p%d", s), Resource: "r", Quota: quota.Quota{Usage: v, Limit: 2 * v}})
		}
		snaps := []quota.Snapshot{{Account: "a", Time: at, Entries: es}}
		if i%3 != 0 {
			snaps = append(snaps, quota.Snapshot{Account: "b", Time: at.Add(time.Minute), Entries: es[:len(es)/2]})
		}
		require.NoError(t, ts.commit(at, snaps...))
		var fromSnap, full map[string]any
		require.EqualError(t, ts.db.Update(func(tx *bbolt.Tx) error {
			bk, err := open(tx, true)
			require.NoError(t, err)
			if bk.head().Get(kSnapshot) != nil {
				snapshots++
			}
			e, err := Load(tx, nil)
			require.NoError(t, err)
			fromSnap = headState(e.h)
			require.NoError(t, bk.head().Delete(kSnapshot))
			e, err = Load(tx, nil)
			require.NoError(t, err)
			full = headState(e.h)
			return fmt.Errorf("roll back") // keep the snapshot
		}), "roll back")
		require.Equal(t, full, fromSnap, "poll %d", i)
		require.Equal(t, headState(ts.e.h), full, "poll %d: the writer's cache", i)
	}
	require.Positive(t, snapshots, "some loads used a snapshot")
}
