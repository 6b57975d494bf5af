package watcher

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// Changed projects are drained by id, the order bbolt inserts cheapest.
func TestDrainByID(t *testing.T) {
	n := newNameCache()
	require.Nil(t, n.drain())
	var want []string
	for i := range 50 {
		id := fmt.Sprintf("p-%02d", i)
		want = append(want, id)
		n.put(quota.Project{ID: id, Name: "name-" + id})
	}
	var got []string
	for _, p := range n.drain() {
		got = append(got, p.ID)
	}
	require.Equal(t, want, got)
	require.Nil(t, n.drain())
}
