package quota

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestArithmetic(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name          string
		q             Quota
		effective     int64
		headroom      int64
		ratio         float64
		projectRatio  float64
		unlimited     bool
		fits          int64
		fitsOK        bool
		takenByOthers int64
	}{
		{
			name:      "alone in project",
			q:         Quota{Usage: 30, Limit: 100, ProjectUsage: 30, ProjectLimit: 100},
			effective: 100, headroom: 70, ratio: 0.3, projectRatio: 0.3,
			fits: 70, fitsOK: true,
		},
		{
			name:      "others shrink the effective limit",
			q:         Quota{Usage: 10, Limit: 100, ProjectUsage: 90, ProjectLimit: 100},
			effective: 20, headroom: 10, ratio: 0.5, projectRatio: 0.9,
			fits: 11, fitsOK: false, takenByOthers: 80,
		},
		{
			name:      "member limit is the smaller one",
			q:         Quota{Usage: 10, Limit: 20, ProjectUsage: 10, ProjectLimit: 1000},
			effective: 20, headroom: 10, ratio: 0.5, projectRatio: 0.01,
			fits: 10, fitsOK: true,
		},
		{
			name:      "zero limit and zero usage",
			q:         Quota{},
			effective: 0, headroom: 0, ratio: 0, projectRatio: 0,
			fits: 1, fitsOK: false,
		},
		{
			name:      "zero limit with usage (suspended project)",
			q:         Quota{Usage: 5, ProjectUsage: 5},
			effective: 0, headroom: -5, ratio: inf, projectRatio: inf,
			fits: 0, fitsOK: false,
		},
		{
			name:      "unlimited both levels",
			q:         Quota{Usage: 5, Limit: Unlimited, ProjectUsage: 7, ProjectLimit: Unlimited},
			effective: Unlimited - 2, headroom: Unlimited - 7, ratio: 5 / float64(Unlimited-2), projectRatio: 7 / float64(Unlimited),
			unlimited: true, fits: Unlimited - 7, fitsOK: true, takenByOthers: 2,
		},
		{
			name:      "unlimited member, limited project",
			q:         Quota{Usage: 5, Limit: Unlimited, ProjectUsage: 50, ProjectLimit: 100},
			effective: 55, headroom: 50, ratio: 5.0 / 55, projectRatio: 0.5,
			fits: 50, fitsOK: true, takenByOthers: 45,
		},
		{
			name:      "over limit",
			q:         Quota{Usage: 120, Limit: 100, ProjectUsage: 120, ProjectLimit: 200},
			effective: 100, headroom: -20, ratio: 1.2, projectRatio: 0.6,
			fits: 0, fitsOK: false,
		},
		{
			name:      "pending is already in usage",
			q:         Quota{Usage: 60, Limit: 100, Pending: 20, ProjectUsage: 60, ProjectLimit: 100, ProjectPending: 20},
			effective: 100, headroom: 40, ratio: 0.6, projectRatio: 0.6,
			fits: 40, fitsOK: true,
		},
		{
			name:      "inconsistent project usage below member usage saturates",
			q:         Quota{Usage: 10, Limit: 100, ProjectUsage: math.MinInt64, ProjectLimit: Unlimited},
			effective: 100, headroom: 90, ratio: 0.1, projectRatio: -1,
			fits: 90, fitsOK: true, takenByOthers: math.MinInt64,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.effective, tt.q.EffectiveLimit(), "effective limit")
			require.Equal(t, tt.headroom, tt.q.Headroom(), "headroom")
			require.Equal(t, tt.takenByOthers, tt.q.TakenByOthers(), "taken by others")
			if math.IsInf(tt.ratio, 1) {
				require.True(t, math.IsInf(tt.q.Ratio(), 1), "ratio %v", tt.q.Ratio())
			} else {
				require.InDelta(t, tt.ratio, tt.q.Ratio(), 1e-12, "ratio")
			}
			if math.IsInf(tt.projectRatio, 1) {
				require.True(t, math.IsInf(tt.q.ProjectRatio(), 1), "project ratio %v", tt.q.ProjectRatio())
			} else {
				require.InDelta(t, tt.projectRatio, tt.q.ProjectRatio(), 1e-12, "project ratio")
			}
			require.Equal(t, tt.unlimited, tt.q.IsUnlimited(), "unlimited")
			require.Equal(t, tt.fitsOK, tt.q.Fits(tt.fits), "fits %d", tt.fits)
		})
	}
}

