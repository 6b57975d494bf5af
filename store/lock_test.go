package store

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// One writer, whatever happens to the lock file: removing or replacing it
// under a running writer must not let a second one in.
func TestSecondWriterRefused(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, path string)
	}{
		{"lock file in place", func(*testing.T, string) {}},
		{"lock file removed", func(t *testing.T, path string) { require.NoError(t, os.Remove(path+".lock")) }},
		{"lock file replaced", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path+".lock.new", nil, 0o600))
			require.NoError(t, os.Rename(path+".lock.new", path+".lock"))
		}},
	}
	for _, tt := range tests {
		for _, released := range []bool{false, true} {
			name := tt.name
			if released {
				name += ", between cycles"
			}
			t.Run(name, func(t *testing.T) {
				first, path := openTemp(t)
				if released {
					require.NoError(t, first.Release())
				}
				tt.do(t, path)
				_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
				require.ErrorIs(t, err, ErrLocked)
				require.Contains(t, err.Error(), "store "+path+" is locked by another quotawatch process")
				// The first writer goes on; readers still get in between cycles.
				_, err = first.Accounts()
				require.NoError(t, err)
				require.NoError(t, first.Release())
				ro, err := Open(path, Options{ReadOnly: true, LockTimeout: time.Second})
				require.NoError(t, err)
				require.NoError(t, ro.Close())
				// Once the first is closed, a writer gets in.
				require.NoError(t, first.Close())
				second, err := Open(path, Options{LockTimeout: time.Second})
				require.NoError(t, err)
				require.NoError(t, second.Close())
			})
		}
	}
}

// writerEnv makes the test binary hold a writer on the store it names
// until its stdin closes.
const writerEnv = "QUOTAWATCH_STORE_WRITER_CHILD"

func TestSecondWriterProcessRefused(t *testing.T) {
	if p := os.Getenv(writerEnv); p != "" {
		st, err := Open(p, Options{LockTimeout: time.Second})
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(0)
		}
		_ = st.Release() // as the daemon between cycles
		os.Stdout.WriteString("holding\n")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		_ = st.Close()
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "q.db")
	writer := func() (string, func()) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSecondWriterProcessRefused$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path)
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		line, _ := bufio.NewReader(out).ReadString('\n')
		return strings.TrimSpace(line), func() { _ = in.Close(); _ = cmd.Wait() }
	}
	first, stop := writer()
	require.Equal(t, "holding", first)
	defer stop()
	require.NoError(t, os.Remove(path+".lock"))
	second, stop2 := writer()
	stop2()
	require.Contains(t, second, "error: store "+path+" is locked by another quotawatch process")
	stop()
	third, stop3 := writer()
	stop3()
	require.Equal(t, "holding", third, "the lock died with its holder")
}
