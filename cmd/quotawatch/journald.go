package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// onJournal reports whether w is the process's stderr and systemd connected
// stderr to the journal (JOURNAL_STREAM names its device and inode).
func onJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f != os.Stderr {
		return false
	}
	j, _ := journal.StderrIsJournalStream()
	return j
}

// Syslog priorities, as journald reads them from a "<N>" line prefix.
const (
	prioErr     = 3
	prioWarning = 4
	prioInfo    = 6
	prioDebug   = 7
)

// priority maps a slog level to the syslog priority of its lines, so that
// `journalctl -p warning` shows warnings and errors.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return prioErr
	case l >= slog.LevelWarn:
		return prioWarning
	case l >= slog.LevelInfo:
		return prioInfo
	}
	return prioDebug
}

// priorityHandler prefixes every record's line with "<N>", the way
// sd-daemon(3) describes for programs that log to stderr under systemd.
// slog's handlers write each record with one Write; holding the writer's
// lock around Handle ties that Write to the record's level.
type priorityHandler struct {
	h slog.Handler
	w *priorityWriter
}

// priorityWriter writes every line with the prefix of the record being
// handled. It is shared by a handler and those derived from it.
type priorityWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

func (p *priorityWriter) Write(b []byte) (int, error) {
	p.buf = append(append(p.buf[:0], p.prefix...), b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (h priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.h.Enabled(ctx, l)
}

func (h priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.prefix = append(strconv.AppendInt(append(h.w.prefix[:0], '<'), int64(priority(r.Level)), 10), '>')
	return h.h.Handle(ctx, r)
}

func (h priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return priorityHandler{h: h.h.WithAttrs(as), w: h.w}
}

func (h priorityHandler) WithGroup(name string) slog.Handler {
	return priorityHandler{h: h.h.WithGroup(name), w: h.w}
}
