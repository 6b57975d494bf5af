package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series"
)

// SchemaVersion is the on-disk layout version this package writes.
// Version 2 adds the packed series registry and the week packs, which a
// reader of version 1 would not see: it reads its history, and a writer
// marks it 2 as it opens it, so that an older quotawatch refuses it
// rather than misread it.
const SchemaVersion = 2

// upgradable is the oldest version a writer marks SchemaVersion as it
// opens it, and a reader reads: their layouts differ only in buckets
// made on first use.
const upgradable = 1

// Bucket names.
var (
	bMeta      = []byte("meta")
	bProjects  = []byte("projects")
	bInstances = []byte("rule_instances")
	bAccounts  = []byte("rule_accounts")
	bActions   = []byte("actions")
	bOutbox    = []byte("outbox")
	bThreads   = []byte("threads")
	bSilences  = []byte("silences") // id -> Silence; created on first use in older files

	// The history's buckets are package series's, named history_*.
	allBuckets = [][]byte{bMeta, bProjects, bInstances, bAccounts, bActions, bOutbox, bThreads, bSilences, bListings, bItems}

	kSchema = []byte("schema")
)

// Errors callers may test with errors.Is.
var (
	// ErrLocked: another process holds the store (a second daemon, or a
	// cycle in progress for a read-only open) beyond the lock timeout.
	ErrLocked = errors.New("store is locked")
	// ErrSchema: the file was written by a newer quotawatch.
	ErrSchema = errors.New("unsupported store schema")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrReadOnly: a write on a store opened read-only.
	ErrReadOnly = errors.New("store is read-only")
	// ErrNotFound: no journal entry or outbox message with that id.
	ErrNotFound = errors.New("not found")
	// ErrTransition: an action state change the lifecycle does not allow.
	ErrTransition = errors.New("invalid action state transition")
)

// lockedError carries a message naming the file, and matches ErrLocked.
type lockedError struct{ msg string }

func (e *lockedError) Error() string        { return e.msg }
func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// Options configure Open.
type Options struct {
	// LockTimeout bounds every wait for a lock (daemon lock, bbolt file
	// lock). Default 5s.
	LockTimeout time.Duration
	// ReadOnly opens for queries only; it takes no daemon lock and waits
	// for a running cycle to release the file.
	ReadOnly bool
	// NoSync skips fsync on commit: for bulk loads and benchmarks only.
	NoSync bool
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives warnings; default discards.
	Logger *slog.Logger
}

// Store is quotawatch's persistent state. Its methods are safe for
// concurrent use.
type Store struct {
	path string
	opt  Options
	log  *slog.Logger
	now  func() time.Time

	mu     sync.RWMutex
	db     *bbolt.DB
	lock   *os.File       // the lock file's flock, held by a writer for the Store's life
	held   *os.File       // the store file, locked by a writer for the Store's life
	heldFi fs.FileInfo    // what held is, to check every reopen against
	hist   *series.Engine // history and its cache; nil until loaded
	// part is the history of the series picked (PickKeys), in a read-only
	// store that has not loaded every series' cache.
	part     *series.Engine
	partKeys map[quota.Key]bool
	inited   bool
	// upgradeFrom is the older schema version Open marks SchemaVersion
	// once it has read the file; 0: none.
	upgradeFrom int
	closed      bool
	broken      error // ErrDamaged, once seen: the file is not opened again
	// mirror is told every change to the shared state; ops collects them
	// during a write transaction.
	mirror Mirror
	ops    []Op
}

