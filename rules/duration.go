package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration ("90s", "1h30m") that may also use "d"
// for days of 24 hours, alone or combined ("7d", "1d12h", "1.5d").
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %q", s)
	if !strings.Contains(s, "d") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, bad
		}
		return d, nil
	}
	rest := s
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	if rest == "" {
		return 0, bad
	}
	var total float64 // nanoseconds; float so overflow is detectable
	var goPart strings.Builder
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		if i == 0 {
			return 0, bad
		}
		num := rest[:i]
		rest = rest[i:]
		j := 0
		for j < len(rest) && !(rest[j] == '.' || (rest[j] >= '0' && rest[j] <= '9')) {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		if unit != "d" {
			goPart.WriteString(num)
			goPart.WriteString(unit)
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, bad
		}
		total += f * float64(24*time.Hour)
	}
	if goPart.Len() > 0 {
		d, err := time.ParseDuration(goPart.String())
		if err != nil {
			return 0, bad
		}
		total += float64(d)
	}
	if total >= math.MaxInt64 {
		return 0, bad
	}
	d := time.Duration(total)
	if neg {
		d = -d
	}
	return d, nil
}

// formatDuration renders d compactly with days ("1d12h", "30m", "0s").
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	days := d / (24 * time.Hour)
	rest := d % (24 * time.Hour)
	s := ""
	if days > 0 {
		s = strconv.FormatInt(int64(days), 10) + "d"
	}
	if rest == 0 {
		return s
	}
	r := rest.String()
	if strings.HasSuffix(r, "m0s") {
		r = r[:len(r)-2]
	}
	if strings.HasSuffix(r, "h0m") {
		r = r[:len(r)-2]
	}
	return s + r
}
