// Package store keeps quotawatch's state in one bbolt file: the history of
// every quota series, rule instance and account states, the action journal,
// the notification outbox and Slack thread ids.
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
// values. An in-memory head cache holds the last values of every series,
// so a Commit compares each entry against memory and writes only what
// changed. Times are kept to the millisecond.
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
// per invocation:
//
//	go test -run '^$' -bench 'WorkloadW|AppendCycle80k' -benchmem ./store/
package store
