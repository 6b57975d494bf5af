package main

import (
	"runtime/debug"
	"runtime/metrics"
)

// Memory limit bounds, in bytes.
const (
	memFloor = 32 << 20 // never squeeze below this
	memSlack = 8 << 20  // room for a cycle's transient buffers beyond the live heap's quarter
)

// memoryTuner returns a function, run after every cycle, that hands the
// cycle's garbage back to the operating system and sets the Go runtime's
// soft memory limit to what the daemon needs: the live heap plus a quarter,
// plus some slack. The daemon is idle between cycles, so spending a little
// more CPU on garbage collection during a cycle is the right trade for a
// small resident size. An operator's GOMEMLIMIT always wins: then the tuner
// is nil.
func memoryTuner(lookupEnv func(string) (string, bool)) func() {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return nil
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	return func() {
		debug.FreeOSMemory()
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		debug.SetMemoryLimit(memoryLimit(sample[0].Value.Uint64()))
	}
}

// memoryLimit is the soft limit for a live heap of live bytes.
func memoryLimit(live uint64) int64 {
	return int64(max(memFloor, live+live/4+memSlack))
}
