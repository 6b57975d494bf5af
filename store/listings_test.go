package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

func TestProjectsListed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := Open(path, Options{NoSync: true})
	require.NoError(t, err)
	_, ok, err := st.ProjectsListed("a")
	require.NoError(t, err)
	require.False(t, ok, "never listed")
	at := time.Date(2026, 3, 1, 10, 0, 0, 123, time.FixedZone("x", 3600))
	ms := map[string]string{"p1": "accepted", "p2": "leave_requested"}
	require.NoError(t, st.SetProjectsListed("a", ProjectListing{Time: at, Memberships: ms}))
	require.NoError(t, st.Close())

	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	got, ok, err := ro.ProjectsListed("a")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, got.Time.Equal(at), "%s", got.Time)
	require.Equal(t, ms, got.Memberships, "the memberships come back with the time")
	_, ok, err = ro.ProjectsListed("b")
	require.NoError(t, err)
	require.False(t, ok, "another account")
	require.ErrorIs(t, ro.SetProjectsListed("a", ProjectListing{Time: at}), ErrReadOnly)
	require.NoError(t, ro.Close())
}

func TestProjectsListedOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := Open(path, Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, st.update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bListings) }))
	_, ok, err := st.ProjectsListed("a")
	require.NoError(t, err)
	require.False(t, ok)
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, st.SetProjectsListed("a", ProjectListing{Time: at}), "the bucket is created on first use")
	got, ok, err := st.ProjectsListed("a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ProjectListing{Time: at}, got)
	require.NoError(t, st.Close())
}
