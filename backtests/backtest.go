// Package backtests replays stored quota history through rules and the
// planner, cycle by cycle, on a simulated ledger, and reports what would
// have fired, been moved where, been refused, and been told. It only
// reads: the store is opened by the caller (read-only), and no cloud is
// asked anything.
//
// # What it sees
//
// The polls are the store's: each account's poll times, and each series'
// values as they changed. A series counts as present from its first
// observation to its last (a gap in between is not seen). Project names
// are today's.
//
// The items the planner may move are those the daemon listed: it keeps
// each listing it makes (it lists the items of a project when a rule with
// an action fires there), once per change. A cycle uses the listing in
// force at its time; where there is none yet, the first later one; where
// the daemon never listed that project, the items its action journal
// moved from there (with the quantities they had when moved). The report
// says how many item lists came from each. An item the backtest moves is
// in its destination from then on.
//
// # Cost
//
// The history is read a day block at a time (store.Block), each block once
// for every series. A cycle evaluates only what can tell something new:
// the series that changed at that poll, the series a forecasting rule
// watches whose usage changed in the last day, and the series with a rule
// state that may change though their values did not (see
// rules.Engine.Due). Any other series has the values and the forecast it
// had when last evaluated, which left its states as they were, so they
// stay; the cycle is partial (replay.Cycle.Partial). Forecasts come from
// trends kept up to date poll by poll (rules.Trend). The planner gets the
// part of every account's ledger its plans read.
package backtests

import (
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// Store is what the backtest reads of the store.
type Store interface {
	Keys() ([]quota.Key, error)
	// Block reads every series' history of the day block holding t.
	Block(t time.Time) (*store.Block, error)
	At(k quota.Key, t time.Time) (quota.Sample, bool, error)
	LastSeen(k quota.Key) (time.Time, bool, error)
	Projects() (map[string]quota.Project, error)
	Actions(from, to time.Time) ([]quota.Action, error)
	Listings(from, to time.Time) ([]store.Listing, error)
	// Release lets the file go between reads, so the daemon can write.
	Release() error
}

// ServiceAccount is the account name of the service token's view.
const ServiceAccount = "service"

// Options configure a run.
type Options struct {
	Rules []*rules.Rule
	// From and To bound the replayed polls (both included).
	From, To time.Time
	// MaxActions is max_actions_per_cycle (negative: no cap); DryRun the
	// global dry_run.
	MaxActions int
	DryRun     bool
	// Notifiers are the configured notifier names: an event goes to those
	// its rule names, or to all.
	Notifiers []string
	// Window is no longer read: the history is read a day block at a
	// time, each block once.
	Window time.Duration
	// Progress, if set, is told after each window how far the replay got.
	Progress func(at time.Time)

	// evaluateAll evaluates every series at every poll and plans on the
	// full ledgers: what the selection must agree with.
	evaluateAll bool
	// afterPoll, if set, is called after each poll replayed.
	afterPoll func(r *run)
}

// Report is what a backtest found.
type Report struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Cycles int       `json:"cycles"`
	Series int       `json:"series"`
	// Items says where the items the planner could move came from.
	Items     string     `json:"items"`
	Incidents []Incident `json:"incidents"`
	Moves     []Move     `json:"moves"`
	Refusals  []Refusal  `json:"refusals"`
	Messages  []Messages `json:"messages"`
	// Errors are runtime errors of rule expressions, counted as false.
	Errors []string `json:"errors,omitempty"`
}

// Incident is one firing of a rule instance.
type Incident struct {
	Rule        string     `json:"rule"`
	Account     string     `json:"account"`
	Project     string     `json:"project"`
	ProjectName string     `json:"project_name,omitempty"`
	Resource    string     `json:"resource"`
	Opened      time.Time  `json:"opened"`
	Resolved    *time.Time `json:"resolved"` // nil: still open at the end
	PeakRatio   float64    `json:"peak_ratio"`
}

// Move is one move the backtest took as applied.
type Move struct {
	Time time.Time `json:"time"`
	quota.Move
	DryRun bool `json:"dry_run"`
}

// Refusal counts the planner's refusals of one reason.
type Refusal struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// Messages counts the messages one notifier would have been given of one
// event kind (before digests group them).
type Messages struct {
	Notifier string          `json:"notifier"`
	Kind     quota.EventKind `json:"kind"`
	Count    int             `json:"count"`
}

// forecastWindow is how much history the forecast variables look at; a
// series is kept an hour longer so its window is whole.
const (
	forecastWindow = 24 * time.Hour
	keepWindow     = forecastWindow + time.Hour
)

// Run replays the history of st over [From,To].
func Run(st Store, opt Options) (*Report, error) {
	if opt.Window <= 0 {
		opt.Window = 6 * time.Hour
	}
	r, err := newRun(st, opt)
	if err != nil {
		return nil, err
	}
	if err := r.run(); err != nil {
		return nil, err
	}
	return r.report(), nil
}
