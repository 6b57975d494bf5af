// Package series is quotawatch's time-series engine: the history of every
// quota series, kept in bbolt buckets named history_* (Init creates them)
// in a database the caller owns; the caller hands each call one of its
// transactions, so history commits with the caller's own changes.
//
// # Model
//
// A quota series (account, project, resource) is a step function: its
// values hold from one poll until they change, so only changes are stored,
// and a query reports the values in force at each poll. A series missing
// from its account's poll is recorded as absent from then on.
//
// # Blocks and chunks
//
// Time is cut into day blocks. For each block, each account has one
// poll-time record and each series present in the block has one chunk
// (package chunkenc): its changes as points keyed by the account's poll
// index. A chunk starts from an empty state at the block's first poll, so
// blocks stand alone. A sealed block keeps its chunks in packs of up to
// 512 series of consecutive ids, compressed together with zstd, each
// chunk's first values stored as the change from the previous chunk's;
// pack keys are (block, first series id), so a finished block is appended
// at the end of its bucket with full pages. Once a week of seven blocks is
// complete, the writer rewrites it, a bounded step per Append, as week
// packs: all seven days of 96 series of consecutive ids in one value, so
// that a query of one series over 30 days decompresses four or five small
// week packs and at most six day packs. Values holding a bare chunk under
// (block, series id), as blocks were first sealed, and weeks still in day
// packs, as stores were written before, still read, and are rewritten.
//
// # The open block
//
// The newest block is not yet chunked. Each Append adds one record to the
// open-block log: the poll's changes as deltas, each entry linking back to
// its series' previous entry in the block. bbolt's commit makes the record
// durable with the rest of the caller's transaction, so the log needs no
// recovery of its own. The first poll of the next block folds the log into
// chunks, writes a checkpoint of every series' last values, and drops the
// log. A fold recodes each chunk with the largest power of two its deltas
// share. Times are kept to the millisecond. Every 12 log records the
// writer also stores a head snapshot (the cache's values and log links,
// about 40 bytes a series), so that loading the cache replays at most an
// hour of the log at five-minute polls, not the whole day.
//
// # Head cache
//
// An Engine keeps in memory only what an Append needs: the last values of
// every series, a hash index of their keys (built by a lookup after the
// first few, which scan: a command that reads one series, or lists them
// all, never builds it), and where each series' newest log entry is
// (about 110 bytes a series, under 10 MB for 80,000). Append
// compares each entry against memory (usually without a lookup: snapshots
// list entries in a stable order) and logs only what changed. The open
// block's changes stay on disk: a query, and the fold, rebuild a series'
// chunk by following its links back from its newest entry and undoing each
// change from its last values, so they read only that series' entries.
// Series live in pages of a pointer-free arena, which the garbage
// collector does not scan and which grows without copying. Load rebuilds
// the cache from the head snapshot and the log after it, or from the
// checkpoint and the whole log. From a snapshot, each series' values are
// restored when first read (the log after it is replayed at once, as
// changes): a command that reads one series of many decodes that one.
//
// # Retention
//
// Retain drops whole day blocks older than its cut-off, in transactions of
// a bounded number of keys, and forgets series last seen before the oldest
// block kept. Queries stop at the cut-off at once; a week pack goes once
// its whole week is before it. bbolt reuses the freed pages; the file does
// not shrink.
package series
