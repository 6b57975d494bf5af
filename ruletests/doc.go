// Package ruletests runs unit tests of rules, in the spirit of promtool's
// rule tests: given series of polled quotas and the items that may move,
// it runs the rules cycle after cycle exactly as the daemon does (evaluate,
// plan, take each planned move as applied) and compares the events of
// chosen cycles with the expected ones. It touches no cloud and no store.
//
// A test file:
//
//	config: quotawatch.yaml    # a config, or a file with a top-level rules: list
//	interval: 5m               # time between polls (default 5m)
//	tests:
//	  - name: seed container moves
//	    input_series:          # one entry per (account, project, resource)
//	      - account: alice
//	        project: 0f2c...   # id
//	        project_name: course
//	        resource: pithos.diskspace
//	        usage: "15GiB+1GiBx2 19.5GiBx2"
//	        limit: "20GiBx5"
//	        project_usage: "15GiB+1GiBx2 19.5GiBx2"
//	        project_limit: "50GiBx5"
//	        # pending, project_pending optional (default 0)
//	      - {account: alice, project: a9f8..., project_name: spare, resource: pithos.diskspace,
//	         usage: "2GiBx5", limit: "100GiBx5", project_usage: "2GiBx5", project_limit: "100GiBx5"}
//	    items:                 # what the planner may move
//	      - {account: alice, project: 0f2c..., kind: container, name: course_container,
//	         quantities: {pithos.diskspace: 19GiB}}
//	    expected_events:
//	      - at: 20m
//	        events: []
//	      - at: 25m
//	        events:
//	          - {event: firing, rule: container-rebalance, project: course}
//	          - {event: action, rule: container-rebalance, item: course_container, to: spare}
//
// Values use promtool's expanding notation: `a+bxn` is a, a+b, ..., a+n*b
// (n+1 values), `a-bxn` counts down, `axn` is a repeated n+1 times, `_` is
// a missing poll (the account's poll failed) and `_xn` n of them; a number
// may carry a unit (20GiB, 1.5GiB, 500MB) or be `unlimited`. Every field of
// a series has one value per poll; a series shorter than the test's
// longest is gone from the polls after its end. The account `service` is
// the service token's view: its series give only the project_* fields.
//
// The input series are what the polls return: a planned move is an event
// and changes that cycle's ledger, not later inputs. A moved item is in its
// destination from then on, as a later listing would show it.
//
// At each `at` (an offset from the first poll, a multiple of the interval)
// the events of that evaluation must equal `events`, in any order. An
// expected event matches when every key it gives matches: event (firing,
// resolved, action, skipped, poll_failed, poll_recovered), rule, account,
// project (id or name), resource, item (name or id), to (id or name) and
// reason (a substring). Evaluations not listed are not checked. The first
// poll is at [Epoch], which reasons that name a time show.
//
// A config is loaded as the daemon loads it, except that a secret that
// cannot be read stands in as a placeholder, so tests run where the
// daemon's credentials are not; its dry_run and max_actions_per_cycle
// apply, and the accounts of a test must be its accounts. A rules file
// runs with max_actions_per_cycle at its default and any account.
package ruletests
