package rules

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// floatGrowth is Growth as it was computed before its sums were exact:
// float64 sums relative to the first sample, in nanoseconds.
func floatGrowth(samples []quota.Sample, cur quota.Quota, curTime, now time.Time) float64 {
	from, to := now.Add(-forecastWindow).UnixNano(), now.UnixNano()
	var (
		n                    int
		t0, first, last      int64
		u0, sx, sy, sxx, sxy float64
	)
	add := func(t int64, u int64) {
		if n == 0 {
			t0, first, u0 = t, t, float64(u)
		}
		x := float64(t-t0) / float64(24*time.Hour)
		y := float64(u) - u0
		n++
		last = t
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	i := sort.Search(len(samples), func(i int) bool { return samples[i].Time.UnixNano() >= from })
	for ; i < len(samples) && samples[i].Time.UnixNano() <= to; i++ {
		add(samples[i].Time.UnixNano(), samples[i].Usage)
	}
	if !curTime.IsZero() {
		if ct := curTime.UnixNano(); ct >= from && ct <= to && (n == 0 || ct > last) {
			add(ct, cur.Usage)
		}
	}
	if n < forecastMinN || time.Duration(last-first) < forecastMinSpan {
		return 0
	}
	fn := float64(n)
	den := fn*sxx - sx*sx
	if den <= 0 {
		return 0
	}
	return (fn*sxy - sx*sy) / den
}

// randomWalk returns usage samples at irregular polls of whole
// milliseconds: steps of a few units of scale, now and then a jump or a
// missing poll.
func randomWalk(rng *rand.Rand, start time.Time, n int, scale int64) []quota.Sample {
	out := make([]quota.Sample, 0, n)
	t := start
	u := rng.Int64N(1000) * scale
	for range n {
		t = t.Add(5*time.Minute + time.Duration(rng.IntN(20_000)-10_000)*time.Millisecond)
		if rng.IntN(30) == 0 {
			t = t.Add(time.Duration(rng.IntN(4)) * time.Hour)
		}
		switch rng.IntN(10) {
		case 0:
			u += rng.Int64N(200) * scale
		case 1, 2, 3:
			u += (rng.Int64N(7) - 3) * scale
		}
		out = append(out, quota.Sample{Time: t, Quota: quota.Quota{Usage: max(u, 0)}})
	}
	return out
}

// The exact sums give the slope the float sums gave, up to their rounding.
func TestGrowthAgreesWithFloatSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	checked := 0
	for _, scale := range []int64{1, quota.MiB, quota.GiB, 1 << 50} {
		for range 50 {
			ss := randomWalk(rng, start, 300+rng.IntN(300), scale)
			for k := 0; k < len(ss); k += 7 {
				now := ss[k].Time
				cur := quota.Quota{Usage: ss[k].Usage + rng.Int64N(3)*scale}
				curTime := now.Add(-time.Duration(rng.IntN(2)) * time.Minute)
				got := Growth(ss, cur, curTime, now)
				want := floatGrowth(ss, cur, curTime, now)
				require.InDelta(t, want, got, 1e-9*math.Max(1, math.Abs(want)), "now %s", now)
				if want != 0 {
					checked++
				}
			}
		}
	}
	require.Greater(t, checked, 1000)
}

// A Trend kept up to date poll by poll gives exactly what Growth gives over
// the window's samples.
func TestTrendIsGrowth(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, scale := range []int64{1, quota.GiB, 1 << 60} {
		for range 20 {
			ss := randomWalk(rng, start, 1000, scale)
			if scale == 1<<60 {
				// Usages across the whole int64 range.
				for i := range ss {
					ss[i].Usage = int64(rng.Uint64())
				}
			}
			var tr Trend
			for k, s := range ss {
				tr.Add(s.Time, s.Usage)
				now := s.Time.Add(time.Duration(rng.IntN(3)) * time.Minute)
				cur := quota.Quota{Usage: s.Usage + scale}
				var curTime time.Time
				if rng.IntN(2) == 0 {
					curTime = now
				}
				want := Growth(ss[:k+1], cur, curTime, now)
				require.Equal(t, want, tr.Growth(cur, curTime, now), "sample %d", k)
			}
			require.LessOrEqual(t, tr.Len(), 24*12+2)
		}
	}
	var empty Trend
	require.Zero(t, empty.Growth(quota.Quota{}, time.Time{}, start))
}

// Past what 128 bits hold, the slope is still the exact one.
func TestGrowthOfManySamples(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	n := exactMaxN + 10
	ss := make([]quota.Sample, n)
	var tr Trend
	for i := range ss {
		ss[i] = quota.Sample{Time: start.Add(time.Duration(i) * 600 * time.Millisecond), Quota: quota.Quota{Usage: int64(i) * 10}}
		tr.Add(ss[i].Time, ss[i].Usage)
	}
	now := ss[n-1].Time
	// 10 per 0.6 s is 1,440,000 a day.
	require.InDelta(t, 1_440_000, Growth(ss, quota.Quota{}, time.Time{}, now), 1e-6)
	require.Equal(t, Growth(ss, quota.Quota{}, time.Time{}, now), tr.Growth(quota.Quota{}, time.Time{}, now))
	var s sums
	for _, x := range ss[:1000] {
		s.add(x.Time.UnixMilli(), x.Usage)
	}
	ts, us := make([]int64, 1000), make([]int64, 1000)
	for i, x := range ss[:1000] {
		ts[i], us[i] = x.Time.UnixMilli(), x.Usage
	}
	require.InDelta(t, slowSlope(ts, us), s.slope(), 1e-6)
}
