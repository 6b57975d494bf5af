// Package store keeps quotawatch's state in one bbolt file: the history of
// every quota series, rule instance and account states, the action journal,
// the notification outbox, Slack thread ids and silences.
//
// # Locking
//
// A writer (the daemon) holds an exclusive flock on <path>.lock for the
// life of its Store, so a second writer fails within Options.LockTimeout
// with an error naming the file (errors.Is(err, ErrLocked)). The bbolt file
// itself is held only while in use: Release closes it between cycles, and
// the next call reopens it. Read-only stores (status, history, actions,
// backup) wait up to LockTimeout for a running cycle; they should be
// closed promptly, since a writer waits for them in turn.
//
// # History encoding
//
// A quota series is a step function, so only changes are stored. Time is
// cut into day blocks. For each block, each account has a poll-time log
// (delta-of-delta varints: about a byte per regular poll) and each series
// present in the block has a chunk: points of (poll index delta, change
// mask, zigzag varint deltas of the changed values), where a mask bit
// records that project_usage moved with usage and another marks the series
// absent from that poll on. A chunk starts from an empty state at the
// account's first poll of the block, so blocks stand alone and retention
// drops whole blocks. Chunk keys are (block, series id): a finished block
// is appended at the end of the bucket with full pages.
//
// The newest block is not yet chunked: each Commit appends the cycle's
// changes to a write-ahead log (one small value), and the first poll of the
// next block folds the log into chunks and writes a checkpoint of the last
// values. Each log entry links back to its series' previous entry in the
// block. When a block is folded, each chunk's deltas are divided by the
// largest power of two they share (resources move in KiB, MiB or GiB
// steps). Times are kept to the millisecond.
//
// # Head cache
//
// The store keeps in memory only what a Commit needs: the last values of
// every series, a hash index of their keys, and where each series' newest
// log entry is (about 110 bytes a series, under 10 MB for 80,000). A
// Commit compares each entry against memory (usually without a lookup:
// snapshots list entries in a stable order) and writes only what changed.
// The open block's changes stay on disk: a query, and the fold, rebuild a
// series' chunk by following its links back from its newest entry and
// undoing each change from its last values, so they read only that
// series' entries. Series live in pages of a pointer-free arena, which
// the garbage collector does not scan and which grows without copying.
// Opening rebuilds the cache from the checkpoint and the log. A log
// written before entries were linked is rewritten by the first writer to
// open the store; a reader rebuilds that block's chunks once instead.
//
// # Retention
//
// Retain drops whole day blocks older than its cut-off, in transactions of
// a few thousand keys, and forgets series last seen before the oldest
// block kept. The file does not shrink (bbolt reuses the freed pages);
// Compact writes a fully packed copy for offline replacement.
//
// # Backups
//
// Backup streams tx.WriteTo from one read transaction without holding the
// store's own lock, so cycles go on committing. The file is mapped at twice
// its size when opened, so a commit rarely needs to grow the mapping, which
// would make it wait for a running backup.
//
// # Outbox order
//
// Due returns a notifier's messages in enqueue order and stops at the first
// live message of that notifier that is not yet due, so a message is never
// delivered before an earlier pending one of the same notifier.
//
// # Benchmarks
//
// The workload-W benchmark writes 30 days of 10,000 series and runs once
// per invocation; BenchmarkHead80k reports the head cache of 80,000 series
// at the end of a day (head-MB) and times opening such a store:
//
//	go test -run '^$' -bench 'WorkloadW|AppendCycle80k|Head80k' -benchmem ./store/
package store
