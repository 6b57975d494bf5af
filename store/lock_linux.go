package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// errWouldBlock is lockFile's error when another holds the lock.
var errWouldBlock = unix.EAGAIN

// lockFile takes an exclusive open-file-description lock on all of f, or
// fails at once. Such a lock belongs to f's open file, so closing another
// descriptor of the same file (bbolt's, on Release) keeps it, and on a
// local file system it is independent of the flock bbolt takes.
func lockFile(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if err == unix.EACCES {
		return errWouldBlock
	}
	return err
}
