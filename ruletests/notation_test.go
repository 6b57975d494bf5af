package ruletests

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// vals renders points as promtool writes them: numbers and _.
func vals(pts []point) string {
	var b []string
	for _, p := range pts {
		if p.missing {
			b = append(b, "_")
		} else {
			b = append(b, strconv.FormatInt(p.v, 10))
		}
	}
	return strings.Join(b, " ")
}

func TestExpand(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"1", "1"},
		{"1 2 3", "1 2 3"},
		{"  1\t2\n3 ", "1 2 3"},
		{"1+1x3", "1 2 3 4"},
		{"-2+4x3", "-2 2 6 10"},
		{"1-2x4", "1 -1 -3 -5 -7"},
		{"1x4", "1 1 1 1 1"},
		{"5x0", "5"},
		{"7+3x0", "7"},
		{"_", "_"},
		{"1 _x3 2", "1 _ _ _ 2"},
		{"1 _ 2", "1 _ 2"},
		{"1KiB+1KiBx2", "1024 2048 3072"},
		{"20GiBx1", "21474836480 21474836480"},
		{"1.5GiB", "1610612736"},
		{"10GiB-512MiBx2", "10737418240 10200547328 9663676416"},
		{"unlimitedx1", "9223372036854775807 9223372036854775807"},
		{"9223372036854775806+1x1", "9223372036854775806 9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			pts, err := expand(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, vals(pts))
		})
	}
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "no values"},
		{"   ", "no values"},
		{"abc", `term "abc": "abc": not a number`},
		{"1 2 x", `term "x": the count after x must be`},
		{"1+x3", `term "1+x3": "": not a number`},
		{"1x", `term "1x": the count after x must be a whole number of 0 or more, got ""`},
		{"1x-2", `the count after x must be a whole number of 0 or more, got "-2"`},
		{"1x+2", `the count after x must be a whole number of 0 or more, got "+2"`},
		{"1x2.5", `got "2.5"`},
		{"1x2x3", `got "2x3"`},
		{"_x0", `term "_x0": _x0 is no poll at all`},
		{"1+-2x3", "one sign between the start and the step"},
		{"1.5", `"1.5": not a whole number`},
		{"5Gx2", `unknown unit "G"`},
		{"1 stale", `term "stale": a poll returns the quota or fails (_)`},
		{"1x100000", "more than 100000 values"},
		{"1x99999 1", "more than 100000 values"},
		{"9223372036854775807+1x1", "value 2 of the term is out of range"},
		{"-9223372036854775807-2x1", "value 2 of the term is out of range"},
		{"99999999999999999999", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := expand(tt.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}