func TestFitsBoundary(t *testing.T) {
	q := Quota{Usage: 60, Limit: 100, ProjectUsage: 60, ProjectLimit: 100}
	require.True(t, q.Fits(40), "equality is allowed")
	require.False(t, q.Fits(41))
	require.True(t, q.Fits(-1000), "releases never fail")
	require.True(t, q.Fits(0))
	over := Quota{Usage: 101, Limit: 100, ProjectUsage: 101, ProjectLimit: 100}
	require.False(t, over.Fits(0), "a zero provision fails on an over-limit holding")
	big := Quota{Usage: 1, Limit: Unlimited, ProjectUsage: 1, ProjectLimit: Unlimited}
	require.True(t, big.Fits(Unlimited-1))
	require.False(t, big.Fits(Unlimited))
}

func TestAddSaturates(t *testing.T) {
	q := Quota{Usage: Unlimited - 1, ProjectUsage: Unlimited - 1}.Add(10)
	require.Equal(t, Unlimited, q.Usage)
	require.Equal(t, Unlimited, q.ProjectUsage)
	q = Quota{Usage: 10, ProjectUsage: 30}.Add(-4)
	require.Equal(t, int64(6), q.Usage)
	require.Equal(t, int64(26), q.ProjectUsage)
}

func TestLedgerMultiResourceFit(t *testing.T) {
	// A running VM: RAM fits in lab but CPU does not; everything fits in big.
	vm := ServerQuantities(4, 2048, 20, true)
	l := NewLedger([]Entry{
		{Project: "lab", Resource: VM, Quota: Quota{Usage: 0, Limit: 5, ProjectUsage: 0, ProjectLimit: 5}},
		{Project: "lab", Resource: CPU, Quota: Quota{Usage: 6, Limit: 8, ProjectUsage: 6, ProjectLimit: 8}},
		{Project: "lab", Resource: RAM, Quota: Quota{Usage: 0, Limit: 8 * GiB, ProjectUsage: 0, ProjectLimit: 8 * GiB}},
		{Project: "lab", Resource: Disk, Quota: Quota{Usage: 0, Limit: 100 * GiB, ProjectUsage: 0, ProjectLimit: 100 * GiB}},
		{Project: "big", Resource: VM, Quota: Quota{Limit: 5, ProjectLimit: 5}},
		{Project: "big", Resource: CPU, Quota: Quota{Limit: 16, ProjectLimit: 16}},
		{Project: "big", Resource: RAM, Quota: Quota{Limit: 8 * GiB, ProjectLimit: 8 * GiB}},
		{Project: "big", Resource: Disk, Quota: Quota{Limit: 100 * GiB, ProjectLimit: 100 * GiB}},
		{Project: "src", Resource: CPU, Quota: Quota{Usage: 4, Limit: 4, ProjectUsage: 4, ProjectLimit: 4}},
	})
	ok, short := l.Fits("lab", vm)
	require.False(t, ok)
	require.Equal(t, Shortfall{Resource: CPU, Need: 4, Headroom: 2}, short)

	ok, _ = l.Fits("big", vm)
	require.True(t, ok, "hidden total_cpu/total_ram missing from /quotas do not block")

	ok, short = l.Fits("nowhere", vm)
	require.False(t, ok)
	require.True(t, short.Missing)

	l.Move("src", "big", vm)
	q, _ := l.Get("big", CPU)
	require.Equal(t, int64(4), q.Usage)
	q, _ = l.Get("src", CPU)
	require.Equal(t, int64(0), q.Usage)
	// A second identical VM still fits, a fifth does not: moves see each other.
	require.True(t, first(l.Fits("big", vm)))
	l.Move("src", "big", vm)
	l.Move("src", "big", vm)
	l.Move("src", "big", vm)
	ok, short = l.Fits("big", vm)
	require.False(t, ok)
	require.Equal(t, CPU, short.Resource)
}

func first(ok bool, _ Shortfall) bool { return ok }

func TestServerQuantities(t *testing.T) {
	stopped := ServerQuantities(2, 1024, 10, false)
	require.Equal(t, Quantities{VM: 1, TotalCPU: 2, TotalRAM: 1024 * MiB, Disk: 10 * GiB}, stopped)
	running := ServerQuantities(2, 1024, 10, true)
	require.Equal(t, int64(2), running[CPU])
	require.Equal(t, 1024*MiB, running[RAM])
}

