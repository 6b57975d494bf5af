package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/quotawatch/quotawatch/synnefosim"
)

// simCmd holds the flags of `sim`.
type simCmd struct{ listen, scenario string }

func (s *simCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.listen, "listen", "127.0.0.1:8080", "address to serve the simulated cloud on")
	fs.StringVar(&s.scenario, "scenario", "", "scenario file (required)")
}

func (s *simCmd) run(ctx context.Context, e *env) int {
	if s.scenario == "" {
		return usageErr(e.stdio, "sim: --scenario FILE is required")
	}
	sc, err := synnefosim.LoadScenario(s.scenario)
	if err != nil {
		fmt.Fprintln(e.errOut, err)
		return exitUsage
	}
	srv, err := synnefosim.Start(sc, s.listen)
	if err != nil {
		return fail(e.stdio, "sim: %v", err)
	}
	defer srv.Close()
	fmt.Fprintf(e.out, "simulated cloud on %s\nauth_url: %s\n", srv.URL, srv.AuthURL())
	<-ctx.Done()
	return exitOK
}
