package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

func TestSilences(t *testing.T) {
	st, path := openTemp(t)
	a, err := st.AddSilence(Silence{Rule: "full-*", Comment: "maintenance", Created: start, Ends: start.Add(2 * time.Hour)})
	require.NoError(t, err)
	require.Equal(t, uint64(1), a.ID)
	b, err := st.AddSilence(Silence{Project: "CS333", Comment: "course ends", Created: start, Ends: start.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, uint64(2), b.ID)
	require.True(t, a.Active(start))
	require.True(t, a.Active(start.Add(time.Hour)))
	require.False(t, a.Active(start.Add(2*time.Hour)), "ends exclusive")
	require.False(t, a.Active(start.Add(-time.Second)))

	got, err := st.ExpireSilence(1, start.Add(10*time.Minute))
	require.NoError(t, err)
	require.True(t, got.Expired)
	require.Equal(t, start.Add(10*time.Minute), got.Ends)
	_, err = st.ExpireSilence(9, start)
	require.ErrorIs(t, err, ErrNotFound)

	// They survive a restart, in id order.
	require.NoError(t, st.Close())
	st, err = Open(path, Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	all, err := st.Silences()
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "maintenance", all[0].Comment)
	require.True(t, all[0].Expired)
	require.Equal(t, "CS333", all[1].Project)

	n, err := st.PruneSilences(start.Add(30 * time.Minute))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	all, err = st.Silences()
	require.NoError(t, err)
	require.Len(t, all, 1)
	c, err := st.AddSilence(Silence{Rule: "x", Created: start, Ends: start.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, uint64(3), c.ID, "ids are never reused")
}

// TestSilencesOlderFile: a file written before silences existed has no
// bucket; it reads as empty and is given one at the first silence.
func TestSilencesOlderFile(t *testing.T) {
	st, path := openTemp(t)
	require.NoError(t, st.Close())
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bSilences) }))
	require.NoError(t, db.Close())

	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	all, err := ro.Silences()
	require.NoError(t, err)
	require.Empty(t, all)
	require.NoError(t, ro.Close())

	st, err = Open(path, Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	_, err = st.AddSilence(Silence{Rule: "r", Created: start, Ends: start.Add(time.Hour)})
	require.NoError(t, err)
	all, err = st.Silences()
	require.NoError(t, err)
	require.Len(t, all, 1)
}
