package config

import (
	"errors"
	"strings"

	"github.com/quotawatch/quotawatch/rules"
)

// parseDuration accepts Go durations plus d for days, exactly as rule
// durations do.
var parseDuration = rules.ParseDuration

// rules compiles the rules: section against the notifiers declared in the
// file, turning each rules problem into a FILE:LINE problem.
func (p *parser) rules(cfg *Config, top *mapping) {
	node := top.node("rules")
	if node == nil {
		return
	}
	// Non-nil even when empty: a rule may only name declared notifiers.
	names := make([]string, 0, len(cfg.Notifiers))
	for _, n := range cfg.Notifiers {
		if n.Name != "" {
			names = append(names, n.Name)
		}
	}
	rs, err := rules.Parse(node, rules.ParseOptions{Notifiers: names})
	if err == nil {
		cfg.Rules = rs
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var re *rules.Error
		if !errors.As(e, &re) {
			p.wrapf(top.keyLine("rules"), e, "rules: %v", e)
			continue
		}
		line := re.Line
		if line <= 0 {
			line = top.keyLine("rules")
		}
		var b strings.Builder
		if re.Rule != "" {
			b.WriteString("rule " + re.Rule + ": ")
		}
		if re.Field != "" {
			b.WriteString(re.Field + ": ")
		}
		b.WriteString(re.Msg)
		p.wrapf(line, re, "%s", b.String())
	}
}
