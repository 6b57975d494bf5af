package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/quotawatch/quotawatch/store/series"
)

// SchemaVersion is the on-disk layout version this package writes.
const SchemaVersion = 1

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
	allBuckets = [][]byte{bMeta, bProjects, bInstances, bAccounts, bActions, bOutbox, bThreads, bSilences, bItems}

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
	lock   *os.File       // daemon lock, held by a writer for the Store's life
	hist   *series.Engine // history and its cache; nil until loaded
	inited bool
	closed bool
}

// Open opens (and for a writer, creates) the store at path. A writer first
// takes the daemon lock on path+".lock"; a second writer gets an error
// naming the file within LockTimeout. A new file's schema is created; a
// newer schema is refused.
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
		f, err := acquireLock(path, opt.LockTimeout)
		if err != nil {
			return nil, err
		}
		s.lock = f
	}
	s.mu.Lock()
	err := s.ensure()
	s.mu.Unlock()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// acquireLock takes an exclusive flock on path+".lock", polling until
// timeout so a second daemon fails clearly instead of hanging.
func acquireLock(path string, timeout time.Duration) (*os.File, error) {
	lp := path + ".lock"
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store %s: open lock file: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("store %s: lock %s: %w", path, lp, err)
		}
		if !time.Now().Before(deadline) {
			_ = f.Close()
			return nil, &lockedError{fmt.Sprintf("store %s is locked by another quotawatch process (waited %s)", path, timeout)}
		}
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)+time.Millisecond))
	}
}

// ensure opens the bbolt handle if needed and loads the history cache.
// s.mu must be held for writing.
func (s *Store) ensure() error {
	if s.closed {
		return ErrClosed
	}
	if s.db == nil {
		// Map twice the file up front: a commit that must grow the mapping
		// waits for every open read transaction, such as a long backup.
		mmap := int64(64 << 20)
		if fi, err := os.Stat(s.path); err == nil {
			mmap = max(mmap, 2*fi.Size())
		}
		db, err := bbolt.Open(s.path, 0o600, &bbolt.Options{
			Timeout:         s.opt.LockTimeout,
			ReadOnly:        s.opt.ReadOnly,
			NoSync:          s.opt.NoSync,
			InitialMmapSize: int(min(mmap, 1<<40)),
		})
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				if s.opt.ReadOnly {
					return &lockedError{fmt.Sprintf("store %s is locked by a running quotawatch cycle (waited %s)", s.path, s.opt.LockTimeout)}
				}
				return &lockedError{fmt.Sprintf("store %s is held by a reader such as a backup or status command (waited %s)", s.path, s.opt.LockTimeout)}
			}
			return fmt.Errorf("store %s: open: %w", s.path, err)
		}
		// Grow the file in small steps: the default 16 MiB steps would
		// leave most of a small store's file empty.
		db.AllocSize = 1 << 20
		s.db = db
		if s.opt.ReadOnly {
			s.hist = nil // another process may have written since
		}
		if err := s.initSchema(); err != nil {
			_ = s.db.Close()
			s.db = nil
			return err
		}
	}
	if s.hist == nil {
		if err := s.db.View(func(tx *bbolt.Tx) error {
			var err error
			s.hist, err = series.Load(tx, s.log)
			return err
		}); err != nil {
			s.hist = nil
			return fmt.Errorf("store %s: load history: %w", s.path, err)
		}
	}
	return nil
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

func (s *Store) initSchema() error {
	var ver int
	if err := s.db.View(func(tx *bbolt.Tx) error { ver = readSchema(tx); return nil }); err != nil {
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
	if ver != 0 {
		return fmt.Errorf("store %s has schema version %d, older than the %d this quotawatch writes, and no migration exists: %w",
			s.path, ver, SchemaVersion, ErrSchema)
	}
	if s.opt.ReadOnly {
		return fmt.Errorf("store %s is not initialised (no quotawatch run has written it yet): %w", s.path, ErrSchema)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		if err := series.Init(tx); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchema, u32(SchemaVersion))
	})
	if err != nil {
		return fmt.Errorf("store %s: create schema: %w", s.path, err)
	}
	s.log.Info("store created", "path", s.path, "schema", SchemaVersion)
	s.inited = true
	return nil
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
	err := s.db.Close()
	s.db = nil
	if s.opt.ReadOnly {
		s.hist = nil
	}
	if err != nil {
		return fmt.Errorf("store %s: close: %w", s.path, err)
	}
	return nil
}

// Close closes the file and gives up the daemon lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeDB()
	if s.lock != nil {
		// Closing the descriptor releases the flock.
		if cerr := s.lock.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store %s: release lock: %w", s.path, cerr)
		}
		s.lock = nil
	}
	s.hist = nil
	return err
}

// view runs fn in a read transaction, reopening the file if released.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	return s.viewHistory(func(tx *bbolt.Tx, _ *series.Engine) error { return fn(tx) })
}

// viewHistory is view with the history engine.
func (s *Store) viewHistory(fn func(tx *bbolt.Tx, e *series.Engine) error) error {
	s.mu.RLock()
	for s.db == nil || s.hist == nil {
		s.mu.RUnlock()
		s.mu.Lock()
		err := s.ensure()
		s.mu.Unlock()
		if err != nil {
			return err
		}
		s.mu.RLock()
	}
	defer s.mu.RUnlock()
	return s.db.View(func(tx *bbolt.Tx) error { return fn(tx, s.hist) })
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
	if s.opt.ReadOnly {
		return fmt.Errorf("store %s: %w", s.path, ErrReadOnly)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensure(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error { return fn(tx, s.hist) })
	if err != nil && history {
		s.hist = nil
	}
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
