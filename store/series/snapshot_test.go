package series

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// headState is what a head holds, by series and account id, for
// comparing two loads.
func headState(h *head) map[string]any {
	if err := h.restoreAll(); err != nil {
		panic(err)
	}
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
// churnPoll is poll i, at at, of a history that grows and churns: 30+i
// series of account a, every seventh absent in turn, a quarter changing,
// and half of them in account b, polled a minute later, at two polls of
// three.
func churnPoll(i int, at time.Time) []quota.Snapshot {
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
	return snaps
}

func TestLoadFromSnapshotMatchesFullReplay(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "h.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	every := 2 * time.Hour // 12 polls a day: snapshots within and across blocks
	snapshots := 0
	for i := range 40 {
		at := start.Add(time.Duration(i) * every)
		require.NoError(t, ts.commit(at, churnPoll(i, at)...))
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

// The snapshot's varint reader reads what binary.AppendUvarint and
// AppendVarint write, at every length and near the end of its input.
func TestVarintsReadAsBinary(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var b []byte
	var want []uint64
	for i := range 5000 {
		x := rng.Uint64() >> rng.IntN(64)
		if i%7 == 0 {
			x = uint64(i % 300)
		}
		want = append(want, x)
		b = binary.AppendUvarint(b, x)
		if i%3 == 0 {
			v := int64(x) - int64(rng.Uint64()>>1)
			want = append(want, uint64(v))
			b = binary.AppendVarint(b, v)
		}
	}
	r := &varints{b: b}
	i := 0
	for j := 0; i < len(want); j++ {
		require.Equal(t, want[i], r.uv(), "value %d", i)
		i++
		if j%3 == 0 && i < len(want) {
			require.Equal(t, int64(want[i]), r.sv(), "value %d", i)
			i++
		}
	}
	require.False(t, r.bad)
	require.Zero(t, r.rest())
	require.Zero(t, r.uv())
	require.True(t, r.bad, "reading past the end")
	for _, bad := range [][]byte{{0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		r := &varints{b: bad}
		require.Zero(t, r.uv())
		require.True(t, r.bad, "%x", bad)
	}
}

// A head loaded from a snapshot restores each series as it is queried: a
// series at a time, in any order, it answers as the head restored whole,
// at every poll of two days in which series change, vanish and come back.
func TestSeriesRestoredOneAtATime(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "h.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	every := 2 * time.Hour
	rng := rand.New(rand.NewPCG(13, 14))
	lazyLoads := 0
	for i := range 40 {
		at := start.Add(time.Duration(i) * every)
		require.NoError(t, ts.commit(at, churnPoll(i, at)...))
		require.NoError(t, ts.db.View(func(tx *bbolt.Tx) error {
			lazy, err := Load(tx, nil)
			require.NoError(t, err)
			if lazy.h.lazy != nil {
				lazyLoads++
			}
			whole, err := Load(tx, nil)
			require.NoError(t, err)
			require.NoError(t, whole.h.restoreAll())
			keys := whole.Keys()
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			from, to := start.Add(-time.Hour), at.Add(time.Hour)
			for n, k := range keys {
				q := time.Duration(rng.Int64N(int64(to.Sub(from))))
				e := []*Engine{lazy, whole}
				if n%2 == 1 {
					e = []*Engine{whole, lazy} // the whole one first, then the lazy one
				}
				var got [2][]any
				for j, e := range e {
					s, ok, err := e.At(tx, k, from.Add(q))
					require.NoError(t, err)
					series, err := e.Series(tx, k, from, to)
					require.NoError(t, err)
					changes, err := e.Changes(tx, k, from.Add(q), to)
					require.NoError(t, err)
					seen, sok, err := e.LastSeen(k)
					require.NoError(t, err)
					got[j] = []any{s, ok, series, changes, seen, sok}
				}
				require.Equal(t, got[0], got[1], "poll %d series %s", i, k)
			}
			l1, err := lazy.Latest()
			require.NoError(t, err)
			l2, err := whole.Latest()
			require.NoError(t, err)
			require.Equal(t, l2, l1, "poll %d", i)
			return nil
		}))
	}
	require.Positive(t, lazyLoads, "some loads kept the snapshot's series for later")
}

// Readers restore series at once, each in its own transaction, with the
// key index built meanwhile (run with -race).
func TestConcurrentRestores(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "h.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	for i := range 20 { // past a snapshot, and a few records after it
		at := start.Add(time.Duration(i) * time.Hour)
		var es []quota.Entry
		for s := range 200 {
			es = append(es, quota.Entry{Project: fmt.Sprintf("p%d", s), Resource: "r", Quota: quota.Quota{Usage: int64(s*i + 1), Limit: 1000}})
		}
		require.NoError(t, ts.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}))
	}
	var e *Engine
	require.NoError(t, ts.db.View(func(tx *bbolt.Tx) error { e, err = Load(tx, nil); return err }))
	require.NotNil(t, e.h.lazy)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ts.db.View(func(tx *bbolt.Tx) error {
				for j := range 60 {
					k := quota.Key{Account: "a", Project: fmt.Sprintf("p%d", (g*37+j*11)%200), Resource: "r"}
					got, err := e.Series(tx, k, start, start.Add(24*time.Hour))
					if err != nil || len(got) != 20 {
						t.Errorf("%s: %d samples, %v", k, len(got), err)
					}
				}
				if g == 0 {
					if _, err := e.Latest(); err != nil {
						t.Error(err)
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
}
