package view

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// ActionSource is what the journal query reads; *store.Store is one.
type ActionSource interface {
	Actions(from, to time.Time) ([]quota.Action, error)
}

// ActionRow is one journal entry of `actions --output json`.
type ActionRow struct {
	ID         uint64            `json:"id"`
	Time       time.Time         `json:"time"`
	Rule       string            `json:"rule"`
	Account    string            `json:"account"`
	Kind       quota.Kind        `json:"kind"`
	ItemID     string            `json:"item_id"`
	ItemName   string            `json:"item_name"`
	From       string            `json:"from"`
	FromName   string            `json:"from_name"`
	To         string            `json:"to"`
	ToName     string            `json:"to_name"`
	Quantities quota.Quantities  `json:"quantities"`
	State      quota.ActionState `json:"state"`
	DryRun     bool              `json:"dry_run"`
	Error      string            `json:"error"`
	// UndoOf, Proposal, By and Comment tell a move a person decided (an
	// undo, an approved proposal) and a proposal's decision; 0 and empty
	// otherwise.
	UndoOf   uint64 `json:"undo_of"`
	Proposal uint64 `json:"proposal"`
	By       string `json:"by"`
	Comment  string `json:"comment"`
}

// QueryActions reads the journal entries in [from,to]; never nil, so that
// no entry is an empty array.
func QueryActions(src ActionSource, from, to time.Time) ([]ActionRow, error) {
	acts, err := src.Actions(from, to)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	rows := make([]ActionRow, 0, len(acts))
	for _, a := range acts {
		rows = append(rows, ActionRow{ID: a.ID, Time: a.Time, Rule: a.Rule, Account: a.Account, Kind: a.Kind,
			ItemID: a.ItemID, ItemName: a.ItemName, From: a.From, FromName: a.FromName, To: a.To, ToName: a.ToName,
			Quantities: a.Quantities, State: a.State, DryRun: a.DryRun, Error: a.Error,
			UndoOf: a.UndoOf, Proposal: a.ProposalID, By: a.By, Comment: a.Comment})
	}
	return rows, nil
}

// WriteActions writes journal entries as a table.
func WriteActions(w io.Writer, rows []ActionRow) error {
	return WriteTable(w, actionColumns(), rows)
}

func actionColumns() []Column[ActionRow] {
	return []Column[ActionRow]{
		{Header: "ID", Cell: func(r ActionRow) string { return fmt.Sprint(r.ID) }},
		{Header: "TIME", Cell: func(r ActionRow) string { return Time(r.Time) }},
		{Header: "RULE", Cell: func(r ActionRow) string { return r.Rule }},
		{Header: "ACCOUNT", Cell: func(r ActionRow) string { return r.Account }},
		{Header: "KIND", Cell: func(r ActionRow) string { return string(r.Kind) }},
		{Header: "ITEM", Cell: func(r ActionRow) string { return r.ItemName }},
		{Header: "AMOUNT", Cell: func(r ActionRow) string {
			var amounts []string
			for _, res := range r.Quantities.Resources() {
				amounts = append(amounts, res+" "+quota.FormatAmount(res, r.Quantities[res]))
			}
			return Dash(strings.Join(amounts, ", "))
		}},
		{Header: "FROM", Cell: func(r ActionRow) string { return NameOr(r.FromName, r.From) }},
		{Header: "TO", Cell: func(r ActionRow) string { return NameOr(r.ToName, r.To) }},
		{Header: "STATE", Cell: func(r ActionRow) string { return StateText(r.State, r.DryRun) }},
		{Header: "ERROR", Cell: func(r ActionRow) string { return Dash(r.Error) }},
	}
}

// StateText is a journal entry's state as an operator reads it: a dry-run
// move was journaled as applied but nothing moved, so it reads as planned.
func StateText(s quota.ActionState, dryRun bool) string {
	switch {
	case !dryRun:
		return string(s)
	case s == quota.ActionApplied || s == quota.ActionVerified:
		return "planned (dry run)"
	}
	return string(s) + " (dry run)"
}
