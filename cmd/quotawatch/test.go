package main

import (
	"context"

	"github.com/quotawatch/quotawatch/ruletests"
)

// cmdTest runs the rule tests of each file: a line per test and a summary
// on stdout, the problems of a malformed file on stderr. It exits 0 when
// every test passed, 1 when one failed and 2 when a file is malformed.
func cmdTest(_ context.Context, e *env) int {
	s := ruletests.RunFiles(e.out, e.errOut, e.args, ruletests.Options{LookupEnv: e.lookupEnv})
	return s.ExitCode()
}
