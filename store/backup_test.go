package store

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestBackupFileDestinations(t *testing.T) {
	st, live := openTemp(t)
	require.NoError(t, st.Commit(&Batch{Time: start, Projects: []quota.Project{{ID: "p"}}}))
	dir := t.TempDir()
	regular := func(name string) func(*testing.T) string {
		return func(t *testing.T) string {
			p := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
			return p
		}
	}
	tests := []struct {
		name  string
		out   func(t *testing.T) string
		force bool
		want  string // "" for success
		// kept is what must be left at out on failure: "" for nothing.
		kept string
	}{
		{name: "new file", out: func(*testing.T) string { return filepath.Join(dir, "new.db") }},
		{name: "existing file", out: regular("exists.db"), want: "already exists", kept: "old"},
		{name: "existing file, forced", out: regular("forced.db"), force: true},
		{name: "the live store", out: func(*testing.T) string { return live }, want: "is the live store", force: true},
		{name: "the live store by another name", out: func(*testing.T) string {
			return filepath.Join(filepath.Dir(live), ".", "..", filepath.Base(filepath.Dir(live)), filepath.Base(live))
		}, want: "is the live store", force: true},
		{name: "a hard link to the live store", out: func(t *testing.T) string {
			p := filepath.Join(dir, "hardlink.db")
			require.NoError(t, os.Link(live, p))
			return p
		}, want: "is the live store", force: true},
		{name: "the lock file", out: func(*testing.T) string { return live + ".lock" }, want: "is the live store", force: true},
		{name: "a symbolic link to a regular file", out: func(t *testing.T) string {
			target := regular("target.db")(t)
			p := filepath.Join(dir, "symlink.db")
			require.NoError(t, os.Symlink(target, p))
			return p
		}, want: "is a symbolic link", force: true},
		{name: "a dangling symbolic link", out: func(t *testing.T) string {
			p := filepath.Join(dir, "dangling.db")
			require.NoError(t, os.Symlink(filepath.Join(dir, "nowhere.db"), p))
			return p
		}, want: "is a symbolic link", force: true},
		{name: "a directory", out: func(t *testing.T) string {
			p := filepath.Join(dir, "adir")
			require.NoError(t, os.Mkdir(p, 0o700))
			return p
		}, want: "is a directory", force: true},
		{name: "a FIFO", out: func(t *testing.T) string {
			p := filepath.Join(dir, "fifo")
			require.NoError(t, syscall.Mkfifo(p, 0o600))
			return p
		}, want: "is not a regular file", force: true},
		{name: "a device", out: func(t *testing.T) string {
			// A node of its own where allowed (root), so that a failure of
			// the test cannot replace /dev/null.
			p := filepath.Join(dir, "null")
			if err := syscall.Mknod(p, syscall.S_IFCHR|0o600, 1<<8|3); err != nil {
				require.NotZero(t, os.Geteuid(), "root can make a device node: %v", err)
				return "/dev/null"
			}
			return p
		}, want: "is not a regular file", force: true},
		{name: "a missing directory", out: func(*testing.T) string { return filepath.Join(dir, "missing", "x.db") }, want: "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out(t)
			before, _ := os.Lstat(out)
			err := st.BackupFile(out, BackupOptions{Force: tt.force})
			if tt.want == "" {
				require.NoError(t, err)
				fi, err := os.Lstat(out)
				require.NoError(t, err)
				require.True(t, fi.Mode().IsRegular())
				require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
				b, err := Open(out, Options{ReadOnly: true})
				require.NoError(t, err)
				ps, err := b.Projects()
				require.NoError(t, err)
				require.Contains(t, ps, "p")
				require.NoError(t, b.Close())
			} else {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.want)
				require.Equal(t, 1, strings.Count(err.Error(), out), "names OUT once: %v", err)
				require.True(t, strings.HasPrefix(err.Error(), "backup to "+out+": "), err.Error())
				after, _ := os.Lstat(out)
				if before == nil {
					require.Nil(t, after, "a failed backup leaves nothing")
				} else {
					require.True(t, os.SameFile(before, after), "the destination is left as it was")
					require.Equal(t, before.Mode(), after.Mode())
				}
				if tt.kept != "" {
					b, err := os.ReadFile(out)
					require.NoError(t, err)
					require.Equal(t, tt.kept, string(b))
				}
			}
			// No temporary file is left either way.
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range ents {
				require.NotContains(t, e.Name(), ".tmp", "left behind")
			}
		})
	}
	// The live store still works and was never touched.
	ps, err := st.Projects()
	require.NoError(t, err)
	require.Contains(t, ps, "p")
}

// A backup of a damaged store fails with ErrDamaged and writes nothing.
func TestBackupOfDamagedStore(t *testing.T) {
	st, path := openTemp(t)
	for n := range 50 {
		require.NoError(t, st.Commit(&Batch{Time: start, Projects: []quota.Project{{ID: strings.Repeat("p", 100) + string(rune('a'+n%26)) + strings.Repeat("x", n)}}}))
	}
	require.NoError(t, st.Release())
	ro, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	// Damage a page the open did not need: the walk before the copy finds it.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, pageSize), 2*pageSize)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	out := filepath.Join(t.TempDir(), "b.db")
	err = ro.BackupFile(out, BackupOptions{})
	requireDamaged(t, err, path)
	_, err = os.Lstat(out)
	require.ErrorIs(t, err, os.ErrNotExist)
}
