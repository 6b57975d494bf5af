package quota

import (
	"encoding/json"
	"math"
	"time"
)

// Days is a number of days that may be +Inf ("never"). JSON cannot hold
// infinities, so +Inf is encoded as null.
type Days float64

// Never is the Days value of something that will not happen.
var Never = Days(math.Inf(1))

// IsNever reports whether d is +Inf.
func (d Days) IsNever() bool { return math.IsInf(float64(d), 1) }

// MarshalJSON encodes +Inf (and NaN) as null.
func (d Days) MarshalJSON() ([]byte, error) {
	f := float64(d)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON decodes null as +Inf.
func (d *Days) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Never
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*d = Days(f)
	return nil
}

// Severity of a rule.
type Severity string

// Severities.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// State of a rule instance.
type State string

// Rule instance states (docs/design.md#state-machine).
const (
	StateOK      State = "ok"
	StatePending State = "pending"
	StateFiring  State = "firing"
)

// InstanceKey names one rule instance: a rule applied to one series. It is
// also the incident key for Slack threads.
type InstanceKey struct {
	Rule     string `json:"rule"`
	Account  string `json:"account"`
	Project  string `json:"project"`
	Resource string `json:"resource"`
}

// String renders the key as rule/account/project/resource.
func (k InstanceKey) String() string {
	return k.Rule + "/" + k.Account + "/" + k.Project + "/" + k.Resource
}

// Series returns the quota series the instance watches.
func (k InstanceKey) Series() Key {
	return Key{Account: k.Account, Project: k.Project, Resource: k.Resource}
}

// Instance is the persisted state of one rule instance.
type Instance struct {
	Key   InstanceKey `json:"key"`
	State State       `json:"state"`
	// Since is when the instance entered State.
	Since time.Time `json:"since"`
	// LastNotified is when a firing (or repeat) notification was last sent.
	LastNotified time.Time `json:"last_notified,omitzero"`
	// LastAction is when the rule last applied (or tried) a real move for
	// this instance.
	LastAction time.Time `json:"last_action,omitzero"`
	// LastReport is when the rule last reported a dry-run move for this
	// instance: it paces later reports, never real moves, so turning dry
	// run off acts at once.
	LastReport time.Time `json:"last_report,omitzero"`
	// Skipped records when each "action skipped" reason was last reported,
	// so one reason is told once per incident and again only after repeat.
	Skipped map[string]time.Time `json:"skipped,omitempty"`
}

// AccountState tracks consecutive poll failures of one account.
type AccountState struct {
	Account string `json:"account"`
	// Failures is the number of consecutive failed polls.
	Failures int `json:"failures"`
	// FailingSince is when the first of those failures happened.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Alerted is set once poll_failed was sent, so recovery is announced.
	Alerted bool `json:"alerted"`
	// LastError is the last poll error text (never containing a secret).
	LastError string `json:"last_error,omitempty"`
	// TokenWarned is the expiry of the token last warned about, so that a
	// token is warned about once (a renewed token has another expiry).
	TokenWarned time.Time `json:"token_warned,omitzero"`
}

// EventKind is what happened.
type EventKind string

// Event kinds (docs/design.md#state-machine).
const (
	EventFiring        EventKind = "firing"
	EventResolved      EventKind = "resolved"
	EventAction        EventKind = "action"
	EventPollFailed    EventKind = "poll_failed"
	EventPollRecovered EventKind = "poll_recovered"
	// EventTokenExpiring: an account's token expires within the warning
	// (Expires says when); it must be renewed out of band.
	EventTokenExpiring EventKind = "token_expiring"
	// EventTakeover: with ha, another instance took the lead (Reason says
	// which from which).
	EventTakeover EventKind = "takeover"
)

// ActionResult is the outcome reported by an action event.
type ActionResult string

// Action results.
const (
	ResultApplied ActionResult = "applied"
	ResultFailed  ActionResult = "failed"
	ResultSkipped ActionResult = "skipped"
	// A move that waits for approval, and what became of it short of
	// being applied (an approved move tells applied or failed).
	ResultProposed ActionResult = "proposed"
	ResultRejected ActionResult = "rejected"
	ResultExpired  ActionResult = "expired"
	// ResultRefused tells a decision that was not taken: someone not
	// allowed to approve tried, or an undo could not be made.
	ResultRefused ActionResult = "refused"
)

// Event is something worth telling people about. Events are written to the
// outbox with the state change that caused them and rendered by notifiers.
type Event struct {
	Kind     EventKind   `json:"kind"`
	Time     time.Time   `json:"time"`
	Key      InstanceKey `json:"key"` // rule and series; only Account for poll events
	Severity Severity    `json:"severity,omitempty"`
	// Description is the rule's description.
	Description string `json:"description,omitempty"`
	ProjectName string `json:"project_name,omitempty"`
	// Quota is the series' quota when the event happened.
	Quota Quota `json:"quota"`
	// GrowthPerDay and DaysToFull are the forecast (in the resource's
	// unit per day, and days until the headroom is used up).
	GrowthPerDay float64 `json:"growth_per_day"`
	DaysToFull   Days    `json:"days_to_full"`
	// Since is when the instance started firing (for resolved: how long).
	Since time.Time `json:"since,omitzero"`
	// Result, Move and Reason describe an action event.
	Result ActionResult `json:"result,omitempty"`
	Move   *Move        `json:"move,omitempty"`
	Reason string       `json:"reason,omitempty"`
	DryRun bool         `json:"dry_run,omitempty"`
	// Notify names the notifiers that should get this event; empty = all.
	Notify []string `json:"notify,omitempty"`
	// Repeat marks a re-notification of an incident still firing.
	Repeat bool `json:"repeat,omitempty"`
	// Expires is when a token_expiring event's token expires.
	Expires time.Time `json:"expires,omitzero"`
}

