package store

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

const pageSize = 4096 // bbolt's on the machines the tests run on; v1.db has it

// Damage is one way a store file goes bad; it changes the file at path
// (a copy of testdata/v1.db) in place.
type Damage struct {
	Name  string
	Apply func(t *testing.T, path string)
}

// Damages are the kinds of damage every command must report, not panic or
// die on. The cmd tests use them too, through DamageFile.
func Damages() []Damage {
	overwrite := func(page int64, fill func([]byte)) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			defer f.Close()
			fi, err := f.Stat()
			require.NoError(t, err)
			if page < 0 {
				page += fi.Size() / pageSize / 2 // the middle
			}
			b := make([]byte, pageSize)
			fill(b)
			_, err = f.WriteAt(b, page*pageSize)
			require.NoError(t, err)
		}
	}
	zero := func([]byte) {}
	garbage := func(b []byte) {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	truncate := func(size func(int64) int64) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, size(fi.Size())))
		}
	}
	return []Damage{
		{"zero-length file", truncate(func(int64) int64 { return 0 })},
		{"truncated to half", truncate(func(n int64) int64 { return n / 2 })},
		{"cut inside the first meta page", truncate(func(int64) int64 { return 1000 })},
		{"cut inside the second meta page", truncate(func(int64) int64 { return pageSize + 1000 })},
		{"cut after the meta pages", truncate(func(int64) int64 { return 2 * pageSize })},
		{"zeroed page", overwrite(-1, zero)},
		{"garbage page in the middle", overwrite(-1, garbage)},
		{"garbage meta pages", func(t *testing.T, path string) {
			overwrite(0, garbage)(t, path)
			overwrite(1, garbage)(t, path)
		}},
		{"not a store at all", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("cloud:\n  auth_url: https://example.org\n"), 0o600))
		}},
		{"a directory", func(t *testing.T, path string) {
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.Mkdir(path, 0o700))
		}},
	}
}

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
	for _, d := range Damages() {
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
