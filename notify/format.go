package notify

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quotawatch/quotawatch/quota"
)

const kiB int64 = 1 << 10

// formatAmount renders n of resource in human units: bytes as GiB, MiB or
// KiB with one decimal, counts plain, Synnefo's 2^63-1 as "unlimited".
func formatAmount(resource string, n int64) string {
	if n == quota.Unlimited {
		return "unlimited"
	}
	if quota.UnitOf(resource) == quota.Bytes {
		return formatBytes(n)
	}
	return strconv.FormatInt(n, 10)
}

func formatBytes(n int64) string {
	sign := ""
	f := float64(n)
	if n < 0 {
		sign, f = "-", -f
	}
	switch {
	case f >= float64(quota.GiB):
		return fmt.Sprintf("%s%.1f GiB", sign, f/float64(quota.GiB))
	case f >= float64(quota.MiB):
		return fmt.Sprintf("%s%.1f MiB", sign, f/float64(quota.MiB))
	case f >= float64(kiB):
		return fmt.Sprintf("%s%.1f KiB", sign, f/float64(kiB))
	default:
		return fmt.Sprintf("%s%d B", sign, int64(f))
	}
}

// formatPercent renders a ratio; +Inf means usage against a zero limit.
func formatPercent(r float64) string {
	switch {
	case math.IsInf(r, 1) || math.IsNaN(r):
		return "over a zero limit"
	default:
		return fmt.Sprintf("%.1f%%", r*100)
	}
}

// formatUsage renders "19.5 GiB of 20.0 GiB (97.5%)" against the effective
// limit, the one that decides whether an allocation fits.
func formatUsage(resource string, q quota.Quota) string {
	if q.IsUnlimited() {
		return formatAmount(resource, q.Usage) + " (unlimited)"
	}
	return fmt.Sprintf("%s of %s (%s)", formatAmount(resource, q.Usage),
		formatAmount(resource, q.EffectiveLimit()), formatPercent(q.Ratio()))
}

// formatProjectUsage renders the project-wide figures, or "" when they say
// nothing beyond formatUsage (the user is the only consumer and the member
// limit is the project's).
func formatProjectUsage(resource string, q quota.Quota) string {
	if q.ProjectUsage == q.Usage && q.ProjectLimit == q.Limit {
		return ""
	}
	if q.ProjectLimit == quota.Unlimited {
		return formatAmount(resource, q.ProjectUsage) + " (unlimited)"
	}
	return fmt.Sprintf("%s of %s (%s)", formatAmount(resource, q.ProjectUsage),
		formatAmount(resource, q.ProjectLimit), formatPercent(q.ProjectRatio()))
}

// formatTrend renders "+1.2 GiB/day, full in 3.2 days", or "" when the
// series is not growing.
func formatTrend(resource string, perDay float64, toFull quota.Days) string {
	if !(perDay > 0) || math.IsInf(perDay, 0) {
		return ""
	}
	var rate string
	if quota.UnitOf(resource) == quota.Bytes {
		rate = formatBytes(int64(math.Round(perDay)))
	} else {
		rate = strings.TrimSuffix(strconv.FormatFloat(perDay, 'f', 1, 64), ".0")
	}
	s := "+" + rate + "/day"
	d := float64(toFull)
	switch {
	case toFull.IsNever() || math.IsNaN(d):
	case d <= 0:
		s += ", already full"
	case d < 1:
		s += fmt.Sprintf(", full in %.1f hours", d*24)
	default:
		s += fmt.Sprintf(", full in %.1f days", d)
	}
	return s
}

// formatDuration renders "2h15m", "3d4h", "45m" or "30s".
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%ds", int64(d.Round(time.Second)/time.Second))
	}
	d = d.Round(time.Minute)
	days, h, m := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour, (d%time.Hour)/time.Minute
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		if h > 0 {
			fmt.Fprintf(&b, "%dh", h)
		}
		return b.String()
	}
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	return b.String()
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// formatQuantities renders what an item carries: the amount alone for a
// one-resource item, else "resource amount" pairs in name order.
func formatQuantities(q quota.Quantities) string {
	rs := q.Resources()
	if len(rs) == 1 {
		return formatAmount(rs[0], q[rs[0]])
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, r+" "+formatAmount(r, q[r]))
	}
	return strings.Join(parts, ", ")
}

// projectName is the name people know a project by, falling back to its id.
func projectName(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// mrkdwnEscaper escapes the three characters Slack's mrkdwn reserves.
var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func esc(s string) string { return mrkdwnEscaper.Replace(s) }

// truncate cuts s to at most n characters (runes), marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
