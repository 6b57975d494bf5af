package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSparkline(t *testing.T) {
	tests := []struct {
		vals []int64
		want string
	}{
		{nil, ""},
		{[]int64{5}, "▁"},
		{[]int64{3, 3, 3}, "▁▁▁"},
		{[]int64{0, 7, 14}, "▁▅█"}, // the middle rounds up
		{[]int64{10, 0}, "█▁"},
		{[]int64{0, 1, 2, 3, 4, 5, 6, 7}, "▁▂▃▄▅▆▇█"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, sparkline(tt.vals), "%v", tt.vals)
	}
}
