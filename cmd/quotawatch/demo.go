package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
	"github.com/quotawatch/quotawatch/synnefosim"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

//go:embed demo.yaml
var demoScenario []byte

const demoUser = "0f2c6a1e-4b7d-4e21-9c3a-5d8e7f6a1b2c"

// demoConfig is the configuration the demo runs with; %s are the cloud's
// auth URL and the store path.
const demoConfig = `cloud:
  auth_url: %s
  accounts:
    - name: alice
      token_env: DEMO_TOKEN
schedule: "@every 2s"
store:
  path: %s
http:
  listen: ""
notifiers:
  - name: ops
    slack:
      webhook_url_env: DEMO_WEBHOOK
rules:
  - name: container-rebalance
    description: Move a container out of a project that is nearly full
    resource: pithos.diskspace
    when: ratio > 0.95
    clear: ratio < 0.90
    severity: warning
    action:
      reassign:
        kind: container
        select: largest
        to: ["*"]
        strategy: most_headroom
`

// demoCmd holds the flags of `demo`.
type demoCmd struct{ keep bool }

func (d *demoCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&d.keep, "keep", false, "keep running (a cycle every 2s) after the story, until interrupted")
}

func (d *demoCmd) run(ctx context.Context, e *env) int {
	if err := demo(ctx, e.out, e.log, d.keep); err != nil {
		return fail(e.stdio, "demo: %v", err)
	}
	return exitOK
}

func demo(ctx context.Context, out io.Writer, log *slog.Logger, keep bool) error {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	sc, err := synnefosim.ParseScenario("demo.yaml", demoScenario)
	if err != nil {
		return err
	}
	cloud, err := synnefosim.Start(sc, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer cloud.Close()
	slack := slacksink.New(slacksink.WithPrint(prefixed{out, "  slack> "}))
	defer slack.Close()
	dir, err := os.MkdirTemp("", "quotawatch-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	env := map[string]string{"DEMO_TOKEN": "alice-token", "DEMO_WEBHOOK": slack.WebhookURL()}
	text := fmt.Sprintf(demoConfig, cloud.AuthURL(), filepath.Join(dir, "quotawatch.db"))
	cfg, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(text), config.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		return err
	}
	// The story's polls are five minutes apart in the watcher's eyes, as
	// with the default schedule, though they run at once.
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	step := func() { offset.Add(int64(5 * time.Minute)) }
	w, err := watcher.New(ctx, watcher.Options{Config: cfg, Logger: log, NotifyRate: 100, Now: now})
	if err != nil {
		return err
	}
	defer w.Close()

	say("== quotawatch demo")
	say("A simulated Synnefo cloud runs on %s; Slack is a local sink.", cloud.URL)
	say("The rule: when a project is over 95%% of its diskspace, move its largest container")
	say("to the project with the most headroom, until it is under 90%%.")
	say("")
	say("== 1. First poll: everything is fine")
	rep, err := w.Cycle(ctx)
	if err != nil {
		return err
	}
	if err := printDemoQuotas(out, cloud); err != nil {
		return err
	}
	say("events: %d, moves: %d", len(rep.Events), len(rep.Plan))
	say("")

	grow := int64(5) << 29 // 2.5 GiB
	say("== 2. Alice uploads %s of lecture videos to course_container", quota.FormatBytes(grow))
	if err := cloud.Cloud.GrowContainer(demoUser, "course_container", grow); err != nil {
		return err
	}
	say("")
	say("== 3. Next poll: the breach, the plan, the move, the message")
	step()
	rep, err = w.Cycle(ctx)
	if err != nil {
		return err
	}
	if err := printEvents(out, rep.Events, 0); err != nil {
		return err
	}
	say("")
	if len(rep.Plan) > 0 {
		if err := printPlan(out, rep.Plan, false, 0); err != nil {
			return err
		}
	} else {
		say("no moves")
	}
	say("")
	say("== 4. The cloud after the move")
	if err := printDemoQuotas(out, cloud); err != nil {
		return err
	}
	say("")
	say("== 5. One more poll: the project is back under 90%%")
	step()
	rep, err = w.Cycle(ctx)
	if err != nil {
		return err
	}
	if err := printEvents(out, rep.Events, 0); err != nil {
		return err
	}
	if !keep {
		say("")
		say("Done. Run `quotawatch demo --keep` to leave it running, or see README.md to point it at a real cloud.")
		return nil
	}
	say("")
	say("== Running on: a cycle every 2s (Ctrl-C to stop). Simulated cloud: %s", cloud.AuthURL())
	return w.Run(ctx, watcher.RunOptions{Notify: func(string) error { return nil }})
}

// printDemoQuotas shows alice's diskspace per project, from the cloud itself.
func printDemoQuotas(out io.Writer, cloud *synnefosim.Server) error {
	var rows [][]string
	for _, p := range cloud.Cloud.State().Projects {
		q := cloud.Cloud.Quota(demoUser, p.ID, quota.DiskSpace)
		var names []string
		for _, c := range cloud.Cloud.State().Containers {
			if c.Charged == p.ID {
				names = append(names, c.Name)
			}
		}
		rows = append(rows, []string{p.Name, view.Usage(quota.DiskSpace, q), fmt.Sprint(names)})
	}
	return view.WriteRows(out, []string{"PROJECT", "DISKSPACE", "CONTAINERS"}, rows)
}

// prefixed writes every line with a prefix, to set Slack's messages apart.
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	start := 0
	for i, c := range b {
		if c == '\n' {
			if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, b[start:i]); err != nil {
				return 0, err
			}
			start = i + 1
		}
	}
	if start < len(b) {
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, b[start:]); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
