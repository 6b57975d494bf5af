package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExp(t *testing.T) {
	const huge = time.Duration(1<<63 - 1)
	tests := []struct {
		name        string
		base, limit time.Duration
		n           int
		want        time.Duration
	}{
		// The notification schedule: 10s doubling up to 10 minutes.
		{"notify n=-1", 10 * time.Second, 10 * time.Minute, -1, 10 * time.Second},
		{"notify n=0", 10 * time.Second, 10 * time.Minute, 0, 10 * time.Second},
		{"notify n=1", 10 * time.Second, 10 * time.Minute, 1, 20 * time.Second},
		{"notify n=2", 10 * time.Second, 10 * time.Minute, 2, 40 * time.Second},
		{"notify n=3", 10 * time.Second, 10 * time.Minute, 3, 80 * time.Second},
		{"notify n=5", 10 * time.Second, 10 * time.Minute, 5, 320 * time.Second},
		{"notify n=6", 10 * time.Second, 10 * time.Minute, 6, 10 * time.Minute},
		{"notify n=100", 10 * time.Second, 10 * time.Minute, 100, 10 * time.Minute},
		// The client's ceilings: 100ms doubling up to 1s.
		{"client n=3", 100 * time.Millisecond, time.Second, 3, 800 * time.Millisecond},
		{"client n=4", 100 * time.Millisecond, time.Second, 4, time.Second},
		{"exactly half the limit doubles to it", 300 * time.Second, 10 * time.Minute, 1, 10 * time.Minute},
		{"base above the limit", time.Minute, time.Second, 0, time.Second},
		{"zero base", 0, time.Second, 5, 0},
		{"no overflow", time.Duration(1) << 61, huge - 1, 1 << 40, huge - 1},
		{"no overflow without a limit", time.Duration(1) << 62, huge, 3, huge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Exp(tt.base, tt.limit, tt.n))
		})
	}
}

func TestFullJitter(t *testing.T) {
	var bounds []int64
	top := func(n int64) int64 { bounds = append(bounds, n); return n - 1 }
	require.Equal(t, 800*time.Millisecond, FullJitter(800*time.Millisecond, top), "the top of the range")
	require.Equal(t, []int64{int64(800*time.Millisecond) + 1}, bounds, "uniform in [0, d]")
	require.Equal(t, time.Duration(0), FullJitter(time.Second, func(int64) int64 { return 0 }), "the bottom of the range")
	require.Equal(t, time.Duration(0), FullJitter(0, func(int64) int64 { panic("not drawn") }))
	const huge = time.Duration(1<<63 - 1)
	require.Equal(t, huge-1, FullJitter(huge, top), "no overflow at the largest duration")
}

func TestSleep(t *testing.T) {
	require.NoError(t, Sleep(context.Background(), time.Millisecond))
	require.NoError(t, Sleep(context.Background(), 0))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Sleep(ctx, 0), context.Canceled, "an ended context is reported even with nothing to wait")
	start := time.Now()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	require.Less(t, time.Since(start), time.Minute, "an ended context cuts the wait short")
}
