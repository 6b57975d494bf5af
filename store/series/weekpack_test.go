package series

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series/chunkenc"
)

// weekModel is what a history written by writeWeeks holds: each
// account's polls and, at each, the values of the series present.
type weekModel struct {
	polls map[string][]int64
	vals  map[quota.Key]map[int64]quota.Quota
	keys  []quota.Key
	end   time.Time // the last poll
	lo    int64     // history before is gone (retention)
}

func (m *weekModel) series(k quota.Key, from, to int64) []quota.Sample {
	var out []quota.Sample
	for _, t := range m.polls[k.Account] {
		if q, ok := m.vals[k][t]; ok && t >= max(from, m.lo) && t <= to {
			out = append(out, quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: q})
		}
	}
	return out
}

func (m *weekModel) at(k quota.Key, at int64) (quota.Sample, bool) {
	var out quota.Sample
	ok := false
	polls := m.polls[k.Account]
	for _, t := range polls {
		if q, p := m.vals[k][t]; p && t <= at {
			out, ok = quota.Sample{Time: time.UnixMilli(t).UTC(), Quota: q}, true
		}
	}
	// Before the cut, only the last values are kept, of a series present
	// at its account's last poll (one that ended is forgotten).
	if ok && out.Time.UnixMilli() < m.lo && out.Time.UnixMilli() != polls[len(polls)-1] {
		return quota.Sample{}, false
	}
	return out, ok
}

func (m *weekModel) changes(k quota.Key, from, to int64) []quota.Sample {
	var out []quota.Sample
	first, ok := m.at(k, from)
	if ok {
		out = append(out, first)
	}
	for _, s := range m.series(k, from+1, to) {
		if !ok || s.Quota != out[len(out)-1].Quota {
			out = append(out, s)
			ok = true
		}
	}
	return out
}

// The history writeWeeks writes begins in the middle of a week (start is
// the first day of one) and ends in the fourth, its open block there.
var weeksFrom = start.Add(3*24*time.Hour + 5*time.Hour)

const weeksDays = 21

// writeWeeks writes weeksDays days of three-hourly polls of two accounts
// of 160 series each, from weeksFrom, and a third account that polls two
// days only. Some polls fail; some series come in the middle of a week (and so
// get ids of their own), leave for a few days, miss the first day of a
// week, or end.
// dayPackWeeks is a store of writeWeeks' history in day packs only, as
// stores were written before week packs.
func dayPackWeeks(t *testing.T) (*testStore, *weekModel) {
	t.Helper()
	ts, err := openTest(filepath.Join(t.TempDir(), "w.db"), false, true)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ts.close() })
	setStep(t, ts, -1)
	return ts, writeWeeks(t, ts)
}

func writeWeeks(t *testing.T, ts *testStore) *weekModel {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	m := &weekModel{polls: map[string][]int64{}, vals: map[quota.Key]map[int64]quota.Quota{}}
	type ser struct {
		k quota.Key
		q quota.Quota
		j int
	}
	var all []*ser
	for _, a := range []string{"alice", "bob", "carol"} {
		n := 80
		if a == "carol" {
			n = 4
		}
		for p := range n {
			for _, r := range []string{quota.DiskSpace, quota.VM} {
				k := quota.Key{Account: a, Project: fmt.Sprintf("p%03d", p), Resource: r}
				all = append(all, &ser{k: k, q: quota.Quota{Usage: rng.Int64N(1 << 30), Limit: 1 << 31, ProjectLimit: 1 << 32}, j: len(all)})
				m.keys = append(m.keys, k)
				m.vals[k] = map[int64]quota.Quota{}
			}
		}
	}
	day := func(at time.Time) float64 { return float64(at.Sub(start)) / float64(24*time.Hour) }
	present := func(s *ser, at time.Time) bool {
		d := day(at)
		switch {
		case s.k.Account == "carol":
			return d >= 8 && d < 10
		case s.j%37 == 5:
			return d >= 9.5 // born in the middle of the second week
		case s.j%29 == 3:
			return d < 10 || d >= 12
		case s.j%23 == 1:
			return d < 14 || d >= 15 // absent the whole first day of a week
		case s.j%41 == 7:
			return d < 16.3
		}
		return true
	}
	for i := range weeksDays * 8 {
		at := weeksFrom.Add(time.Duration(i)*3*time.Hour + time.Duration(rng.IntN(1000))*time.Millisecond)
		var snaps []quota.Snapshot
		for ai, a := range []string{"alice", "bob", "carol"} {
			if rng.IntN(30) == 0 {
				continue
			}
			tm := at.Add(time.Duration(ai) * time.Second)
			sn := quota.Snapshot{Account: a, Time: tm}
			for _, s := range all {
				if s.k.Account != a || !present(s, tm) {
					continue
				}
				switch rng.IntN(20) {
				case 0, 1:
					s.q.Usage += rng.Int64N(1<<20) - 1<<19
					s.q.ProjectUsage += rng.Int64N(1 << 10)
				case 2:
					s.q.Limit += 1 << 20
				}
				sn.Entries = append(sn.Entries, quota.Entry{Project: s.k.Project, Resource: s.k.Resource, Quota: s.q})
				m.vals[s.k][tm.UnixMilli()] = s.q
			}
			if len(sn.Entries) > 0 {
				m.polls[a] = append(m.polls[a], tm.UnixMilli())
				snaps = append(snaps, sn)
			}
		}
		require.NoError(t, ts.commit(at, snaps...))
		m.end = at
	}
	return m
}

