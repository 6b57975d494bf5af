package watcher_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
	"github.com/quotawatch/quotawatch/watcher"
)

// hookedCloud is the real client with a hook run after every reassign
// call, whatever its answer.
type hookedCloud struct {
	watcher.Cloud
	after func()
}

func (c *hookedCloud) Reassign(ctx context.Context, it quota.Item, project string) error {
	err := c.Cloud.Reassign(ctx, it, project)
	if c.after != nil {
		c.after()
	}
	return err
}

// startHooked replaces the harness's watcher with one whose account calls
// go through a hookedCloud.
func (h *harness) startHooked() *hookedCloud {
	h.t.Helper()
	require.NoError(h.t, h.w.Close())
	hc := &hookedCloud{}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := watcher.New(context.Background(), watcher.Options{
		Config: h.cfg, Now: h.clock.Now, NotifyRate: 1000, Logger: log,
		NewCloud: func(a config.Account) (watcher.Cloud, error) {
			c, err := client.New(client.Config{AuthURL: h.cfg.Cloud.AuthURL, Token: a.Token.Reveal()})
			hc.Cloud = c
			return hc, err
		},
	})
	require.NoError(h.t, err)
	h.w = w
	h.t.Cleanup(func() { _ = w.Close() })
	require.NoError(h.t, w.Reconcile(context.Background()))
	return hc
}

// The watcher counts the journal as unsettled from the moment an intent is
// journaled: when the outcome cannot be recorded (the store fails between
// the intent and the outcome) or the cycle panics after the call, the next
// cycle, not only the next start, reads the move back and tells it.
func TestOutcomeNotRecordedIsSettledNextCycle(t *testing.T) {
	tests := []struct {
		name string
		// lose makes the cycle lose the outcome after the call; it returns
		// what puts things right again.
		lose func(h *harness) (after func(), restore func())
		// panics is set when the cycle panics rather than failing.
		panics bool
	}{
		{"the outcome's commit fails", func(h *harness) (func(), func()) {
			db := filepath.Join(h.dir, "quotawatch.db")
			var reader *store.Store
			poison := func() {
				// The file is let go and a reader holds it past the
				// writer's lock timeout, so the commit of the outcome
				// fails as a full or failing disk would fail it, with
				// the store itself intact.
				require.NoError(h.t, h.w.Store().Release())
				var err error
				reader, err = store.Open(db, store.Options{ReadOnly: true})
				require.NoError(h.t, err)
				_, err = reader.Accounts() // holds the file open
				require.NoError(h.t, err)
			}
			restore := func() { require.NoError(h.t, reader.Close()) }
			return poison, restore
		}, false},
		{"the cycle panics after the call", func(*harness) (func(), func()) {
			return func() { panic("after the call") }, func() {}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "seed.yaml", rulesSeed)
			hc := h.startHooked()
			after, restore := tt.lose(h)
			hc.after = after
			h.clock.Advance(5 * time.Minute)
			if tt.panics {
				require.Panics(t, func() { _, _ = h.w.Cycle(context.Background()) })
			} else {
				_, err := h.w.Cycle(context.Background())
				require.ErrorContains(t, err, "record move")
			}
			hc.after = nil
			restore()
			require.Equal(t, cs333, h.container("course_container").Project, "the cloud moved it")
			acts := h.journal()
			require.Len(t, acts, 1)
			require.Equal(t, quota.ActionIntent, acts[0].State, "the outcome was lost")
			require.Empty(t, h.slackTexts(), "nothing told yet")

			h.cycle()
			acts = h.journal()
			require.Len(t, acts, 1)
			require.Equal(t, quota.ActionVerified, acts[0].State, "settled by the next cycle")
			told := 0
			for _, txt := range h.slackTexts() {
				if strings.Contains(txt, "course_container") {
					told++
				}
			}
			require.Equal(t, 1, told, "announced once: %q", h.slackTexts())
			h.cycle()
			require.Len(t, h.journal(), 1)
		})
	}
}

// A dry-run intent left open (its report could not be recorded) was never
// sent: reconcile settles it as the report it was, told as a dry run,
// without reading the cloud or waiting for the settle window.
func TestOpenDryRunIntentIsSettledAsReported(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	st := h.w.Store()
	_, err := st.Intent(quota.Action{Time: h.clock.Now(), DryRun: true, Move: quota.Move{
		Rule: "container-rebalance", Account: "alice", Kind: quota.KindContainer,
		ItemID: "course_container", ItemName: "course_container", From: alice, To: cs333,
		ToName: "CS333 lab assignments", Resource: quota.DiskSpace,
		Quantities: quota.ContainerQuantities(20615843020),
	}})
	require.NoError(t, err)
	require.NoError(t, st.Release())
	h.cloud.Cloud.ResetRequests()
	h.restart()
	acts := h.journal()
	require.Len(t, acts, 1)
	require.Equal(t, quota.ActionApplied, acts[0].State)
	for _, r := range h.cloud.Cloud.Requests() {
		require.False(t, strings.HasPrefix(r.Path, "/object-store"), "the cloud is not asked: %+v", r)
	}
	h.cfg.DryRun = true // the cycle reports, and delivers the settled report
	h.restart()
	h.cycle()
	require.Contains(t, strings.Join(h.slackTexts(), "\n"), "DRY RUN")
}

// TestProgressIsToldAsTheCycleGoes: Options.Progress hears each phase of a
// cycle, with its count where it has one, ending with every message sent.
func TestProgressIsToldAsTheCycleGoes(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	var mu sync.Mutex
	var got []string
	h.progress = func(phase string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s %d/%d", phase, done, total))
	}
	h.restart()
	rep := h.cycle()
	require.Len(t, moves(rep), 1)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, "polling 0/1", got[0], "%q", got)
	require.Contains(t, got, "planning 0/0")
	require.Contains(t, got, "moving 0/1")
	last := got[len(got)-1]
	require.Regexp(t, `^delivering (\d+)/(\d+)$`, last)
	var done, total int
	_, err := fmt.Sscanf(last, "delivering %d/%d", &done, &total)
	require.NoError(t, err)
	require.Equal(t, total, done, "every message was sent: %q", got)
	require.Positive(t, total)
}
