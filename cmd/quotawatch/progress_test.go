package main

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer safe for the progress goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProgressNothingOnAPipe: on a pipe, a file or the journal there is no
// progress line, and the logger is the one given.
func TestProgressNothingOnAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	none := func(string) (string, bool) { return "", false }
	p := startProgress(w, none, "once", "polling 1 accounts")
	require.Nil(t, p)
	log := slog.New(slog.NewTextHandler(w, nil))
	require.Same(t, log, withProgress(log, p))
	p.set("moving")
	p.end()
	require.NoError(t, w.Close())
	var got bytes.Buffer
	_, err = got.ReadFrom(r)
	require.NoError(t, err)
	require.Empty(t, got.String())

	// A whole once on the CLI's buffers writes no progress either.
	c := newCLI(t)
	code, _, stderr := c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.NotContains(t, stderr, "\r")
	require.NotContains(t, stderr, "polling")
}

// TestProgressLine: on a terminal the line names the phase the watcher
// reports, with its count, and is rubbed out before a log line and at the
// end.
func TestProgressLine(t *testing.T) {
	var out lockedBuffer
	p := newProgress(&out, "plan", "polling 2 accounts", 0, 5*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "plan: polling 2 accounts… ") }, 5*time.Second, time.Millisecond)
	log := withProgress(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})), p)
	p.watch("delivering", 12, 60)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "plan: delivering 12 of 60… ") }, 5*time.Second, time.Millisecond)
	log.Debug("cycle recorded")
	require.NotContains(t, out.String(), "msg=\"cycle recorded\"", "a debug record is not written at info")
	log.Warn("slow")
	require.Eventually(t, func() bool {
		_, after, _ := strings.Cut(out.String(), "msg=slow\n")
		return strings.Contains(after, "delivering 12 of 60… ")
	}, 5*time.Second, time.Millisecond, "drawn again after the log line")
	p.end()
	s := out.String()
	require.Contains(t, s, "\r\033[Ktime=", "the line is rubbed out before a log line")
	require.True(t, strings.HasSuffix(s, "\r\033[K"), "and at the end: %q", s)
}
