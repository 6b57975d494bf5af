package main

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
)

// memoryTuner returns a function, run after every cycle, that hands the
// cycle's garbage back to the operating system, so that the idle daemon
// holds little more than its live heap. It sets no soft memory limit: a
// limit near the live heap is below what one cycle allocates (the decoded
// body, the snapshot, the evaluations), and the collector then runs dozens
// of times a cycle, doubling the cycle's time for no less idle memory,
// since the release after the cycle returns the same pages. An operator's
// GOMEMLIMIT always wins: then the tuner is nil and the runtime follows
// it.
func memoryTuner(lookupEnv func(string) (string, bool), log *slog.Logger) func() {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return nil
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	return func() {
		debug.FreeOSMemory()
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			log.Debug("memory released", "live", sample[0].Value.Uint64())
		}
	}
}

// Garbage collection of a read-only command, which reads the store, prints
// and exits within a second.
const (
	commandGCPercent = -1        // no collection by heap growth
	commandMemLimit  = 512 << 20 // only near this
)

// tuneForCommand makes the collector run only near a memory limit in a
// read-only command: `status` of 80,000 series would spend a third of its
// time collecting garbage it frees by exiting anyway, and the few
// megabytes a collection frees do not lower its peak, which is its live
// data. An operator's GOGC or GOMEMLIMIT wins.
func tuneForCommand(lookupEnv func(string) (string, bool)) {
	if v, ok := lookupEnv("GOGC"); ok && v != "" {
		return
	}
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return
	}
	debug.SetGCPercent(commandGCPercent)
	debug.SetMemoryLimit(commandMemLimit)
}
