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

// formatUsage renders "19.5 GiB of 20.0 GiB (97.5%)" against the effective
// limit, the one that decides whether an allocation fits.
func formatUsage(resource string, q quota.Quota) string {
	if q.IsUnlimited() {
		return quota.FormatAmount(resource, q.Usage) + " (unlimited)"
	}
	if noQuota(q) {
		return fmt.Sprintf("%s with no quota (limit %s)", quota.FormatAmount(resource, q.Usage),
			quota.FormatAmount(resource, q.EffectiveLimit()))
	}
	return fmt.Sprintf("%s of %s (%s)", quota.FormatAmount(resource, q.Usage),
		quota.FormatAmount(resource, q.EffectiveLimit()), quota.FormatPercent(q.Ratio()))
}

// noQuota reports usage against a zero limit (a suspended project, say),
// where a percentage means nothing.
func noQuota(q quota.Quota) bool {
	return !q.IsUnlimited() && q.EffectiveLimit() == 0 && q.Usage > 0
}

// formatProjectUsage renders the project-wide figures, or "" when they say
// nothing beyond formatUsage (the user is the only consumer and the member
// limit is the project's).
func formatProjectUsage(resource string, q quota.Quota) string {
	if q.ProjectUsage == q.Usage && q.ProjectLimit == q.Limit {
		return ""
	}
	if q.ProjectLimit == quota.Unlimited {
		return quota.FormatAmount(resource, q.ProjectUsage) + " (unlimited)"
	}
	return fmt.Sprintf("%s of %s (%s)", quota.FormatAmount(resource, q.ProjectUsage),
		quota.FormatAmount(resource, q.ProjectLimit), quota.FormatPercent(q.ProjectRatio()))
}

// formatTrend renders "+1.2 GiB/day, full in 3.2 days", or "" when the
// series is not growing.
func formatTrend(resource string, perDay float64, toFull quota.Days) string {
	if !(perDay > 0) || math.IsInf(perDay, 0) {
		return ""
	}
	var rate string
	if quota.UnitOf(resource) == quota.Bytes {
		rate = quota.FormatBytes(int64(math.Round(perDay)))
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

// slackDate renders t as a Slack date token, which each reader's client
// shows in their own time zone ("Yesterday 15:04"); the fallback is for
// clients that cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), formatTime(t))
}

// formatQuantities renders what an item carries: the amount alone for a
// one-resource item, else "resource amount" pairs in name order.
func formatQuantities(q quota.Quantities) string {
	rs := q.Resources()
	if len(rs) == 1 {
		return quota.FormatAmount(rs[0], q[rs[0]])
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, r+" "+quota.FormatAmount(r, q[r]))
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