// checkWeeks compares what queries of every keyStep-th series tell with
// the model, over ranges across and inside weeks.
func checkWeeks(t *testing.T, ts *testStore, m *weekModel, keyStep int) {
	t.Helper()
	d := func(x float64) int64 { return start.Add(time.Duration(x * float64(24*time.Hour))).UnixMilli() }
	ranges := [][2]int64{
		{0, m.end.UnixMilli() + 1},
		{d(3), d(6.5)},     // the partial first week
		{d(6.5), d(7.5)},   // across the first week's end
		{d(9.2), d(9.8)},   // inside a week, across a birth
		{d(13.9), d(15.1)}, // across a week's end and a day of absence
		{d(6), d(21)},      // two whole weeks
		{d(20.5), d(25)},   // into the open block
		{d(1), d(2)},       // before the history
	}
	nilIfEmpty := func(s []quota.Sample) []quota.Sample {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	for i := 0; i < len(m.keys); i += keyStep {
		k := m.keys[i]
		for _, r := range ranges {
			got, err := ts.series(k, time.UnixMilli(r[0]), time.UnixMilli(r[1]))
			require.NoError(t, err)
			require.Equal(t, nilIfEmpty(m.series(k, r[0], r[1])), got, "series %s %v", k, r)
			ch, err := ts.changes(k, time.UnixMilli(r[0]), time.UnixMilli(r[1]))
			require.NoError(t, err)
			require.Equal(t, nilIfEmpty(m.changes(k, r[0], r[1])), nilIfEmpty(ch), "changes %s %v", k, r)
			ws, wok := m.at(k, r[1])
			gs, gok, err := ts.at(k, time.UnixMilli(r[1]))
			require.NoError(t, err)
			require.Equal(t, wok, gok, "at %s %v", k, r)
			require.Equal(t, ws, gs, "at %s %v", k, r)
		}
	}
}

// blocksOf lists the blocks with day packs and the weeks with week packs.
func blocksOf(t *testing.T, ts *testStore) (days, weeks []uint32) {
	t.Helper()
	require.NoError(t, ts.view(func(tx *bbolt.Tx, _ *Engine) error {
		err := tx.Bucket(bChunks).ForEach(func(k, _ []byte) error {
			if b := keyBlock(k); len(days) == 0 || days[len(days)-1] != b {
				days = append(days, b)
			}
			return nil
		})
		if wb := tx.Bucket(bWeeks); wb != nil && err == nil {
			err = wb.ForEach(func(k, _ []byte) error {
				if w := keyBlock(k); len(weeks) == 0 || weeks[len(weeks)-1] != w {
					weeks = append(weeks, w)
				}
				return nil
			})
		}
		return err
	}))
	return days, weeks
}

var (
	week0 = uint32(blockOf(start.UnixMilli())) / weekDays
	day0  = week0 * weekDays
)

// rewrite commits empty cycles until no complete week is left in day
// packs, and returns how many it took.
func rewrite(t *testing.T, ts *testStore, at time.Time) int {
	t.Helper()
	for i := 1; ; i++ {
		require.NoError(t, ts.commit(at))
		days, _ := blocksOf(t, ts)
		if len(days) == 0 || days[0] >= day0+3*weekDays {
			return i
		}
		require.Less(t, i, 1000, "the rewrite does not end")
	}
}

func setStep(t *testing.T, ts *testStore, step int) {
	t.Helper()
	require.NoError(t, ts.ensure())
	ts.e.weeks.step = step
}

// blockText is everything a ReadBlock of the day at tells, as text.
func blockText(t *testing.T, ts *testStore, at time.Time) string {
	t.Helper()
	var sb strings.Builder
	require.NoError(t, ts.view(func(tx *bbolt.Tx, e *Engine) error {
		b, err := e.ReadBlock(tx, at)
		if err != nil {
			return err
		}
		for b.Next() {
			a, tm := b.Poll()
			fmt.Fprintf(&sb, "%s %d:", a, tm.UnixMilli())
			for _, c := range b.Changes() {
				fmt.Fprintf(&sb, " %d=%s%v", c.ID, b.Key(&c), c.Quota)
			}
			sb.WriteByte('\n')
		}
		return b.Err()
	}))
	return sb.String()
}

// TestWeekPacks writes the same history in steps of several sizes: in
// every state along the way, whatever part of a week is in week packs,
// queries tell what was written, and a day read whole (as the backtest
// reads it) tells what it told from its day packs.
func TestWeekPacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		step int
	}{
		{"whole weeks", 0},
		{"a group a step", 1},
		{"a few groups a step", 700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, m := dayPackWeeks(t)
			days, weeks := blocksOf(t, ts)
			require.Empty(t, weeks)
			require.Equal(t, day0+3, days[0], "the history begins in the middle of a week")
			before := map[uint32]string{}
			for _, b := range days {
				before[b] = blockText(t, ts, time.UnixMilli(int64(b)*blockMs))
			}
			checkWeeks(t, ts, m, 7)

			setStep(t, ts, tc.step)
			for i := 0; ; i++ {
				require.NoError(t, ts.commit(m.end.Add(time.Duration(i+1)*time.Second)))
				d, _ := blocksOf(t, ts)
				// In the middle of the rewrite, too.
				checkWeeks(t, ts, m, 61)
				for b, want := range before {
					require.Equal(t, want, blockText(t, ts, time.UnixMilli(int64(b)*blockMs)), "block %d", b)
				}
				if d[0] >= day0+3*weekDays {
					break
				}
				require.Less(t, i, 1000, "the rewrite does not end")
			}
			days, weeks = blocksOf(t, ts)
			require.Equal(t, []uint32{week0, week0 + 1, week0 + 2}, weeks)
			require.Equal(t, []uint32{day0 + 3*weekDays, day0 + 3*weekDays + 1, day0 + 3*weekDays + 2}, days,
				"the sealed days of the open week stay in day packs")
			checkWeeks(t, ts, m, 7)
			for b, want := range before {
				require.Equal(t, want, blockText(t, ts, time.UnixMilli(int64(b)*blockMs)), "block %d", b)
			}
			// A reader of its own, as a command reads the store.
			require.NoError(t, ts.close())
			ro, err := openTest(ts.path, true, false)
			require.NoError(t, err)
			defer ro.close()
			checkWeeks(t, ro, m, 5)
		})
	}
}

