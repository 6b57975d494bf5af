package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Set at build time by `make build`:
//
//	-ldflags "-X main.version=v1.2.3 -X main.revision=<commit> -X main.buildDate=<RFC 3339>"
//
// A plain `go build` leaves them empty; the binary's embedded build
// information fills in what it can, which is nothing under
// GOFLAGS=-buildvcs=false.
var (
	version   = ""
	revision  = ""
	buildDate = ""
)

// buildInfo is what `version` prints and quotawatch_build_info carries.
type buildInfo struct {
	Version   string
	Revision  string // "" when unknown
	BuildDate string // "" when unknown; the commit time without -ldflags
	GoVersion string
}

// currentBuild is the running binary's build information.
func currentBuild() buildInfo {
	return readBuild(version, revision, buildDate, debug.ReadBuildInfo)
}

// readBuild prefers the values set with -ldflags, then the module version
// and the VCS stamps the Go toolchain embeds.
func readBuild(ver, rev, date string, read func() (*debug.BuildInfo, bool)) buildInfo {
	b := buildInfo{Version: ver, Revision: rev, BuildDate: date, GoVersion: runtime.Version()}
	bi, ok := read()
	if ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		var vcsRev, vcsTime string
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRev = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if b.Revision == "" && vcsRev != "" {
			b.Revision = vcsRev
			if modified {
				b.Revision += "-dirty"
			}
		}
		if b.BuildDate == "" {
			b.BuildDate = vcsTime
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

func cmdVersion(_ context.Context, e *env) int {
	b := currentBuild()
	fmt.Fprintf(e.out, "quotawatch %s\n", b.Version)
	fmt.Fprintf(e.out, "  revision:   %s\n", orUnknown(b.Revision))
	fmt.Fprintf(e.out, "  build date: %s\n", orUnknown(b.BuildDate))
	fmt.Fprintf(e.out, "  go:         %s\n", b.GoVersion)
	return exitOK
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// buildInfoGauge is quotawatch_build_info: always 1, the build in its labels,
// so that a query can join it onto any other series.
func buildInfoGauge(b buildInfo) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "quotawatch_build_info",
		Help: "Always 1; the labels say which build of quotawatch is running.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.Revision, "build_date": b.BuildDate, "goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// daemonRegistry is the registry `run` serves on /metrics before the watcher
// adds its own: the Go runtime, the process and the build.
func daemonRegistry(b buildInfo) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoGauge(b))
	return reg
}
