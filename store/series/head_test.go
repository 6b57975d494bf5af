package series

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestSeriesIndexCollisions(t *testing.T) {
	tests := []struct {
		name string
		hash func(quota.Key) uint64
	}{
		{"distinct hashes", nil},
		{"every hash collides", func(quota.Key) uint64 { return 42 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHead()
			if tt.hash != nil {
				h.hash = tt.hash
			}
			a := h.addAccount(1, "a")
			b := h.addAccount(2, "b")
			ss := []*series{h.addSeries(1, a, "p", "r"), h.addSeries(2, a, "p", "s"), h.addSeries(3, b, "p", "r")}
			for _, s := range ss {
				require.Same(t, s, h.lookup(h.key(s)))
			}
			require.Nil(t, h.lookup(quota.Key{Account: "b", Project: "p", Resource: "s"}))
			h.unindex(ss[0])
			require.Nil(t, h.lookup(h.key(ss[0])))
			require.Same(t, ss[1], h.lookup(h.key(ss[1])))
			require.Same(t, ss[2], h.lookup(h.key(ss[2])))
			h.unindex(ss[2])
			require.Same(t, ss[1], h.lookup(h.key(ss[1])))
			require.Nil(t, h.lookup(h.key(ss[2])))
		})
	}
}
