package main

import (
	"bytes"
	"flag"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The manual has every command of the table with its summary and flags.
func TestManListsEveryCommandAndFlag(t *testing.T) {
	code, page, stderr := runCmd(t, nil, "man")
	require.Equal(t, exitOK, code, stderr)
	require.True(t, strings.HasPrefix(page, ".TH QUOTAWATCH 1 "), page)
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS", "SEE ALSO"} {
		require.Contains(t, page, "\n.SH "+sec+"\n")
	}
	for _, c := range commands() {
		require.Contains(t, page, "\n.B quotawatch "+roffText(c.name), c.name)
		require.Contains(t, page, "\n"+roffText(c.summary)+".\n", c.name)
		fs := c.flagSet(&env{stdio: &stdio{}}, &logFlags{})
		fs.VisitAll(func(f *flag.Flag) {
			require.Contains(t, page, `\-\-`+roffText(f.Name), "%s --%s", c.name, f.Name)
		})
	}
	require.Contains(t, page, "QUOTAWATCH_CONFIG")
	// run and once take --takeover, and the page says when it is needed.
	for _, name := range []string{"run", "once"} {
		_, section, ok := strings.Cut(page, "\n.B quotawatch "+name+" ")
		require.True(t, ok, name)
		section, _, _ = strings.Cut(section, "\n.TP\n.B quotawatch ")
		require.Contains(t, section, "\n.B \\-\\-takeover\n", name)
		require.Contains(t, section, "restored from a backup", name)
	}
	require.Contains(t, page, "refuse a store last written by another host")
}

func TestRoffText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "plain",
		"dry-run":      `dry\-run`,
		`a\b`:          `a\eb`,
		".starts":      `\&.starts`,
		"'quoted":      `\&'quoted`,
		"mid.dle 'ok'": "mid.dle 'ok'",
	} {
		require.Equal(t, want, roffText(in), in)
	}
}

// groff, where installed, renders the page without a warning.
func TestManRendersCleanly(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed")
	}
	_, page, _ := runCmd(t, nil, "man")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	require.NoError(t, cmd.Run(), errOut.String())
	require.Empty(t, errOut.String())
}
