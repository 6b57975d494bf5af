package series

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series/chunkenc"
)

// The engine's buckets. Names start with "history_", so the caller's own
// buckets stay clear of them.
var (
	bAccts  = []byte("history_accounts") // account id -> name
	bSeries = []byte("history_series")   // the series' id sequence; series id -> account id, project, resource, before the registry
	bChunks = []byte("history_chunks")   // block, series id -> chunk
	bPolls  = []byte("history_polls")    // block, account id -> poll times
	bLog    = []byte("history_openlog")  // sequence -> polls of the open block
	bHead   = []byte("history_head")     // the open block and its checkpoint

	allBuckets = [...][]byte{iAccts: bAccts, iSeries: bSeries, iChunks: bChunks, iPolls: bPolls, iLog: bLog, iHead: bHead,
		iRegistry: bRegistry}

	kBlock      = []byte("block")      // the open block's number
	kCheckpoint = []byte("checkpoint") // last values when it began
)

// Indexes in allBuckets.
const (
	iAccts = iota
	iSeries
	iChunks
	iPolls
	iLog
	iHead
	iRegistry
)

var (
	errCorrupt = chunkenc.ErrCorrupt
	errPartial = errors.New("series: an engine of some series only does not write")
)

type vals = chunkenc.Vals

func valsOf(q quota.Quota) vals {
	return vals{q.Usage, q.Limit, q.Pending, q.ProjectUsage, q.ProjectLimit, q.ProjectPending}
}

func quotaOf(v vals) quota.Quota {
	return quota.Quota{Usage: v[0], Limit: v[1], Pending: v[2], ProjectUsage: v[3], ProjectLimit: v[4], ProjectPending: v[5]}
}

