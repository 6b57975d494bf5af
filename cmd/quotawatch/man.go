package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdMan prints quotawatch(1), rendered from the command table and each
// command's flags, so the manual cannot drift from `-h`.
func cmdMan(_ context.Context, e *env) int {
	if err := writeMan(e.out, commands(), currentBuild()); err != nil {
		return fail(e.stdio, "man: %v", err)
	}
	return exitOK
}

// writeMan renders the manual page as roff (man(7) macros).
func writeMan(w io.Writer, cmds []command, b buildInfo) error {
	var m strings.Builder
	date := b.BuildDate
	if len(date) >= len("2006-01-02") {
		date = date[:len("2006-01-02")]
	}
	fmt.Fprintf(&m, ".TH QUOTAWATCH 1 %s %s \"User Commands\"\n", roffQuote(date), roffQuote("quotawatch "+b.Version))
	m.WriteString(".SH NAME\nquotawatch \\- watch the quotas of a Synnefo cloud and act on them\n")
	m.WriteString(".SH SYNOPSIS\n.B quotawatch\n.I COMMAND\n.RI [ flags ]\n.br\n.B quotawatch \\-\\-version\n")
	m.WriteString(".SH DESCRIPTION\n")
	para(&m, "quotawatch polls the quotas of every configured account of a Synnefo cloud, keeps their history, "+
		"evaluates the configured rules, moves containers and virtual machines between projects when a rule "+
		"says so, and tells people in Slack. systemd runs it as the quotawatch service (quotawatch run); "+
		"the other commands run one cycle, plan without acting, or read the store.")
	para(&m, "Flags go after the command. Commands that read the configuration take --config FILE; "+
		"without it they read $"+configEnv+", else "+defaultConfig+".")
	para(&m, "Only one instance may act on a store. The store records the host of its last writer; run and once "+
		"refuse a store last written by another host (a copy, a backup restored there, or a file shared "+
		"between hosts) unless given --takeover, which is for after making sure the quotawatch there is stopped.")
	m.WriteString(".SH COMMANDS\n")
	for _, c := range cmds {
		fs := c.flagSet(&env{stdio: &stdio{}}, &logFlags{})
		fs.SetOutput(io.Discard)
		m.WriteString(".TP\n")
		fmt.Fprintf(&m, ".B %s\n", roffText(strings.TrimPrefix(usageLine(c, fs), "usage: ")))
		m.WriteString(roffText(c.summary) + ".\n")
		var flags []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
		if len(flags) == 0 {
			continue
		}
		m.WriteString(".RS\n")
		for _, f := range flags {
			arg, help := flag.UnquoteUsage(f)
			m.WriteString(".TP\n")
			if arg == "" {
				fmt.Fprintf(&m, ".B \\-\\-%s\n", roffText(f.Name))
			} else {
				fmt.Fprintf(&m, ".BI \\-\\-%s \" %s\"\n", roffText(f.Name), roffText(strings.ToUpper(arg)))
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				help += fmt.Sprintf(" (default %q)", f.DefValue)
			}
			m.WriteString(roffText(help) + "\n")
		}
		m.WriteString(".RE\n")
	}
	m.WriteString(".SH ENVIRONMENT\n")
	for _, v := range [][2]string{
		{configEnv, "the configuration file when --config is not given"},
		{"CREDENTIALS_DIRECTORY", "set by systemd (LoadCredential=); the configuration names secrets as files in it"},
		{"STATE_DIRECTORY", "set by systemd (StateDirectory=); the store defaults to a file in it"},
		{"NOTIFY_SOCKET", "set by systemd; run reports readiness, the watchdog and the last cycle's status there"},
		{"JOURNAL_STREAM", "set by systemd when stderr is the journal; log lines then carry their syslog priority and no time"},
	} {
		fmt.Fprintf(&m, ".TP\n.B %s\n%s.\n", v[0], roffText(v[1]))
	}
	m.WriteString(".SH FILES\n")
	for _, v := range [][2]string{
		{defaultConfig, "the configuration"},
		{"/var/lib/quotawatch/quotawatch.db", "the store, under the service's state directory"},
		{"/usr/share/doc/quotawatch/README.md", "the full documentation: configuration, rules, metrics, operation"},
	} {
		fmt.Fprintf(&m, ".TP\n.I %s\n%s.\n", roffText(v[0]), roffText(v[1]))
	}
	m.WriteString(".SH EXIT STATUS\n")
	for _, v := range [][2]string{
		{"0", "success"},
		{"1", "a runtime failure, such as a failed poll or move"},
		{"2", "a usage or configuration error; systemd does not restart the service after it"},
	} {
		fmt.Fprintf(&m, ".TP\n.B %s\n%s.\n", v[0], roffText(v[1]))
	}
	m.WriteString(".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1),\n.BR systemd.exec (5)\n")
	_, err := io.WriteString(w, m.String())
	return err
}

// usageLine is the first line `quotawatch COMMAND -h` prints.
func usageLine(c command, fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	c.usage(fs)
	line, _, _ := strings.Cut(b.String(), "\n")
	return line
}

func para(m *strings.Builder, s string) {
	m.WriteString(".PP\n" + roffText(s) + "\n")
}

// roffText escapes text for a roff line: backslashes, hyphens (which roff
// would otherwise break or render as typographic hyphens), and a leading
// control character.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffQuote is a macro argument in double quotes (a quote inside is doubled).
func roffQuote(s string) string {
	return `"` + strings.ReplaceAll(roffText(s), `"`, `""`) + `"`
}
