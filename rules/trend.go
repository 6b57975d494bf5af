package rules

import (
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// Trend is one series' usage over the forecast window, sample by sample,
// with its least-squares sums: adding the newest sample and dropping those
// that left the window cost constant time, where Growth reads every sample
// of the window at every call. Its Growth is exactly Growth over the same
// samples, since both sum exact integers. The zero Trend is empty.
type Trend struct {
	ts, us []int64 // times (ms) and usages; [off:] are held
	off    int
	s      sums
}

// Add appends a sample; it must be later than every sample held.
func (tr *Trend) Add(t time.Time, usage int64) {
	ms := t.UnixMilli()
	tr.ts = append(tr.ts, ms)
	tr.us = append(tr.us, usage)
	tr.s.add(ms, usage)
}

// Len is the number of samples held.
func (tr *Trend) Len() int { return len(tr.ts) - tr.off }

// Last is the time of the newest sample held; ok is false when empty.
func (tr *Trend) Last() (t time.Time, ok bool) {
	if tr.Len() == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(tr.ts[len(tr.ts)-1]).UTC(), true
}

// Reset empties the trend, keeping its space.
func (tr *Trend) Reset() {
	tr.ts, tr.us, tr.off, tr.s = tr.ts[:0], tr.us[:0], 0, sums{}
}

// Growth is Growth(samples, cur, curTime, now) over the samples held. It
// drops the samples older than now's window for good, so now must not go
// back from one call to the next. Samples held after now are not read.
func (tr *Trend) Growth(cur quota.Quota, curTime, now time.Time) float64 {
	from := now.Add(-forecastWindow).UnixNano()
	for tr.off < len(tr.ts) && tr.ts[tr.off]*int64(time.Millisecond) < from {
		tr.s.remove(tr.ts[tr.off], tr.us[tr.off])
		tr.off++
	}
	if tr.off > 32 && tr.off > len(tr.ts)/2 {
		// Move the held samples down once half the space is dropped.
		n := copy(tr.ts, tr.ts[tr.off:])
		copy(tr.us, tr.us[tr.off:])
		tr.ts, tr.us, tr.off = tr.ts[:n], tr.us[:n], 0
	}
	ts, us := tr.ts[tr.off:], tr.us[tr.off:]
	if len(ts) > 0 && ts[len(ts)-1]*int64(time.Millisecond) > now.UnixNano() {
		return Growth(tr.samples(), cur, curTime, now)
	}
	s := tr.s
	var first, last int64
	if len(ts) > 0 {
		first, last = ts[0], ts[len(ts)-1]
	}
	if !curTime.IsZero() {
		if ct := curTime.UnixNano(); ct >= from && ct <= now.UnixNano() && (s.n == 0 || ct > last*int64(time.Millisecond)) {
			if s.n == 0 {
				first = curTime.UnixMilli()
			}
			last = curTime.UnixMilli()
			s.add(last, cur.Usage)
			if s.n > exactMaxN {
				return slowSlope(append(ts[:len(ts):len(ts)], last), append(us[:len(us):len(us)], cur.Usage))
			}
		}
	}
	if s.n < forecastMinN || time.Duration(last-first)*time.Millisecond < forecastMinSpan {
		return 0
	}
	if s.n > exactMaxN {
		return slowSlope(ts, us)
	}
	return s.slope()
}

// samples returns the held samples as Growth takes them.
func (tr *Trend) samples() []quota.Sample {
	out := make([]quota.Sample, 0, tr.Len())
	for i := tr.off; i < len(tr.ts); i++ {
		out = append(out, quota.Sample{Time: time.UnixMilli(tr.ts[i]).UTC(), Quota: quota.Quota{Usage: tr.us[i]}})
	}
	return out
}