// Open opens the store at path; a writer creates it where no file exists.
// A writer takes the writer's lock (see lock.go); a second writer gets an
// error naming the file within LockTimeout. A new file's schema is
// created; a newer schema is refused. A file that cannot be read as a
// store, an empty one included, is refused with ErrDamaged, never
// replaced.
func Open(path string, opt Options) (*Store, error) {
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{path: path, opt: opt, log: opt.Logger, now: opt.Now}
	if !opt.ReadOnly {
		if err := s.hold(); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	s.mu.Lock()
	err := s.ensure()
	if err == nil {
		// Every page is read once here, so damage shows at once, as one
		// clear error, not in the middle of a cycle or of a listing.
		err = s.verify()
	}
	if err == nil && s.upgradeFrom != 0 {
		err = s.markSchema()
	}
	s.mu.Unlock()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// hold takes the writer's locks, creating the store first where no file
// exists.
func (s *Store) hold() error {
	f, err := acquireLock(s.path, s.opt.LockTimeout)
	if err != nil {
		return err
	}
	s.lock = f
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.create(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("store %s: %w", s.path, err)
	default:
		if err := checkInfo(s.path, fi); err != nil {
			return err
		}
	}
	s.held, s.heldFi, err = holdStore(s.path, s.opt.LockTimeout)
	return err
}

// create writes a new store with its schema beside path and links it into
// place, so no crash leaves an empty or half-made file at path, and a
// store another process created meanwhile is never replaced.
func (s *Store) create() (err error) {
	dir, base := filepath.Split(s.path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".new*")
	if err != nil {
		return fmt.Errorf("store %s: create: %w", s.path, err)
	}
	tmp := f.Name()
	_ = f.Close()
	defer os.Remove(tmp)
	db, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: s.opt.LockTimeout, NoSync: s.opt.NoSync})
	if err != nil {
		return fmt.Errorf("store %s: create: %w", s.path, err)
	}
	err = db.Update(createSchema)
	if err == nil && s.opt.NoSync {
		err = db.Sync()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store %s: create schema: %w", s.path, err)
	}
	if err := os.Link(tmp, s.path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process created it first: use theirs
		}
		return fmt.Errorf("store %s: create: %w", s.path, err)
	}
	if !s.opt.NoSync {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("store %s: create: %w", s.path, err)
		}
	}
	// Debug: plan creates a scratch store each time, and run says its store at start-up.
	s.log.Debug("store created", "path", s.path, "schema", SchemaVersion)
	s.inited = true
	return nil
}

// syncDir makes a new name in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ensure opens the bbolt handle if needed and loads the history cache.
// s.mu must be held for writing.
func (s *Store) ensure() error {
	if s.closed {
		return ErrClosed
	}
	if s.broken != nil {
		return s.broken
	}
	err := s.open()
	if errors.Is(err, ErrDamaged) {
		s.fail(err)
	}
	return err
}

func (s *Store) open() error {
	if s.db == nil {
		// Map twice the file up front: a commit that must grow the mapping
		// waits for every open read transaction, such as a long backup.
		mmap := int64(64 << 20)
		if fi, err := os.Stat(s.path); err == nil {
			mmap = max(mmap, 2*fi.Size())
		}
		opts := &bbolt.Options{
			Timeout:         s.opt.LockTimeout,
			ReadOnly:        s.opt.ReadOnly,
			NoSync:          s.opt.NoSync,
			InitialMmapSize: int(min(mmap, 1<<40)),
			// bbolt would create a missing file and initialise an empty one;
			// a writer reopening between cycles must find the inode it locked.
			OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
				f, fi, err := openStoreFile(name, flag, mode)
				if errors.Is(err, fs.ErrNotExist) && s.heldFi != nil {
					err = damaged(s.path, "the file was removed while this quotawatch held it")
				}
				if err != nil {
					return nil, err
				}
				if s.heldFi != nil && !os.SameFile(fi, s.heldFi) {
					_ = f.Close()
					return nil, damaged(s.path, "the file was removed or replaced while this quotawatch held it")
				}
				return f, nil
			},
		}
		var db *bbolt.DB
		err := guard(s.path, func() error {
			var err error
			db, err = bbolt.Open(s.path, 0o600, opts)
			return err
		})
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				if s.opt.ReadOnly {
					return &lockedError{fmt.Sprintf("store %s is locked by a running quotawatch cycle (waited %s)", s.path, s.opt.LockTimeout)}
				}
				return &lockedError{fmt.Sprintf("store %s is held by a reader such as a backup or status command (waited %s)", s.path, s.opt.LockTimeout)}
			}
			if derr := openError(s.path, err); derr != nil {
				return derr
			}
			var pe *fs.PathError
			if errors.As(err, &pe) && pe.Path == s.path {
				err = pe.Err // the message names the file already
			}
			return fmt.Errorf("store %s: open: %w", s.path, err)
		}
		// Grow the file in small steps: the default 16 MiB steps would
		// leave most of a small store's file empty.
		db.AllocSize = 1 << 20
		s.db = db
		if s.opt.ReadOnly {
			s.hist, s.part, s.partKeys = nil, nil, nil // another process may have written since
		}
		if err := s.initSchema(); err != nil {
			if !errors.Is(err, ErrDamaged) { // else ensure abandons the handle
				_ = s.closeDB()
			}
			return err
		}
	}
	// A reader loads the history when it first reads it: reading a
	// project listing or one series' history needs none of the cache.
	if s.hist == nil && !s.opt.ReadOnly {
		return s.loadHistory()
	}
	return nil
}

