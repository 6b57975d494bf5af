package rules

import (
	"fmt"
	"strconv"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// Human renders an amount of resource for people: GiB or MiB for bytes
// ("12.0 GiB"), plain counts otherwise, "unlimited" for 2^63-1.
func Human(resource string, n int64) string {
	if n == quota.Unlimited {
		return "unlimited"
	}
	if quota.UnitOf(resource) != quota.Bytes {
		return strconv.FormatInt(n, 10)
	}
	abs := n
	if abs < 0 {
		abs = -abs
	}
	switch {
	case abs >= quota.GiB:
		return fmt.Sprintf("%.1f GiB", float64(n)/float64(quota.GiB))
	case abs >= quota.MiB:
		return fmt.Sprintf("%.1f MiB", float64(n)/float64(quota.MiB))
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// clock renders a time in reasons: stable, UTC, to the minute.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
