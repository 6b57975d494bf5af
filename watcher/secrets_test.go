package watcher_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/synnefosim"
)

// No token or webhook URL ends up in a log line, a report, the journal or
// the outbox, whatever fails: the cloud refusing, Slack refusing for good
// or for now, Slack unreachable.
func TestSecretsNeverLeak(t *testing.T) {
	h := newHarness(t, "seed.yaml", rulesSeed)
	webhook := h.slack.WebhookURL()
	secretPath := webhook[strings.Index(webhook, "/services/"):]
	var seen []string
	record := func(v any) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		seen = append(seen, string(b))
	}

	// Slack answers 500, then 429, then 404 (permanent), then is gone.
	h.slack.FailNext(1, http.StatusInternalServerError, 0)
	record(h.cycle())
	h.clock.Advance(time.Hour)
	h.slack.FailNext(1, http.StatusTooManyRequests, time.Second)
	record(h.cycle())
	h.clock.Advance(time.Hour)
	h.slack.FailNext(1, http.StatusNotFound, 0)
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "/object-store/*", Method: "POST", Status: 413}})
	record(h.cycle())
	h.slack.Close()
	h.clock.Advance(time.Hour)
	record(h.cycle())

	// The cloud refuses the token, then is unreachable.
	h.cloud.Cloud.SetFaults([]synnefosim.Fault{{Path: "*", Status: 401}})
	record(h.cycle())
	h.restart()
	record(h.cycle())
	h.cloud.Close()
	record(h.cycle())

	st := h.w.Store()
	acts, err := st.Actions(time.Time{}, h.clock.Now().Add(time.Hour))
	require.NoError(t, err)
	record(acts)
	for _, n := range []string{"ops"} {
		due, err := st.Due(n, h.clock.Now().Add(24*time.Hour))
		require.NoError(t, err)
		record(due)
	}
	require.NoError(t, st.Release())

	logs := h.logs.String()
	require.Contains(t, logs, "level=WARN", "the failures were logged")
	all := logs + strings.Join(seen, "\n")
	require.NotContains(t, all, tokenA)
	require.NotContains(t, all, secretPath)
	require.NotContains(t, all, webhook)
}
