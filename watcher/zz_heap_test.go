package watcher_test

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

func BenchmarkZZHeap(b *testing.B) {
	runtime.MemProfileRate = 4096
	w, _, clk := benchEnv(b)
	for range 6 {
		clk.Advance(5 * time.Minute)
		if _, err := w.Cycle(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	f, _ := os.Create("/tmp/heap.out")
	pprof.WriteHeapProfile(f)
	f.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapinuse-MB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MB")
}
