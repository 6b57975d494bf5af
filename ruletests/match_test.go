package ruletests

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestExpectMatches(t *testing.T) {
	key := quota.InstanceKey{Rule: "container-rebalance", Account: "alice", Project: "0f2c", Resource: quota.DiskSpace}
	firing := quota.Event{Kind: quota.EventFiring, Key: key, ProjectName: "course"}
	resolved := quota.Event{Kind: quota.EventResolved, Key: key, ProjectName: "course"}
	action := quota.Event{Kind: quota.EventAction, Result: quota.ResultApplied, Key: key, ProjectName: "course",
		Move: &quota.Move{ItemID: "c-1", ItemName: "course_container", To: "a9f8", ToName: "spare"}}
	skipped := quota.Event{Kind: quota.EventAction, Result: quota.ResultSkipped, Key: key, ProjectName: "course",
		Reason: "no project with 19.0 GiB headroom for course_container",
		Move:   &quota.Move{ItemID: "c-1", ItemName: "course_container"}}
	noItem := quota.Event{Kind: quota.EventAction, Result: quota.ResultSkipped, Key: key, Reason: "cooldown: last move"}
	pollFailed := quota.Event{Kind: quota.EventPollFailed, Key: quota.InstanceKey{Account: "alice"}, Reason: "poll failed"}
	unnamed := quota.Event{Kind: quota.EventFiring, Key: key}

	tests := []struct {
		name string
		keys []field
		ev   quota.Event
		want bool
	}{
		{"no keys match anything", nil, pollFailed, true},
		{"event firing", []field{{"event", "firing"}}, firing, true},
		{"event firing is not resolved", []field{{"event", "firing"}}, resolved, false},
		{"event resolved", []field{{"event", "resolved"}}, resolved, true},
		{"event action is an applied move", []field{{"event", "action"}}, action, true},
		{"event action is not a refusal", []field{{"event", "action"}}, skipped, false},
		{"event skipped", []field{{"event", "skipped"}}, skipped, true},
		{"event skipped is not a move", []field{{"event", "skipped"}}, action, false},
		{"event poll_failed", []field{{"event", "poll_failed"}}, pollFailed, true},
		{"rule", []field{{"rule", "container-rebalance"}}, firing, true},
		{"other rule", []field{{"rule", "vm-rebalance"}}, firing, false},
		{"rule is whole, not a prefix", []field{{"rule", "container"}}, firing, false},
		{"account", []field{{"account", "alice"}}, pollFailed, true},
		{"other account", []field{{"account", "bob"}}, firing, false},
		{"project by id", []field{{"project", "0f2c"}}, firing, true},
		{"project by name", []field{{"project", "course"}}, firing, true},
		{"other project", []field{{"project", "spare"}}, firing, false},
		{"project without a name by id", []field{{"project", "0f2c"}}, unnamed, true},
		{"empty project never matches a nameless one", []field{{"project", ""}}, unnamed, false},
		{"resource", []field{{"resource", quota.DiskSpace}}, firing, true},
		{"other resource", []field{{"resource", quota.CPU}}, firing, false},
		{"item by name", []field{{"item", "course_container"}}, action, true},
		{"item by id", []field{{"item", "c-1"}}, action, true},
		{"item of a refusal", []field{{"item", "course_container"}}, skipped, true},
		{"other item", []field{{"item", "notes"}}, action, false},
		{"item of an event without one", []field{{"item", "course_container"}}, firing, false},
		{"item of a refusal without one", []field{{"item", "course_container"}}, noItem, false},
		{"to by id", []field{{"to", "a9f8"}}, action, true},
		{"to by name", []field{{"to", "spare"}}, action, true},
		{"other to", []field{{"to", "lab-a"}}, action, false},
		{"to of a refusal", []field{{"to", ""}}, skipped, false},
		{"to of an event without a move", []field{{"to", "spare"}}, firing, false},
		{"reason substring", []field{{"reason", "19.0 GiB headroom"}}, skipped, true},
		{"reason whole", []field{{"reason", skipped.Reason}}, skipped, true},
		{"reason is case-sensitive", []field{{"reason", "No project"}}, skipped, false},
		{"reason of an event without one", []field{{"reason", "headroom"}}, action, false},
		{"every key must match", []field{{"event", "action"}, {"rule", "container-rebalance"}, {"project", "course"},
			{"item", "course_container"}, {"to", "a9f8"}}, action, true},
		{"one key off fails", []field{{"event", "action"}, {"rule", "container-rebalance"}, {"project", "course"},
			{"item", "course_container"}, {"to", "lab-b"}}, action, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := expect{keys: tt.keys}
			require.Equal(t, tt.want, x.matches(&tt.ev), "%s against %s", x.String(), describeEvent(&tt.ev))
		})
	}
}

