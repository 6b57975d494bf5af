package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// The writer's record, claim after claim on one file, each a process of
// its own (the store is opened afresh for every step).
func TestClaimWriter(t *testing.T) {
	const hostA, hostB = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	path := filepath.Join(t.TempDir(), "q.db")
	steps := []struct {
		name     string
		host     string
		takeover bool
		// refused: the claim fails with ErrOtherHost naming other.
		refused bool
		other   string
		// wantHost is the record after the step.
		wantHost string
	}{
		{name: "new store: the claim records", host: hostA, wantHost: hostA},
		{name: "same host: fine", host: hostA, wantHost: hostA},
		{name: "other host: refused", host: hostB, refused: true, other: hostA, wantHost: hostA},
		{name: "other host with takeover: recorded", host: hostB, takeover: true, wantHost: hostB},
		{name: "the old host then refused", host: hostA, refused: true, other: hostB, wantHost: hostB},
		{name: "takeover by the same host: fine", host: hostB, takeover: true, wantHost: hostB},
	}
	var lastClaim time.Time
	for i, step := range steps {
		now := start.Add(time.Duration(i+1) * time.Hour)
		st, err := Open(path, Options{NoSync: true, Now: func() time.Time { return now }})
		require.NoError(t, err, step.name)
		before, _, err := st.Writer()
		require.NoError(t, err, step.name)

		err = st.ClaimWriter(step.host, step.takeover)
		if step.refused {
			require.ErrorIs(t, err, ErrOtherHost, step.name)
			msg := err.Error()
			require.Contains(t, msg, "store "+path+" was last written by host "+step.other, step.name)
			require.Contains(t, msg, "at "+lastClaim.Format("2006-01-02 15:04:05 UTC")+" (1h0m0s ago)", step.name)
			require.Contains(t, msg, "not by this host ("+step.host+")", step.name)
			require.Contains(t, msg, "make sure the quotawatch there is stopped, then pass --takeover", step.name)
		} else {
			require.NoError(t, err, step.name)
			lastClaim = now
		}

		host, at, err := st.Writer()
		require.NoError(t, err, step.name)
		require.Equal(t, step.wantHost, host, step.name)
		require.True(t, lastClaim.Equal(at), "%s: recorded at %s, want %s", step.name, at, lastClaim)
		if step.refused {
			require.Equal(t, before, host, "%s: a refusal changes nothing", step.name)
		}
		require.NoError(t, st.Close(), step.name)
	}
}

// A store without a record (new, or from before the record existed) has
// no writer; read-only stores read the record and cannot claim.
func TestWriterWithoutRecord(t *testing.T) {
	st, path := openTemp(t)
	host, at, err := st.Writer()
	require.NoError(t, err)
	require.Empty(t, host)
	require.True(t, at.IsZero())
	require.Error(t, st.ClaimWriter("", false), "an empty host id is a caller's mistake")
	require.NoError(t, st.ClaimWriter("a", false))
	require.NoError(t, st.Close())

	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	host, at, err = ro.Writer()
	require.NoError(t, err)
	require.Equal(t, "a", host)
	require.True(t, start.Equal(at))
	require.ErrorIs(t, ro.ClaimWriter("b", true), ErrReadOnly)
}

// A backup carries the record: a store restored on another host is
// refused there until it is taken over once.
func TestBackupKeepsTheWriter(t *testing.T) {
	st, _ := openTemp(t)
	require.NoError(t, st.ClaimWriter("a", false))
	restored := filepath.Join(t.TempDir(), "restored.db")
	require.NoError(t, st.BackupFile(restored, BackupOptions{}))
	r, err := Open(restored, Options{NoSync: true})
	require.NoError(t, err)
	defer r.Close()
	require.ErrorIs(t, r.ClaimWriter("b", false), ErrOtherHost)
	require.NoError(t, r.ClaimWriter("b", true))
	require.NoError(t, r.ClaimWriter("b", false))
}

// An unreadable record is another host's as far as anyone can tell:
// refused, and replaced by a takeover.
func TestUnreadableWriter(t *testing.T) {
	st, path := openTemp(t)
	require.NoError(t, st.update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kWriter, []byte("{not json")) }))
	err := st.ClaimWriter("a", false)
	require.ErrorIs(t, err, ErrOtherHost)
	require.Contains(t, err.Error(), "store "+path+" has an unreadable record of its last writer (")
	require.Contains(t, err.Error(), "then pass --takeover")
	_, _, err = st.Writer()
	require.Error(t, err)
	require.NoError(t, st.ClaimWriter("a", true))
	host, _, err := st.Writer()
	require.NoError(t, err)
	require.Equal(t, "a", host)
}
