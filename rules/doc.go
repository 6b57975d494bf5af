// Package rules compiles quotawatch's YAML rules, evaluates them against the
// quotas of one cycle, forecasts usage from history and plans the moves that
// bring a project back under its quota.
//
// The package is pure: it does no I/O, keeps no clock (every time comes in as
// a parameter) and starts no goroutines. DESIGN.md §3-§5 is the contract.
//
// # Expression variables
//
// `when` and `clear` are expr-lang expressions compiled once at load time
// against a typed environment and required to be bool. The variables are:
//
//	account, user, project, project_name, resource, unit   string
//	system, unlimited                                      bool
//	usage, limit, pending, project_usage, project_limit,
//	project_pending, effective_limit, headroom             int64 (exact quota numbers)
//	ratio, project_ratio, growth_per_day, days_to_full     float64
//
// Quota numbers are integers so that equality with 9223372036854775807
// (unlimited) is exact; expr compares integers with floats, so both
// `usage > 10 * 1024^3` (`^` yields a float) and `ratio > 0.95` work.
// A zero effective limit gives ratio +Inf (0 when nothing is used);
// days_to_full is +Inf when usage is not growing and 0 when already full.
// growth_per_day is in the resource's unit per day. The built-in now() is
// disabled: rules see only the cycle's data.
//
// The common forms (comparisons, arithmetic and logic over these variables
// and number, bool or string constants) also run as native closures, which
// is what keeps a cycle of 80,000 series well under 50 ms; other forms run
// on expr's VM, reused across series. Both give the same results.
//
// Evaluation never panics: a runtime error in an expression (such as an
// integer division by zero) counts as false and is reported once per rule
// and expression in [Output.Errors].
//
// # State machine
//
// Each (rule, account, project, resource) instance is ok, pending or firing.
// An instance in state ok is not stored at all unless it still carries a
// cooldown; Evaluate returns changed states in [Output.Instances] and states
// to drop in [Output.Deleted]. Accounts listed in [Input.Failed] keep their
// instances untouched and never act; every account with stored instances is
// expected in Snapshots or Failed.
//
// # Planning
//
// For each [Firing] in order, the caller lists the items of the rule's kind
// in the source project and calls [Engine.Plan] with the account's ledger
// and the cycle's budget, both shared across calls so that moves see each
// other. It then reports outcomes with [ActionEvent] and [SkipEvents], sets
// Instance.LastAction when a move is applied (in a dry run: planned, so
// reports come at the pace of real moves), and persists the Firing's
// Instance (SkipEvents records what it told in Instance.Skipped).
//
// Under the global dry run, plans share the ledger and budget exactly as
// real ones would. A rule with its own dry_run (global dry run off) plans the
// same moves but takes them back from the ledger and budget afterwards, so
// live rules planned later in the cycle are not starved by moves that never
// happen.
//
// An Engine is not safe for concurrent use: it reuses one environment and
// one expression machine.
package rules
