package rules

import (
	"math"
	"math/big"
	"math/bits"
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
//
// Times count in whole milliseconds, as the store keeps them, and the sums
// are exact integers: the slope depends only on the samples, not on the
// order they were summed in, so a window kept up to date sample by sample
// (Trend) gives exactly the same slope.
func Growth(samples []quota.Sample, cur quota.Quota, curTime, now time.Time) float64 {
	from, to := now.Add(-forecastWindow).UnixNano(), now.UnixNano()
	// Samples are oldest first: skip those before the window at once.
	start := sort.Search(len(samples), func(i int) bool { return samples[i].Time.UnixNano() >= from })
	w, end := sumWindow(samples, start, to)
	withCur := false
	if !curTime.IsZero() {
		if ct := curTime.UnixNano(); ct >= from && ct <= to && (w.n == 0 || ct > w.lastNs) {
			w = w.add(floorMs(ct), cur.Usage)
			withCur = true
		}
	}
	if w.n < forecastMinN || time.Duration(w.last-w.t0)*time.Millisecond < forecastMinSpan {
		return 0
	}
	if w.n > exactMaxN {
		ts := make([]int64, 0, w.n)
		us := make([]int64, 0, w.n)
		for _, smp := range samples[start:end] {
			ts, us = append(ts, smp.Time.UnixMilli()), append(us, smp.Usage)
		}
		if withCur {
			ts, us = append(ts, curTime.UnixMilli()), append(us, cur.Usage)
		}
		return slowSlope(ts, us)
	}
	s := w.sums()
	return s.slope()
}

// window holds the sums of samples with times taken from the first one:
// a day of ms fits in 27 bits, so the square of a time fits in 64 and its
// product with a usage in 91, and each step is an add with carry.
type window struct {
	n, t0, last, lastNs int64
	sx                  int64
	sxxLo, sxxHi        uint64
	syLo, syHi          uint64
	sxyLo, sxyHi        uint64
}

// add returns w with the sample (ms, u) added.
func (w window) add(ms, u int64) window {
	if w.n == 0 {
		w.t0 = ms
	}
	d := uint64(ms - w.t0)
	w.n++
	w.last = ms
	w.sx += int64(d)
	var c uint64
	w.sxxLo, c = bits.Add64(w.sxxLo, d*d, 0)
	w.sxxHi += c
	w.syLo, c = bits.Add64(w.syLo, uint64(u), 0)
	w.syHi += c + uint64(u>>63)
	hi, lo := bits.Mul64(d, uint64(u))
	if u < 0 {
		hi -= d
	}
	w.sxyLo, c = bits.Add64(w.sxyLo, lo, 0)
	w.sxyHi += hi + c
	return w
}

func (w window) sums() sums {
	return sums{n: w.n, sx: i128of(w.sx), sy: i128{w.syHi, w.syLo}, sxx: i128{w.sxxHi, w.sxxLo}, sxy: i128{w.sxyHi, w.sxyLo}}
}

// sumWindow sums samples[i:] up to the time to (ns), in plain variables
// so the loop keeps them in registers (the count and the last time are
// found after it); it returns where it stopped.
func sumWindow(samples []quota.Sample, i int, to int64) (window, int) {
	if i >= len(samples) || samples[i].Time.UnixNano() > to {
		return window{}, i
	}
	start := i
	t0 := floorMs(samples[i].Time.UnixNano())
	var (
		sx                       int64
		sxxLo, sxxHi, syLo, syHi uint64
		sxyLo, sxyHi             uint64
	)
	for ; i < len(samples); i++ {
		ns := samples[i].Time.UnixNano()
		if ns > to {
			break
		}
		u := samples[i].Usage
		d := uint64(floorMs(ns) - t0)
		sx += int64(d)
		var c uint64
		sxxLo, c = bits.Add64(sxxLo, d*d, 0)
		sxxHi += c
		syLo, c = bits.Add64(syLo, uint64(u), 0)
		syHi += c + uint64(u>>63)
		hi, lo := bits.Mul64(d, uint64(u))
		if u < 0 {
			hi -= d
		}
		sxyLo, c = bits.Add64(sxyLo, lo, 0)
		sxyHi += hi + c
	}
	lastNs := samples[i-1].Time.UnixNano()
	return window{n: int64(i - start), t0: t0, last: floorMs(lastNs), lastNs: lastNs, sx: sx, sxxLo: sxxLo, sxxHi: sxxHi,
		syLo: syLo, syHi: syHi, sxyLo: sxyLo, sxyHi: sxyHi}, i
}

// floorMs is UnixMilli of a time given in UnixNano.
func floorMs(ns int64) int64 {
	if ns >= 0 {
		return int64(uint64(ns) / uint64(time.Millisecond))
	}
	ms := ns / int64(time.Millisecond)
	if ns%int64(time.Millisecond) < 0 {
		ms--
	}
	return ms
}

// exactMaxN is the most samples whose sums the 128-bit arithmetic holds
// exactly: a day's span in milliseconds is under 2^27 and a usage change
// under 2^64, so n·Σtu and Σt·Σu stay under 2^126 for n up to 2^17 (a
// poll every 0.66 s). Beyond it, the slope is computed with big integers.
const exactMaxN = 1 << 17

// sums are the least-squares sums of (time in ms, usage), modulo 2^128.
// The slope's numerator and denominator do not change when every time or
// every usage is shifted by a constant, and within one window their true
// values fit in 127 bits: computed modulo 2^128 from times and usages
// taken from any origin, they come out exact, however the sums were
// reached.
type sums struct {
	n                int64
	sx, sy, sxx, sxy i128
}

func (s *sums) add(t, u int64) {
	s.n++
	s.sx = s.sx.add(i128of(t))
	s.sy = s.sy.add(i128of(u))
	s.sxx = s.sxx.add(mul64(t, t))
	s.sxy = s.sxy.add(mul64(t, u))
}

func (s *sums) remove(t, u int64) {
	s.n--
	s.sx = s.sx.sub(i128of(t))
	s.sy = s.sy.sub(i128of(u))
	s.sxx = s.sxx.sub(mul64(t, t))
	s.sxy = s.sxy.sub(mul64(t, u))
}

// slope is the least-squares slope per day.
func (s *sums) slope() float64 {
	n := i128of(s.n)
	den := n.mul(s.sxx).sub(s.sx.mul(s.sx))
	if den.sign() <= 0 {
		return 0
	}
	num := n.mul(s.sxy).sub(s.sx.mul(s.sy))
	return ratioPerDay(num.float(), den.float())
}

func ratioPerDay(num, den float64) float64 {
	slope := num / den * float64(24*time.Hour/time.Millisecond)
	if math.IsNaN(slope) || math.IsInf(slope, 0) {
		return 0
	}
	return slope
}

// slowSlope computes the slope of more samples than the 128-bit sums hold,
// with big integers.
func slowSlope(ts, us []int64) float64 {
	var sx, sy, sxx, sxy, p big.Int
	for i, t := range ts {
		bt, bu := big.NewInt(t), big.NewInt(us[i])
		sx.Add(&sx, bt)
		sy.Add(&sy, bu)
		sxx.Add(&sxx, p.Mul(bt, bt))
		sxy.Add(&sxy, p.Mul(bt, bu))
	}
	n := big.NewInt(int64(len(ts)))
	var den, num, q big.Int
	den.Sub(q.Mul(n, &sxx), p.Mul(&sx, &sx))
	if den.Sign() <= 0 {
		return 0
	}
	num.Sub(q.Mul(n, &sxy), p.Mul(&sx, &sy))
	fn, _ := new(big.Float).SetInt(&num).Float64()
	fd, _ := new(big.Float).SetInt(&den).Float64()
	return ratioPerDay(fn, fd)
}

// i128 is a two's complement 128-bit integer; arithmetic wraps.
type i128 struct{ hi, lo uint64 }

func i128of(x int64) i128 { return i128{hi: uint64(x >> 63), lo: uint64(x)} }

func (a i128) add(b i128) i128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return i128{hi, lo}
}

func (a i128) sub(b i128) i128 {
	lo, c := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, c)
	return i128{hi, lo}
}

func (a i128) mul(b i128) i128 {
	hi, lo := bits.Mul64(a.lo, b.lo)
	hi += a.hi*b.lo + a.lo*b.hi
	return i128{hi, lo}
}

// mul64 is the full product of two int64.
func mul64(a, b int64) i128 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if a < 0 {
		hi -= uint64(b)
	}
	if b < 0 {
		hi -= uint64(a)
	}
	return i128{hi, lo}
}

func (a i128) sign() int {
	switch {
	case int64(a.hi) < 0:
		return -1
	case a.hi == 0 && a.lo == 0:
		return 0
	}
	return 1
}

// float converts to the nearest float64 but for the rounding of the low
// half: the same integer always gives the same float.
func (a i128) float() float64 {
	if a.sign() < 0 {
		return -i128{}.sub(a).float()
	}
	return float64(a.hi)*(1<<64) + float64(a.lo)
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
