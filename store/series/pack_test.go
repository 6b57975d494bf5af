package series

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
)

// TestPackedBlocks seals days of more series than a pack holds, some
// absent on some days, and reads every series back from its pack.
func TestPackedBlocks(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "p.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	n := 2*packSeries + 37
	val := func(s, day int) int64 { return int64(1000*(s+1) + day*(s%5)) }
	present := func(s, day int) bool { return (s+day)%9 != 0 }
	for day := range 4 {
		for poll := range 2 {
			at := start.Add(time.Duration(day)*24*time.Hour + time.Duration(poll)*time.Hour)
			var es []quota.Entry
			for s := range n {
				if present(s, day) {
					es = append(es, quota.Entry{Project: fmt.Sprintf("p%04d", s), Resource: "r", Quota: quota.Quota{Usage: val(s, day), Limit: 1 << 40}})
				}
			}
			require.NoError(t, ts.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}))
		}
	}
	packs := 0
	require.NoError(t, ts.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bChunks).ForEach(func(k, v []byte) error {
			require.Equal(t, byte(packMarker), v[0])
			packs++
			return nil
		})
	}))
	require.GreaterOrEqual(t, packs, 3*2, "three sealed days of more than one pack each")
	for s := range n {
		k := quota.Key{Account: "a", Project: fmt.Sprintf("p%04d", s), Resource: "r"}
		got, err := ts.series(k, start, start.Add(4*24*time.Hour))
		require.NoError(t, err)
		var want []int64
		for day := range 4 {
			if present(s, day) {
				want = append(want, val(s, day), val(s, day))
			}
		}
		var usage []int64
		for _, x := range got {
			usage = append(usage, x.Usage)
		}
		require.Equal(t, want, usage, "series %d", s)
	}
}

// TestCorruptPackFailsCleanly damages a sealed pack: queries fail, and do
// not panic.
func TestCorruptPackFailsCleanly(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "p.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	for day := range 2 {
		at := start.Add(time.Duration(day) * 24 * time.Hour)
		es := []quota.Entry{{Project: "p", Resource: "r", Quota: quota.Quota{Usage: int64(day + 1)}}}
		require.NoError(t, ts.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}))
	}
	k := quota.Key{Account: "a", Project: "p", Resource: "r"}
	for _, damage := range []func(v []byte) []byte{
		func(v []byte) []byte { return v[:len(v)-2] },
		func(v []byte) []byte { v = append([]byte(nil), v...); v[len(v)/2] ^= 0xff; return v },
		func(v []byte) []byte { return []byte{packMarker} },
	} {
		require.NoError(t, ts.update(func(tx *bbolt.Tx, _ *Engine) error {
			b := tx.Bucket(bChunks)
			key, v := b.Cursor().First()
			return b.Put(append([]byte(nil), key...), damage(v))
		}))
		_, _ = ts.series(k, start, start.Add(48*time.Hour)) // may fail; must not panic
		require.NoError(t, ts.release())
	}
}

// The encoder lives for the write that packs, not for the engine's life.
func TestEncoderNotKeptAfterAWrite(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "e.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	es := registryEntries(700, 1)
	for i := range 3 {
		at := start.Add(time.Duration(i) * 30 * time.Hour) // the second and third poll fold
		require.NoError(t, ts.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}))
		require.Nil(t, ts.e.h.codec.enc, "poll %d", i)
	}
	n := 0
	require.NoError(t, ts.view(func(tx *bbolt.Tx, _ *Engine) error {
		n = tx.Bucket(bChunks).Stats().KeyN
		return nil
	}))
	require.Equal(t, 4, n, "two days of two packs each")
	got, err := ts.series(quota.Key{Account: "a", Project: "p-00080", Resource: "r-3"}, start, start.Add(72*time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 3)

	// Nor between the steps of a week's rewrite.
	ts.e.weeks.step = 1000 // chunks: 700 series' seven days take five steps
	var polls []time.Time
	for i := range 20 { // to day 12: the first week done, the second not complete
		at := start.Add(3*24*time.Hour + time.Duration(i)*12*time.Hour)
		require.NoError(t, ts.commit(at, quota.Snapshot{Account: "a", Time: at, Entries: es}))
		require.Nil(t, ts.e.h.codec.enc, "poll %d", i)
		polls = append(polls, at)
	}
	require.NoError(t, ts.view(func(tx *bbolt.Tx, _ *Engine) error {
		n = tx.Bucket(bWeeks).Stats().KeyN
		return nil
	}))
	require.Equal(t, 8, n, "the week rewritten as packs of 96 series")
	// Series of both day packs read through the week packs as written.
	all := append([]time.Time{start, start.Add(30 * time.Hour), start.Add(60 * time.Hour)}, polls...)
	for _, i := range []int{0, 95, 96, 511, 512, 699} {
		k := quota.Key{Account: "a", Project: es[i].Project, Resource: es[i].Resource}
		got, err := ts.series(k, start, polls[len(polls)-1])
		require.NoError(t, err)
		require.Len(t, got, len(all), "series %d", i)
		for j, s := range got {
			require.Equal(t, quota.Sample{Time: all[j], Quota: es[i].Quota}, s, "series %d poll %d", i, j)
		}
	}
}
