package quota

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The formats as they were written with fmt, which the append forms must
// match byte for byte: tables and messages are compared with golden files.
func sprintfBytes(n int64) string {
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

func sprintfPercent(r float64) string {
	if math.IsInf(r, 1) || math.IsNaN(r) {
		return "over a zero limit"
	}
	return fmt.Sprintf("%.1f%%", r*100)
}

func TestFormatBytesAsSprintf(t *testing.T) {
	ns := []int64{0, 1, -1, 1023, 1024, 1025, MiB - 1, MiB, GiB - 1, GiB, GiB + 1, math.MaxInt64, math.MinInt64, math.MinInt64 + 1,
		1<<53 - 1, 1 << 53, 1<<53 + 1, -(1 << 53), 100 * GiB, Unlimited - 1}
	// Ties: a quotient ending in exactly five hundredths rounds to even.
	for _, shift := range []uint{10, 20, 30} {
		for j := int64(1); j < 400; j += 2 {
			ns = append(ns, j<<(shift-2), -(j << (shift - 2)), j<<(shift-2)+1, j<<(shift-2)-1)
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200_000 {
		bits := rng.IntN(64)
		n := int64(rng.Uint64() >> (63 - bits) >> 1)
		if rng.IntN(4) == 0 {
			n = -n
		}
		ns = append(ns, n)
	}
	for _, n := range ns {
		if got, want := FormatBytes(n), sprintfBytes(n); got != want {
			t.Fatalf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFormatPercentAsSprintf(t *testing.T) {
	rs := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 0.0005, 0.00049999, 0.00125, 0.00375, 1e-300, 5e-324, 1e300, math.MaxFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), 0.9995, 0.99949999999, 452984901}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 200_000 {
		rs = append(rs, rng.Float64()*2, float64(rng.IntN(1<<20))/float64(rng.IntN(1<<20)+1), math.Float64frombits(rng.Uint64()))
	}
	for _, r := range rs {
		if got, want := FormatPercent(r), sprintfPercent(r); got != want {
			t.Fatalf("FormatPercent(%v) = %q, want %q", r, got, want)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		resource string
		n        int64
		want     string
	}{
		{DiskSpace, 52 * GiB, "52.0 GiB"},
		{DiskSpace, Unlimited, "unlimited"},
		{VM, 3, "3"},
		{VM, Unlimited, "unlimited"},
		{"custom.ram", 1536 * MiB, "1.5 GiB"},
		{CPU, -2, "-2"},
	}
	for _, tt := range tests {
		if got := FormatAmount(tt.resource, tt.n); got != tt.want {
			t.Errorf("FormatAmount(%q, %d) = %q, want %q", tt.resource, tt.n, got, tt.want)
		}
	}
}
