package main

import (
	"fmt"
	"io"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

// printPlan writes a cycle's moves with the usage of both projects before
// and after each; plan says they are only planned (a dry run).
func printPlan(w io.Writer, rows []watcher.PlanRow, plan bool) error {
	cells := make([][]string, 0, len(rows))
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
		amount, src, dst := "", "", ""
		if q, ok := r.Quantities[r.Resource]; ok {
			amount = quota.FormatAmount(r.Resource, q)
		}
		if !r.Skipped {
			src = view.Usage(r.Resource, r.SourceBefore) + " → " + view.Usage(r.Resource, r.SourceAfter)
			dst = view.Usage(r.Resource, r.DestBefore) + " → " + view.Usage(r.Resource, r.DestAfter)
		} else {
			src = view.Usage(r.Resource, r.SourceBefore)
		}
		cells = append(cells, []string{r.Rule, r.Account, string(r.Kind), view.Dash(r.ItemName), view.Dash(amount),
			view.NameOr(r.FromName, r.From), src, view.Dash(view.NameOr(r.ToName, r.To)), view.Dash(dst), outcome})
	}
	return view.WriteRows(w, []string{"RULE", "ACCOUNT", "KIND", "ITEM", "AMOUNT", "FROM", "SOURCE BEFORE → AFTER",
		"TO", "DESTINATION BEFORE → AFTER", "OUTCOME"}, cells)
}

// printEvents writes a cycle's events.
func printEvents(w io.Writer, events []quota.Event) error {
	cells := make([][]string, 0, len(events))
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
			detail = fmt.Sprintf("%s %s → %s", e.Move.Kind, e.Move.ItemName, view.NameOr(e.Move.ToName, e.Move.To))
			if e.Reason != "" {
				detail += ": " + e.Reason
			}
		}
		usage := ""
		if e.Key.Resource != "" {
			usage = view.Usage(e.Key.Resource, e.Quota)
		}
		cells = append(cells, []string{kind, view.Dash(e.Key.Rule), e.Key.Account,
			view.Dash(view.NameOr(e.ProjectName, e.Key.Project)), view.Dash(e.Key.Resource), view.Dash(usage), view.Dash(detail)})
	}
	return view.WriteRows(w, []string{"EVENT", "RULE", "ACCOUNT", "PROJECT", "RESOURCE", "USAGE", "DETAIL"}, cells)
}
