package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/view"
	"github.com/quotawatch/quotawatch/watcher"
)

// printPlan writes a cycle's moves with the usage of both projects before
// and after each; plan says they are only planned (a dry run). A table
// wider than width (0: any) gives the usage as percentages without the
// account, kind and amount, or, if that is still too wide, one block per
// move.
func printPlan(w io.Writer, rows []watcher.PlanRow, plan bool, width int) error {
	header := []string{"RULE", "ACCOUNT", "KIND", "ITEM", "AMOUNT", "FROM", "SOURCE BEFORE → AFTER",
		"TO", "DESTINATION BEFORE → AFTER", "OUTCOME"}
	cells := planCells(rows, plan, view.Usage)
	if width <= 0 || view.TableWidth(header, cells) <= width {
		return view.WriteRows(w, header, cells)
	}
	short := []string{"RULE", "ACCOUNT", "KIND", "ITEM", "AMOUNT", "FROM", "SOURCE", "TO", "DESTINATION", "OUTCOME"}
	sh, sc := view.DropColumns(short, planCells(rows, plan, shortUsage), width, "ACCOUNT", "KIND", "AMOUNT")
	if view.TableWidth(sh, sc) <= width {
		return view.WriteRows(w, sh, sc)
	}
	// Still too wide (long names): one block per move, every cell whole.
	return view.WriteFitted(w, header, cells, width)
}

// shortUsage renders a usage as its percentage of the effective limit.
func shortUsage(resource string, q quota.Quota) string {
	if q.IsUnlimited() {
		return quota.FormatAmount(resource, q.Usage)
	}
	return quota.FormatPercent(q.Ratio())
}

func planCells(rows []watcher.PlanRow, plan bool, usage func(string, quota.Quota) string) [][]string {
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		outcome := string(r.State)
		switch {
		case r.Skipped:
			outcome = "skipped: " + r.Reason
		case plan && r.Reason == watcher.ReasonApproval:
			outcome = "would propose (needs approval)"
		case (plan || (r.DryRun && r.State != quota.ActionFailed)) && r.Kind == quota.KindLimit:
			outcome = "would raise (dry run)"
		case plan || (r.DryRun && r.State != quota.ActionFailed):
			outcome = "would move (dry run)"
			if r.Shared {
				outcome += ", staying shared with its project"
			}
		case r.Error != "":
			outcome += ": " + r.Error
		}
		amount, src, dst := "", "", ""
		if q, ok := r.Quantities[r.Resource]; ok {
			amount = quota.FormatAmount(r.Resource, q)
		}
		if !r.Skipped {
			src = usage(r.Resource, r.SourceBefore) + " → " + usage(r.Resource, r.SourceAfter)
			dst = usage(r.Resource, r.DestBefore) + " → " + usage(r.Resource, r.DestAfter)
		} else {
			src = usage(r.Resource, r.SourceBefore)
		}
		cells = append(cells, []string{r.Rule, r.Account, string(r.Kind), view.Dash(r.ItemName), view.Dash(amount),
			view.NameOr(r.FromName, r.From), src, view.Dash(view.NameOr(r.ToName, r.To)), view.Dash(dst), outcome})
	}
	return cells
}

