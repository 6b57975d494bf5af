package watcher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/watcher"
)

// After every cycle systemd hears the cycle's summary as STATUS=, the first
// one before READY=1.
func TestRunSystemdStatus(t *testing.T) {
	ns := newNotifySocket(t)
	h := newHarness(t, "seed.yaml", rulesSeed)
	d := h.runDaemon(t, watcher.RunOptions{})
	require.Eventually(t, func() bool { return ns.count("READY=1") == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, d.stop(t))
	var status []string
	ready := -1
	for i, m := range ns.all() {
		if strings.HasPrefix(m, "STATUS=") {
			status = append(status, m)
		}
		if m == "READY=1" && ready < 0 {
			ready = i
			require.Len(t, status, 1, "the first cycle's status comes before READY")
		}
	}
	require.Len(t, status, 1)
	require.Regexp(t, `^STATUS=last cycle \d\d:\d\d:\d\dZ: 1 firing, 1 moved, 0 undelivered$`, status[0])
}
