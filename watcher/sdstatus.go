package watcher

import (
	"fmt"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// cycleStatus is the one line systemd shows for the daemon (sd_notify
// STATUS=, in `systemctl status`) after a cycle: when it ran, what fires,
// what moved, what is still to tell.
func (w *Watcher) cycleStatus(rep *Report) string {
	firing := 0
	w.statusMu.RLock()
	for _, in := range w.active {
		if in.State == quota.StateFiring {
			firing++
		}
	}
	w.statusMu.RUnlock()
	return statusLine(rep, firing)
}

func statusLine(rep *Report, firing int) string {
	moved, planned, failed, polls := 0, 0, 0, 0
	for _, r := range rep.Plan {
		switch {
		case r.Skipped:
		case r.DryRun:
			planned++
		case r.State == quota.ActionFailed:
			failed++
		case r.State == quota.ActionApplied || r.State == quota.ActionVerified:
			moved++
		}
	}
	for _, p := range rep.Polls {
		if !p.OK {
			polls++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "last cycle %s: %d firing, %d moved, %d undelivered", rep.Start.UTC().Format("15:04:05Z"), firing, moved, rep.Undelivered)
	if planned > 0 {
		fmt.Fprintf(&b, ", %d planned (dry run)", planned)
	}
	if failed > 0 {
		fmt.Fprintf(&b, ", %d moves failed", failed)
	}
	if polls > 0 {
		fmt.Fprintf(&b, ", %d polls failed", polls)
	}
	if rep.Interrupted {
		b.WriteString(", interrupted")
	}
	return b.String()
}
