package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// scheduleParser accepts 5 fields, 6 with seconds, and descriptors such as
// @every 5m and @hourly.
var scheduleParser = cron.NewParser(
	cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor,
)

// scheduleHorizon is where ParseSchedule looks for a first run; a fixed time
// keeps validation independent of the clock.
var scheduleHorizon = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseSchedule parses a polling schedule: a cron spec with 5 fields (minute
// hour day-of-month month day-of-week), 6 with a leading seconds field, or a
// descriptor (@every 5m, @hourly, @daily, ...). Time zone prefixes (TZ=,
// CRON_TZ=) are rejected: quotawatch schedules in UTC, and robfig/cron
// panics on some malformed prefixes. The returned schedule computes its next
// run in the location of the time it is given; pass UTC times.
func ParseSchedule(spec string) (sched cron.Schedule, err error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return nil, fmt.Errorf("schedule is empty")
	}
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, fmt.Errorf("time zone prefixes (TZ=, CRON_TZ=) are not supported: schedules run in UTC")
	}
	if rest, ok := strings.CutPrefix(s, "@every"); ok {
		// robfig/cron silently rounds anything below a second up to 1s.
		d, perr := time.ParseDuration(strings.TrimSpace(rest))
		if perr == nil && d < time.Second {
			return nil, fmt.Errorf("@every needs an interval of at least 1s, got %s", strings.TrimSpace(rest))
		}
	}
	defer func() {
		// The parser panics on some malformed specs; treat that as invalid.
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("invalid schedule %q", spec)
		}
	}()
	sched, err = scheduleParser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %w", spec, err)
	}
	if sched.Next(scheduleHorizon).IsZero() {
		return nil, fmt.Errorf("schedule %q never runs", spec)
	}
	return sched, nil
}

// CronSchedule returns the parsed Schedule; it only fails on a Config that
// was not built by Load or Parse.
func (c *Config) CronSchedule() (cron.Schedule, error) { return ParseSchedule(c.Schedule) }
