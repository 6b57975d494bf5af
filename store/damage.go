package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	berrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged: the store file cannot be read as a quotawatch store (empty,
// truncated, overwritten, not a bbolt file at all, or replaced while this
// process held it). It is never repaired or replaced automatically: the
// operator restores a backup or moves the file away.
var ErrDamaged = errors.New("store is damaged")

// damagedError names the file, says what is wrong with it and what to do,
// and matches ErrDamaged.
type damagedError struct {
	path, why string
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("store %s is damaged (%s): stop the service and restore a backup (see `quotawatch backup`), "+
		"or move the file away to start afresh", e.path, e.why)
}

func (e *damagedError) Is(target error) bool { return target == ErrDamaged }

func damaged(path, format string, a ...any) error {
	return &damagedError{path: path, why: fmt.Sprintf(format, a...)}
}

// checkInfo refuses what cannot be a store file. A new store is created
// only where nothing exists, so an empty file is a damaged one (its
// journal and cooldowns are lost), not a fresh start.
func checkInfo(path string, fi fs.FileInfo) error {
	switch {
	case fi.IsDir():
		return damaged(path, "a directory, not a store file")
	case !fi.Mode().IsRegular():
		return damaged(path, "not a regular file: %s", fi.Mode().Type())
	case fi.Size() == 0:
		return damaged(path, "an empty file")
	}
	return nil
}

// openError classifies an error of bbolt.Open: what says the file's
// contents are not a database is damage; the rest (permissions, a lock
// timeout) is not.
func openError(path string, err error) error {
	var de *damagedError
	switch {
	case errors.As(err, &de):
		return err
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return damaged(path, "%v", err)
	}
	return nil
}

// guard runs fn with faults on the mapped file turned into panics (a
// truncated file faults with SIGBUS on access, which would otherwise kill
// the process), and turns any panic into an ErrDamaged error. Every
// function a transaction runs is this package's own and reads only what
// the file holds, so a panic there means the bytes are not what was
// written. SetPanicOnFault is per goroutine: bbolt reads the map on the
// caller's goroutine, which is the one guarded here.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, "%s", panicText(r))
		}
	}()
	return fn()
}

// panicText is the panic's value and where it happened, for the message:
// enough to tell a fault from a failed check, without a stack trace.
func panicText(r any) string {
	text := fmt.Sprint(r)
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		text = fmt.Sprintf("memory fault at %#x reading the file, which is shorter than it claims", f.Addr())
	}
	if at := panicSite(); at != "" {
		text += " in " + at
	}
	return text
}

// panicSite is the innermost function that is not the runtime's or this
// file's, from a deferred call during the panic, whose frames are still on
// the stack.
func panicSite() string {
	pc := make([]uintptr, 32)
	n := runtime.Callers(3, pc)
	frames := runtime.CallersFrames(pc[:n])
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, "runtime."), strings.HasSuffix(f.File, "/store/damage.go"):
		case f.Function != "":
			name := f.Function
			if i := strings.LastIndex(name, "/"); i >= 0 {
				name = name[i+1:]
			}
			return name
		}
		if !more {
			return ""
		}
	}
}

// checkMeta reads the meta pages of an open store file as bbolt lays them
// out and refuses a file shorter than the newest valid meta page says it
// is. bbolt would map such a file and fault reading past its end, with its
// flock held by the mapping; here nothing is mapped yet.
func checkMeta(path string, f *os.File, size int64) error {
	newest := readMeta(f, 0)
	var other *meta
	if newest != nil {
		other = readMeta(f, int64(newest.pageSize))
	} else {
		// Without meta 0 the page size is unknown: try the usual ones, as
		// bbolt does.
		for ps := int64(1024); ps <= 64<<10 && other == nil; ps *= 2 {
			other = readMeta(f, ps)
		}
	}
	if newest == nil || (other != nil && other.txid > newest.txid) {
		newest = other
	}
	if newest == nil {
		return damaged(path, "no valid bbolt meta page: not a store file, or its first pages are overwritten")
	}
	if need := int64(newest.pgid) * int64(newest.pageSize); size < need {
		return damaged(path, "truncated: %d bytes, but its pages need %d", size, need)
	}
	return nil
}

// meta is what checkMeta needs of a bbolt meta page.
type meta struct {
	pageSize   uint32
	pgid, txid uint64
}

// readMeta reads and checks the meta page at off: bbolt's page header (16
// bytes: id, flags, ...), then magic, version, page size, flags, root
// bucket (16), freelist, pgid, txid and an FNV-64a checksum of what
// precedes it, all in the machine's byte order.
func readMeta(f *os.File, off int64) *meta {
	const hdr, body = 16, 56
	var b [hdr + body + 8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return nil
	}
	le := binary.NativeEndian
	m := b[hdr:]
	if le.Uint16(b[8:]) != 0x04 || le.Uint32(m[0:]) != 0xED0CDAED || le.Uint32(m[4:]) != 2 {
		return nil
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:body])
	if h.Sum64() != le.Uint64(m[body:]) {
		return nil
	}
	return &meta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
}

// Damaged returns the ErrDamaged error a call on s met, or nil. Once it is
// set, every call fails with it: a long-running writer should stop.
func (s *Store) Damaged() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.broken
}
