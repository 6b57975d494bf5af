package rules

import "time"

// clock renders a time in reasons: stable, UTC, to the minute.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
