// Package backoff computes the waits between retries: a ceiling that
// doubles per retry up to a maximum, and, for callers that want it, full
// jitter below that ceiling; and it waits them out.
package backoff

import (
	"context"
	"math"
	"time"
)

// Exp returns base doubled n times, capped at limit. A negative n counts
// as 0. It never overflows, however large n or base.
func Exp(base, limit time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for range max(n, 0) {
		if d >= limit {
			break
		}
		if d > limit/2 {
			return limit // doubling would pass limit (or overflow)
		}
		d *= 2
	}
	return min(d, limit)
}

// FullJitter returns a wait uniform in [0, d], the ceiling included. rand
// returns a uniform int64 in [0, n), such as math/rand/v2's Int64N; tests
// pass a deterministic one.
func FullJitter(d time.Duration, rand func(n int64) int64) time.Duration {
	if d <= 0 {
		return 0
	}
	n := int64(d)
	if n < math.MaxInt64 {
		n++
	}
	return time.Duration(rand(n))
}

// Sleep waits d, or until ctx ends and then returns its error. With d <= 0
// it only reports whether ctx has ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