// loadHistory loads the history cache. s.mu must be held for writing.
func (s *Store) loadHistory() error {
	if err := guard(s.path, func() error {
		return s.db.View(func(tx *bbolt.Tx) error {
			var err error
			s.hist, err = series.Load(tx, s.log)
			return err
		})
	}); err != nil {
		s.hist = nil
		if errors.Is(err, ErrDamaged) {
			return err
		}
		return fmt.Errorf("store %s: load history: %w", s.path, err)
	}
	return nil
}

// ensureHistory is ensure with the history cache loaded.
func (s *Store) ensureHistory() error {
	if err := s.ensure(); err != nil || s.hist != nil {
		return err
	}
	err := s.loadHistory()
	if errors.Is(err, ErrDamaged) {
		s.fail(err)
	}
	return err
}

// abandonAfter is how long fail waits for bbolt to close a damaged file.
const abandonAfter = time.Second

// fail remembers that the file is damaged and lets go of it: every later
// call returns err. s.mu must be held for writing.
func (s *Store) fail(err error) {
	if s.broken == nil {
		s.broken = err
		s.log.Error("store is damaged", "path", s.path, "err", err)
	}
	// A panic inside bbolt may leave its locks taken, so DB.Close may
	// never return: it gets a moment, then the handle is abandoned (the
	// process is about to stop on this error). Until the mapping goes,
	// bbolt's flock on the file stays, so other commands wait for it.
	if s.db != nil {
		done := make(chan struct{})
		go func(db *bbolt.DB) {
			defer close(done)
			_ = guard(s.path, db.Close)
		}(s.db)
		select {
		case <-done:
		case <-time.After(abandonAfter):
			s.log.Warn("the damaged store's handle did not close; leaving it", "path", s.path)
		}
		s.db = nil
	}
	s.hist = nil
}

func readSchema(tx *bbolt.Tx) int {
	m := tx.Bucket(bMeta)
	if m == nil {
		return 0
	}
	v := m.Get(kSchema)
	if len(v) != 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(v))
}

// markSchema records SchemaVersion in a file of an older version it
// reads as it is. s.mu must be held for writing.
func (s *Store) markSchema() error {
	if err := guard(s.path, func() error {
		return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, u32(SchemaVersion)) })
	}); err != nil {
		if errors.Is(err, ErrDamaged) {
			s.fail(err)
			return err
		}
		return fmt.Errorf("store %s: mark schema version %d: %w", s.path, SchemaVersion, err)
	}
	s.log.Info("store upgraded", "path", s.path, "from", s.upgradeFrom, "schema", SchemaVersion)
	s.upgradeFrom = 0
	return nil
}

func (s *Store) initSchema() error {
	var ver int
	if err := guard(s.path, func() error {
		return s.db.View(func(tx *bbolt.Tx) error { ver = readSchema(tx); return nil })
	}); err != nil {
		if errors.Is(err, ErrDamaged) {
			return err
		}
		return fmt.Errorf("store %s: read schema: %w", s.path, err)
	}
	if ver > SchemaVersion {
		return fmt.Errorf("store %s has schema version %d, newer than the %d this quotawatch understands; upgrade quotawatch: %w",
			s.path, ver, SchemaVersion, ErrSchema)
	}
	if ver == SchemaVersion || s.inited {
		s.inited = true
		return nil
	}
	if ver >= upgradable {
		// Read as it is; a writer marks it once Open has read every page,
		// so a damaged file is never written to.
		if !s.opt.ReadOnly {
			s.upgradeFrom = ver
		}
		s.inited = true
		return nil
	}
	if ver != 0 {
		return fmt.Errorf("store %s has schema version %d, older than the %d this quotawatch writes, and no migration exists: %w",
			s.path, ver, SchemaVersion, ErrSchema)
	}
	if s.opt.ReadOnly {
		return fmt.Errorf("store %s is not initialised (no quotawatch run has written it yet): %w", s.path, ErrSchema)
	}
	if err := guard(s.path, func() error { return s.db.Update(createSchema) }); err != nil {
		if errors.Is(err, ErrDamaged) {
			return err
		}
		return fmt.Errorf("store %s: create schema: %w", s.path, err)
	}
	s.log.Debug("store created", "path", s.path, "schema", SchemaVersion)
	s.inited = true
	return nil
}

