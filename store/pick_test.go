package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// A reader of named series loads only theirs, and reads for them what a
// reader of the whole history does; another series then loads the whole.
func TestPickKeysLoadsOnlyThose(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "q.db")
	w, err := Open(fresh, Options{NoSync: true})
	require.NoError(t, err)
	for _, b := range fixtureBatches() {
		require.NoError(t, w.Commit(b))
	}
	require.NoError(t, w.Close())
	for _, path := range []string{fresh, filepath.Join("testdata", "v1.db")} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			whole, err := Open(path, Options{ReadOnly: true})
			require.NoError(t, err)
			defer whole.Close()
			keys, err := whole.Keys()
			require.NoError(t, err)
			require.Greater(t, len(keys), 3)
			ro, err := Open(path, Options{ReadOnly: true})
			require.NoError(t, err)
			defer ro.Close()
			accounts, err := ro.HistoryAccounts()
			require.NoError(t, err)
			require.Equal(t, []string{"alice"}, accounts)
			missing := quota.Key{Account: "alice", Project: "proj-9", Resource: quota.DiskSpace}
			picked, err := ro.PickKeys([]quota.Key{keys[1], missing, keys[2]})
			require.NoError(t, err)
			require.Equal(t, []quota.Key{keys[1], keys[2]}, picked)
			require.Nil(t, ro.hist, "the whole history is not loaded")
			from, to := start.Add(-time.Hour), start.Add(4*24*time.Hour)
			read := func(st *Store, k quota.Key) []any {
				s, err := st.Series(k, from, to)
				require.NoError(t, err)
				c, err := st.Changes(k, from.Add(30*time.Hour), to)
				require.NoError(t, err)
				d, err := st.Downsample(k, from, to, 9)
				require.NoError(t, err)
				a, ok, err := st.At(k, from.Add(50*time.Hour))
				require.NoError(t, err)
				seen, sok, err := st.LastSeen(k)
				require.NoError(t, err)
				return []any{s, c, d, a, ok, seen, sok}
			}
			for _, k := range picked {
				require.NotEmpty(t, read(ro, k)[0])
				require.Equal(t, read(whole, k), read(ro, k), "%s", k)
			}
			require.Nil(t, ro.hist)
			require.Equal(t, read(whole, keys[0]), read(ro, keys[0]))
			require.NotNil(t, ro.hist, "a series not picked loads the whole history")
		})
	}
}

// A reader that lets the file go and opens it again reads what a writer
// recorded meanwhile, not the series it picked before.
func TestPickedSeriesReadAgainAfterRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	w, err := Open(path, Options{NoSync: true})
	require.NoError(t, err)
	defer w.Close()
	bs := fixtureBatches()
	for _, b := range bs[:10] {
		require.NoError(t, w.Commit(b))
	}
	require.NoError(t, w.Release())
	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	k := quota.Key{Account: "alice", Project: "proj-1", Resource: quota.KnownResources()[1]}
	picked, err := ro.PickKeys([]quota.Key{k})
	require.NoError(t, err)
	require.Equal(t, []quota.Key{k}, picked)
	from, to := start.Add(-time.Hour), start.Add(4*24*time.Hour)
	before, err := ro.Series(k, from, to)
	require.NoError(t, err)
	require.NotEmpty(t, before)
	require.NoError(t, ro.Release())

	for _, b := range bs[10:20] {
		require.NoError(t, w.Commit(b))
	}
	want, err := w.Series(k, from, to)
	require.NoError(t, err)
	require.NoError(t, w.Release())
	after, err := ro.Series(k, from, to)
	require.NoError(t, err)
	require.Greater(t, len(want), len(before))
	require.Equal(t, want, after)
}
