package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/notify"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/watcher"
)

// The tests in this file build the watcher over in-memory fakes through
// the constructors of watcher.Options: no HTTP at all.

// fakeCloud is an account whose polls return fixed entries.
type fakeCloud struct {
	mu      sync.Mutex
	entries []quota.Entry
	polls   int
}

func (c *fakeCloud) setDiskUsage(usage, limit int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = []quota.Entry{{Project: alice, Resource: quota.DiskSpace, Quota: quota.Quota{
		Usage: usage, Limit: limit, ProjectUsage: usage, ProjectLimit: limit,
	}}}
}

func (c *fakeCloud) Authenticate(context.Context) (*client.Identity, error) {
	return &client.Identity{UserID: alice, UserName: "alice@example.org"}, nil
}

func (c *fakeCloud) QuotaEntries(context.Context) ([]quota.Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polls++
	return append([]quota.Entry(nil), c.entries...), nil
}

func (c *fakeCloud) Projects(context.Context, client.ProjectFilter) ([]client.Project, error) {
	return []client.Project{{ID: alice, Name: "system:" + alice, State: "active", SystemProject: true}}, nil
}

func (c *fakeCloud) Items(context.Context, quota.Kind, string) ([]quota.Item, error) {
	return nil, errors.New("fakeCloud: no items")
}

func (c *fakeCloud) Item(context.Context, quota.Kind, string) (quota.Item, error) {
	return quota.Item{}, errors.New("fakeCloud: no items")
}

func (c *fakeCloud) Reassign(context.Context, quota.Item, string) error {
	return errors.New("fakeCloud: no moves")
}

func (c *fakeCloud) UserCatalog(context.Context, []string) (map[string]string, error) {
	return map[string]string{alice: "alice@example.org"}, nil
}

// fakeServiceCloud is a service view with fixed project quotas.
type fakeServiceCloud struct{ quotas client.Quotas }

func (c *fakeServiceCloud) ServiceProjectQuotas(context.Context, ...string) (client.Quotas, error) {
	return c.quotas, nil
}

// recorder is a notifier that records what it got and answers with the
// outcome the test sets.
type recorder struct {
	mu      sync.Mutex
	got     [][]notify.Pending
	threads notify.Threads
	answer  func(notify.Pending) notify.Outcome // nil: delivered
}

func (r *recorder) Notify(_ context.Context, pending []notify.Pending, settle notify.Settle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, append([]notify.Pending(nil), pending...))
	for i, p := range pending {
		var o notify.Outcome
		if r.answer != nil {
			o = r.answer(p)
		}
		settle(i, i+1, o)
	}
}

func (r *recorder) calls() [][]notify.Pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]notify.Pending(nil), r.got...)
}

