package rules

import (
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// Due returns the first time at which evaluating a rule instance again
// may change it, tell something or hand it to the planner, when its
// series' values and forecast are those of its last evaluation, that
// evaluation left it as it was, and no silence holds it. A zero time means
// any evaluation may; ok is false when none will. A caller that evaluates
// only the series that changed evaluates the others' instances when due.
func (e *Engine) Due(inst quota.Instance) (at time.Time, ok bool) {
	r := e.byName[inst.Key.Rule]
	if r == nil {
		return time.Time{}, true // dropped at the next evaluation
	}
	switch inst.State {
	case quota.StatePending:
		return inst.Since.Add(r.For), true
	case quota.StateFiring:
		switch {
		case r.Action != nil || r.Raise != nil, inst.LastNotified.IsZero():
			// Planned (or cooling down) at every cycle; never told yet.
			return time.Time{}, true
		case r.Repeat > 0:
			return inst.LastNotified.Add(r.Repeat), true
		}
		return time.Time{}, false
	}
	// Back to ok, kept while its last move's cooldown runs.
	if last := lastMove(inst, true); !last.IsZero() {
		return last.Add(r.Cooldown), true
	}
	return time.Time{}, true
}
