package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoTellsTheWholeStory(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, demo(context.Background(), &out, slog.New(slog.DiscardHandler), false))
	s := out.String()
	// In order: the poll, the breach, the Slack message, the plan with the
	// move, and the quotas after it.
	steps := []string{
		"17.0 GiB / 20.0 GiB (85.0%)",
		"slack> ",
		"moved container course_container (18.5 GiB)",
		"firing          container-rebalance",
		"verified",
		"CS333 lab assignments                        18.5 GiB / 100.0 GiB (18.5%)",
		"[RESOLVED]",
		"after 5m",
	}
	at := 0
	for _, st := range steps {
		i := strings.Index(s[at:], st)
		require.GreaterOrEqual(t, i, 0, "missing %q after position %d in:\n%s", st, at, s)
		at += i
	}
}
