package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// The writer's lock. A writer takes two locks for the life of its Store:
//
//   - an exclusive lock on the store file itself, by inode (lockFile: an
//     open-file-description lock on Linux, which neither bbolt's own flock
//     nor read-only opens conflict with). It is the one that counts:
//     deleting or renaming a lock file cannot free it, and every reopen
//     checks that the path still names the locked inode;
//   - a flock on path+".lock", as older versions took, so that one of them
//     started beside a running daemon still finds the store held.

// acquireLock takes an exclusive flock on path+".lock", polling until
// timeout so a second daemon fails clearly instead of hanging. The lock
// counts only if the path still names the file locked once it is held:
// otherwise someone replaced or removed the file meanwhile, and it tries
// again.
func acquireLock(path string, timeout time.Duration) (*os.File, error) {
	lp := path + ".lock"
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store %s: open lock file: %w", path, err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if same, serr := samePath(f, lp); serr != nil || same {
				if serr != nil {
					_ = f.Close()
					return nil, fmt.Errorf("store %s: lock %s: %w", path, lp, serr)
				}
				return f, nil
			}
		} else if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("store %s: lock %s: %w", path, lp, err)
		}
		_ = f.Close()
		if !time.Now().Before(deadline) {
			return nil, heldError(path, timeout)
		}
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)+time.Millisecond))
	}
}

// holdStore opens the store file and takes the writer's lock on its
// inode, polling until timeout. As with the lock file, the lock counts
// only if the path still names the locked file once it is held.
func holdStore(path string, timeout time.Duration) (*os.File, fs.FileInfo, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, fi, err := openStoreFile(path, os.O_RDWR, 0)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				err = fmt.Errorf("store %s: open: %w", path, bare(err))
			}
			return nil, nil, err
		}
		err = lockFile(f)
		if err == nil {
			same, serr := samePath(f, path)
			if serr != nil && !errors.Is(serr, fs.ErrNotExist) {
				_ = f.Close()
				return nil, nil, fmt.Errorf("store %s: %w", path, serr)
			}
			if same {
				return f, fi, nil
			}
		} else if !errors.Is(err, errWouldBlock) {
			_ = f.Close()
			return nil, nil, fmt.Errorf("store %s: lock: %w", path, err)
		}
		_ = f.Close()
		if !time.Now().Before(deadline) {
			return nil, nil, heldError(path, timeout)
		}
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)+time.Millisecond))
	}
}

func heldError(path string, timeout time.Duration) error {
	return &lockedError{fmt.Sprintf("store %s is locked by another quotawatch process (waited %s)", path, timeout)}
}

// samePath reports whether path names the file f has open.
func samePath(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	cur, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return os.SameFile(fi, cur), nil
}

// openStoreFile opens an existing store file, never creating one, and
// refuses what cannot be a store (a directory, a device, an empty file, a
// file cut short).
func openStoreFile(path string, flag int, mode os.FileMode) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag&^os.O_CREATE, mode)
	if err != nil {
		if errors.Is(err, syscall.EISDIR) {
			return nil, nil, damaged(path, "a directory, not a store file")
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkInfo(path, fi)
	}
	if err == nil {
		err = checkMeta(path, f, fi.Size())
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
