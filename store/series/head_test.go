package series

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestSeriesIndexCollisions(t *testing.T) {
	tests := []struct {
		name string
		hash func(acct, project, resource uint32) uint64
	}{
		{"distinct hashes", nil},
		{"every hash collides", func(_, _, _ uint32) uint64 { return 42 }},
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
			h.buildIndex() // the table, not the first lookups' scans
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

// The first lookups scan the account's series; then the table is built,
// and keeps the series added after it.
func TestLookupsScanThenIndex(t *testing.T) {
	h := newHead()
	a, b := h.addAccount(1, "a"), h.addAccount(2, "b")
	var ss []*series
	for i := range 20 {
		ss = append(ss, h.addSeries(uint32(2*i+1), a, fmt.Sprintf("p%d", i%5), fmt.Sprintf("r%d", i/5)),
			h.addSeries(uint32(2*i+2), b, fmt.Sprintf("p%d", i%5), fmt.Sprintf("r%d", i/5)))
	}
	missing := []quota.Key{{Account: "c", Project: "p1", Resource: "r1"}, {Account: "a", Project: "p9", Resource: "r1"},
		{Account: "a", Project: "p1", Resource: "r9"}, {Account: "a", Project: "r1", Resource: "p1"}}
	for round := range 3 {
		for _, s := range ss {
			require.Same(t, s, h.lookup(h.key(s)), "round %d", round)
		}
		for _, k := range missing {
			require.Nil(t, h.lookup(k))
		}
		if round == 0 {
			require.True(t, h.indexed.Load(), "built after %d lookups", scanLookups)
		}
		ss = append(ss, h.addSeries(uint32(100+round), a, "new", fmt.Sprintf("r%d", round)))
	}
	h.forget(func(s *series) bool { return s.id == 1 })
	require.False(t, h.indexed.Load(), "forget rebuilds the arena: the table is built again when needed")
	require.Nil(t, h.lookup(quota.Key{Account: "a", Project: "p0", Resource: "r0"}))
	require.Same(t, h.get(2), h.lookup(quota.Key{Account: "b", Project: "p0", Resource: "r0"}))
}

func TestKeysSortedByName(t *testing.T) {
	h := newHead()
	rng := rand.New(rand.NewPCG(3, 4))
	accts := []*account{h.addAccount(1, "b"), h.addAccount(2, "a"), h.addAccount(3, "c")}
	var want []quota.Key
	seen := map[quota.Key]bool{}
	for id := uint32(1); id < 500; id++ {
		a := accts[rng.IntN(len(accts))]
		k := quota.Key{Account: a.name, Project: fmt.Sprintf("p%d", rng.IntN(50)), Resource: fmt.Sprintf("r%d", rng.IntN(5))}
		if seen[k] {
			continue
		}
		seen[k] = true
		h.addSeries(id, a, k.Project, k.Resource)
		want = append(want, k)
	}
	slices.SortFunc(want, func(a, b quota.Key) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Resource, b.Resource))
	})
	e := &Engine{h: h}
	require.Equal(t, want, e.Keys())
	all := e.SelectKeys(nil, nil, nil)
	slices.SortFunc(all, func(a, b quota.Key) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Resource, b.Resource))
	})
	require.Equal(t, want, all, "SelectKeys selects from every key")
	is := func(name string) func(string) bool { return func(x string) bool { return x == name } }
	require.Equal(t, []quota.Key{want[3]}, e.SelectKeys(is(want[3].Account), is(want[3].Project), is(want[3].Resource)))
	asked := map[string]int{}
	count := func(x string) bool { asked[x]++; return true }
	require.Len(t, e.SelectKeys(nil, count, count), len(want))
	for name, n := range asked {
		require.Equal(t, 1, n, "%s matched once", name)
	}
	// Names shared between projects and resources rank once.
	h.addSeries(1000, accts[0], "r1", "p1")
	require.True(t, slices.IsSortedFunc(e.Keys(), func(a, b quota.Key) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Resource, b.Resource))
	}))
}

// Readers look series up at once: the one that builds the table does it
// alone, and none sees it half built (run with -race).
func TestConcurrentLookupsBuildOnce(t *testing.T) {
	h := newHead()
	a := h.addAccount(1, "a")
	var ss []*series
	for i := range 3000 {
		ss = append(ss, h.addSeries(uint32(i+1), a, fmt.Sprintf("p%d", i/8), fmt.Sprintf("r%d", i%8)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				s := ss[(g*997+j*31)%len(ss)]
				if got := h.lookup(h.key(s)); got != s {
					t.Errorf("lookup %s: got %v", h.key(s), got)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.True(t, h.indexed.Load())
}
