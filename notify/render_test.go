package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// checkGolden compares got (JSON) with testdata/name.golden.json.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, got, "", "  "))
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		require.NoError(t, os.WriteFile(path, pretty.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./notify -update to create it")
	require.Equal(t, string(want), pretty.String())
}

// TestWebhookGolden pins the JSON body the webhook sends for each event kind,
// as the fake Slack received it.
func TestWebhookGolden(t *testing.T) {
	events := sampleEvents()
	names := make([]string, 0, len(events))
	for n := range events {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			srv := slacksink.New()
			defer srv.Close()
			opt, _ := testOptions(t)
			res := NewWebhook("ops", srv.WebhookURL(), opt).send(context.Background(), []quota.Event{events[name]}, 0, nil)
			require.NoError(t, res.Err)
			require.Equal(t, 1, res.Delivered)
			msgs := srv.Messages()
			require.Len(t, msgs, 1)
			checkGolden(t, name, msgs[0].Body)
		})
	}
}

// TestWebhookGoldenBatch pins a batch that splits into several messages.
func TestWebhookGoldenBatch(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	opt, _ := testOptions(t)
	opt.DigestAfter = -1 // splitting, not grouping, is under test
	ev := sampleEvents()
	batch := []quota.Event{ev["firing"], ev["action_applied"], ev["action_skipped"], ev["dry_run"], ev["poll_failed"]}
	batch = append(batch, manyEvents(splitEvents)...)
	batch = append(batch, ev["resolved"], ev["poll_recovered"])
	res := NewWebhook("ops", srv.WebhookURL(), opt).send(context.Background(), batch, 0, nil)
	require.NoError(t, res.Err)
	require.Equal(t, len(batch), res.Delivered)
	msgs := srv.Messages()
	require.Greater(t, len(msgs), 1, "the batch should split")
	bodies := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		bodies[i] = m.Body
	}
	all, err := json.Marshal(bodies)
	require.NoError(t, err)
	checkGolden(t, "batch_split", all)
}

// blockLimits checks Block Kit's limits on one message.
func blockLimits(t *testing.T, m Message) {
	t.Helper()
	require.LessOrEqual(t, len(m.Blocks), maxBlocks)
	require.NotEmpty(t, m.Text, "fallback text")
	for _, b := range m.Blocks {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			require.LessOrEqual(t, utf8.RuneCountInString(b.Text.Text), maxHeaderText)
		case *slack.SectionBlock:
			require.LessOrEqual(t, utf8.RuneCountInString(b.Text.Text), maxSectionText)
			require.LessOrEqual(t, len(b.Fields), maxFields)
			for _, f := range b.Fields {
				require.LessOrEqual(t, utf8.RuneCountInString(f.Text), maxFieldText)
			}
		}
	}
}

func TestRenderBatchSplits(t *testing.T) {
	tests := []struct {
		name      string
		events    []quota.Event
		wantParts int
	}{
		{"none", nil, 0},
		{"one", manyEvents(1), 1},
		{"a few", manyEvents(5), 1},
		{"text runs out", manyEvents(splitEvents), 3},
		{"hundreds", manyEvents(300), 0}, // only the invariants
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bms := renderBatch(tt.events)
			if tt.wantParts > 0 || len(tt.events) == 0 {
				require.Len(t, bms, tt.wantParts)
			}
			total := 0
			for i, bm := range bms {
				blockLimits(t, bm.msg)
				require.Positive(t, bm.events)
				total += bm.events
				if len(bms) > 1 {
					require.Contains(t, bm.msg.Text, "part "+strconv.Itoa(i+1)+" of "+strconv.Itoa(len(bms)))
				}
				require.LessOrEqual(t, utf8.RuneCountInString(bm.msg.Text), maxMessageText)
			}
			require.Equal(t, len(tt.events), total)
			// Order is kept: the project names appear in sequence.
			var text strings.Builder
			for _, bm := range bms {
				text.WriteString(bm.msg.Text)
			}
			last := -1
			for _, ev := range tt.events {
				i := strings.Index(text.String(), ev.ProjectName+" is at")
				require.Greater(t, i, last, ev.ProjectName)
				last = i
			}
			require.Len(t, RenderBatch(tt.events), len(bms))
		})
	}
}

