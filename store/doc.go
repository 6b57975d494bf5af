// Package store keeps quotawatch's state in one bbolt file: the history of
// every quota series (kept by package series), rule instance and account
// states, the action journal, the notification outbox, Slack thread ids
// and silences. The store owns the file, its locks, the schema version,
// backups and the daemon's state; the series engine owns its buckets.
//
// # Locking
//
// A writer (the daemon) holds, for the life of its Store, an exclusive
// lock on the store file's inode (an open-file-description lock on Linux,
// which bbolt's flock and read-only opens do not conflict with), and a
// flock on <path>.lock as older versions took. A second writer fails
// within Options.LockTimeout with an error naming the file
// (errors.Is(err, ErrLocked)); removing or replacing the lock file does not
// let it in, since the lock that counts is on the store itself. Every
// reopen checks that the path still names the locked inode. The bbolt
// file itself is held only while in use: Release closes it between cycles,
// and the next call reopens it. Read-only stores (status, history,
// actions, backup) wait up to LockTimeout for a running cycle; they should
// be closed promptly, since a writer waits for them in turn.
//
// The locks see only processes of one host. So that a copy of the store,
// or one on a filesystem shared with another host, does not act twice,
// the meta bucket records the host id of the last writer (Writer), and
// ClaimWriter refuses a store last claimed by another host with
// ErrOtherHost unless told to take it over.
//
// # Damage
//
// A writer creates a store only where no file exists, beside the path and
// linked into place complete, so an empty file is never a new store. A
// file that is empty, shorter than its meta page says, not a bbolt file,
// not a regular file, or that reads wrong anywhere (every open reads all
// of its pages once) is refused with an error naming it and the remedy
// (errors.Is(err, ErrDamaged)), and never changed. Reads of the mapped
// file run with faults turned into panics, and every panic in a
// transaction becomes that error, so damage never kills the process. Once
// a Store has met damage, every call fails with it (Damaged).
//
// # History
//
// The history of the quota series lives in the history_* buckets of the
// series engine (package series), to which the store hands its own
// transactions; the engine's codec is package series/chunkenc. A quota
// series is a step function, so only its changes are stored, per (series,
// day) chunk: points of (poll index delta, change mask, zigzag varint
// deltas of the changed values), with each account's poll times kept once
// per day. The newest day is the open block: each Commit appends the
// cycle's changes to the open-block log, an append log of deltas inside
// bbolt (whose commit already makes it durable, with the rest of the
// cycle), and the first poll of the next day folds the log into chunks.
//
// The engine keeps a head cache in memory: the last values of every
// series, an index of their keys, and where each series' newest log entry
// is (about 110 bytes a series, under 10 MB for 80,000). A Commit writes
// only what changed; a query of the open block follows one series' log
// entries back from its newest. A writer keeps the cache across Release,
// since only it writes; a reader rebuilds it on reopening; a failed
// history write drops it to be rebuilt on next use.
//
// # Retention
//
// Retain drops whole day blocks older than its cut-off, in transactions of
// a few thousand keys, and forgets series last seen before the oldest
// block kept. The file does not shrink (bbolt reuses the freed pages);
// Compact writes a fully packed copy for offline replacement.
//
// # Schema
//
// meta holds the schema version. A new file is created at SchemaVersion;
// a file with a newer version is refused with ErrSchema, naming both
// versions, so an older quotawatch never misreads it. A file of version 1
// is read as it is, and marked SchemaVersion by the first writer to open
// it.
//
// # Backups
//
// Backup streams tx.WriteTo from one read transaction without holding the
// store's own lock, so cycles go on committing; it reads every page first,
// so a damaged store is refused, not copied. BackupFile writes only a new
// regular file (or an existing one, with Force), never the live store, a
// device, a directory, or through a symbolic link, by way of a synced
// temporary file in the same directory. The file is mapped at twice
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
// The history benchmarks are package series's: workload W writes 30 days
// of 10,000 series and runs once per invocation; BenchmarkHead80k reports
// the head cache of 80,000 series at the end of a day (head-MB) and times
// opening such a store:
//
//	go test -run '^$' -bench 'WorkloadW|AppendCycle80k|Head80k' -benchmem ./store/series/
package store
