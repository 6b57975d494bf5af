package series

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// Reading every block in order tells each account's polls, and each
// series' changes: deduplicated against its last values, they are what
// Changes returns of it; and a block's change at a poll is a series
// present there but absent, or with other values, at the poll before.
func TestBlocksTellWhatQueriesTell(t *testing.T) {
	// As written, and as a later process reads it: the head loaded from
	// its snapshot restores a series when first read.
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopened=%v", reopen), func(t *testing.T) { testBlocks(t, reopen) })
	}
}

func testBlocks(t *testing.T, reopen bool) {
	path := filepath.Join(t.TempDir(), "h.db")
	ts, err := openTest(path, false, true)
	require.NoError(t, err)
	defer func() { _ = ts.close() }()
	rng := rand.New(rand.NewPCG(5, 6))
	accts := []string{"alice", "bob"}
	type key = quota.Key
	var keys []key
	for _, a := range accts {
		for p := range 40 {
			for _, r := range []string{quota.DiskSpace, quota.VM} {
				keys = append(keys, key{Account: a, Project: fmt.Sprintf("p%02d", p), Resource: r})
			}
		}
	}
	vals := map[key]quota.Quota{}
	for _, k := range keys {
		vals[k] = quota.Quota{Usage: rng.Int64N(100), Limit: 100, ProjectUsage: 5, ProjectLimit: 200}
	}
	polls := map[string][]time.Time{}
	var end time.Time
	for i := range 4*24*6 + 17 { // four days and some of 10-minute polls
		at := start.Add(time.Duration(i)*10*time.Minute + time.Duration(rng.IntN(1000))*time.Millisecond)
		end = at
		var snaps []quota.Snapshot
		for ai, a := range accts {
			if rng.IntN(40) == 0 {
				continue // a failed poll
			}
			tm := at.Add(time.Duration(ai) * time.Second)
			polls[a] = append(polls[a], tm)
			s := quota.Snapshot{Account: a, Time: tm}
			for _, k := range keys {
				if k.Account != a {
					continue
				}
				// Some series come late, leave for a while, or end.
				if (k.Project == "p07" && i < 200) || (k.Project == "p08" && i > 100 && i < 300) || (k.Project == "p09" && i > 450) {
					continue
				}
				q := vals[k]
				switch rng.IntN(12) {
				case 0:
					q.Usage += rng.Int64N(9) - 4
					q.ProjectUsage += rng.Int64N(3)
				case 1:
					q.Limit += 10
				}
				vals[k] = q
				s.Entries = append(s.Entries, quota.Entry{Project: k.Project, Resource: k.Resource, Quota: q})
			}
			snaps = append(snaps, s)
		}
		require.NoError(t, ts.commit(at, snaps...))
	}
	if reopen {
		require.NoError(t, ts.close())
		ts, err = openTest(path, true, true)
		require.NoError(t, err)
	}

	gotPolls := map[string][]time.Time{}
	gotChanges := map[key][]quota.Sample{}
	last := map[key]quota.Quota{}
	raw := map[key][]time.Time{}
	ids := map[key]uint32{}
	blocks := 0
	for bt := start; !bt.After(end); {
		var b *Block
		require.NoError(t, ts.view(func(tx *bbolt.Tx, e *Engine) error {
			var err error
			b, err = e.ReadBlock(tx, bt)
			return err
		}))
		require.Equal(t, bt, b.Start)
		blocks++
		prev := time.Time{}
		for b.Next() {
			a, at := b.Poll()
			require.False(t, at.Before(prev), "polls in time order")
			prev = at
			require.Equal(t, at.UnixMilli(), b.PollMs())
			gotPolls[a] = append(gotPolls[a], at)
			for _, c := range b.Changes() {
				k := b.Key(&c)
				require.Equal(t, a, k.Account)
				if id, ok := ids[k]; ok {
					require.Equal(t, id, c.ID, "a series keeps its id")
				}
				ids[k] = c.ID
				raw[k] = append(raw[k], at)
				if q, ok := last[k]; ok && q == c.Quota {
					continue
				}
				last[k] = c.Quota
				gotChanges[k] = append(gotChanges[k], quota.Sample{Time: at, Quota: c.Quota})
			}
		}
		require.NoError(t, b.Err())
		bt = b.End
	}
	require.Equal(t, 5, blocks)
	for _, a := range accts {
		want := make([]time.Time, len(polls[a]))
		for i, p := range polls[a] {
			want[i] = time.UnixMilli(p.UnixMilli()).UTC()
		}
		require.Equal(t, want, gotPolls[a], a)
	}
	for _, k := range keys {
		want, err := ts.changes(k, start.Add(-time.Hour), end.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, want, gotChanges[k], "%s", k)

		// The raw changes: present, and absent or other values at the
		// account's poll before in the same block.
		ss, err := ts.series(k, start, end.Add(time.Minute))
		require.NoError(t, err)
		present := map[int64]quota.Quota{}
		for _, s := range ss {
			present[s.Time.UnixMilli()] = s.Quota
		}
		var wantRaw []time.Time
		for i, p := range gotPolls[k.Account] {
			q, ok := present[p.UnixMilli()]
			if !ok {
				continue
			}
			first := i == 0 || blockOf(gotPolls[k.Account][i-1].UnixMilli()) != blockOf(p.UnixMilli())
			if pq, pok := present[gotPolls[k.Account][max(i-1, 0)].UnixMilli()]; first || !pok || pq != q {
				wantRaw = append(wantRaw, p)
			}
		}
		require.Equal(t, wantRaw, raw[k], "%s", k)
	}

	// Past the history, and before it: blocks with no polls.
	for _, bt := range []time.Time{end.Add(48 * time.Hour), start.Add(-48 * time.Hour)} {
		require.NoError(t, ts.view(func(tx *bbolt.Tx, e *Engine) error {
			b, err := e.ReadBlock(tx, bt)
			if err == nil && b.Next() {
				err = fmt.Errorf("a poll in an empty block")
			}
			return err
		}))
	}
}
