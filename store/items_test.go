package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

func TestListings(t *testing.T) {
	st, path := openTemp(t)
	big := quota.Item{Kind: quota.KindContainer, ID: "big", Name: "big", Owner: "u1", Project: "p1",
		Quantities: quota.Quantities{quota.DiskSpace: 10 * quota.GiB}}
	small := quota.Item{Kind: quota.KindContainer, ID: "small", Name: "small", Owner: "u1", Project: "p1",
		Quantities: quota.Quantities{quota.DiskSpace: quota.GiB}}
	at := func(h int) time.Time { return start.Add(time.Duration(h) * time.Hour) }
	rec := func(h int, items ...quota.Item) {
		t.Helper()
		require.NoError(t, st.RecordListings([]Listing{{Time: at(h), Account: "alice", Project: "p1", Kind: quota.KindContainer, Items: items}}, 48*time.Hour))
	}
	count := func() int {
		n := 0
		require.NoError(t, st.view(func(tx *bbolt.Tx) error { n = tx.Bucket(bItems).Stats().KeyN; return nil }))
		return n
	}
	rec(0, big, small)
	rec(1, big, small) // unchanged: not written again
	require.Equal(t, 1, count())
	big.Quantities = quota.Quantities{quota.DiskSpace: 11 * quota.GiB}
	rec(2, big, small)
	rec(3, big)
	require.Equal(t, 3, count())

	ls, err := st.Listings(at(1), at(10))
	require.NoError(t, err)
	require.Len(t, ls, 3, "the one in force at from, then the later ones")
	require.Equal(t, at(0), ls[0].Time)
	require.Len(t, ls[0].Items, 2)
	require.Equal(t, small, ls[0].Items[1])
	require.Equal(t, big, ls[1].Items[0])
	require.Equal(t, []quota.Item{big}, ls[2].Items)
	ls, err = st.Listings(at(2), at(2))
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, at(2), ls[0].Time)

	// Retention drops the expired ones but the one still in force.
	rec(60, big, small)
	require.Equal(t, 2, count())
	ls, err = st.Listings(at(0), at(100))
	require.NoError(t, err)
	require.Len(t, ls, 2)
	require.Equal(t, at(3), ls[0].Time)

	// A file from before listings were kept reads as none.
	require.NoError(t, st.update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bItems) }))
	require.NoError(t, st.Close())
	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	ls, err = ro.Listings(at(0), at(100))
	require.NoError(t, err)
	require.Empty(t, ls)
}
