package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/store"
)

const (
	hostA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hostB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// runAs runs the command line in-process as host, with stderr to errOut.
func (c *cli) runAs(ctx context.Context, host string, errOut io.Writer, args ...string) (int, string) {
	c.t.Helper()
	var out bytes.Buffer
	env := c.env()
	sio := &stdio{in: strings.NewReader(""), out: &out, errOut: errOut,
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		hostID:    func() (string, error) { return host, nil }}
	args = append(args[:1:1], append([]string{"--config", c.cfg}, args[1:]...)...)
	return run(ctx, sio, args), out.String()
}

// dirState is what a refused command must leave as it was: the names in
// the store's directory and the store's bytes.
func dirState(t *testing.T, dir, db string) string {
	t.Helper()
	var names []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		names = append(names, p)
		return err
	}))
	h := fileHash(t, db)
	return strings.Join(names, "\n") + "\n" + string(h[:])
}

// A store last written by host A: run and once on host B refuse it
// without a request to the cloud, a message or a write, until one of them
// is given --takeover; then host A refuses it in turn.
func TestOtherHostRefused(t *testing.T) {
	c := newCLI(t)
	db := filepath.Join(c.dir, "q.db")
	var errOut bytes.Buffer
	code, _ := c.runAs(context.Background(), hostA, &errOut, "once")
	require.Equal(t, exitOK, code, errOut.String())

	refused := func(host, other string, args ...string) string {
		t.Helper()
		c.cloud.Cloud.ResetRequests()
		messages := len(c.slack.Requests())
		before := dirState(t, c.dir, db)
		var errOut bytes.Buffer
		code, stdout := c.runAs(context.Background(), host, &errOut, args...)
		require.Equal(t, exitFailure, code, "%v: %s", args, errOut.String())
		require.Empty(t, stdout, args)
		stderr := errOut.String()
		for _, want := range []string{
			"store " + db + " was last written by host " + other + " at ",
			"not by this host (" + host + ")", "make sure the quotawatch there is stopped, then pass --takeover",
		} {
			require.Contains(t, stderr, want, args)
		}
		require.Empty(t, c.cloud.Cloud.Requests(), "%v: no request to the cloud", args)
		require.Len(t, c.slack.Requests(), messages, "%v: no message", args)
		require.Equal(t, before, dirState(t, c.dir, db), "%v: nothing written", args)
		return stderr
	}

	stderr := refused(hostB, hostA, "once")
	require.Regexp(t, `^quotawatch: store .* was last written by host `+hostA+` at [^\n]+ ago\), not by this host \(`+hostB+`\); [^\n]*--takeover\n$`,
		stderr, "one line")
	stderr = refused(hostB, hostA, "run")
	require.Contains(t, stderr, `level=ERROR msg="start failed" err="store `)
	require.Equal(t, 1, strings.Count(stderr, "level=ERROR"), stderr)

	// once --takeover acts, and says it took the store over.
	c.cloud.Cloud.ResetRequests()
	errOut.Reset()
	code, _ = c.runAs(context.Background(), hostB, &errOut, "once", "--takeover")
	require.Equal(t, exitOK, code, errOut.String())
	require.NotEmpty(t, c.cloud.Cloud.Requests())
	require.Contains(t, errOut.String(), `msg="took the store over from another host"`)
	require.Contains(t, errOut.String(), "host="+hostA)
	code, _ = c.runAs(context.Background(), hostB, io.Discard, "once")
	require.Equal(t, exitOK, code, "the same host again needs nothing")
	refused(hostA, hostB, "once")

	// run --takeover: the daemon claims the store for host A, and stops
	// cleanly.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var daemonErr lockedBuffer
	done := make(chan int, 1)
	go func() {
		code, _ := c.runAs(ctx, hostA, &daemonErr, "run", "--takeover")
		done <- code
	}()
	require.Eventually(t, func() bool { return strings.Contains(daemonErr.String(), `msg="cycle done"`) }, 20*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, daemonErr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	require.Contains(t, daemonErr.String(), `msg="took the store over from another host"`)
	refused(hostB, hostA, "run")
	refused(hostB, hostA, "once")
}

// The commands that only read the store neither check nor change the
// writer's record.
func TestReadOnlyCommandsIgnoreTheWriter(t *testing.T) {
	c := newCLI(t)
	db := filepath.Join(c.dir, "q.db")
	code, _ := c.runAs(context.Background(), hostA, io.Discard, "once")
	require.Equal(t, exitOK, code)
	before := fileHash(t, db)
	for _, args := range [][]string{
		{"status"}, {"history"}, {"actions"}, {"proposals"}, {"plan"}, {"backtest"},
		{"backup", filepath.Join(t.TempDir(), "b.db")},
	} {
		var errOut bytes.Buffer
		code, _ := c.runAs(context.Background(), hostB, &errOut, args...)
		require.Equal(t, exitOK, code, "%v: %s", args, errOut.String())
	}
	require.Equal(t, before, fileHash(t, db))
	st, err := store.Open(db, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer st.Close()
	host, _, err := st.Writer()
	require.NoError(t, err)
	require.Equal(t, hostA, host)
}

// After each cycle the daemon claims the store again: it stops when
// another host has taken over a store shared with it, and goes on with
// the record dated otherwise.
func TestReclaimAfterCycle(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := store.Open(path, store.Options{NoSync: true, Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.ClaimWriter(hostA, false))
	var cause error
	stop := func(err error) { cause = err }
	log := slog.New(slog.DiscardHandler)

	now = now.Add(5 * time.Minute)
	reclaim(st, hostA, stop, log)
	require.NoError(t, cause)
	// The file is let go again, so the readers get in between cycles.
	ro, err := store.Open(path, store.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	require.NoError(t, err, "a reader between cycles")
	require.NoError(t, ro.Close())
	host, at, err := st.Writer()
	require.NoError(t, err)
	require.Equal(t, hostA, host)
	require.Equal(t, now, at, "dated by the last cycle")

	require.NoError(t, st.ClaimWriter(hostB, true)) // as host B would, through a shared filesystem
	reclaim(st, hostA, stop, log)
	require.ErrorIs(t, cause, store.ErrOtherHost)
	host, _, err = st.Writer()
	require.NoError(t, err)
	require.Equal(t, hostB, host, "the record is left to the new host")
}

func TestHostID(t *testing.T) {
	const id = "3d1219c7c4c5404aaa1f6d2a48adfda4"
	file := func(s string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			require.Equal(t, machineIDFile, p)
			return []byte(s), nil
		}
	}
	missing := func(string) ([]byte, error) { return nil, fs.ErrNotExist }
	unreadable := func(string) ([]byte, error) { return nil, fs.ErrPermission }
	named := func() (string, error) { return "vm1", nil }
	nameless := func() (string, error) { return "", errors.New("no name") }
	tests := []struct {
		name     string
		read     func(string) ([]byte, error)
		hostname func() (string, error)
		want     string // "" for an error
	}{
		{"machine id", file(id + "\n"), named, id},
		{"machine id with blanks", file("  " + id + " \n\n"), named, id},
		{"no machine id: the host name", missing, named, "vm1"},
		{"empty machine id", file(""), named, "vm1"},
		{"uninitialized machine id", file("uninitialized\n"), named, "vm1"},
		{"not hex", file(strings.Repeat("g", 32)), named, "vm1"},
		{"upper case", file(strings.ToUpper(id)), named, id},
		{"too short", file(id[:31]), named, "vm1"},
		{"unreadable machine id", unreadable, named, ""},
		{"neither", missing, nameless, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hostIDFrom(tt.read, tt.hostname)
			if tt.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	if _, err := os.Stat(machineIDFile); err == nil {
		id, err := localHostID()
		require.NoError(t, err)
		require.NotEmpty(t, id)
	}
}

// approve with no daemon acts itself, so it claims the store as once
// does: another host's store is refused, and nothing moves.
func TestApproveWithoutDaemonRefusesAnotherHostsStore(t *testing.T) {
	c := approvalCLI(t, "")
	var errOut bytes.Buffer
	code, _ := c.runAs(context.Background(), hostA, &errOut, "once")
	require.Equal(t, exitOK, code, errOut.String())
	require.Len(t, proposals(t, c), 1)
	errOut.Reset()
	code, _ = c.runAs(context.Background(), hostB, &errOut, "approve", "1")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut.String(), "was last written by host "+hostA)
	require.Equal(t, aliceUUID, containerProject(c), "nothing moved")
	require.Len(t, proposals(t, c), 1, "still waiting")
	errOut.Reset()
	code, _ = c.runAs(context.Background(), hostA, &errOut, "approve", "1")
	require.Equal(t, exitOK, code, errOut.String())
	require.NotEqual(t, aliceUUID, containerProject(c), "approved on its own host, it moves")
}
