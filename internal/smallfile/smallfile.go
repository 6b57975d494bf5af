// Package smallfile reads the small files a configuration names (secrets,
// CA bundles): regular files only, and only up to a size, so that a path
// pointing at a FIFO, a device or a huge file fails at once instead of
// hanging or filling memory.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Max is the largest file Read accepts.
const Max = 1 << 20

// ErrNotRegular is returned for a FIFO, a device, a socket or a directory.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file over Max bytes.
var ErrTooLarge = fmt.Errorf("larger than %d bytes", Max)

// Read returns the contents of the regular file at path, at most Max bytes.
func Read(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer forever. It does not change reads of a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(st.Mode()))}
	}
	if st.Size() > Max {
		return nil, &os.PathError{Op: "read", Path: path, Err: ErrTooLarge}
	}
	// The size may change under us: read no more than Max+1 either way.
	data, err := io.ReadAll(io.LimitReader(f, Max+1))
	if err != nil {
		return nil, err
	}
	if len(data) > Max {
		return nil, &os.PathError{Op: "read", Path: path, Err: ErrTooLarge}
	}
	return data, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}
