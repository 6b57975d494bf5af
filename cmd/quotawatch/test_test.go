package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The cookbook's rule tests pass when run by the command itself, as its
// own process: CI runs them with every `go test ./...`.
func TestCookbookRuleTests(t *testing.T) {
	file := filepath.Join("..", "..", "examples", "cookbook.test.yaml")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// No CREDENTIALS_DIRECTORY: the tests must not need the daemon's secrets.
	cmd.Env = append(withoutEnv(os.Environ(), "CREDENTIALS_DIRECTORY"), daemonEnv+"=1", daemonEnv+"_ARGS="+strings.Join([]string{"test", file}, "\n"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("quotawatch test %s: exit %d\n%s%s", file, exit.ExitCode(), stdout.String(), stderr.String())
	}
	require.NoError(t, err)
	require.Empty(t, stderr.String())
	require.NotContains(t, stdout.String(), "FAIL")
	require.Regexp(t, `(?m)^[1-9][0-9]* passed, 0 failed$`, stdout.String())
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// The exit code says whether every test passed (0), one failed (1) or a
// file is malformed (2); every file is run either way.
func TestTestExitCodes(t *testing.T) {
	cookbook := filepath.Join("..", "..", "examples", "cookbook.test.yaml")
	failing := filepath.Join("testdata", "failing.test.yaml")
	malformed := filepath.Join("testdata", "malformed.test.yaml")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"all pass", []string{"test", cookbook}, exitOK, []string{"ok   container rebalance", "5 passed, 0 failed"}, nil},
		{"one fails", []string{"test", cookbook, failing}, exitFailure,
			[]string{"FAIL the move goes elsewhere", "missing:    {event: action, to: elsewhere}", "5 passed, 1 failed"}, nil},
		{"malformed", []string{"test", failing, malformed}, exitUsage,
			[]string{"FAIL the move goes elsewhere", "0 passed, 1 failed, 1 test file malformed"},
			[]string{malformed + `:6: tests[0].input_series[0]: unknown key "usge"`}},
		{"missing file", []string{"test", "nope.test.yaml"}, exitUsage, nil, []string{"nope.test.yaml: read test file:"}},
		{"no file", []string{"test"}, exitUsage, nil, []string{"test: want at least 1 argument(s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, nil, tt.args...)
			require.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, s := range tt.stdout {
				require.Contains(t, stdout, s)
			}
			for _, s := range tt.stderr {
				require.Contains(t, stderr, s)
			}
		})
	}
}