func (r *recorder) setAnswer(f func(notify.Pending) notify.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

const seamConfig = `cloud:
  auth_url: http://cloud.invalid/identity/v2.0
  accounts:
    - name: alice
      token: alice-token
%s
store:
  path: %s
http:
  listen: ""
notifiers:
  - name: ops
    slack:
      webhook_url: https://hooks.slack.invalid/services/T0/B0/secret
rules:
  - name: disk-full
    resource: pithos.diskspace
    when: ratio > 0.95
    clear: ratio < 0.90
    severity: critical
`

// fakes is a watcher over a fake cloud and a recording notifier.
type fakes struct {
	t       *testing.T
	clock   *clock
	cloud   *fakeCloud
	service *fakeServiceCloud
	ops     *recorder
	opts    watcher.Options
	w       *watcher.Watcher
}

func newFakes(t *testing.T, extra string) *fakes {
	t.Helper()
	cfg, err := config.Parse("config.yaml", fmt.Appendf(nil, seamConfig, extra, t.TempDir()+"/q.db"), config.Options{})
	require.NoError(t, err)
	f := &fakes{t: t, clock: newClock(), cloud: &fakeCloud{}, service: &fakeServiceCloud{}, ops: &recorder{}}
	f.cloud.setDiskUsage(99*gib, 100*gib)
	f.opts = watcher.Options{
		Config: cfg,
		Now:    f.clock.Now,
		NewCloud: func(a config.Account) (watcher.Cloud, error) {
			require.Equal(t, "alice", a.Name)
			return f.cloud, nil
		},
		NewServiceCloud: func(config.Cloud) (watcher.ServiceCloud, error) { return f.service, nil },
		NewNotifier: func(n config.Notifier, threads notify.Threads) (watcher.Notifier, error) {
			require.Equal(t, "ops", n.Name)
			f.ops.threads = threads
			return f.ops, nil
		},
	}
	f.start()
	return f
}

func (f *fakes) start() {
	f.t.Helper()
	w, err := watcher.New(context.Background(), f.opts)
	require.NoError(f.t, err)
	f.w = w
	f.t.Cleanup(func() { _ = w.Close() })
}

func (f *fakes) cycle() *watcher.Report {
	f.t.Helper()
	f.clock.Advance(5 * time.Minute)
	rep, err := f.w.Cycle(context.Background())
	require.NoError(f.t, err)
	require.False(f.t, rep.Failed(), "%+v", rep.Polls)
	return rep
}

func (f *fakes) outbox() (pending, dead int) {
	f.t.Helper()
	st := f.w.Store()
	pending, dead, err := st.OutboxLen()
	require.NoError(f.t, err)
	require.NoError(f.t, st.Release())
	return pending, dead
}

func TestFiringReachesNotifier(t *testing.T) {
	f := newFakes(t, "")
	rep := f.cycle()
	require.Equal(t, 1, f.cloud.polls)
	require.Equal(t, 1, countEvents(rep, quota.EventFiring, ""))
	calls := f.ops.calls()
	require.Len(t, calls, 1)
	require.Len(t, calls[0], 1)
	got := calls[0][0]
	require.Equal(t, quota.EventFiring, got.Event.Kind)
	require.Equal(t, quota.InstanceKey{Rule: "disk-full", Account: "alice", Project: alice, Resource: quota.DiskSpace}, got.Event.Key)
	require.Equal(t, "alice@example.org (personal)", got.Event.ProjectName, "a system project is shown by its user's e-mail")
	require.Zero(t, got.Attempts)
	require.Equal(t, 1, rep.Delivered)
	require.Zero(t, rep.Undelivered)
	pending, dead := f.outbox()
	require.Zero(t, pending)
	require.Zero(t, dead)

	// Nothing new: nothing is sent again.
	f.cycle()
	require.Len(t, f.ops.calls(), 1)
}

func TestDeliveryFailureKeepsMessage(t *testing.T) {
	tests := []struct {
		name          string
		outcome       func(now time.Time) notify.Outcome
		pending, dead int
		nextAttempts  int // of the message at the next cycle, if still pending
	}{
		{"retry at", func(now time.Time) notify.Outcome {
			return notify.Outcome{Err: errors.New("HTTP 503"), RetryAt: now.Add(time.Minute)}
		}, 1, 0, 1},
		{"no retry time: backoff", func(time.Time) notify.Outcome {
			return notify.Outcome{Err: errors.New("HTTP 503")}
		}, 1, 0, 1},
		{"paced: no attempt counted", func(now time.Time) notify.Outcome {
			return notify.Outcome{Err: fmt.Errorf("notify ops: pace: %w", notify.ErrPaced), RetryAt: now}
		}, 1, 0, 0},
		{"permanent: set aside", func(time.Time) notify.Outcome {
			return notify.Outcome{Err: errors.New("HTTP 404: no_service"), Permanent: true}
		}, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes(t, "")
			f.ops.setAnswer(func(notify.Pending) notify.Outcome { return tt.outcome(f.clock.Now()) })
			rep := f.cycle()
			require.Zero(t, rep.Delivered)
			require.Equal(t, tt.pending, rep.Undelivered)
			pending, dead := f.outbox()
			require.Equal(t, tt.pending, pending)
			require.Equal(t, tt.dead, dead)

			// Slack is back: a kept message goes at the next cycle (past
			// its retry time), in full, with its attempts counted.
			f.ops.setAnswer(nil)
			rep = f.cycle()
			calls := f.ops.calls()
			if tt.pending == 0 {
				require.Len(t, calls, 1, "a dead message is not retried")
				return
			}
			require.Len(t, calls, 2)
			require.Len(t, calls[1], 1)
			require.Equal(t, calls[0][0].Event, calls[1][0].Event)
			require.Equal(t, tt.nextAttempts, calls[1][0].Attempts)
			require.Equal(t, 1, rep.Delivered)
			require.Zero(t, rep.Undelivered)
		})
	}
}