func TestDaysJSON(t *testing.T) {
	b, err := json.Marshal(Event{DaysToFull: Never})
	require.NoError(t, err)
	var e Event
	require.NoError(t, json.Unmarshal(b, &e))
	require.True(t, e.DaysToFull.IsNever())
	b, err = json.Marshal(Event{DaysToFull: 3.5})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &e))
	require.InDelta(t, 3.5, float64(e.DaysToFull), 0)
}

func TestUnitOf(t *testing.T) {
	require.Equal(t, Bytes, UnitOf(DiskSpace))
	require.Equal(t, Count, UnitOf(VM))
	require.Equal(t, Bytes, UnitOf("cyclades.some_ram"))
	require.Equal(t, Count, UnitOf("other.thing"))
}

func TestFormat(t *testing.T) {
	tests := []struct {
		resource string
		n        int64
		want     string
	}{
		{DiskSpace, 20615843020, "19.2 GiB"},
		{DiskSpace, 3 * MiB / 2, "1.5 MiB"},
		{DiskSpace, 2048, "2.0 KiB"},
		{DiskSpace, 512, "512 B"},
		{DiskSpace, -2 * GiB, "-2.0 GiB"},
		{DiskSpace, Unlimited, "unlimited"},
		{VM, 3, "3"},
		{VM, Unlimited, "unlimited"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, FormatAmount(tt.resource, tt.n), "%s %d", tt.resource, tt.n)
	}
	require.Equal(t, "97.5%", FormatPercent(0.975))
	require.Equal(t, "over a zero limit", FormatPercent(math.Inf(1)))
}

func TestLedgerMoveProject(t *testing.T) {
	// Bob's view of a project alice moves 10 into: his own usage stays, the
	// project's grows, so his headroom there shrinks.
	l := NewLedger([]Entry{
		{Project: "dst", Resource: DiskSpace, Quota: Quota{Usage: 5, Limit: 100, ProjectUsage: 50, ProjectLimit: 60}},
		{Project: "src", Resource: DiskSpace, Quota: Quota{Usage: 0, Limit: 100, ProjectUsage: 30, ProjectLimit: 100}},
	})
	before, _ := l.Get("dst", DiskSpace)
	require.Equal(t, int64(10), before.Headroom())
	l.MoveProject("src", "dst", ContainerQuantities(10))
	after, _ := l.Get("dst", DiskSpace)
	require.Equal(t, int64(5), after.Usage)
	require.Equal(t, int64(60), after.ProjectUsage)
	require.Equal(t, int64(0), after.Headroom())
	src, _ := l.Get("src", DiskSpace)
	require.Equal(t, int64(20), src.ProjectUsage)
	require.Equal(t, int64(0), src.Usage)
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "0", want: 0},
		{in: "21474836480", want: 21474836480},
		{in: "-5", want: -5},
		{in: "20GiB", want: 20 * GiB},
		{in: "20 GiB", want: 20 * GiB},
		{in: "20gib", want: 20 * GiB},
		{in: "1.5GiB", want: 3 * GiB / 2},
		{in: "512MiB", want: 512 * MiB},
		{in: "4KiB", want: 4 * KiB},
		{in: "2TiB", want: 2 << 40},
		{in: "1EiB", want: 1 << 60},
		{in: "500MB", want: 500_000_000},
		{in: "3kB", want: 3000},
		{in: "7B", want: 7},
		{in: "unlimited", want: Unlimited},
		{in: "9223372036854775807", want: Unlimited},
		{in: ".5KiB", want: 512},
		{in: "", err: "not a number"},
		{in: "GiB", err: "not a number"},
		{in: "1.5", err: "not a whole number"},
		{in: "0.3B", err: "not a whole number"},
		{in: "12 apples", err: `unknown unit "apples"`},
		{in: "1e3", err: "not a number"},
		{in: "0x10", err: "not a number"},
		{in: "1/2", err: "not a number"},
		{in: "8EiB", err: "out of range"},
		{in: "9223372036854775808", err: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAmount(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseAmount(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseAmount(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

// ParseAmount reads back what FormatAmount writes for whole amounts.
func TestParseAmountReadsFormatAmount(t *testing.T) {
	for _, n := range []int64{0, 7, 3 * KiB, 20 * GiB, 3 * GiB / 2, Unlimited} {
		s := FormatAmount(DiskSpace, n)
		got, err := ParseAmount(s)
		if err != nil || got != n {
			t.Errorf("ParseAmount(FormatAmount(%d) = %q) = %d, %v", n, s, got, err)
		}
	}
}