// createSchema makes the buckets of a new store and records its version.
func createSchema(tx *bbolt.Tx) error {
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	if err := series.Init(tx); err != nil {
		return err
	}
	return tx.Bucket(bMeta).Put(kSchema, u32(SchemaVersion))
}

// Path returns the store's file name.
func (s *Store) Path() string { return s.path }

// Release closes the bbolt handle until the next call, so read-only
// commands and backups can open the file between cycles. A writer keeps
// its daemon lock and its caches, which stay valid because only it writes.
func (s *Store) Release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.closeDB()
}

func (s *Store) closeDB() error {
	if s.db == nil {
		return nil
	}
	err := guard(s.path, s.db.Close)
	s.db = nil
	if s.opt.ReadOnly {
		s.hist, s.part, s.partKeys = nil, nil, nil
	}
	if err != nil {
		return fmt.Errorf("store %s: close: %w", s.path, err)
	}
	return nil
}

// Close closes the file and gives up the writer's locks.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeDB()
	// Closing the descriptors releases the locks.
	for _, f := range []**os.File{&s.held, &s.lock} {
		if *f == nil {
			continue
		}
		if cerr := (*f).Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store %s: release lock: %w", s.path, cerr)
		}
		*f = nil
	}
	s.hist = nil
	return err
}

// view runs fn in a read transaction, reopening the file if released.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	return s.viewWith(func() bool { return true }, s.ensure, func(tx *bbolt.Tx) error { return fn(tx) })
}

// viewHistory is view with the history engine.
func (s *Store) viewHistory(fn func(tx *bbolt.Tx, e *series.Engine) error) error {
	return s.viewWith(func() bool { return s.hist != nil }, s.ensureHistory, func(tx *bbolt.Tx) error { return fn(tx, s.hist) })
}

// viewSeries is viewHistory for a reader of series k: the engine of the
// series picked serves it, if it holds k, else the whole history's.
func (s *Store) viewSeries(k quota.Key, fn func(tx *bbolt.Tx, e *series.Engine) error) error {
	var e *series.Engine
	ready := func() bool {
		if e = s.hist; e == nil && s.part != nil && s.partKeys[k] {
			e = s.part
		}
		return e != nil
	}
	return s.viewWith(ready, s.ensureHistory, func(tx *bbolt.Tx) error { return fn(tx, e) })
}

// viewWith runs fn in a read transaction once ready, which is called with
// s.mu held, reports it; prepare, with s.mu held for writing, makes it so.
func (s *Store) viewWith(ready func() bool, prepare func() error, fn func(tx *bbolt.Tx) error) error {
	s.mu.RLock()
	for s.db == nil || !ready() {
		s.mu.RUnlock()
		s.mu.Lock()
		err := prepare()
		s.mu.Unlock()
		if err != nil {
			return err
		}
		s.mu.RLock()
	}
	err := guard(s.path, func() error { return s.db.View(fn) })
	s.mu.RUnlock()
	if errors.Is(err, ErrDamaged) {
		s.mu.Lock()
		s.fail(err)
		s.mu.Unlock()
	}
	return err
}

// HistoryAccounts lists the accounts the history has polls of.
func (s *Store) HistoryAccounts() ([]string, error) {
	var out []string
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		out, err = series.Accounts(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: history accounts: %w", err)
	}
	return out, nil
}