// termWidth is the width to fit tables in: COLUMNS when w is a terminal,
// else 0 (any width): a pipe or a file gets the whole table.
func termWidth(w io.Writer, lookupEnv func(string) (string, bool)) int {
	if !isTerminal(w, lookupEnv) {
		return 0
	}
	v, _ := lookupEnv("COLUMNS")
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// printEvents writes a cycle's events; a table wider than width (0: any)
// drops the account, then the usage, or else gives one block per event.
func printEvents(w io.Writer, events []quota.Event, width int) error {
	cells := make([][]string, 0, len(events))
	for _, e := range events {
		kind := string(e.Kind)
		if e.Kind == quota.EventAction {
			if e.DryRun && e.Result == quota.ResultApplied {
				// Nothing moved: the move is only planned.
				kind += " planned"
			} else {
				kind += " " + string(e.Result)
			}
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
	header := []string{"EVENT", "RULE", "ACCOUNT", "PROJECT", "RESOURCE", "USAGE", "DETAIL"}
	if sh, sc := view.DropColumns(header, cells, width, "ACCOUNT", "USAGE"); width <= 0 || view.TableWidth(sh, sc) <= width {
		return view.WriteRows(w, sh, sc)
	}
	return view.WriteFitted(w, header, cells, width)
}

// planLine is one row of `plan --output json`: a move or a refusal with
// the events of the cycle that concern it (its action event, and the
// firing of its rule instance). Events that concern no move share a row
// per rule instance (or per account, for poll events) with no item. Every
// row has every field, so that the rows have one shape.
type planLine struct {
	Rule         string            `json:"rule"`
	Account      string            `json:"account"`
	Kind         quota.Kind        `json:"kind"`
	ItemID       string            `json:"item_id"`
	ItemName     string            `json:"item_name"`
	From         string            `json:"from"`
	FromName     string            `json:"from_name"`
	To           string            `json:"to"`
	ToName       string            `json:"to_name"`
	Quantities   quota.Quantities  `json:"quantities"`
	Resource     string            `json:"resource"`
	SourceBefore quota.Quota       `json:"source_before"`
	SourceAfter  quota.Quota       `json:"source_after"`
	DestBefore   quota.Quota       `json:"dest_before"`
	DestAfter    quota.Quota       `json:"dest_after"`
	DryRun       bool              `json:"dry_run"`
	State        quota.ActionState `json:"state"`
	Error        string            `json:"error"`
	Skipped      bool              `json:"skipped"`
	Reason       string            `json:"reason"`
	Events       []quota.Event     `json:"events"`
}

func newPlanLine(r watcher.PlanRow) planLine {
	q := r.Quantities
	if q == nil {
		q = quota.Quantities{}
	}
	return planLine{Rule: r.Rule, Account: r.Account, Kind: r.Kind, ItemID: r.ItemID, ItemName: r.ItemName,
		From: r.From, FromName: r.FromName, To: r.To, ToName: r.ToName, Quantities: q, Resource: r.Resource,
		SourceBefore: r.SourceBefore, SourceAfter: r.SourceAfter, DestBefore: r.DestBefore, DestAfter: r.DestAfter,
		DryRun: r.DryRun, State: r.State, Error: r.Error, Skipped: r.Skipped, Reason: r.Reason, Events: []quota.Event{}}
}

// planLines attaches every event of a report to a row, so the JSON holds
// everything the table shows.
func planLines(rep *watcher.Report) []planLine {
	out := make([]planLine, 0, len(rep.Plan))
	for _, r := range rep.Plan {
		out = append(out, newPlanLine(r))
	}
	moveRow := func(e quota.Event) int {
		for i, l := range out[:len(rep.Plan)] {
			m := e.Move
			if l.Rule == m.Rule && l.Account == m.Account && l.Kind == m.Kind && l.ItemID == m.ItemID &&
				l.From == m.From && l.Skipped == (e.Result == quota.ResultSkipped) {
				return i
			}
		}
		return -1
	}
	instanceRow := func(k quota.InstanceKey) int {
		for i, l := range out {
			if l.Rule == k.Rule && l.Account == k.Account && l.From == k.Project && (l.Resource == k.Resource || l.Resource == "") {
				return i
			}
		}
		return -1
	}
	for _, e := range rep.Events {
		i := -1
		if e.Move != nil {
			i = moveRow(e)
		}
		if i < 0 {
			i = instanceRow(e.Key)
		}
		if i < 0 {
			out = append(out, newPlanLine(watcher.PlanRow{Move: quota.Move{Rule: e.Key.Rule, Account: e.Key.Account,
				From: e.Key.Project, FromName: e.ProjectName, Resource: e.Key.Resource}, DryRun: e.DryRun}))
			i = len(out) - 1
		}
		out[i].Events = append(out[i].Events, e)
	}
	return out
}