func TestRenderLongTextsStayWithinLimits(t *testing.T) {
	ev := sampleEvents()["action_failed"]
	ev.Reason = strings.Repeat("quota <exceeded> & ", 500)
	ev.Key.Rule = strings.Repeat("r", 200)
	ev.Move.ItemName = strings.Repeat("n", 300)
	m := Render(ev)
	blockLimits(t, m)
	body := m.Blocks[0].(*slack.SectionBlock).Text.Text
	require.NotContains(t, body, "<exceeded>", "mrkdwn must be escaped")
	require.Contains(t, body, "&lt;exceeded&gt; &amp;")
	for _, bm := range renderBatch([]quota.Event{ev, ev, ev}) {
		blockLimits(t, bm.msg)
	}
}

// TestRenderSays checks the sentences a person reads, event by event.
func TestRenderSays(t *testing.T) {
	ev := sampleEvents()
	tests := []struct {
		name  string
		event quota.Event
		want  []string
		not   []string
	}{
		{"firing", ev["firing"], []string{
			"[WARNING] container-rebalance: pithos.diskspace of " + sysName + " is at 19.6 GiB of 20.0 GiB (98.0%)",
			"+1.2 GiB/day, full in 9.6 hours",
		}, nil},
		{"repeat", ev["repeat"], []string{"is still at", "firing for 1d2h"}, []string{"/day"}},
		{"resolved", ev["resolved"], []string{"[RESOLVED]", "back to 409.6 MiB of 20.0 GiB (2.0%) after 2h15m"}, nil},
		{"applied", ev["action_applied"], []string{
			"moved container course_container (19.2 GiB) from " + sysName + " to " + labName,
		}, []string{"DRY RUN"}},
		{"dry run", ev["dry_run"], []string{"DRY RUN: container-rebalance: would move container course_container (19.2 GiB) from " + sysName + " to " + labName}, nil},
		{"failed", ev["action_failed"], []string{"failed to move container course_container", "413"}, nil},
		{"skipped", ev["action_skipped"], []string{"no move out of " + sysName + ": no project with 19.2 GiB headroom for course_container"}, nil},
		{"poll failed", ev["poll_failed"], []string{"Polling account alice has failed since 2026-11-26 14:49 UTC: GET /account/v1.0/quotas: HTTP 503"}, nil},
		{"poll recovered", ev["poll_recovered"], []string{"Polling account alice recovered after 25m"}, nil},
		{"server", ev["action_applied_server"], []string{"server vm1 (cyclades.cpu 2, cyclades.disk 20.0 GiB, cyclades.ram 2.0 GiB, cyclades.total_cpu 2, cyclades.total_ram 2.0 GiB, cyclades.vm 1)"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Render(tt.event)
			for _, w := range tt.want {
				require.Contains(t, m.Text, w)
			}
			for _, n := range tt.not {
				require.NotContains(t, m.Text, n)
			}
			blockLimits(t, m)
		})
	}
}

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		resource string
		n        int64
		want     string
	}{
		{quota.DiskSpace, 20615843020, "19.2 GiB"},
		{quota.DiskSpace, 20 * quota.GiB, "20.0 GiB"},
		{quota.RAM, 1536 * quota.MiB, "1.5 GiB"},
		{quota.RAM, 512 * quota.MiB, "512.0 MiB"},
		{quota.DiskSpace, 1536, "1.5 KiB"},
		{quota.DiskSpace, 1023, "1023 B"},
		{quota.DiskSpace, -2 * quota.GiB, "-2.0 GiB"},
		{quota.DiskSpace, quota.Unlimited, "unlimited"},
		{quota.VM, 3, "3"},
		{quota.CPU, quota.Unlimited, "unlimited"},
		{"custom.thing", 12, "12"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, quota.FormatAmount(tt.resource, tt.n))
		})
	}
}

// TestRenderZeroLimit: usage against a zero limit says so in words, not
// as a percentage.
func TestRenderZeroLimit(t *testing.T) {
	ev := sampleEvents()["firing"]
	ev.Quota = diskQuota(quota.GiB, 0)
	m := Render(ev)
	blocks, err := json.Marshal(m.Blocks)
	require.NoError(t, err)
	for _, s := range []string{m.Text, string(blocks)} {
		require.NotContains(t, s, "zero limit")
		require.NotContains(t, s, "is at")
	}
	require.Contains(t, m.Text, "pithos.diskspace of "+sysName+" uses 1.0 GiB with no quota (limit 0 B)")
	require.Contains(t, string(blocks), "pithos.diskspace uses *1.0 GiB* with no quota (limit 0 B)")
}

