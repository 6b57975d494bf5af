package main

import (
	"context"
	"fmt"

	"github.com/quotawatch/quotawatch/synnefosim"
)

func cmdSim(ctx context.Context, sio *stdio, args []string) int {
	fs := newFlagSet("sim", " --listen ADDR --scenario FILE")
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve the simulated cloud on")
	scenario := fs.String("scenario", "", "scenario file (required)")
	rest, code, ok := parseFlags(fs, sio, args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return usageErr(sio, "sim: unexpected argument %q", rest[0])
	}
	if *scenario == "" {
		return usageErr(sio, "sim: --scenario FILE is required")
	}
	sc, err := synnefosim.LoadScenario(*scenario)
	if err != nil {
		fmt.Fprintln(sio.errOut, err)
		return exitUsage
	}
	srv, err := synnefosim.Start(sc, *listen)
	if err != nil {
		return fail(sio, "sim: %v", err)
	}
	defer srv.Close()
	fmt.Fprintf(sio.out, "simulated cloud on %s\nauth_url: %s\n", srv.URL, srv.AuthURL())
	<-ctx.Done()
	return exitOK
}
