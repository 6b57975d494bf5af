package notify

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/internal/testutil"
	"github.com/quotawatch/quotawatch/quota"
)

// t0 is the clock of every test.
var t0 = time.Date(2026, 11, 26, 15, 4, 0, 0, time.UTC)

const (
	sysID   = "0f2c4a9e-5b1d-4c3e-9a7f-2d8e6b1c0a55"
	sysName = "system:0f2c4a9e-5b1d-4c3e-9a7f-2d8e6b1c0a55"
	labID   = "7d3e1f20-8c4b-4a6d-b2e9-5f1a0c3d7e88"
	labName = "CS333 lab assignments"
)

func testOptions(t *testing.T) (Options, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	return Options{
		Rate:   rate.Inf,
		Now:    func() time.Time { return t0 },
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, logs
}

func diskQuota(usage, limit int64) quota.Quota {
	return quota.Quota{Usage: usage, Limit: limit, ProjectUsage: usage, ProjectLimit: limit}
}

func key(rule string) quota.InstanceKey {
	return quota.InstanceKey{Rule: rule, Account: "alice", Project: sysID, Resource: quota.DiskSpace}
}

// containerMove is the demo's rebalance: course_container leaves the full
// system project for the lab project.
func containerMove() *quota.Move {
	const size = 20615843020 // 19.2 GiB
	return &quota.Move{
		Rule: "container-rebalance", Account: "alice", Kind: quota.KindContainer,
		ItemID: "course_container", ItemName: "course_container",
		From: sysID, FromName: sysName, To: labID, ToName: labName,
		Quantities:   quota.ContainerQuantities(size),
		Resource:     quota.DiskSpace,
		SourceBefore: diskQuota(21045339750, 20*quota.GiB),
		SourceAfter:  diskQuota(21045339750-size, 20*quota.GiB),
		DestBefore:   diskQuota(5*quota.GiB, 50*quota.GiB),
		DestAfter:    diskQuota(5*quota.GiB+size, 50*quota.GiB),
	}
}

// sampleEvents has one event of each kind, by golden file name.
func sampleEvents() map[string]quota.Event {
	firing := quota.Event{
		Kind: quota.EventFiring, Time: t0, Key: key("container-rebalance"), Severity: quota.Warning,
		Description: "Move a container out of a project that is nearly full",
		ProjectName: sysName, Quota: diskQuota(21045339750, 20*quota.GiB),
		GrowthPerDay: 1.2 * float64(quota.GiB), DaysToFull: 0.4,
		Since: t0.Add(-10 * time.Minute),
	}
	repeat := firing
	repeat.Repeat = true
	repeat.Since = t0.Add(-26*time.Hour - 30*time.Minute)
	repeat.GrowthPerDay, repeat.DaysToFull = 0, quota.Never

	resolved := firing
	resolved.Kind = quota.EventResolved
	resolved.Quota = diskQuota(429496730, 20*quota.GiB)
	resolved.GrowthPerDay, resolved.DaysToFull = 0, quota.Never
	resolved.Since = t0.Add(-2*time.Hour - 15*time.Minute)

	applied := firing
	applied.Kind, applied.Result, applied.Move = quota.EventAction, quota.ResultApplied, containerMove()

	failed := applied
	failed.Result = quota.ResultFailed
	failed.Reason = `reassign container course_container: 413 {"overLimit": {"message": "Resource Limit Exceeded for your account.", "code": 413}}`

	skipped := firing
	skipped.Kind, skipped.Result = quota.EventAction, quota.ResultSkipped
	skipped.Reason = "no project with 19.2 GiB headroom for course_container"

	// A refusal about one item, as the planner reports it: no destination.
	skippedItem := skipped
	skippedItem.Move = &quota.Move{
		Rule: "container-rebalance", Account: "alice", Kind: quota.KindContainer,
		ItemID: "course_container", ItemName: "course_container", From: sysID, FromName: sysName,
		Resource: quota.DiskSpace, SourceBefore: firing.Quota, SourceAfter: firing.Quota,
	}

	dry := applied
	dry.DryRun = true

	pollFailed := quota.Event{
		Kind: quota.EventPollFailed, Time: t0, Key: quota.InstanceKey{Account: "alice"},
		Since:  t0.Add(-15 * time.Minute),
		Reason: "GET /account/v1.0/quotas: HTTP 503 Service Unavailable",
	}
	pollRecovered := pollFailed
	pollRecovered.Kind = quota.EventPollRecovered
	pollRecovered.Since = t0.Add(-25 * time.Minute)

	vm := applied
	vm.Key.Resource = quota.CPU
	vm.Move = &quota.Move{
		Rule: "vm-rebalance", Account: "alice", Kind: quota.KindServer, ItemID: "4242", ItemName: "vm1",
		From: sysID, FromName: sysName, To: labID, ToName: labName,
		Quantities: quota.ServerQuantities(2, 2048, 20, true), Resource: quota.CPU,
		SourceBefore: quota.Quota{Usage: 8, Limit: 8, ProjectUsage: 8, ProjectLimit: 8},
		SourceAfter:  quota.Quota{Usage: 6, Limit: 8, ProjectUsage: 6, ProjectLimit: 8},
		DestBefore:   quota.Quota{Usage: 2, Limit: 16, ProjectUsage: 10, ProjectLimit: 64},
		DestAfter:    quota.Quota{Usage: 4, Limit: 16, ProjectUsage: 12, ProjectLimit: 64},
	}
	return map[string]quota.Event{
		"firing":                firing,
		"repeat":                repeat,
		"resolved":              resolved,
		"action_applied":        applied,
		"action_failed":         failed,
		"action_skipped":        skipped,
		"action_skipped_item":   skippedItem,
		"dry_run":               dry,
		"poll_failed":           pollFailed,
		"poll_recovered":        pollRecovered,
		"action_applied_server": vm,
	}
}

// splitEvents is how many events of manyEvents a batch needs three
// messages for.
const splitEvents = 150

// manyEvents returns n firing events on distinct projects.
func manyEvents(n int) []quota.Event {
	base := sampleEvents()["firing"]
	out := make([]quota.Event, n)
	for i := range out {
		ev := base
		ev.Key.Project = "project-" + string(rune('a'+i%26)) + "-" + strconv.Itoa(i)
		ev.ProjectName = "Project " + strconv.Itoa(i)
		out[i] = ev
	}
	return out
}

// notifier is what Webhook and Bot share.
type notifier interface {
	Notify(ctx context.Context, pending []Pending, settle Settle)
}

// collect runs n.Notify and returns the outcome of each event, in order,
// checking that each was reported once and in order; an event never
// reported has the zero Outcome's opposite, errNotDelivered.
func collect(t *testing.T, n notifier, ctx context.Context, pending []Pending) []Outcome {
	t.Helper()
	out := make([]Outcome, len(pending))
	for i := range out {
		out[i] = Outcome{Err: errNotDelivered}
	}
	next := 0
	n.Notify(ctx, pending, func(from, to int, o Outcome) {
		require.Equal(t, next, from, "reported in order, each once")
		require.Greater(t, to, from)
		for i := from; i < to; i++ {
			out[i] = o
		}
		next = to
	})
	return out
}