// Move is one planned or applied reassignment of an item.
type Move struct {
	Rule       string     `json:"rule"`
	Account    string     `json:"account"`
	Kind       Kind       `json:"kind"`
	ItemID     string     `json:"item_id"`
	ItemName   string     `json:"item_name"`
	From       string     `json:"from"`
	FromName   string     `json:"from_name"`
	To         string     `json:"to"`
	ToName     string     `json:"to_name"`
	Quantities Quantities `json:"quantities"`
	// Resource is the rule's resource; the before/after quotas are of it.
	Resource     string `json:"resource"`
	SourceBefore Quota  `json:"source_before"`
	SourceAfter  Quota  `json:"source_after"`
	DestBefore   Quota  `json:"dest_before"`
	DestAfter    Quota  `json:"dest_after"`
	// Owner is the UUID of the user who owns the item, when known: the
	// person to tell that it moved.
	Owner string `json:"owner,omitempty"`
	// UndoOf is the journal id of the move this one takes back.
	UndoOf uint64 `json:"undo_of,omitempty"`
	// ProposalID is the journal id of the proposal this move is or was.
	ProposalID uint64 `json:"proposal,omitempty"`
	// By and Comment say who decided the move (approved a proposal, asked
	// for an undo; "" for the rules' own) and why.
	By      string `json:"by,omitempty"`
	Comment string `json:"comment,omitempty"`
	// Shared says the item is shared to its project and stays shared
	// after the move (the reassign sends its sharing).
	Shared bool `json:"shared,omitempty"`
	// Raise, set with Kind KindLimit, makes this a raise of From's limits
	// of Resource rather than a move (To is From).
	Raise *Raise `json:"raise,omitempty"`
}

// Raise is a raise of a project's limit of one resource, by a modification
// application an admin submits (and may approve).
type Raise struct {
	// Level is project, member or both.
	Level string `json:"level"`
	// MemberFrom/To and ProjectFrom/To are the capacities before and
	// after (equal for the level not raised).
	MemberFrom  int64 `json:"member_from"`
	MemberTo    int64 `json:"member_to"`
	ProjectFrom int64 `json:"project_from"`
	ProjectTo   int64 `json:"project_to"`
	// SelfApprove: the application is approved with the same admin token.
	SelfApprove bool `json:"self_approve,omitempty"`
	// Application is the application's id, once submitted; Approved says
	// it was approved.
	Application int64 `json:"application,omitempty"`
	Approved    bool  `json:"approved,omitempty"`
}

// ActionState is a journal entry's lifecycle state: intent, then applied,
// failed or unknown, and applied then verified (the item was read back in
// its destination). An unknown move was sent but its answer was lost; it
// is read back until it is found in its destination (applied) or a settle
// window has passed with it still in its source (failed, interrupted); see docs/design.md#action-lifecycle.
type ActionState string

// Action states.
const (
	ActionIntent   ActionState = "intent"
	ActionApplied  ActionState = "applied"
	ActionFailed   ActionState = "failed"
	ActionVerified ActionState = "verified"
	ActionUnknown  ActionState = "unknown"
	// A proposal waits for approval; approved, it becomes an intent like
	// any move; rejected or expired, it is over and nothing moved.
	ActionProposed ActionState = "proposed"
	ActionRejected ActionState = "rejected"
	ActionExpired  ActionState = "expired"
)

// Action is one entry of the action journal.
type Action struct {
	ID     uint64      `json:"id"`
	Time   time.Time   `json:"time"`
	State  ActionState `json:"state"`
	DryRun bool        `json:"dry_run"`
	Error  string      `json:"error,omitempty"`
	// Updated is when State last changed.
	Updated time.Time `json:"updated,omitzero"`
	// Interrupted marks a failed move whose outcome was never answered:
	// it was given up as failed after its settle window, not refused by
	// the cloud, so it may still have happened.
	Interrupted bool `json:"interrupted,omitempty"`
	// Expires is when a proposal expires undecided.
	Expires time.Time `json:"expires,omitzero"`
	Move
}

// Proposal reports whether the entry is a proposal that never became a
// move (waiting, rejected or expired): nothing was sent, so it counts for
// no cooldown and no back-move rule.
func (a *Action) Proposal() bool {
	return a.State == ActionProposed || a.State == ActionRejected || a.State == ActionExpired
}

// Open reports whether the move has no outcome yet: journaled as intent
// (the process may have died around the call) or sent with its answer lost.
// An open move may still happen, so it counts as on its way.
func (a *Action) Open() bool { return a.State == ActionIntent || a.State == ActionUnknown }

// Refused reports whether the cloud answered that the move was not made:
// the only outcome that proves the item never left its source.
func (a *Action) Refused() bool { return a.State == ActionFailed && !a.Interrupted }
