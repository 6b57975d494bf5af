package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestReadBuild(t *testing.T) {
	vcs := func(mod string, kv ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: mod}}
			for i := 0; i+1 < len(kv); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name           string
		ver, rev, date string
		read           func() (*debug.BuildInfo, bool)
		want           buildInfo
	}{
		{"nothing known", "", "", "", none,
			buildInfo{Version: "(devel)", GoVersion: runtime.Version()}},
		{"no vcs stamps (-buildvcs=false)", "", "", "", vcs("(devel)"),
			buildInfo{Version: "(devel)", GoVersion: "go1.99.1"}},
		{"vcs stamps", "", "", "", vcs("(devel)", "vcs.revision", "abc123", "vcs.time", "2026-11-30T10:00:00Z", "vcs.modified", "false"),
			buildInfo{Version: "(devel)", Revision: "abc123", BuildDate: "2026-11-30T10:00:00Z", GoVersion: "go1.99.1"}},
		{"modified tree", "", "", "", vcs("", "vcs.revision", "abc123", "vcs.modified", "true"),
			buildInfo{Version: "(devel)", Revision: "abc123-dirty", GoVersion: "go1.99.1"}},
		{"go install of a module version", "", "", "", vcs("v1.4.0"),
			buildInfo{Version: "v1.4.0", GoVersion: "go1.99.1"}},
		{"ldflags win", "v1.5.0", "def456", "2026-12-01T11:00:00Z",
			vcs("v1.4.0", "vcs.revision", "abc123", "vcs.time", "2026-11-30T10:00:00Z"),
			buildInfo{Version: "v1.5.0", Revision: "def456", BuildDate: "2026-12-01T11:00:00Z", GoVersion: "go1.99.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, readBuild(tt.ver, tt.rev, tt.date, tt.read))
		})
	}
}

// `version` and `--version` print the same four facts.
func TestVersionPrintsTheBuild(t *testing.T) {
	_, want, _ := runCmd(t, nil, "version")
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		code, stdout, stderr := runCmd(t, nil, args...)
		require.Equal(t, exitOK, code, stderr)
		require.Equal(t, want, stdout)
	}
	require.Regexp(t, `^quotawatch \S+\n  revision:   \S+\n  build date: \S+\n  go:         go\S+\n$`, want)
}

func TestBuildInfoMetric(t *testing.T) {
	b := buildInfo{Version: "v1.5.0", Revision: "def456", BuildDate: "2026-12-01T11:00:00Z", GoVersion: "go1.99.1"}
	reg := daemonRegistry(b)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP quotawatch_build_info Always 1; the labels say which build of quotawatch is running.
# TYPE quotawatch_build_info gauge
quotawatch_build_info{build_date="2026-12-01T11:00:00Z",goversion="go1.99.1",revision="def456",version="v1.5.0"} 1
`), "quotawatch_build_info"))
	n, err := testutil.GatherAndCount(reg, "go_goroutines", "process_start_time_seconds")
	require.NoError(t, err)
	require.Equal(t, 2, n, "the Go and process collectors are there too")
}
