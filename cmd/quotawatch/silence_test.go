package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSilenceUsage(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no matcher", []string{"silence add", "--for", "2h", "--comment", "x"}, "at least one of --rule, --project, --resource"},
		{"no comment", []string{"silence add", "--rule", "r", "--for", "2h"}, "--comment is required"},
		{"no duration", []string{"silence add", "--rule", "r", "--comment", "x"}, "--for must be a positive duration"},
		{"bad duration", []string{"silence add", "--rule", "r", "--for", "soon", "--comment", "x"}, `invalid value "soon" for flag -for`},
		{"bad glob", []string{"silence add", "--rule", "[", "--for", "2h", "--comment", "x"}, `--rule "[": not a valid glob`},
		{"expire without id", []string{"silence expire"}, "want 1 argument(s)"},
		{"expire a word", []string{"silence expire", "one"}, `"one" is not a silence id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := c.run(tt.args...)
			require.Equal(t, exitUsage, code, stderr)
			require.Contains(t, stderr, tt.want)
		})
	}
	code, _, stderr := runCmd(t, nil, "silence", "frob")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, `unknown command "silence frob"`)
}

// TestSilenceCommands: a silence added with no daemon running goes into
// the store; plan, once and status see it; expired, the incident is told
// and acted on.
func TestSilenceCommands(t *testing.T) {
	c := newCLI(t)
	code, stdout, stderr := runCmd(t, c.env(), "silence", "add", "--config", c.cfg,
		"--rule", "container-*", "--project", "system:*", "--for", "2h", "--comment", "course migration")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "silence 1 added: rule container-*, project system:*, until ")
	require.NotContains(t, stderr, "warning")
	code, _, stderr = c.run("silence add", "--rule", "contianer-rebalance", "--for", "1h", "--comment", "typo")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, `warning: --rule "contianer-rebalance" matches no configured rule`)
	code, _, stderr = c.run("silence expire", "2")
	require.Equal(t, exitOK, code, stderr)

	code, stdout, stderr = c.run("silence list")
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `ID\s+STATE\s+RULE\s+PROJECT\s+RESOURCE\s+ENDS\s+BY\s+COMMENT`, stdout)
	require.Regexp(t, `1\s+active\s+container-\*\s+system:\*\s+-\s+`, stdout)

	code, stdout, stderr = c.run("plan")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "skipped: silenced by 1: course migration")
	require.NotContains(t, stdout, "would move")

	code, stdout, stderr = c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "silenced by 1")
	require.Empty(t, c.slack.Messages(), "no message")

	code, stdout, stderr = c.run("status")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "silenced: 1")
	require.Contains(t, stdout, "silenced by 1: course migration")
	code, stdout, stderr = c.run("status", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	require.Equal(t, "firing", rows[0]["state"])
	require.Equal(t, "silenced by 1: course migration", rows[0]["silenced"])
	require.NotContains(t, rows[len(rows)-1], "silenced", "only silenced rows say so")

	code, stdout, stderr = c.run("silence expire", "1")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "silence 1 ended at ")
	code, _, stderr = c.run("silence expire", "7")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, "not found")

	code, stdout, stderr = c.run("silence list", "--output", "json")
	require.Equal(t, exitOK, code, stderr)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &list))
	require.Len(t, list, 2)
	for _, f := range []string{"id", "rule", "project", "comment", "created", "ends", "expired", "active"} {
		require.Contains(t, list[0], f)
	}
	require.Equal(t, false, list[0]["active"])

	code, stdout, stderr = c.run("once")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "verified", "acted on once the silence ended")
	require.NotEmpty(t, c.slack.Messages())
}
