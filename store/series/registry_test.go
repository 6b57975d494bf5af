package series

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// registryEntries lists n series of one account: project p-<i/8>,
// resource r-<i%8>, with values from v.
func registryEntries(n int, v int64) []quota.Entry {
	es := make([]quota.Entry, n)
	for i := range es {
		es[i] = quota.Entry{Project: fmt.Sprintf("p-%05d", i/8), Resource: fmt.Sprintf("r-%d", i%8),
			Quota: quota.Quota{Usage: v + int64(i), Limit: 1 << 40}}
	}
	return es
}

// keysOf is every key the engine knows, with the id it has.
func keysOf(t *testing.T, st *testStore) map[quota.Key]uint32 {
	t.Helper()
	out := map[quota.Key]uint32{}
	require.NoError(t, st.view(func(_ *bbolt.Tx, e *Engine) error {
		e.h.each(func(_ uint32, s *series) { out[e.h.key(s)] = s.id })
		return nil
	}))
	return out
}

// countValues counts the values of a bucket.
func countValues(t *testing.T, st *testStore, name []byte) int {
	t.Helper()
	n := 0
	require.NoError(t, st.view(func(tx *bbolt.Tx, _ *Engine) error {
		if b := tx.Bucket(name); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	}))
	return n
}

func TestRegistryPacksSeriesByGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	st, err := openTest(path, false, true)
	require.NoError(t, err)
	defer st.close()
	// 1,500 series at the first poll span two groups; 600 more at the
	// second rewrite the second group and start a third.
	require.NoError(t, st.commit(start, quota.Snapshot{Account: "a", Time: start, Entries: registryEntries(1500, 0)}))
	require.Equal(t, 2, countValues(t, st, bRegistry))
	require.Equal(t, 0, countValues(t, st, bSeries), "no value per series")
	t1 := start.Add(time.Minute)
	require.NoError(t, st.commit(t1, quota.Snapshot{Account: "a", Time: t1, Entries: registryEntries(2100, 7)}))
	require.Equal(t, 3, countValues(t, st, bRegistry))
	want := keysOf(t, st)
	require.Len(t, want, 2100)

	require.NoError(t, st.close())
	ro, err := openTest(path, true, false)
	require.NoError(t, err)
	defer ro.close()
	require.Equal(t, want, keysOf(t, ro))
	k := quota.Key{Account: "a", Project: "p-00200", Resource: "r-3"} // the 1,604th: registered at the second poll
	got, err := ro.series(k, start, t1)
	require.NoError(t, err)
	require.Equal(t, []quota.Sample{{Time: t1, Quota: quota.Quota{Usage: 7 + 1603, Limit: 1 << 40}}}, got)
}

// legacify rewrites the packed registry as one value per series, as
// stores written before the registry keep it.
func legacify(t *testing.T, st *testStore) {
	t.Helper()
	require.NoError(t, st.update(func(tx *bbolt.Tx, _ *Engine) error {
		bk, err := open(tx, true)
		if err != nil {
			return err
		}
		c := newRegCursor(bk, nil)
		var ents []regEntry
		for {
			e, ok, err := c.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			e.project, e.resource = []byte(string(e.project)), []byte(string(e.resource))
			ents = append(ents, e)
		}
		for _, e := range ents {
			if err := bk.series().Put(u32(e.id), encodeSeriesValue(e.aid, string(e.project), string(e.resource))); err != nil {
				return err
			}
		}
		return tx.DeleteBucket(bRegistry)
	}))
	st.e = nil // reload
}