// PickKeys returns those of keys the store has series of. A read-only
// store that has not loaded the whole history loads only theirs, which
// their At, Series, Changes and Downsample then read: a command reading
// one series of thousands reads none of the others' state.
func (s *Store) PickKeys(keys []quota.Key) ([]quota.Key, error) {
	s.mu.Lock()
	if err := s.ensure(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if s.hist == nil {
		err := guard(s.path, func() error {
			return s.db.View(func(tx *bbolt.Tx) error {
				part, err := series.LoadSeries(tx, keys...)
				if err != nil {
					return err
				}
				s.part, s.partKeys = part, map[quota.Key]bool{}
				for _, k := range keys {
					s.partKeys[k] = true
				}
				return nil
			})
		})
		if errors.Is(err, ErrDamaged) {
			s.fail(err)
		}
		if err != nil {
			s.mu.Unlock()
			if !errors.Is(err, ErrDamaged) {
				err = fmt.Errorf("store %s: load history: %w", s.path, err)
			}
			return nil, err
		}
	}
	s.mu.Unlock()
	var out []quota.Key
	for _, k := range keys {
		if _, ok, err := s.LastSeen(k); err != nil {
			return nil, err
		} else if ok {
			out = append(out, k)
		}
	}
	return out, nil
}

// update runs fn in one write transaction.
func (s *Store) update(fn func(tx *bbolt.Tx) error) error {
	return s.write(func(tx *bbolt.Tx, _ *series.Engine) error { return fn(tx) }, false)
}

// updateHistory is update for changes to the history: if the transaction
// fails, the engine's cache may be ahead of the file, so it is dropped and
// reloaded on next use.
func (s *Store) updateHistory(fn func(tx *bbolt.Tx, e *series.Engine) error) error {
	return s.write(fn, true)
}

func (s *Store) write(fn func(tx *bbolt.Tx, e *series.Engine) error, history bool) error {
	return s.writeHistory(fn, history, true)
}

// writeTx is update with the choice of telling the mirror.
func (s *Store) writeTx(fn func(tx *bbolt.Tx) error, history, mirrored bool) error {
	return s.writeHistory(func(tx *bbolt.Tx, _ *series.Engine) error { return fn(tx) }, history, mirrored)
}

// writeHistory runs fn in one write transaction. When mirrored and a
// mirror is set, the shared state fn changed is handed to the mirror
// before the commit, and the mirror's refusal rolls the transaction back.
func (s *Store) writeHistory(fn func(tx *bbolt.Tx, e *series.Engine) error, history, mirrored bool) error {
	if s.opt.ReadOnly {
		return fmt.Errorf("store %s: %w", s.path, ErrReadOnly)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensure(); err != nil {
		return err
	}
	defer func() { s.ops = nil }()
	err := guard(s.path, func() error {
		return s.db.Update(func(tx *bbolt.Tx) error {
			s.ops = s.ops[:0]
			if err := fn(tx, s.hist); err != nil {
				return err
			}
			if mirrored && s.mirror != nil && len(s.ops) > 0 {
				if err := s.mirror.Mirror(s.ops, sequences(tx)); err != nil {
					return fmt.Errorf("%w: %w", ErrShare, err)
				}
			}
			return nil
		})
	})
	if errors.Is(err, ErrDamaged) {
		s.fail(err)
	} else if err != nil && history {
		s.hist = nil
	}
	return err
}

// verify reads every bucket, key and value of the file once, so that
// damage anywhere shows as ErrDamaged now rather than mid-cycle. s.mu must
// be held for writing.
func (s *Store) verify() error {
	err := guard(s.path, func() error {
		return s.db.View(walk)
	})
	if err != nil && !errors.Is(err, ErrDamaged) {
		err = damaged(s.path, "%v", err)
	}
	if err != nil {
		s.fail(err)
	}
	return err
}

// walk touches every key and value of tx, nested buckets included. bbolt
// checks each page it descends to; reading both ends of each value makes a
// page past the end of the file fault here, under guard.
func walk(tx *bbolt.Tx) error {
	var sink byte
	var bucket func(b *bbolt.Bucket) error
	bucket = func(b *bbolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) > 0 {
				sink ^= k[0] ^ k[len(k)-1]
			}
			if v == nil {
				nb := b.Bucket(k)
				if nb == nil {
					return fmt.Errorf("key %q has no value and is not a bucket", k)
				}
				if err := bucket(nb); err != nil {
					return err
				}
				continue
			}
			if len(v) > 0 {
				sink ^= v[0] ^ v[len(v)-1]
			}
		}
		return nil
	}
	err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		if err := bucket(b); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
		return nil
	})
	_ = sink
	return err
}

func u32(x uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return b[:]
}

func u64(x uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], x)
	return b[:]
}