func TestFormatUsage(t *testing.T) {
	tests := []struct {
		name string
		q    quota.Quota
		want string
		proj string
	}{
		{"plain", diskQuota(15*quota.GiB, 20*quota.GiB), "15.0 GiB of 20.0 GiB (75.0%)", ""},
		{"unlimited", diskQuota(5*quota.GiB, quota.Unlimited), "5.0 GiB (unlimited)", ""},
		{"zero limit", diskQuota(quota.GiB, 0), "1.0 GiB with no quota (limit 0 B)", ""},
		{"others use the project", quota.Quota{Usage: 5 * quota.GiB, Limit: 20 * quota.GiB, ProjectUsage: 90 * quota.GiB, ProjectLimit: 100 * quota.GiB},
			"5.0 GiB of 15.0 GiB (33.3%)", "90.0 GiB of 100.0 GiB (90.0%)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, formatUsage(quota.DiskSpace, tt.q))
			require.Equal(t, tt.proj, formatProjectUsage(quota.DiskSpace, tt.q))
		})
	}
}

func TestFormatTrend(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		perDay   float64
		days     quota.Days
		want     string
	}{
		{"bytes", quota.DiskSpace, 1.2 * float64(quota.GiB), 3.2, "+1.2 GiB/day, full in 3.2 days"},
		{"hours", quota.DiskSpace, float64(quota.GiB), 0.5, "+1.0 GiB/day, full in 12.0 hours"},
		{"already full", quota.DiskSpace, float64(quota.GiB), -1, "+1.0 GiB/day, already full"},
		{"no end", quota.DiskSpace, float64(quota.GiB), quota.Never, "+1.0 GiB/day"},
		{"counts", quota.VM, 2, 4, "+2/day, full in 4.0 days"},
		{"fractional counts", quota.VM, 0.5, 10, "+0.5/day, full in 10.0 days"},
		{"flat", quota.DiskSpace, 0, quota.Never, ""},
		{"shrinking", quota.DiskSpace, -float64(quota.GiB), quota.Never, ""},
		{"nan", quota.DiskSpace, math.NaN(), quota.Never, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, formatTrend(tt.resource, tt.perDay, tt.days))
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{2*time.Hour + 15*time.Minute, "2h15m"},
		{2 * time.Hour, "2h"},
		{45 * time.Minute, "45m"},
		{30 * time.Second, "30s"},
		{26*time.Hour + 30*time.Minute, "1d2h"},
		{72 * time.Hour, "3d"},
		{-time.Minute, "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, formatDuration(tt.d))
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempts int
		want     time.Duration
	}{
		{-1, 5 * time.Second},
		{0, 5 * time.Second},
		{1, 10 * time.Second},
		{2, 20 * time.Second},
		{3, 40 * time.Second},
		{4, time.Minute},
		{5, time.Minute},
		{100, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			require.Equal(t, tt.want, Backoff(tt.attempts))
		})
	}
}

// TestRenderSkipBesideMove: a skip told in the same message as a move out
// of the same project does not read as if nothing moved.
func TestRenderSkipBesideMove(t *testing.T) {
	ev := sampleEvents()
	other := ev["action_skipped_item"]
	other.Move.ItemID, other.Move.ItemName = "big", "big"
	msgs := RenderBatch([]quota.Event{ev["action_applied"], ev["action_skipped"], other})
	require.Len(t, msgs, 1)
	blocks, err := json.Marshal(msgs[0].Blocks)
	require.NoError(t, err)
	for _, s := range []string{msgs[0].Text, string(blocks)} {
		require.NotContains(t, s, "no move out of")
		require.NotContains(t, s, "Move skipped* · *"+sysName)
	}
	require.Contains(t, msgs[0].Text, "container-rebalance: no further move out of "+sysName+": no project with")
	require.Contains(t, msgs[0].Text, "container-rebalance: no move of container big out of "+sysName+": ")
	require.Contains(t, string(blocks), "*No further move* · *"+sysName+"*")
	require.Contains(t, string(blocks), "*Move skipped* · container *big* · *"+sysName+"*")

	alone := RenderBatch([]quota.Event{ev["action_skipped"]})
	require.Contains(t, alone[0].Text, "no move out of "+sysName, "a skip without a move beside it is told as before")
}
