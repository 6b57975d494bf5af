package rules

import (
	"math"
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
	from := now.Add(-forecastWindow)
	addCur := !curTime.IsZero() && !curTime.Before(from)
	if len(samples) > 0 && !samples[len(samples)-1].Time.Before(curTime) {
		addCur = false
	}
	// Times are taken relative to the first sample and values relative to
	// its usage, which keeps the sums well inside float64 precision.
	var (
		n           int
		t0          time.Time
		u0          int64
		first, last time.Time
		sx, sy      float64
		sxx, sxy    float64
		accumulate  = func(t time.Time, u int64) {
			if n == 0 {
				t0, u0, first = t, u, t
			}
			x := t.Sub(t0).Hours() / 24
			y := float64(u) - float64(u0)
			n++
			last = t
			sx += x
			sy += y
			sxx += x * x
			sxy += x * y
		}
	)
	for i := range samples {
		s := &samples[i]
		if s.Time.Before(from) || s.Time.After(now) {
			continue
		}
		accumulate(s.Time, s.Usage)
	}
	if addCur {
		accumulate(curTime, cur.Usage)
	}
	if n < forecastMinN || last.Sub(first) < forecastMinSpan {
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
