package quota

import (
	"math"
	"strconv"
)

// KiB is 1024 bytes.
const KiB int64 = 1 << 10

// FormatAmount renders n of resource in human units: bytes as GiB, MiB or
// KiB with one decimal, counts plain, and 2^63-1 as "unlimited".
func FormatAmount(resource string, n int64) string {
	var b [32]byte
	return string(UnitOf(resource).AppendAmount(b[:0], n))
}

// AppendAmount appends n in this unit as FormatAmount renders it; a table
// of many amounts of one resource looks its unit up once.
func (u Unit) AppendAmount(dst []byte, n int64) []byte {
	if n == Unlimited {
		return append(dst, "unlimited"...)
	}
	if u == Bytes {
		return AppendBytes(dst, n)
	}
	return strconv.AppendInt(dst, n, 10)
}

// FormatBytes renders a byte count with binary units and one decimal.
func FormatBytes(n int64) string {
	var b [32]byte
	return string(AppendBytes(b[:0], n))
}

// AppendBytes appends n as FormatBytes renders it.
func AppendBytes(dst []byte, n int64) []byte {
	f := float64(n)
	if n < 0 {
		dst, f = append(dst, '-'), -f
	}
	switch {
	case f >= float64(GiB):
		return append(appendOneDecimal(dst, f, 30), " GiB"...)
	case f >= float64(MiB):
		return append(appendOneDecimal(dst, f, 20), " MiB"...)
	case f >= float64(KiB):
		return append(appendOneDecimal(dst, f, 10), " KiB"...)
	default:
		return append(strconv.AppendInt(dst, int64(f), 10), " B"...)
	}
}

// appendOneDecimal appends f / 2^shift with one decimal, as %.1f rounds
// it: to the nearest tenth, a tie to the even one. Below 2^53, f is a whole
// number held exactly, so the quotient is exact and integers round it;
// strconv, which formats any float exactly, takes the rest.
func appendOneDecimal(dst []byte, f float64, shift uint) []byte {
	if f >= 1<<53 {
		return strconv.AppendFloat(dst, f/float64(int64(1)<<shift), 'f', 1, 64)
	}
	tenths := uint64(f) * 10
	d, rem, half := tenths>>shift, tenths&(1<<shift-1), uint64(1)<<(shift-1)
	if rem > half || rem == half && d&1 == 1 {
		d++
	}
	dst = strconv.AppendUint(dst, d/10, 10)
	return append(dst, '.', byte('0'+d%10))
}

// FormatPercent renders a ratio as a percentage with one decimal; +Inf
// (usage against a zero limit) reads "over a zero limit".
func FormatPercent(r float64) string {
	var b [32]byte
	return string(AppendPercent(b[:0], r))
}

// AppendPercent appends r as FormatPercent renders it.
func AppendPercent(dst []byte, r float64) []byte {
	if math.IsInf(r, 1) || math.IsNaN(r) {
		return append(dst, "over a zero limit"...)
	}
	return append(strconv.AppendFloat(dst, r*100, 'f', 1, 64), '%')
}