// TestWeekPacksCompressAsWell: a week of a series compresses together
// about as well as the days of many series did.
func TestWeekPacksCompressAsWell(t *testing.T) {
	ts, m := dayPackWeeks(t)
	size := func() (n int) {
		require.NoError(t, ts.view(func(tx *bbolt.Tx, _ *Engine) error {
			for _, name := range [][]byte{bChunks, bWeeks} {
				if b := tx.Bucket(name); b != nil {
					_ = b.ForEach(func(k, v []byte) error {
						if bytes.Equal(name, bChunks) && keyBlock(k) >= day0+3*weekDays {
							return nil // the open week's days stay as they are
						}
						n += len(v)
						return nil
					})
				}
			}
			return nil
		}))
		return n
	}
	days := size()
	setStep(t, ts, 0)
	rewrite(t, ts, m.end.Add(time.Second))
	weeks := size()
	t.Logf("day packs %d bytes, week packs %d", days, weeks)
	require.Less(t, float64(weeks), 1.05*float64(days))
}

// TestOldStoreRewritten: a store of day packs only, some of its days
// sealed one value per series as blocks first were, still reads, and a
// writer of today rewrites its complete weeks.
func TestOldStoreRewritten(t *testing.T) {
	ts, m := dayPackWeeks(t)
	// Days 7 and 15 as one value per series.
	require.NoError(t, ts.update(func(tx *bbolt.Tx, e *Engine) error {
		if err := e.h.codec.init(); err != nil {
			return err
		}
		b := tx.Bucket(bChunks)
		for _, blk := range []uint32{day0 + 7, day0 + 15} {
			var keys [][]byte
			var vals [][]byte
			c := b.Cursor()
			for k, v := c.Seek(blockKey(blk, 0)); k != nil && keyBlock(k) == blk; k, v = c.Next() {
				raw, err := e.h.codec.dec.DecodeAll(v[1:], nil)
				if err != nil {
					return err
				}
				keys = append(keys, slices.Clone(k))
				if err := eachInPack(raw, keyID(k), func(id uint32, chunk []byte) error {
					vals = append(vals, append(blockKey(blk, id), chunk...))
					return nil
				}); err != nil {
					return err
				}
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			for _, kv := range vals {
				if err := b.Put(kv[:8], kv[8:]); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	before := blockText(t, ts, time.UnixMilli(int64(day0+7)*blockMs))
	checkWeeks(t, ts, m, 7)
	require.NoError(t, ts.close())

	ts, err := openTest(ts.path, false, true)
	require.NoError(t, err)
	defer ts.close()
	setStep(t, ts, 500)
	require.Greater(t, rewrite(t, ts, m.end.Add(time.Second)), 3)
	_, weeks := blocksOf(t, ts)
	require.Equal(t, []uint32{week0, week0 + 1, week0 + 2}, weeks)
	checkWeeks(t, ts, m, 7)
	require.Equal(t, before, blockText(t, ts, time.UnixMilli(int64(day0+7)*blockMs)))
}

// TestRewriteRolledBack: a transaction that fails after a step of the
// rewrite (as a crash before its commit) leaves the store as it was, and
// readable; the next writer takes the step again.
func TestRewriteRolledBack(t *testing.T) {
	ts, m := dayPackWeeks(t)
	// Part of the first week rewritten, as one step leaves it.
	setStep(t, ts, 300)
	require.NoError(t, ts.commit(m.end.Add(time.Second)))
	days1, weeks1 := blocksOf(t, ts)
	require.Equal(t, []uint32{week0}, weeks1)
	require.Equal(t, day0+3, days1[0], "the first week is partly in day packs still")

	crash := errors.New("crash")
	for _, step := range []int{300, 0} {
		setStep(t, ts, step)
		err := ts.update(func(tx *bbolt.Tx, e *Engine) error {
			if err := e.Append(tx, nil, m.end.Add(2*time.Second)); err != nil {
				return err
			}
			days, weeks := func() (d, w int) {
				return tx.Bucket(bChunks).Stats().KeyN, tx.Bucket(bWeeks).Stats().KeyN
			}()
			require.NotZero(t, weeks)
			require.NotZero(t, days)
			return crash
		})
		require.ErrorIs(t, err, crash)
		days, weeks := blocksOf(t, ts)
		require.Equal(t, days1, days)
		require.Equal(t, weeks1, weeks)
		checkWeeks(t, ts, m, 5)
	}
	setStep(t, ts, 0)
	rewrite(t, ts, m.end.Add(3*time.Second))
	checkWeeks(t, ts, m, 7)
}

// TestRetainWeeks: retention cuts in the middle of weeks, rewritten or
// not, in the middle of a rewrite too; queries tell all that is kept and
// never fail, and a week pack goes once its whole week is before the cut.
func TestRetainWeeks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cut       float64  // days from start
		rewritten bool     // the weeks rewritten before the cut
		weeks     []uint32 // the weeks left in week packs, from the first
	}{
		{"rewritten, in the second week", 9.5, true, []uint32{1, 2}},
		{"rewritten, at the start of a week", 14, true, []uint32{2}},
		{"rewritten, on its last day", 20.2, true, []uint32{2}},
		{"not rewritten, in the second week", 9.5, false, []uint32{1, 2}},
		{"in the middle of the rewrite", 9.5, false, []uint32{1, 2}},
		{"into the open week", 22.5, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, m := dayPackWeeks(t)
			switch {
			case tc.rewritten:
				setStep(t, ts, 0)
				rewrite(t, ts, m.end.Add(time.Second))
			case strings.Contains(tc.name, "middle"):
				setStep(t, ts, 1000)
				for {
					require.NoError(t, ts.commit(m.end.Add(time.Second)))
					if _, weeks := blocksOf(t, ts); len(weeks) == 2 {
						break
					}
				}
				days, _ := blocksOf(t, ts)
				require.Equal(t, day0+weekDays, days[0], "the second week is in both forms")
			}
			cut := start.Add(time.Duration(tc.cut * float64(24*time.Hour)))
			kept := time.UnixMilli(blockOf(cut.UnixMilli()) * blockMs)
			require.NoError(t, Retain(context.Background(), cut, 50, ts.update))
			m.lo = kept.UnixMilli()
			checkWeeks(t, ts, m, 7)
			setStep(t, ts, 0)
			rewrite(t, ts, m.end.Add(2*time.Second))
			checkWeeks(t, ts, m, 7)
			days, weeks := blocksOf(t, ts)
			var want []uint32
			for _, w := range tc.weeks {
				want = append(want, week0+w)
			}
			require.Equal(t, want, weeks)
			require.Less(t, int64(day0+3*weekDays-1), int64(days[0]))
			// Poll times go by day, as before.
			require.NoError(t, ts.view(func(tx *bbolt.Tx, _ *Engine) error {
				k, _ := tx.Bucket(bPolls).Cursor().First()
				require.Equal(t, uint32(blockOf(kept.UnixMilli())), keyBlock(k))
				return nil
			}))
			// A day before the cut reads empty, whatever its week pack holds.
			require.Empty(t, blockText(t, ts, kept.Add(-time.Hour)))
		})
	}
}

// TestCorruptWeekPack damages a week pack: queries of its series and a
// read of its days fail with errors naming the block and the pack, and do
// not panic; other groups still read.
func TestCorruptWeekPack(t *testing.T) {
	ts, err := openTest(filepath.Join(t.TempDir(), "w.db"), false, true)
	require.NoError(t, err)
	defer ts.close()
	m := writeWeeks(t, ts)
	rewrite(t, ts, m.end.Add(time.Second))
	var ids map[quota.Key]uint32
	require.NoError(t, ts.view(func(tx *bbolt.Tx, e *Engine) error {
		ids = map[quota.Key]uint32{}
		for _, k := range m.keys {
			if s, _ := e.h.lookupRestored(k); s != nil {
				ids[k] = s.id
			}
		}
		return nil
	}))
	w := week0 + 1
	var victim, other quota.Key
	for _, k := range m.keys {
		switch ids[k] / weekGroup {
		case 1:
			victim = k
		case 2:
			other = k
		}
	}
	for _, damage := range []struct {
		name string
		fn   func(v []byte) []byte
	}{
		{"truncated", func(v []byte) []byte { return v[:len(v)-3] }},
		{"bad frame header", func(v []byte) []byte { v = slices.Clone(v); v[1] ^= 0xff; return v }},
		{"marker only", func([]byte) []byte { return []byte{weekMarker} }},
		{"a day pack's marker", func(v []byte) []byte { v = slices.Clone(v); v[0] = packMarker; return v }},
		{"empty frame", func([]byte) []byte {
			enc, err := zstd.NewWriter(nil)
			require.NoError(t, err)
			return append([]byte{weekMarker}, enc.EncodeAll([]byte{0x05, 0x01}, nil)...)
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			var orig []byte
			require.NoError(t, ts.update(func(tx *bbolt.Tx, _ *Engine) error {
				b := tx.Bucket(bWeeks)
				orig = slices.Clone(b.Get(weekKey(w, weekGroup)))
				return b.Put(weekKey(w, weekGroup), damage.fn(orig))
			}))
			day := start.Add(9*24*time.Hour + time.Hour)
			blk := uint32(blockOf(day.UnixMilli()))
			_, qerr := ts.series(victim, start, m.end)
			_, berr := func() (string, error) {
				var err error
				verr := ts.view(func(tx *bbolt.Tx, e *Engine) error {
					_, err = e.ReadBlock(tx, day)
					return nil
				})
				return "", errors.Join(err, verr)
			}()
			for _, err := range []error{qerr, berr} {
				require.ErrorIs(t, err, errCorrupt)
				require.Contains(t, err.Error(), fmt.Sprintf("week pack %d (blocks %d-%d)", weekGroup, w*weekDays, w*weekDays+6))
			}
			require.Contains(t, berr.Error(), fmt.Sprintf("block %d ", blk))
			got, err := ts.series(other, start, m.end)
			require.NoError(t, err)
			require.Equal(t, m.series(other, 0, m.end.UnixMilli()), got)
			require.NoError(t, ts.update(func(tx *bbolt.Tx, _ *Engine) error {
				return tx.Bucket(bWeeks).Put(weekKey(w, weekGroup), orig)
			}))
		})
	}
	checkWeeks(t, ts, m, 7)

	// The first week's packs begin days before the history: a query of
	// those days reads none of them, as a backtest's of every series.
	require.NoError(t, ts.update(func(tx *bbolt.Tx, _ *Engine) error {
		return tx.Bucket(bWeeks).Put(weekKey(week0, 0), []byte{weekMarker})
	}))
	for _, k := range m.keys[:5] {
		_, ok, err := ts.at(k, start.Add(2*24*time.Hour+time.Hour))
		require.NoError(t, err)
		require.False(t, ok)
		got, err := ts.series(k, start, start.Add(2*24*time.Hour+time.Hour))
		require.NoError(t, err)
		require.Empty(t, got)
	}
}

// TestCorruptDayPackNotRewritten: a complete week whose day pack does not
// decode stays as it is, with a warning, and the writer goes on to the
// next week; the cycles still commit.
func TestCorruptDayPackNotRewritten(t *testing.T) {
	ts, m := dayPackWeeks(t)
	require.NoError(t, ts.update(func(tx *bbolt.Tx, _ *Engine) error {
		b := tx.Bucket(bChunks)
		k, v := b.Cursor().Seek(blockKey(day0+8, 0))
		v = slices.Clone(v)
		v[1] ^= 0xff // the zstd frame's magic
		return b.Put(slices.Clone(k), v)
	}))
	setStep(t, ts, 0)
	for i := range 4 {
		require.NoError(t, ts.commit(m.end.Add(time.Duration(i+1)*time.Second)))
	}
	days, weeks := blocksOf(t, ts)
	require.Equal(t, []uint32{week0, week0 + 2}, weeks)
	require.Equal(t, day0+weekDays, days[0])
	require.Equal(t, day0+3*weekDays, days[weekDays])
}

// FuzzWeekPack feeds arbitrary bytes to the week pack decoders, which
// must fail cleanly rather than panic.
func FuzzWeekPack(f *testing.F) {
	var p weekPacker
	p.reset(96)
	for day := range []int{0, 3} {
		c := chunkenc.Encode([]chunkenc.Point{{Idx: 0, Present: true, V: vals{1, 2}}, {Idx: 4, Present: true, V: vals{3, 2}}, {Idx: 6}})
		if err := p.add(100, day, c); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(slices.Clone(p.raw))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = findInWeek(raw, 96, 100)
		_ = eachInWeek(raw, 96, 3, func(uint32, []byte) {})
	})
}
