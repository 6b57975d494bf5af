package quota

import (
	"fmt"
	"math"
	"strconv"
)

// KiB is 1024 bytes.
const KiB int64 = 1 << 10

// FormatAmount renders n of resource in human units: bytes as GiB, MiB or
// KiB with one decimal, counts plain, and 2^63-1 as "unlimited".
func FormatAmount(resource string, n int64) string {
	if n == Unlimited {
		return "unlimited"
	}
	if UnitOf(resource) == Bytes {
		return FormatBytes(n)
	}
	return strconv.FormatInt(n, 10)
}

// FormatBytes renders a byte count with binary units and one decimal.
func FormatBytes(n int64) string {
	sign := ""
	f := float64(n)
	if n < 0 {
		sign, f = "-", -f
	}
	switch {
	case f >= float64(GiB):
		return fmt.Sprintf("%s%.1f GiB", sign, f/float64(GiB))
	case f >= float64(MiB):
		return fmt.Sprintf("%s%.1f MiB", sign, f/float64(MiB))
	case f >= float64(KiB):
		return fmt.Sprintf("%s%.1f KiB", sign, f/float64(KiB))
	default:
		return fmt.Sprintf("%s%d B", sign, int64(f))
	}
}

// FormatPercent renders a ratio as a percentage with one decimal; +Inf
// (usage against a zero limit) reads "over a zero limit".
func FormatPercent(r float64) string {
	if math.IsInf(r, 1) || math.IsNaN(r) {
		return "over a zero limit"
	}
	return fmt.Sprintf("%.1f%%", r*100)
}