// Init creates the engine's buckets in tx, where missing.
func Init(tx *bbolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// buckets finds the engine's buckets in one transaction as they are first
// needed: a write transaction allocates for each bucket it opens, and most
// commits write only the log.
type buckets struct {
	tx *bbolt.Tx
	b  [len(allBuckets)]*bbolt.Bucket
	// scratch holds a decompressed pack, reused from block to block.
	scratch []byte
	wk      weekCache
	folded  bool // this transaction folded the open block
}

func (bk *buckets) get(i int) *bbolt.Bucket {
	if bk.b[i] == nil {
		bk.b[i] = bk.tx.Bucket(allBuckets[i])
	}
	return bk.b[i]
}

func (bk *buckets) accts() *bbolt.Bucket  { return bk.get(iAccts) }
func (bk *buckets) series() *bbolt.Bucket { return bk.get(iSeries) }
func (bk *buckets) chunks() *bbolt.Bucket { return bk.get(iChunks) }
func (bk *buckets) polls() *bbolt.Bucket  { return bk.get(iPolls) }
func (bk *buckets) log() *bbolt.Bucket    { return bk.get(iLog) }
func (bk *buckets) head() *bbolt.Bucket   { return bk.get(iHead) }

// registry is nil in a store written before it.
func (bk *buckets) registry() *bbolt.Bucket { return bk.get(iRegistry) }

// open checks that the buckets a query reads exist, and with all, every
// bucket but the registry (files from before it have none), as Load does.
// A writer's buckets then stay: only it writes.
func open(tx *bbolt.Tx, all bool) (*buckets, error) {
	bk := &buckets{tx: tx}
	for i, name := range allBuckets {
		if (all && i != iRegistry || i == iChunks || i == iPolls || i == iLog) && bk.get(i) == nil {
			return nil, fmt.Errorf("%w: no bucket %s", errCorrupt, name)
		}
	}
	return bk, nil
}

// Engine is the series history kept in the buckets Init creates, with its
// head cache. The caller owns the database and its transactions: it hands
// each call a transaction, and serialises calls that write (Append,
// Retain) against everything else. When a write
// transaction fails, the cache may be ahead of the file: Load a new
// Engine.
type Engine struct {
	h     *head
	log   *slog.Logger
	weeks weekState
	// partial: loaded by LoadSeries, which must not write.
	partial bool
}

// Load rebuilds the head cache from tx: the registries, the checkpoint
// written at the last fold, then the open block's log. log receives
// warnings about snapshots not recorded; nil discards them.
func Load(tx *bbolt.Tx, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bk, err := open(tx, true)
	if err != nil {
		return nil, err
	}
	h, err := loadHead(bk, nil)
	if err != nil {
		return nil, err
	}
	return &Engine{h: h, log: log}, nil
}

// LoadSeries is Load for a reader of a few series' history: its engine
// knows only the series of keys (those the store has), and reads nothing
// of the others but their names. Opening it for one series of 10,000
// costs a fraction of a Load. It never writes.
func LoadSeries(tx *bbolt.Tx, keys ...quota.Key) (*Engine, error) {
	bk, err := open(tx, true)
	if err != nil {
		return nil, err
	}
	h, err := loadHead(bk, newKeySet(keys))
	if err != nil {
		return nil, err
	}
	return &Engine{h: h, log: slog.New(slog.DiscardHandler), partial: true}, nil
}

// Accounts lists the accounts the history has polls of, read from tx
// without loading anything else.
func Accounts(tx *bbolt.Tx) ([]string, error) {
	bk, err := open(tx, true)
	if err != nil {
		return nil, err
	}
	var out []string
	err = bk.accts().ForEach(func(_, v []byte) error { out = append(out, string(v)); return nil })
	return out, err
}

// Len is the number of known series.
func (e *Engine) Len() int { return int(e.h.n) }

// MemBytes is the heap the head cache holds, counted from its capacities.
func (e *Engine) MemBytes() int64 { return e.h.memBytes() }

// LogBytes is the size of the open block's log.
func LogBytes(tx *bbolt.Tx) (int64, error) {
	bk, err := open(tx, false)
	if err != nil {
		return 0, err
	}
	var n int64
	err = bk.log().ForEach(func(_, v []byte) error {
		n += int64(len(v))
		return nil
	})
	return n, err
}

// Append records snapshots in tx, in time order, folding the open block
// into chunks when a poll starts a new one. A snapshot without a time is
// taken at batchTime. A snapshot not after its account's previous poll, or
// at a time out of range, is logged and skipped.
func (e *Engine) Append(tx *bbolt.Tx, snapshots []quota.Snapshot, batchTime time.Time) error {
	if e.partial {
		return errPartial
	}
	// The encoder is let go after each write, a step of a week's rewrite
	// too: made again, it costs a few milliseconds of a step that packs
	// thousands of chunks, where kept it would hold 40 MB for hours.
	defer e.h.codec.dropEncoder()
	bk := &buckets{tx: tx} // Load found them all
	h := e.h
	if err := h.settle(); err != nil {
		return err
	}
	snaps := make([]*quota.Snapshot, 0, len(snapshots))
	for i := range snapshots {
		snaps = append(snaps, &snapshots[i])
	}
	at := func(sn *quota.Snapshot) int64 {
		if sn.Time.IsZero() {
			return ms(batchTime)
		}
		return ms(sn.Time)
	}
	slices.SortStableFunc(snaps, func(x, y *quota.Snapshot) int { return cmp.Compare(at(x), at(y)) })
	var polls []logPoll
	// flush writes the polls collected so far as one log record.
	flush := func() error {
		if len(polls) == 0 {
			return nil
		}
		bk.log().FillPercent = 1
		seq, err := bk.log().NextSequence()
		if err != nil {
			return fmt.Errorf("open-block log: %w", err)
		}
		if seq > 1<<32-1 {
			return fmt.Errorf("open-block log: too many records")
		}
		rec := encodeRecord(polls)
		for _, p := range polls {
			p.acct.locs[p.idx] = logLoc{seq: uint32(seq), base: uint32(p.base)}
		}
		if err := bk.log().Put(u64(seq), rec); err != nil {
			return fmt.Errorf("open-block log: %w", err)
		}
		polls = polls[:0]
		return nil
	}
	for _, sn := range snaps {
		t := at(sn)
		blk := blockOf(t)
		if blk < 0 || blk > 1<<32-1 {
			e.log.Warn("store: snapshot time out of range; not recorded", "account", sn.Account, "time", sn.Time)
			continue
		}
		a, err := h.account(bk, sn.Account)
		if err != nil {
			return err
		}
		if a.last != 0 && t <= a.last || h.hasBlock && uint32(blk) < h.block {
			e.log.Warn("store: snapshot not after the account's last poll (clock stepped back?); not recorded",
				"account", sn.Account, "time", time.UnixMilli(t).UTC(), "last", time.UnixMilli(a.last).UTC())
			continue
		}
		if !h.hasBlock || uint32(blk) > h.block {
			// The fold reads the block back from the log: write this
			// batch's earlier polls there first.
			if err := flush(); err != nil {
				return err
			}
			if err := h.fold(bk); err != nil {
				return err
			}
			h.block, h.hasBlock = uint32(blk), true
			if err := bk.head().Put(kBlock, u32(h.block)); err != nil {
				return fmt.Errorf("open block: %w", err)
			}
		}
		polls = append(polls, logPoll{})
		if err := h.poll(bk, a, t, sn.Entries, &polls[len(polls)-1]); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := h.putRegistry(bk); err != nil {
		return err
	}
	if err := e.sealWeeks(bk); err != nil {
		return err
	}
	return h.maybeSnapshot(bk)
}

func u32(x uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return b[:]
}

func u64(x uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], x)
	return b[:]
}

// blockKey orders chunks by block first, so a new block is appended at the
// end of the bucket and retention deletes a prefix.
func blockKey(block, id uint32) []byte {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], block)
	binary.BigEndian.PutUint32(b[4:], id)
	return b[:]
}
