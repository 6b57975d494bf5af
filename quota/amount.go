package quota

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// amountUnits are the units ParseAmount accepts, matched without regard to
// case: binary (KiB = 1024) and decimal (kB = 1000) byte multiples.
var amountUnits = map[string]int64{
	"b":   1,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": GiB << 10, "pib": GiB << 20, "eib": GiB << 30,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "eb": 1e18,
}

// decimal is a plain decimal number: no exponent, fraction or base prefix,
// which big.Rat would otherwise accept.
var decimal = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// ParseAmount reads a quota amount as people write it: an integer
// ("21474836480"), a number with a unit ("20GiB", "1.5 GiB", "500MB"), or
// "unlimited" (2^63-1), the reverse of FormatAmount. A fraction must come
// to a whole number once the unit is applied.
func ParseAmount(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "unlimited") {
		return Unlimited, nil
	}
	num := strings.TrimRightFunc(t, func(r rune) bool {
		return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
	})
	unit := strings.ToLower(t[len(num):])
	num = strings.TrimSpace(num)
	mult := int64(1)
	if num == "" {
		return 0, fmt.Errorf("%q: not a number", s)
	}
	if unit != "" {
		m, ok := amountUnits[unit]
		if !ok {
			return 0, fmt.Errorf("%q: unknown unit %q (want B, KiB, MiB, GiB, TiB, PiB, EiB, kB, MB, GB, TB, PB or EB)", s, t[len(t)-len(unit):])
		}
		mult = m
	}
	r, ok := new(big.Rat).SetString(num)
	if !decimal.MatchString(num) || !ok {
		return 0, fmt.Errorf("%q: not a number", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q: not a whole number", s)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("%q: %w", s, ErrAmountRange)
	}
	return n.Int64(), nil
}

// ErrAmountRange is the error of an amount that does not fit in an int64.
var ErrAmountRange = errors.New("out of range")