func TestRegistryReadsStoresWrittenBefore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	st, err := openTest(path, false, true)
	require.NoError(t, err)
	defer st.close()
	require.NoError(t, st.commit(start, quota.Snapshot{Account: "a", Time: start, Entries: registryEntries(1100, 0)}))
	want := keysOf(t, st)
	legacify(t, st)
	require.Equal(t, 1100, countValues(t, st, bSeries))

	// A store without the registry bucket reads, read-only too.
	require.NoError(t, st.release())
	ro, err := openTest(path, true, false)
	require.NoError(t, err)
	require.Equal(t, want, keysOf(t, ro))
	require.NoError(t, ro.close())

	// New series go to the registry, old ones stay where they are; the
	// group holding both old and new ids reads as one.
	t1 := start.Add(time.Minute)
	require.NoError(t, st.commit(t1, quota.Snapshot{Account: "a", Time: t1, Entries: registryEntries(1300, 0)}))
	require.Equal(t, 1100, countValues(t, st, bSeries))
	require.Equal(t, 1, countValues(t, st, bRegistry), "ids 1101-1300 share the second group with the old 1024-1100")
	want = keysOf(t, st)
	require.Len(t, want, 1300)
	st.e = nil
	require.Equal(t, want, keysOf(t, st))
	require.Equal(t, uint32(1100), st.e.h.legacyMax)

	// Retention forgets from both forms: the 1,300 series are absent
	// from a poll two days on, so they are last seen before its block.
	t2 := start.Add(48 * time.Hour)
	require.NoError(t, st.commit(t2, quota.Snapshot{Account: "a", Time: t2, Entries: registryEntries(1, 0)}))
	require.NoError(t, Retain(context.Background(), t2, 1000, st.update))
	got := keysOf(t, st)
	require.Equal(t, map[quota.Key]uint32{{Account: "a", Project: "p-00000", Resource: "r-0"}: 1}, got)
	require.Equal(t, 1, countValues(t, st, bSeries))
	require.Equal(t, 0, countValues(t, st, bRegistry))
	st.e = nil
	require.Equal(t, got, keysOf(t, st))
}

func TestCorruptRegistryFailsCleanly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	st, err := openTest(path, false, true)
	require.NoError(t, err)
	defer st.close()
	require.NoError(t, st.commit(start, quota.Snapshot{Account: "a", Time: start, Entries: registryEntries(20, 0)}))
	var good []byte
	require.NoError(t, st.view(func(tx *bbolt.Tx, _ *Engine) error {
		good = append([]byte(nil), tx.Bucket(bRegistry).Get(u32(0))...)
		return nil
	}))
	for _, tc := range []struct {
		name string
		v    func() []byte
		key  []byte
		want string
	}{
		{"version", func() []byte { v := append([]byte(nil), good...); v[0] = 9; return v }, u32(0), "registry group"},
		{"truncated", func() []byte { return good[:len(good)-2] }, u32(0), "registry group 0"},
		{"trailing bytes", func() []byte { return append(append([]byte(nil), good...), 1) }, u32(0), "bytes after its series"},
		{"name index", func() []byte { v := append([]byte(nil), good...); v[len(v)-1] = 100; return v }, u32(0), "registry group 0"},
		{"bad key", func() []byte { return good }, []byte{1, 2}, "registry group"},
		{"twice", func() []byte { return good }, u32(0), "registered twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, st.update(func(tx *bbolt.Tx, _ *Engine) error {
				b := tx.Bucket(bRegistry)
				if err := b.Delete(u32(0)); err != nil {
					return err
				}
				if tc.name == "twice" {
					if err := tx.Bucket(bSeries).Put(u32(5), encodeSeriesValue(1, "p-00000", "r-4")); err != nil {
						return err
					}
				}
				return b.Put(tc.key, tc.v())
			}))
			require.NoError(t, st.release())
			ro, err := openTest(path, true, false)
			if err == nil {
				_ = ro.close()
			}
			require.ErrorIs(t, err, errCorrupt)
			require.ErrorContains(t, err, tc.want)
			require.NoError(t, st.update(func(tx *bbolt.Tx, _ *Engine) error {
				if err := tx.Bucket(bSeries).Delete(u32(5)); err != nil {
					return err
				}
				if err := tx.Bucket(bRegistry).Delete(tc.key); err != nil {
					return err
				}
				return tx.Bucket(bRegistry).Put(u32(0), good)
			}))
		})
	}
}
