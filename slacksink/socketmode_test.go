package slacksink

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// TestSocketMode: apps.connections.open takes the app token only and
// answers a WebSocket URL; the connection gets a hello, then each pressed
// button as a block_actions envelope, and Press returns once the envelope
// is acknowledged by its id, not before.
func TestSocketMode(t *testing.T) {
	s := New()
	defer s.Close()
	open := func(token string) map[string]any {
		req, err := http.NewRequest(http.MethodPost, s.APIURL()+EndpointConnectionsOpen, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return m
	}
	require.Equal(t, "invalid_auth", open(DefaultToken)["error"], "the bot token opens no socket")
	m := open(DefaultAppToken)
	require.Equal(t, true, m["ok"])
	u, _ := m["url"].(string)
	require.True(t, strings.HasPrefix(u, "ws://"), u)

	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	require.NoError(t, err)
	defer ws.Close()
	var hello map[string]any
	require.NoError(t, ws.ReadJSON(&hello))
	require.Equal(t, "hello", hello["type"])

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Press(ctx, "U0BOSS", "C1", "1700000000.000001", "quotawatch_approve", "7") }()
	var env struct {
		EnvelopeID string `json:"envelope_id"`
		Type       string `json:"type"`
		Payload    struct {
			Type    string              `json:"type"`
			User    struct{ ID string } `json:"user"`
			Actions []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"actions"`
		} `json:"payload"`
	}
	require.NoError(t, ws.ReadJSON(&env))
	require.Equal(t, "interactive", env.Type)
	require.Equal(t, "block_actions", env.Payload.Type)
	require.Equal(t, "U0BOSS", env.Payload.User.ID)
	require.Equal(t, "7", env.Payload.Actions[0].Value)
	select {
	case err := <-done:
		t.Fatalf("Press returned before the acknowledgement: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, ws.WriteJSON(map[string]any{"envelope_id": "some-other"}))
	require.NoError(t, ws.WriteJSON(map[string]any{"envelope_id": env.EnvelopeID}))
	require.NoError(t, <-done)

	// Not acknowledged: Press says so.
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	go func() { var x any; _ = ws.ReadJSON(&x) }()
	require.ErrorIs(t, s.Press(short, "U0BOSS", "C1", "1700000000.000001", "quotawatch_approve", "7"), ErrNotAcknowledged)
}
