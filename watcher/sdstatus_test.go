package watcher

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestStatusLine(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 5, 0, 0, time.UTC)
	row := func(st quota.ActionState, dry, skipped bool) PlanRow {
		return PlanRow{State: st, DryRun: dry, Skipped: skipped}
	}
	tests := []struct {
		name   string
		rep    Report
		firing int
		want   string
	}{
		{"quiet", Report{Start: start}, 0, "last cycle 12:05:00Z: 0 firing, 0 moved, 0 undelivered"},
		{"moves", Report{Start: start.In(time.FixedZone("EET", 7200)), Undelivered: 2, Plan: []PlanRow{
			row(quota.ActionVerified, false, false), row(quota.ActionApplied, false, false),
			row(quota.ActionFailed, false, false), row("", false, true),
		}}, 3, "last cycle 12:05:00Z: 3 firing, 2 moved, 2 undelivered, 1 moves failed"},
		{"dry run", Report{Start: start, DryRun: true, Plan: []PlanRow{row("", true, false)}}, 1,
			"last cycle 12:05:00Z: 1 firing, 0 moved, 0 undelivered, 1 planned (dry run)"},
		{"poll failed, interrupted", Report{Start: start, Interrupted: true, Polls: []PollResult{{OK: true}, {OK: false}}}, 0,
			"last cycle 12:05:00Z: 0 firing, 0 moved, 0 undelivered, 1 polls failed, interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, statusLine(&tt.rep, tt.firing))
		})
	}
}