// TestOutcomesSettleEachMessage: a notifier may deliver some messages and
// not others; each is settled by its own outcome, and a missing outcome
// counts as not delivered.
func TestOutcomesSettleEachMessage(t *testing.T) {
	f := newFakes(t, "")
	f.ops.setAnswer(func(notify.Pending) notify.Outcome { return notify.Outcome{Err: errors.New("down")} })
	f.cycle() // firing: kept
	f.cloud.setDiskUsage(10*gib, 100*gib)
	f.clock.Advance(time.Hour) // past the backoff of the firing
	n := 0
	f.ops.setAnswer(func(notify.Pending) notify.Outcome {
		n++
		if n == 1 {
			return notify.Outcome{} // the firing goes
		}
		return notify.Outcome{Err: errors.New("bad"), Permanent: true} // the resolution cannot
	})
	rep := f.cycle()
	calls := f.ops.calls()
	require.Len(t, calls, 2)
	require.Equal(t, []quota.EventKind{quota.EventFiring, quota.EventResolved},
		[]quota.EventKind{calls[1][0].Event.Kind, calls[1][1].Event.Kind}, "in the order enqueued")
	require.Equal(t, 1, rep.Delivered)
	pending, dead := f.outbox()
	require.Zero(t, pending)
	require.Equal(t, 1, dead)
}

func TestNotifierWithoutOutcomes(t *testing.T) {
	f := newFakes(t, "")
	f.opts.NewNotifier = func(config.Notifier, notify.Threads) (watcher.Notifier, error) {
		return notifierFunc(func([]notify.Pending) []notify.Outcome { return nil }), nil
	}
	require.NoError(t, f.w.Close())
	f.start()
	rep := f.cycle()
	require.Zero(t, rep.Delivered)
	require.Equal(t, 1, rep.Undelivered, "no outcome is no delivery")
}

// notifierFunc is a notifier that reports the outcomes f returns, one per
// event, in order; fewer outcomes leave the rest unreported.
type notifierFunc func([]notify.Pending) []notify.Outcome

func (f notifierFunc) Notify(_ context.Context, p []notify.Pending, settle notify.Settle) {
	for i, o := range f(p) {
		settle(i, i+1, o)
	}
}

// TestNotifierThreadsLiveInStore: the Threads a notifier is given keep an
// incident's thread in the store, per notifier, across restarts.
func TestNotifierThreadsLiveInStore(t *testing.T) {
	f := newFakes(t, "")
	ctx := context.Background()
	k := quota.InstanceKey{Rule: "disk-full", Account: "alice", Project: alice, Resource: quota.DiskSpace}
	_, ok, err := f.ops.threads.Thread(ctx, k)
	require.NoError(t, err)
	require.False(t, ok)
	th := notify.Thread{Channel: "C0OPS", TS: "1700000000.000100"}
	require.NoError(t, f.ops.threads.SetThread(ctx, k, th))

	require.NoError(t, f.w.Close())
	f.start()
	got, ok, err := f.ops.threads.Thread(ctx, k)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, th, got)
	st := f.w.Store()
	stored, ok, err := st.Thread("ops", k)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, th.TS, stored.TS)
	_, ok, err = st.Thread("other", k)
	require.NoError(t, err)
	require.False(t, ok, "threads are per notifier")
	require.NoError(t, st.Release())
}

func TestServiceCloudSeam(t *testing.T) {
	f := newFakes(t, "  service_token: service-token")
	f.service.quotas = client.Quotas{"c5333a1b-2f4e-4d6a-8b9c-0e1f2a3b4c5d": {
		quota.DiskSpace: {ProjectUsage: 99 * gib, ProjectLimit: 100 * gib},
	}}
	rep := f.cycle()
	var accounts []string
	for _, p := range rep.Polls {
		accounts = append(accounts, p.Account)
	}
	require.Equal(t, []string{"alice", watcher.ServiceAccount}, accounts)
	firing := map[string]bool{}
	for _, ev := range rep.Events {
		if ev.Kind == quota.EventFiring {
			firing[ev.Key.Account+"/"+ev.Key.Project] = true
		}
	}
	require.True(t, firing[watcher.ServiceAccount+"/"+cs333], "%+v", rep.Events)
}

func TestSeamErrorsAreWrapped(t *testing.T) {
	f := newFakes(t, "")
	boom := errors.New("boom")
	tests := []struct {
		name string
		set  func(o *watcher.Options)
		want string
	}{
		{"cloud", func(o *watcher.Options) {
			o.NewCloud = func(config.Account) (watcher.Cloud, error) { return nil, boom }
		}, "account alice: boom"},
		{"notifier", func(o *watcher.Options) {
			o.NewNotifier = func(config.Notifier, notify.Threads) (watcher.Notifier, error) { return nil, boom }
		}, "notifier ops: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.opts
			o.Store = f.w.Store() // the file is the running watcher's
			tt.set(&o)
			_, err := watcher.New(context.Background(), o)
			require.ErrorIs(t, err, boom)
			require.EqualError(t, err, tt.want)
		})
	}
}
