package smallfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(regular, []byte("tok\n"), 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("x", Max+1)), 0o600))
	exact := filepath.Join(dir, "exact")
	require.NoError(t, os.WriteFile(exact, []byte(strings.Repeat("x", Max)), 0o600))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(regular, link))

	tests := []struct {
		name, path string
		want       string
		err        error
		errText    string
	}{
		{"regular", regular, "tok\n", nil, ""},
		{"through a symlink to a regular file", link, "tok\n", nil, ""},
		{"exactly the cap", exact, strings.Repeat("x", Max), nil, ""},
		{"over the cap", big, "", ErrTooLarge, "larger than 1048576 bytes"},
		{"a FIFO", fifo, "", ErrNotRegular, "not a regular file (a FIFO)"},
		{"a character device", "/dev/zero", "", ErrNotRegular, "not a regular file (a character device)"},
		{"a directory", dir, "", ErrNotRegular, "not a regular file (a directory)"},
		{"missing", filepath.Join(dir, "nope"), "", os.ErrNotExist, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var data []byte
			var err error
			go func() { data, err = Read(tt.path); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Read hangs")
			}
			if tt.err == nil {
				require.NoError(t, err)
				require.Equal(t, tt.want, string(data))
				return
			}
			require.True(t, errors.Is(err, tt.err), "%v", err)
			require.ErrorContains(t, err, tt.errText)
			require.ErrorContains(t, err, tt.path)
		})
	}
}
