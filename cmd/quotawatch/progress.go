package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// progressDelay is how long a once or plan runs before it says what it is
// doing: a quick one shows nothing.
const progressDelay = 2 * time.Second

// progress tells a person at a terminal what a long once or plan is doing,
// on one line of stderr it rewrites every second. A nil *progress does
// nothing: that is what a pipe, a file or the journal get.
type progress struct {
	w     io.Writer
	name  string
	start time.Time

	mu    sync.Mutex
	phase string
	shown bool
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// startProgress starts the line on w when w is a terminal a person
// watches, else returns nil.
func startProgress(w io.Writer, lookupEnv func(string) (string, bool), name, phase string) *progress {
	if !isTerminal(w, lookupEnv) {
		return nil
	}
	return newProgress(w, name, phase, progressDelay, time.Second)
}

func newProgress(w io.Writer, name, phase string, delay, every time.Duration) *progress {
	p := &progress{w: w, name: name, phase: phase, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		select {
		case <-time.After(delay):
		case <-p.stop:
			return
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			p.draw()
			select {
			case <-t.C:
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s: %s… %ds", p.name, p.phase, int(time.Since(p.start).Seconds()))
	p.shown = true
}

// set names what is being done now.
func (p *progress) set(phase string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase = phase
	p.mu.Unlock()
}

// clear rubs the line out, so that a log line or the report starts clean.
func (p *progress) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// end stops the line and rubs it out; it may be called again.
func (p *progress) end() {
	if p == nil {
		return
	}
	p.once.Do(func() { close(p.stop) })
	<-p.done
	p.clear()
}

// progressHandler passes records on to h, rubbing the progress line out
// before each one it writes.
type progressHandler struct {
	h slog.Handler
	p *progress
}

// watch is the watcher's Options.Progress for p: the phase it reports,
// with a count where it has one ("delivering 12 of 60").
func (p *progress) watch(phase string, done, total int) {
	if total > 0 {
		p.set(fmt.Sprintf("%s %d of %d", phase, done, total))
		return
	}
	p.set(phase)
}

func (h progressHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h progressHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.h.Enabled(ctx, r.Level) {
		return nil
	}
	h.p.clear()
	return h.h.Handle(ctx, r)
}

func (h progressHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return progressHandler{h: h.h.WithAttrs(as), p: h.p}
}

func (h progressHandler) WithGroup(name string) slog.Handler {
	return progressHandler{h: h.h.WithGroup(name), p: h.p}
}

// withProgress is log with p fed from it; log itself when p is nil.
func withProgress(log *slog.Logger, p *progress) *slog.Logger {
	if p == nil {
		return log
	}
	return slog.New(progressHandler{h: log.Handler(), p: p})
}

// progressFunc is p.watch, or nil when no line is shown.
func (p *progress) progressFunc() func(phase string, done, total int) {
	if p == nil {
		return nil
	}
	return p.watch
}