// Order does not matter, each event meets one expectation, and a partial
// expectation does not steal the event a fuller one needs.
func TestMatch(t *testing.T) {
	key := quota.InstanceKey{Rule: "r", Account: "alice", Project: "p", Resource: quota.DiskSpace}
	firing := quota.Event{Kind: quota.EventFiring, Key: key}
	a := quota.Event{Kind: quota.EventAction, Key: key, Move: &quota.Move{ItemName: "a", To: "x"}}
	b := quota.Event{Kind: quota.EventAction, Key: key, Move: &quota.Move{ItemName: "b", To: "y"}}
	anyAction := expect{line: 1, keys: []field{{"event", "action"}}}
	onlyA := expect{line: 2, keys: []field{{"item", "a"}}}
	fire := expect{line: 3, keys: []field{{"event", "firing"}}}

	tests := []struct {
		name              string
		want              []expect
		got               []quota.Event
		unmetLines        []int
		extraDescriptions []string
	}{
		{"nothing expected, nothing told", nil, nil, nil, nil},
		{"any order", []expect{fire, onlyA}, []quota.Event{a, firing}, nil, nil},
		{"partial then full needs backtracking", []expect{anyAction, onlyA}, []quota.Event{a, b}, nil, nil},
		{"one event meets one expectation", []expect{anyAction, anyAction}, []quota.Event{a}, []int{1}, nil},
		{"an event left over", []expect{fire}, []quota.Event{firing, b},
			nil, []string{"{event: action, rule: r, account: alice, project: p, resource: pithos.diskspace, item: b, to: y}"}},
		{"nothing told", []expect{fire}, nil, []int{3}, nil},
		{"events: [] and something told", nil, []quota.Event{firing},
			nil, []string{"{event: firing, rule: r, account: alice, project: p, resource: pithos.diskspace}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unmet, extra := match(tt.want, tt.got)
			var lines []int
			for _, x := range unmet {
				lines = append(lines, x.line)
			}
			var descs []string
			for i := range extra {
				descs = append(descs, describeEvent(&extra[i]))
			}
			require.Equal(t, tt.unmetLines, lines)
			require.Equal(t, tt.extraDescriptions, descs)
		})
	}
}

func TestDescribeEventQuotes(t *testing.T) {
	ev := quota.Event{Kind: quota.EventAction, Result: quota.ResultSkipped,
		Key:    quota.InstanceKey{Rule: "r", Account: "alice", Project: "p", Resource: quota.DiskSpace},
		Reason: `cooldown: last move out of "p" at 1970-01-01 00:00 UTC`}
	require.Equal(t,
		`{event: skipped, rule: r, account: alice, project: p, resource: pithos.diskspace, reason: "cooldown: last move out of \"p\" at 1970-01-01 00:00 UTC"}`,
		describeEvent(&ev))
	x := expect{keys: []field{{"project", "a: b"}, {"item", "plain"}}}
	require.Equal(t, `{project: "a: b", item: plain}`, x.String())
}
