package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/watcher"
)

// table writes aligned columns; it never truncates a cell.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// usageOf renders "19.2 GiB / 20.0 GiB (96.0%)" against the effective limit.
func usageOf(resource string, q quota.Quota) string {
	return fmt.Sprintf("%s / %s (%s)", quota.FormatAmount(resource, q.Usage),
		quota.FormatAmount(resource, q.EffectiveLimit()), quota.FormatPercent(q.Ratio()))
}

func printPlan(w io.Writer, rows []watcher.PlanRow, plan bool) {
	tw := table(w)
	fmt.Fprintln(tw, "RULE\tACCOUNT\tKIND\tITEM\tAMOUNT\tFROM\tSOURCE BEFORE → AFTER\tTO\tDESTINATION BEFORE → AFTER\tOUTCOME")
	for _, r := range rows {
		outcome := string(r.State)
		switch {
		case r.Skipped:
			outcome = "skipped: " + r.Reason
		case plan || (r.DryRun && r.State != quota.ActionFailed):
			outcome = "would move (dry run)"
		case r.Error != "":
			outcome += ": " + r.Error
		}
		item, amount, to, src, dst := r.ItemName, "", nameOr(r.ToName, r.To), "", ""
		if item == "" {
			item = "-"
		}
		if q, ok := r.Quantities[r.Resource]; ok {
			amount = quota.FormatAmount(r.Resource, q)
		}
		if !r.Skipped {
			src = usageOf(r.Resource, r.SourceBefore) + " → " + usageOf(r.Resource, r.SourceAfter)
			dst = usageOf(r.Resource, r.DestBefore) + " → " + usageOf(r.Resource, r.DestAfter)
		} else {
			src = usageOf(r.Resource, r.SourceBefore)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Rule, r.Account, r.Kind, item, dash(amount),
			nameOr(r.FromName, r.From), src, dash(to), dash(dst), outcome)
	}
	tw.Flush()
}

func printEvents(w io.Writer, events []quota.Event) {
	tw := table(w)
	fmt.Fprintln(tw, "EVENT\tRULE\tACCOUNT\tPROJECT\tRESOURCE\tUSAGE\tDETAIL")
	for _, e := range events {
		kind := string(e.Kind)
		if e.Kind == quota.EventAction {
			kind += " " + string(e.Result)
		}
		if e.DryRun {
			kind += " (dry run)"
		}
		detail := e.Reason
		if e.Move != nil && e.Result != quota.ResultSkipped {
			detail = fmt.Sprintf("%s %s → %s", e.Move.Kind, e.Move.ItemName, nameOr(e.Move.ToName, e.Move.To))
			if e.Reason != "" {
				detail += ": " + e.Reason
			}
		}
		usage := ""
		if e.Key.Resource != "" {
			usage = usageOf(e.Key.Resource, e.Quota)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", kind, dash(e.Key.Rule), e.Key.Account,
			dash(nameOr(e.ProjectName, e.Key.Project)), dash(e.Key.Resource), dash(usage), dash(detail))
	}
	tw.Flush()
}

// nameOr is a project's name, or its id when the name is not known.
func nameOr(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// sparkline draws values as one line of block characters, scaled between
// their minimum and maximum.
func sparkline(vals []int64) string {
	if len(vals) == 0 {
		return ""
	}
	const bars = "▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if hi > lo {
			i = int(math.Round(float64(v-lo) / float64(hi-lo) * float64(len(runes)-1)))
		}
		b.WriteRune(runes[i])
	}
	return b.String()
}
