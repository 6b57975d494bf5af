package rules

import (
	"math"
	"sort"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// Forecast window and the least history that makes a trend.
const (
	forecastWindow  = 24 * time.Hour
	forecastMinN    = 3
	forecastMinSpan = time.Hour
)

// Growth returns the least-squares slope of usage over the samples of the
// last 24h before now, in the resource's unit per day. cur, observed at
// curTime, is added when the history does not already end with it. Fewer
// than 3 samples, or samples spanning less than an hour, give 0.
func Growth(samples []quota.Sample, cur quota.Quota, curTime, now time.Time) float64 {
	// Times are taken in nanoseconds relative to the first sample and values
	// relative to its usage, which keeps the sums well inside float64
	// precision and the loop free of time.Time arithmetic.
	from, to := now.Add(-forecastWindow).UnixNano(), now.UnixNano()
	var (
		n         int
		t0, first int64
		last      int64
		u0        float64
		sx, sy    float64
		sxx, sxy  float64
	)
	add := func(t int64, u int64) {
		if n == 0 {
			t0, first, u0 = t, t, float64(u)
		}
		x := float64(t-t0) / float64(24*time.Hour)
		y := float64(u) - u0
		n++
		last = t
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	// Samples are oldest first: skip those before the window at once.
	i := sort.Search(len(samples), func(i int) bool { return samples[i].Time.UnixNano() >= from })
	for ; i < len(samples); i++ {
		t := samples[i].Time.UnixNano()
		if t > to {
			break
		}
		add(t, samples[i].Usage)
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
	slope := (fn*sxy - sx*sy) / den
	if math.IsNaN(slope) || math.IsInf(slope, 0) {
		return 0
	}
	return slope
}

// DaysToFull is headroom / growth per day: 0 when already full, +Inf when
// usage is not growing.
func DaysToFull(headroom int64, growthPerDay float64) float64 {
	switch {
	case headroom <= 0:
		return 0
	case growthPerDay <= 0:
		return math.Inf(1)
	}
	return float64(headroom) / growthPerDay
}
