package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/storetest"
)

const pageSize = 4096 // v1.db's, and bbolt's on the machines the tests run on

// copyFixture copies testdata/v1.db to a new file and returns its path.
func copyFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "q.db")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// requireDamaged checks the error a damaged store gives: ErrDamaged, the
// file named, the remedy said.
func requireDamaged(t *testing.T, err error, path string) {
	t.Helper()
	require.ErrorIs(t, err, ErrDamaged)
	require.Contains(t, err.Error(), "store "+path+" is damaged (")
	require.Contains(t, err.Error(), "restore a backup")
	require.NotContains(t, err.Error(), "goroutine")
}

func TestDamagedStoreIsRefused(t *testing.T) {
	for _, d := range storetest.Damages() {
		t.Run(d.Name, func(t *testing.T) {
			path := copyFixture(t)
			d.Apply(t, path)
			before := snapshotFile(t, path)
			for _, ro := range []bool{false, true} {
				var err error
				require.NotPanics(t, func() {
					var st *Store
					st, err = Open(path, Options{ReadOnly: ro, LockTimeout: time.Second})
					if err == nil {
						st.Close()
					}
				})
				requireDamaged(t, err, path)
			}
			require.Equal(t, before, snapshotFile(t, path), "a damaged file is never replaced or changed")
		})
	}
}

// snapshotFile is what a file is: its contents, or "directory".
func snapshotFile(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	if fi.IsDir() {
		return "directory"
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// Damage while a writer runs: the next transaction fails with ErrDamaged,
// whether the file is open (a fault on the mapping) or reopened after a
// Release; and it keeps failing, the file untouched.
func TestDamageMidRun(t *testing.T) {
	commit := func(st *Store, n int) error {
		at := start.Add(time.Duration(n) * time.Minute)
		return st.Commit(&Batch{Time: at, Accounts: []quota.AccountState{{Account: "a", Failures: n}},
			Snapshots: []quota.Snapshot{{Account: "a", Time: at, Entries: []quota.Entry{{Project: "p", Resource: "r", Quota: quota.Quota{Usage: int64(n), Limit: 100}}}}}})
	}
	tests := []struct {
		name    string
		release bool
		damage  func(t *testing.T, path string)
	}{
		{"truncated under an open file", false, func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, pageSize)) }},
		{"truncated while released", true, func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 3*pageSize)) }},
		{"zeroed while released", true, func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, make([]byte, fi.Size()), 0o600))
		}},
		{"replaced while released", true, func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path+".new", b, 0o600))
			require.NoError(t, os.Rename(path+".new", path))
		}},
		{"removed while released", true, func(t *testing.T, path string) { require.NoError(t, os.Remove(path)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, path := openTemp(t)
			for n := range 20 {
				require.NoError(t, commit(st, n))
			}
			if tt.release {
				require.NoError(t, st.Release())
			} else {
				_, err := st.Accounts() // the file is open and mapped
				require.NoError(t, err)
			}
			tt.damage(t, path)
			var err error
			require.NotPanics(t, func() {
				if tt.release {
					err = commit(st, 21)
				} else {
					_, err = st.Projects()
				}
			})
			requireDamaged(t, err, path)
			require.NotPanics(t, func() { err = commit(st, 22) })
			requireDamaged(t, err, path)
			_, err = st.Accounts()
			requireDamaged(t, err, path)
			_, err = os.Stat(path + ".lock")
			require.NoError(t, err)
			require.NoError(t, st.Close())
		})
	}
}

// Where no file exists a writer creates the store, and a crash cannot
// leave an empty file behind: the file appears complete or not at all.
func TestCreateOnlyWhereNoFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	st, err := Open(path, Options{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"q.db", "q.db.lock"}, names, "no temporary file is left")
	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err, "the new store is complete, schema included")
	require.NoError(t, ro.Close())

	// A read-only open creates nothing.
	_, err = Open(filepath.Join(dir, "none.db"), Options{ReadOnly: true})
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrDamaged)
	_, err = os.Stat(filepath.Join(dir, "none.db"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
