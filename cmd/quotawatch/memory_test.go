package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemoryLimit(t *testing.T) {
	require.Equal(t, int64(memFloor), memoryLimit(1<<20), "small heaps keep the floor")
	require.Equal(t, int64(100<<20+25<<20+memSlack), memoryLimit(100<<20))
}

func TestMemoryTunerRespectsGOMEMLIMIT(t *testing.T) {
	require.Nil(t, memoryTuner(func(k string) (string, bool) { return "256MiB", k == "GOMEMLIMIT" }))
	tune := memoryTuner(func(string) (string, bool) { return "", false })
	require.NotNil(t, tune)
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	tune()
	got := debug.SetMemoryLimit(-1)
	require.GreaterOrEqual(t, got, int64(memFloor))
	require.Less(t, got, old, "a limit was set")
}
