package series

import (
	"errors"
	"os"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testStore does with an Engine what package store does, history only: one
// bbolt file opened with the store's options, the engine's bucket, the
// cache kept across release by a writer and reloaded by a reader, and
// dropped when a write fails.
type testStore struct {
	path   string
	ro     bool
	noSync bool
	db     *bbolt.DB
	e      *Engine
}

func openTest(path string, ro, noSync bool) (*testStore, error) {
	ts := &testStore{path: path, ro: ro, noSync: noSync}
	if err := ts.ensure(); err != nil {
		_ = ts.close()
		return nil, err
	}
	return ts, nil
}

func (ts *testStore) ensure() error {
	if ts.db == nil {
		mmap := int64(64 << 20)
		if fi, err := os.Stat(ts.path); err == nil {
			mmap = max(mmap, 2*fi.Size())
		}
		db, err := bbolt.Open(ts.path, 0o600, &bbolt.Options{ReadOnly: ts.ro, NoSync: ts.noSync, InitialMmapSize: int(mmap)})
		if err != nil {
			return err
		}
		db.AllocSize = 1 << 20
		ts.db = db
		var exists bool
		_ = db.View(func(tx *bbolt.Tx) error { exists = tx.Bucket(bHead) != nil; return nil })
		if ts.ro {
			ts.e = nil
		} else if !exists {
			if err := db.Update(Init); err != nil {
				return err
			}
		}
	}
	if ts.e == nil {
		return ts.db.View(func(tx *bbolt.Tx) error {
			var err error
			ts.e, err = Load(tx, nil)
			return err
		})
	}
	return nil
}

func (ts *testStore) view(fn func(tx *bbolt.Tx, e *Engine) error) error {
	if err := ts.ensure(); err != nil {
		return err
	}
	return ts.db.View(func(tx *bbolt.Tx) error { return fn(tx, ts.e) })
}

func (ts *testStore) update(fn func(tx *bbolt.Tx, e *Engine) error) error {
	if ts.ro {
		return errors.New("read-only")
	}
	if err := ts.ensure(); err != nil {
		return err
	}
	err := ts.db.Update(func(tx *bbolt.Tx) error { return fn(tx, ts.e) })
	if err != nil {
		ts.e = nil
	}
	return err
}

func (ts *testStore) commit(t time.Time, snaps ...quota.Snapshot) error {
	return ts.update(func(tx *bbolt.Tx, e *Engine) error { return e.Append(tx, snaps, t) })
}

func (ts *testStore) series(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	var out []quota.Sample
	err := ts.view(func(tx *bbolt.Tx, e *Engine) error {
		var err error
		out, err = e.Series(tx, k, from, to)
		return err
	})
	return out, err
}

func (ts *testStore) changes(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	var out []quota.Sample
	err := ts.view(func(tx *bbolt.Tx, e *Engine) error {
		var err error
		out, err = e.Changes(tx, k, from, to)
		return err
	})
	return out, err
}

func (ts *testStore) at(k quota.Key, t time.Time) (quota.Sample, bool, error) {
	var out quota.Sample
	var ok bool
	err := ts.view(func(tx *bbolt.Tx, e *Engine) error {
		var err error
		out, ok, err = e.At(tx, k, t)
		return err
	})
	return out, ok, err
}

// release closes the file between cycles, as the daemon does.
func (ts *testStore) release() error {
	if ts.db == nil {
		return nil
	}
	err := ts.db.Close()
	ts.db = nil
	if ts.ro {
		ts.e = nil
	}
	return err
}

func (ts *testStore) close() error {
	err := ts.release()
	ts.e = nil
	return err
}

// compact writes a fully packed copy to dst, as the store's Compact does.
func (ts *testStore) compact(dst string) error {
	out, err := bbolt.Open(dst, 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		return err
	}
	out.AllocSize = 1 << 20
	if err = ts.ensure(); err == nil {
		err = bbolt.Compact(out, ts.db, 64<<20)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
