package view

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// Plot geometry, in SVG user units: the viewBox and the plot area in it.
const (
	plotW      = 720
	plotH      = 220
	plotLeft   = 78
	plotRight  = plotW - 12
	plotTop    = 12
	plotBottom = plotH - 28
)

// Plot is the history of one series over a span, laid out for an SVG
// chart: the usage and the limit as step lines through the samples as
// stored, the rule thresholds, the moves, and labelled axes.
type Plot struct {
	// Series names the plotted series (account/project/resource).
	Series   string
	Resource string
	From, To time.Time
	// W and H are the viewBox; Left, Right, Top and Bottom the plot area.
	W, H, Left, Right, Top, Bottom float64
	// Usage is the polyline of the usage: each sample holds its value
	// until the next one, so a sample after the first adds two points.
	Usage string
	// Samples is how many samples Usage draws, Points how many points it
	// has (2*Samples-1).
	Samples, Points int
	// Limit is the polyline of the effective limit, empty when the series
	// has no limit.
	Limit string
	// LimitLabel is the latest limit in human units, LimitY its height.
	LimitLabel string
	LimitY     float64
	Thresholds []PlotLine
	Moves      []PlotMark
	XTicks     []PlotTick
	YTicks     []PlotTick
}

// PlotLine is a horizontal line across the plot.
type PlotLine struct {
	Y     float64
	Label string
}

// PlotMark is a move, marked at its time.
type PlotMark struct {
	X float64
	// Out is set for a move out of the plotted project, clear for one in.
	Out   bool
	Label string
}

// PlotTick is an axis label at a position along its axis.
type PlotTick struct {
	At    float64
	Label string
}

// Limited reports whether a quota has a real limit: Synnefo spells "no
// limit" as 2^63-1, and what others take from it does not make it one.
func Limited(q quota.Quota) bool {
	return !q.IsUnlimited() && q.EffectiveLimit() < quota.Unlimited/2
}

// NewPlot lays out samples (oldest first) of a resource over [from,to],
// with the thresholds as ratios of the latest limit and the moves that
// left or entered project. A series observed only since after from is
// drawn from its first sample, so that a young series is not a sliver at
// the right edge.
func NewPlot(resource, project string, samples []quota.Sample, from, to time.Time, thresholds []float64, moves []ActionRow) Plot {
	if len(samples) > 0 && samples[0].Time.After(from) && samples[0].Time.Before(to) {
		from = samples[0].Time
	}
	p := Plot{Resource: resource, From: from, To: to, W: plotW, H: plotH,
		Left: plotLeft, Right: plotRight, Top: plotTop, Bottom: plotBottom, Samples: len(samples)}
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	var top int64 = 1
	var limit int64 = -1
	for _, s := range samples {
		top = max(top, s.Usage)
		if Limited(s.Quota) {
			limit = s.EffectiveLimit()
			top = max(top, limit)
		}
	}
	top = top + top/20 // headroom above the highest line
	span := float64(to.Sub(from))
	x := func(t time.Time) float64 {
		return plotLeft + (plotRight-plotLeft)*math.Min(1, math.Max(0, float64(t.Sub(from))/span))
	}
	y := func(v int64) float64 {
		return plotBottom - (plotBottom-plotTop)*math.Min(1, math.Max(0, float64(v)/float64(top)))
	}

	var usage, lim strings.Builder
	hasLimit := false
	for i, s := range samples {
		xi := x(s.Time)
		if i > 0 {
			prev := samples[i-1]
			point(&usage, xi, y(prev.Usage))
			p.Points++
			if Limited(prev.Quota) && Limited(s.Quota) {
				point(&lim, xi, y(prev.EffectiveLimit()))
			}
		}
		point(&usage, xi, y(s.Usage))
		p.Points++
		if Limited(s.Quota) {
			point(&lim, xi, y(s.EffectiveLimit()))
			hasLimit = true
		}
	}
	p.Usage = usage.String()
	if hasLimit {
		p.Limit = lim.String()
		p.LimitLabel, p.LimitY = quota.FormatAmount(resource, limit), y(limit)
		for _, r := range thresholds {
			p.Thresholds = append(p.Thresholds, PlotLine{Y: y(int64(r * float64(limit))), Label: quota.FormatPercent(r)})
		}
	}
	for _, m := range moves {
		if m.Time.Before(from) || m.Time.After(to) || (m.From != project && m.To != project) {
			continue
		}
		if _, ok := m.Quantities[resource]; !ok && len(m.Quantities) > 0 {
			continue
		}
		dir := "in from " + NameOr(m.FromName, m.From)
		if m.From == project {
			dir = "out to " + NameOr(m.ToName, m.To)
		}
		label := Time(m.Time) + ": " + string(m.Kind) + " " + m.ItemName + " " + dir + " (" + string(m.State) + ")"
		p.Moves = append(p.Moves, PlotMark{X: x(m.Time), Out: m.From == project, Label: label})
	}
	p.YTicks = yTicks(resource, top, y)
	p.XTicks = xTicks(from, to, x)
	return p
}

func point(b *strings.Builder, x, y float64) {
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	var buf [32]byte
	b.Write(strconv.AppendFloat(buf[:0], x, 'f', 1, 64))
	b.WriteByte(',')
	b.Write(strconv.AppendFloat(buf[:0], y, 'f', 1, 64))
}

// yTicks labels the value axis at round steps from zero.
func yTicks(resource string, top int64, y func(int64) float64) []PlotTick {
	step := niceStep(top/5, quota.UnitOf(resource) == quota.Bytes)
	var out []PlotTick
	for v := int64(0); v <= top; v += step {
		out = append(out, PlotTick{At: y(v), Label: quota.FormatAmount(resource, v)})
	}
	return out
}

// niceStep rounds a step up to 1, 2, 2.5 or 5 times a power of ten (of
// the binary unit the amount is shown in, for bytes), so that axis labels
// read as round amounts.
func niceStep(raw int64, bytes bool) int64 {
	if raw < 1 {
		return 1
	}
	unit := int64(1)
	if bytes {
		for _, u := range []int64{quota.GiB, quota.MiB, quota.KiB} {
			if raw >= u {
				unit = u
				break
			}
		}
	}
	r := float64(raw) / float64(unit)
	for p := 1.0; ; p *= 10 {
		for _, m := range []float64{1, 2, 2.5, 5} {
			if m*p >= r && (unit > 1 || m*p == math.Trunc(m*p)) {
				return int64(m * p * float64(unit))
			}
		}
	}
}

// xTicks labels the time axis: at midnights for spans of days, at whole
// hours for shorter ones.
func xTicks(from, to time.Time, x func(time.Time) float64) []PlotTick {
	span := to.Sub(from)
	var step time.Duration
	layout := "15:04"
	switch {
	case span > 2*24*time.Hour:
		days := max(1, int(span/(24*time.Hour))/7)
		step, layout = time.Duration(days)*24*time.Hour, "Jan 02"
	case span > 12*time.Hour:
		step = 6 * time.Hour
	case span > 3*time.Hour:
		step = time.Hour
	case span > 45*time.Minute:
		step = 15 * time.Minute
	default:
		step = 5 * time.Minute
	}
	var out []PlotTick
	for t := from.UTC().Truncate(step); !t.After(to); t = t.Add(step) {
		if t.Before(from) {
			continue
		}
		out = append(out, PlotTick{At: x(t), Label: t.Format(layout)})
	}
	return out
}
