package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists: a backup's destination exists and BackupOptions.Force is not
// set.
var ErrExists = errors.New("already exists")

// Backup writes a consistent copy of the store to w, in one read
// transaction, and returns the bytes written. Commits go on meanwhile: the
// store's lock is held only to begin the transaction (a Release waits for
// the copy to finish). It reads every page it copies first, so a damaged
// store fails with ErrDamaged instead of being copied.
func (s *Store) Backup(w io.Writer) (int64, error) {
	s.mu.RLock()
	for s.db == nil {
		s.mu.RUnlock()
		s.mu.Lock()
		err := s.ensure()
		s.mu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("store: backup: %w", err)
		}
		s.mu.RLock()
	}
	tx, err := s.db.Begin(false)
	s.mu.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	var n int64
	err = guard(s.path, func() error {
		if err := walk(tx); err != nil {
			return damaged(s.path, "%v", err)
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	_ = guard(s.path, tx.Rollback)
	if errors.Is(err, ErrDamaged) {
		s.mu.Lock()
		s.fail(err)
		s.mu.Unlock()
		return n, err
	}
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", err)
	}
	return n, nil
}

// BackupOptions configure BackupFile.
type BackupOptions struct {
	// Force replaces an existing regular file.
	Force bool
}

// BackupFile writes a consistent copy to path (mode 0600). It writes only
// a new regular file, or with Force an existing one, and never the live
// store (by name, by inode, or through a hard link), a directory, a device
// or anything else, nor through a symbolic link. The copy is written to a
// temporary file in path's directory, synced and renamed into place, so a
// failed backup leaves nothing behind. Errors name path once.
func (s *Store) BackupFile(path string, opt BackupOptions) error {
	if err := s.backupFile(path, opt); err != nil {
		var de *damagedError
		if errors.As(err, &de) {
			return err // names the store and says what to do
		}
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

func (s *Store) backupFile(path string, opt BackupOptions) (err error) {
	exists, err := s.checkBackupPath(path)
	if err != nil {
		return err
	}
	if exists && !opt.Force {
		return ErrExists
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("create a temporary file beside it: %w", bare(err))
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return bare(err)
	}
	if _, err := s.Backup(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return bare(err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return bare(err)
	}
	if exists {
		// Checked again just before: the name must still be a regular file.
		if _, err := s.checkBackupPath(path); err != nil {
			return err
		}
		err = os.Rename(tmp, path)
	} else {
		// A link, unlike a rename, never replaces what appeared meanwhile.
		err = os.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			err = ErrExists
		}
		if err == nil {
			_ = os.Remove(tmp)
		}
	}
	if err != nil {
		return bare(err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, bare(err))
	}
	return nil
}

// checkBackupPath refuses a destination that is not a new name or a
// regular file, or that is the store itself or its lock file, and reports
// whether it exists.
func (s *Store) checkBackupPath(path string) (exists bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		fi = nil
	} else if err != nil {
		return false, bare(err)
	}
	if fi != nil {
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return false, errors.New("is a symbolic link; give the path of a regular file")
		case fi.IsDir():
			return false, errors.New("is a directory; give the path of the file to write")
		case !fi.Mode().IsRegular():
			return false, fmt.Errorf("is not a regular file (%s); a backup is written only to a regular file", fi.Mode().Type())
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, err
	}
	for _, live := range []string{s.path, s.path + ".lock"} {
		la, err := filepath.Abs(live)
		if err == nil && la == abs {
			return false, errors.New("is the live store; give another path")
		}
		if fi == nil {
			continue
		}
		if lfi, err := os.Stat(live); err == nil && os.SameFile(fi, lfi) {
			return false, errors.New("is the live store (the same file by inode); give another path")
		}
	}
	if fi != nil && s.heldFi != nil && os.SameFile(fi, s.heldFi) {
		return false, errors.New("is the live store (the same file by inode); give another path")
	}
	return fi != nil, nil
}

// bare drops the path an *os.PathError or *os.LinkError carries, for
// messages that name it already.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}
