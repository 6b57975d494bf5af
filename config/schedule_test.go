package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
)

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 3, 10, 12, 34, 56, 0, time.UTC)
	tests := []struct {
		spec    string
		next    time.Time // first run after from
		wantErr string
	}{
		{spec: "@every 5m", next: from.Add(5 * time.Minute)},
		{spec: "  @every 90s ", next: from.Add(90 * time.Second)},
		{spec: "@hourly", next: time.Date(2026, 3, 10, 13, 0, 0, 0, time.UTC)},
		{spec: "@daily", next: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)},
		{spec: "*/5 * * * *", next: time.Date(2026, 3, 10, 12, 35, 0, 0, time.UTC)},
		{spec: "30 */10 * * * *", next: time.Date(2026, 3, 10, 12, 40, 30, 0, time.UTC)},
		{spec: "0 9 * * MON-FRI", next: time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC)},
		{spec: "0 0 29 2 *", next: time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
		{spec: "", wantErr: "schedule is empty"},
		{spec: "   ", wantErr: "schedule is empty"},
		{spec: "TZ=UTC", wantErr: "time zone prefixes (TZ=, CRON_TZ=) are not supported: schedules run in UTC"},
		{spec: "CRON_TZ=", wantErr: "time zone prefixes (TZ=, CRON_TZ=) are not supported: schedules run in UTC"},
		{spec: "CRON_TZ=Europe/Athens 0 * * * *", wantErr: "time zone prefixes (TZ=, CRON_TZ=) are not supported: schedules run in UTC"},
		{spec: "@every 0s", wantErr: "@every needs an interval of at least 1s, got 0s"},
		{spec: "@every -5m", wantErr: "@every needs an interval of at least 1s, got -5m"},
		{spec: "@every 1d", wantErr: `invalid schedule "@every 1d": failed to parse duration @every 1d: time: unknown unit "d" in duration "1d"`},
		{spec: "@weekdays", wantErr: `invalid schedule "@weekdays": unrecognized descriptor: @weekdays`},
		{spec: "* * * *", wantErr: `invalid schedule "* * * *": expected 5 to 6 fields, found 4: [* * * *]`},
		{spec: "0 0 0 * * * *", wantErr: `invalid schedule "0 0 0 * * * *": expected 5 to 6 fields, found 7: [0 0 0 * * * *]`},
		{spec: "61 * * * *", wantErr: `invalid schedule "61 * * * *": end of range (61) above maximum (59): 61`},
		{spec: "0 0 31 4 *", wantErr: `schedule "0 0 31 4 *" never runs`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := config.ParseSchedule(tt.spec)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.next, s.Next(from))
		})
	}
}
