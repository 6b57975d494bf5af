package store

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSessionRoundTrip(t *testing.T) {
	st, path := openTemp(t)
	_, ok, err := st.Session("alice")
	require.NoError(t, err)
	require.False(t, ok)
	ss := Session{Key: "digest", Time: start, Data: json.RawMessage(`{"UserID":"u1"}`)}
	require.NoError(t, st.SetSession("alice", ss))
	require.NoError(t, st.Close())
	st, err = Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer st.Close()
	got, ok, err := st.Session("alice")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ss.Key, got.Key)
	require.True(t, ss.Time.Equal(got.Time))
	require.JSONEq(t, string(ss.Data), string(got.Data))
	_, ok, err = st.Session("bob")
	require.NoError(t, err)
	require.False(t, ok)
}
