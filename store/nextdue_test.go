package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestNextDue(t *testing.T) {
	st, _ := openTemp(t)
	ev := func(rule string) quota.Event { return quota.Event{Kind: quota.EventFiring, Key: ik(rule, "p")} }
	next := func(n string) (time.Time, bool) {
		t.Helper()
		at, ok, err := st.NextDue(n)
		require.NoError(t, err)
		return at, ok
	}
	_, ok := next("ops")
	require.False(t, ok, "empty outbox")

	require.NoError(t, st.Commit(&Batch{Time: start, Outbox: []Outgoing{
		{"ops", ev("a")}, {"dev", ev("b")}, {"ops", ev("c")},
	}}))
	ops, err := st.Due("ops", start)
	require.NoError(t, err)
	at, ok := next("ops")
	require.True(t, ok)
	require.Equal(t, start, at, "a new message is due when enqueued")

	// The head fails: the notifier next makes progress at its retry
	// time, whatever the messages behind it.
	require.NoError(t, st.Failed(ops[0].ID, start.Add(5*time.Second), "500"))
	at, _ = next("ops")
	require.Equal(t, start.Add(5*time.Second), at)
	dev, _ := next("dev")
	require.Equal(t, start, dev, "per notifier")

	// A dead head no longer holds the queue; the one behind it is next.
	require.NoError(t, st.Dead(ops[0].ID, "invalid_auth"))
	at, _ = next("ops")
	require.Equal(t, start, at)
	require.NoError(t, st.Delivered(ops[1].ID))
	_, ok = next("ops")
	require.False(t, ok, "only a dead message left")
	_, ok = next("gone")
	require.False(t, ok)
}
