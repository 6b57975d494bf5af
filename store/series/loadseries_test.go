package series

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// An engine of a few series answers for them what the whole one does, at
// every poll: from a head snapshot or a checkpoint, with series absent,
// in the open block and sealed ones, in a later transaction too.
func TestLoadSeriesAnswersAsLoad(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "h.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	every := 2 * time.Hour
	rng := rand.New(rand.NewPCG(21, 22))
	snapshots := 0
	for i := range 40 {
		at := start.Add(time.Duration(i) * every)
		require.NoError(t, ts.commit(at, churnPoll(i, at)...))
		from, to := start.Add(-time.Hour), at.Add(time.Hour)
		type pick struct {
			keys  []quota.Key
			parts *Engine
		}
		var whole *Engine
		var picks []pick
		require.NoError(t, ts.db.View(func(tx *bbolt.Tx) error {
			if tx.Bucket(bHead).Get(kSnapshot) != nil {
				snapshots++
			}
			whole, err = Load(tx, nil)
			require.NoError(t, err)
			keys := whole.Keys()
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			missing := quota.Key{Account: "a", Project: "p-none", Resource: "r"}
			for _, ks := range [][]quota.Key{keys[:1], keys[1:3], {keys[3], missing}} {
				e, err := LoadSeries(tx, ks...)
				require.NoError(t, err)
				picks = append(picks, pick{ks, e})
			}
			return nil
		}))
		// Asked in a transaction of their own, after the one that loaded.
		require.NoError(t, ts.db.View(func(tx *bbolt.Tx) error {
			for _, p := range picks {
				var known []quota.Key
				for _, k := range p.keys {
					if _, ok, _ := whole.LastSeen(k); ok {
						known = append(known, k)
					}
				}
				require.ElementsMatch(t, known, p.parts.Keys(), "poll %d", i)
				for _, k := range p.keys {
					q := from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)))))
					var got [2][]any
					for j, e := range []*Engine{whole, p.parts} {
						s, ok, err := e.At(tx, k, q)
						require.NoError(t, err)
						series, err := e.Series(tx, k, from, to)
						require.NoError(t, err)
						changes, err := e.Changes(tx, k, q, to)
						require.NoError(t, err)
						down, err := e.Downsample(tx, k, from, to, 7)
						require.NoError(t, err)
						seen, sok, err := e.LastSeen(k)
						require.NoError(t, err)
						got[j] = []any{s, ok, series, changes, down, seen, sok}
					}
					require.Equal(t, got[0], got[1], "poll %d series %s", i, k)
				}
			}
			return nil
		}))
	}
	require.Positive(t, snapshots, "some loads used a snapshot")
}

func TestLoadSeriesDoesNotWrite(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "h.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	es := registryEntries(3, 5)
	require.NoError(t, ts.commit(start, quota.Snapshot{Account: "a", Time: start, Entries: es}))
	k := quota.Key{Account: "a", Project: es[1].Project, Resource: es[1].Resource}
	require.NoError(t, ts.db.Update(func(tx *bbolt.Tx) error {
		e, err := LoadSeries(tx, k)
		require.NoError(t, err)
		require.Equal(t, []quota.Key{k}, e.Keys())
		at := start.Add(time.Minute)
		require.ErrorIs(t, e.Append(tx, []quota.Snapshot{{Account: "a", Time: at, Entries: es}}, at), errPartial)
		return nil
	}))
	st := &testStore{path: ts.path, db: ts.db}
	require.NoError(t, st.db.View(func(tx *bbolt.Tx) error {
		st.e, err = LoadSeries(tx, k)
		return err
	}))
	require.ErrorIs(t, Retain(t.Context(), start.Add(72*time.Hour), 100, st.update), errPartial)
}

// Groups of the registry that name none of the series asked for are
// skipped; those that do give their series, and only them.
func TestLoadSeriesAcrossGroups(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "h.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	es := registryEntries(3000, 5)
	require.NoError(t, ts.commit(start, quota.Snapshot{Account: "a", Time: start, Entries: es}))
	legacify(t, ts) // the first 3,000 one value per series
	at := start.Add(time.Minute)
	require.NoError(t, ts.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: registryEntries(4500, 5)}))
	key := func(i int) quota.Key {
		return quota.Key{Account: "a", Project: fmt.Sprintf("p-%05d", i/8), Resource: fmt.Sprintf("r-%d", i%8)}
	}
	for _, picks := range [][]int{{0}, {2999}, {3000}, {4499}, {10, 3500, 4100}} {
		var keys []quota.Key
		for _, i := range picks {
			keys = append(keys, key(i))
		}
		// Same project, other resource; same resource, other project.
		keys = append(keys, quota.Key{Account: "a", Project: key(picks[0]).Project, Resource: "r-none"},
			quota.Key{Account: "a", Project: "p-none", Resource: key(picks[0]).Resource}, quota.Key{Account: "b", Project: key(picks[0]).Project, Resource: key(picks[0]).Resource})
		require.NoError(t, ts.db.View(func(tx *bbolt.Tx) error {
			e, err := LoadSeries(tx, keys...)
			require.NoError(t, err)
			require.ElementsMatch(t, keys[:len(picks)], e.Keys(), "%v", picks)
			for _, i := range picks {
				got, err := e.Series(tx, key(i), start, at)
				require.NoError(t, err)
				want, err := ts.e.Series(tx, key(i), start, at)
				require.NoError(t, err)
				require.NotEmpty(t, want)
				require.Equal(t, want, got, "series %d", i)
			}
			return nil
		}))
	}
}
