package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/store/storetest"
)

// runProcess runs the command line as its own process (the test binary
// re-executed), so that a fault would show as a signal, and returns the
// exit code and stderr.
func (c *cli) runProcess(args ...string) (int, string) {
	c.t.Helper()
	args = append(args[:1:1], append([]string{"--config", c.cfg}, args[1:]...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), daemonEnv+"=1", daemonEnv+"_ARGS="+strings.Join(args, "\n"))
	for k, v := range c.env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		require.True(c.t, ee.Exited(), "%v: killed by a signal (%v); stderr:\n%s", args, ee, stderr.String())
		return ee.ExitCode(), stderr.String()
	}
	require.NoError(c.t, err)
	return 0, stderr.String()
}

// Every command that opens the store exits 1 on a damaged one, with a
// message naming the file and the remedy: no panic, no fault, no new store.
func TestDamagedStore(t *testing.T) {
	process := [][]string{{"run"}, {"once"}, {"status"}, {"backup", "OUT"}}
	inProcess := [][]string{
		{"once"}, {"plan"}, {"status"}, {"history"}, {"actions"}, {"backup", "OUT"},
		{"silence", "add", "--rule", "*", "--for", "1h", "--comment", "maintenance"},
		{"silence", "list"}, {"silence", "expire", "1"},
	}
	for _, d := range storetest.Damages() {
		t.Run(d.Name, func(t *testing.T) {
			c := newCLI(t)
			code, _, stderr := c.run("once")
			require.Equal(t, exitOK, code, stderr)
			db := filepath.Join(c.dir, "q.db")
			d.Apply(t, db)
			before := describe(t, db)
			out := filepath.Join(c.dir, "backup.db")
			check := func(how string, args []string, code int, stderr string) {
				t.Helper()
				require.Equal(t, exitFailure, code, "%s %v: %s", how, args, stderr)
				require.Contains(t, stderr, "store "+db+" is damaged (", "%s %v", how, args)
				require.Contains(t, stderr, "stop the service and restore a backup (see `quotawatch backup`)", "%s %v", how, args)
				for _, s := range []string{"panic", "goroutine ", "SIGBUS", "SIGSEGV"} {
					require.NotContains(t, stderr, s, "%s %v", how, args)
				}
				require.Equal(t, before, describe(t, db), "%s %v changed the damaged file", how, args)
				_, err := os.Lstat(out)
				require.ErrorIs(t, err, os.ErrNotExist, "no backup of a damaged store")
			}
			for _, args := range process {
				args = replace(args, "OUT", out)
				code, stderr := c.runProcess(args...)
				check("process", args, code, stderr)
			}
			for _, args := range inProcess {
				args = replace(args, "OUT", out)
				var code int
				var stderr string
				require.NotPanics(t, func() {
					if args[0] == "silence" {
						code, _, stderr = c.run(append([]string{args[0] + " " + args[1]}, args[2:]...)...)
					} else {
						code, _, stderr = c.run(args...)
					}
				})
				check("in-process", args, code, stderr)
			}
		})
	}
}

func replace(args []string, old, new string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, old, new)
	}
	return out
}

// describe is what is at path: "directory", or the file's hash.
func describe(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	if fi.IsDir() {
		return "directory"
	}
	h := fileHash(t, path)
	return string(h[:])
}

// backup writes a new file, replaces one only with --force, and names OUT
// once in its errors.
func TestBackupForce(t *testing.T) {
	c := newCLI(t)
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	out := filepath.Join(c.dir, "b.db")
	code, stdout, stderr := c.run("backup", out)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "wrote "+out+"\n", stdout)
	code, _, stderr = c.run("backup", out)
	require.Equal(t, exitFailure, code)
	require.Equal(t, "quotawatch: backup to "+out+": already exists (use --force to replace it)\n", stderr)
	code, _, stderr = c.run("backup", "--force", out)
	require.Equal(t, exitOK, code, stderr)

	link := filepath.Join(c.dir, "link.db")
	require.NoError(t, os.Symlink(out, link))
	code, _, stderr = c.run("backup", "--force", link)
	require.Equal(t, exitFailure, code)
	require.Equal(t, "quotawatch: backup to "+link+": is a symbolic link; give the path of a regular file\n", stderr)
	live := filepath.Join(c.dir, "q.db")
	code, _, stderr = c.run("backup", "--force", live)
	require.Equal(t, exitFailure, code)
	require.Equal(t, "quotawatch: backup to "+live+": is the live store; give another path\n", stderr)
}
