package main

import (
	"bytes"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemoryTunerRespectsGOMEMLIMIT(t *testing.T) {
	require.Nil(t, memoryTuner(func(k string) (string, bool) { return "256MiB", k == "GOMEMLIMIT" }, slog.New(slog.DiscardHandler)))
}

// TestMemoryTunerSetsNoLimit: a soft limit near the live heap made the
// collector run dozens of times a cycle; the tuner only releases memory.
func TestMemoryTunerSetsNoLimit(t *testing.T) {
	var logs bytes.Buffer
	tune := memoryTuner(func(string) (string, bool) { return "", false }, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NotNil(t, tune)
	old := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(old)
	tune()
	require.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1), "no limit was set")
	require.Contains(t, logs.String(), `msg="memory released"`, "the benchmark reads memory after this line")
}

func TestTuneForCommand(t *testing.T) {
	oldPercent, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	defer func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) }()
	tuneForCommand(func(k string) (string, bool) { return "50", k == "GOGC" })
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC wins")
	tuneForCommand(func(string) (string, bool) { return "", false })
	require.Equal(t, commandGCPercent, debug.SetGCPercent(100))
	require.Equal(t, int64(commandMemLimit), debug.SetMemoryLimit(math.MaxInt64))
}
