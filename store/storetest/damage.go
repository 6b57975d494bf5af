// Package storetest damages store files in the ways tests of every command
// must survive: each kind is reported as a damaged store, never a panic, a
// fault or a fresh empty store.
package storetest

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// Damage is one way a store file goes bad.
type Damage struct {
	Name string
	// Apply damages the store at path in place; no process may have it
	// open.
	Apply func(t *testing.T, path string)
}

// Damages are the kinds of damage.
func Damages() []Damage {
	// size is given the bytes in use (the file may be longer) and the page size.
	truncate := func(size func(used int64, page int) int64) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			t.Helper()
			used, ps := usedSize(t, path)
			require.NoError(t, os.Truncate(path, size(used, ps)))
		}
	}
	overwrite := func(fill func([]byte)) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			t.Helper()
			id, size := middlePage(t, path)
			writePage(t, path, id, size, fill)
		}
	}
	zero := func([]byte) {}
	return []Damage{
		{"zero-length file", truncate(func(int64, int) int64 { return 0 })},
		{"truncated to half its pages", truncate(func(n int64, _ int) int64 { return n / 2 })},
		{"cut inside the first meta page", truncate(func(_ int64, ps int) int64 { return int64(ps) / 4 })},
		{"cut inside the second meta page", truncate(func(_ int64, ps int) int64 { return int64(ps) + int64(ps)/4 })},
		{"cut after the meta pages", truncate(func(_ int64, ps int) int64 { return 2 * int64(ps) })},
		{"zeroed page", overwrite(zero)},
		{"garbage page in the middle", overwrite(garbage)},
		{"garbage meta pages", func(t *testing.T, path string) {
			ps := pageSize(t, path)
			writePage(t, path, 0, ps, garbage)
			writePage(t, path, 1, ps, garbage)
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

func garbage(b []byte) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func writePage(t *testing.T, path string, id, size int, fill func([]byte)) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, size)
	fill(b)
	_, err = f.WriteAt(b, int64(id)*int64(size))
	require.NoError(t, err)
}

func pageSize(t *testing.T, path string) int {
	t.Helper()
	_, ps := usedSize(t, path)
	return ps
}

// usedSize is how much of the file its pages use, and the page size.
func usedSize(t *testing.T, path string) (int64, int) {
	t.Helper()
	db, err := bbolt.Open(path, 0, &bbolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var used int64
	require.NoError(t, db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil }))
	return used, db.Info().PageSize
}

// middlePage is the page in use (a branch or leaf page, reachable) nearest
// the middle of the used pages, from there on first, and the page size.
func middlePage(t *testing.T, path string) (id, size int) {
	t.Helper()
	db, err := bbolt.Open(path, 0, &bbolt.Options{ReadOnly: true, PreLoadFreelist: true})
	require.NoError(t, err)
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		n := int(tx.Size()) / db.Info().PageSize
		for j := range n {
			// From the middle on, then back from it.
			i := n/2 + j
			if i >= n {
				i = n - 1 - j
			}
			p, err := tx.Page(i)
			if err != nil {
				return err
			}
			if p != nil && (p.Type == "leaf" || p.Type == "branch") {
				id = i
				return nil
			}
		}
		t.Fatalf("%s: no branch or leaf page", path)
		return nil
	})
	require.NoError(t, err)
	return id, db.Info().PageSize
}
