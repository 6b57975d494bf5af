package rules

import (
	"fmt"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// lastMove is when the instance's cooldown started for a plan that is
// dry (reported only) or not: real moves count for both, dry-run reports
// only for reports.
func lastMove(inst quota.Instance, dry bool) time.Time {
	if dry && inst.LastReport.After(inst.LastAction) {
		return inst.LastReport
	}
	return inst.LastAction
}

// cooldownReason says why a project's rule waits before its next move.
func cooldownReason(projects map[string]quota.Project, src string, last time.Time, cooldown time.Duration) string {
	return fmt.Sprintf("cooldown: last move out of %s at %s; the next is allowed after %s",
		label(projects, src), clock(last), clock(last.Add(cooldown)))
}
