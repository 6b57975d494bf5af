package series

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// FuzzReplay feeds arbitrary bytes to the log decoder as a record of the
// open block, which must fail cleanly rather than panic.
func FuzzReplay(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{1, 1, 0x80, 0x01, 1, 1, 0, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHead()
		h.addSeries(1, h.addAccount(1, "a"), "p", "r")
		_ = h.replay(1, data)
	})
}

// TestCorruptLogFailsCleanly damages each byte of an open-block log
// record in turn: opening the store and querying the open block may fail,
// but must not panic, and an intact copy answers.
func TestCorruptLogFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	st, err := openTest(path, false, true)
	require.NoError(t, err)
	for i := range 6 {
		at := start.Add(time.Duration(i) * time.Hour)
		var es []quota.Entry
		for s := range 4 {
			if (i+s)%3 != 0 {
				es = append(es, quota.Entry{Project: "p", Resource: fmt.Sprint(s), Quota: quota.Quota{Usage: int64(s*100 + i*i)}})
			}
		}
		require.NoError(t, st.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}))
	}
	keys := st.e.Keys()
	require.Len(t, keys, 4)
	require.NoError(t, st.close())
	orig, err := os.ReadFile(path)
	require.NoError(t, err)

	query := func(p string) error {
		ro, err := openTest(p, true, false)
		if err != nil {
			return err
		}
		defer ro.close()
		for _, k := range keys {
			if _, err := ro.series(k, start, start.Add(24*time.Hour)); err != nil {
				return err
			}
			if _, _, err := ro.at(k, start.Add(2*time.Hour)); err != nil {
				return err
			}
		}
		return nil
	}
	require.NoError(t, query(path))
	for _, tc := range []struct {
		name string
		edit func(b []byte, i int) byte
	}{
		{"zero", func([]byte, int) byte { return 0 }},
		{"max", func([]byte, int) byte { return 0xff }},
		{"flip", func(b []byte, i int) byte { return b[i] ^ 0x41 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; ; i++ {
				p := filepath.Join(dir, tc.name+".db")
				require.NoError(t, os.WriteFile(p, orig, 0o600))
				db, err := bbolt.Open(p, 0o600, nil)
				require.NoError(t, err)
				done := false
				require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
					b := tx.Bucket(bLog)
					k, v := b.Cursor().Last()
					if i >= len(v) {
						done = true
						return nil
					}
					v = slices.Clone(v)
					v[i] = tc.edit(v, i)
					return b.Put(slices.Clone(k), v)
				}))
				require.NoError(t, db.Close())
				if done {
					break
				}
				_ = query(p) // an error is fine; a panic fails the test
			}
		})
	}
}
