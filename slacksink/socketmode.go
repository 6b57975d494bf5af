package slacksink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode, as an app sees it: apps.connections.open, called with the
// app-level token, answers a WebSocket URL; the app connects, gets a
// hello, and then envelopes (here, block_actions of buttons pressed, see
// Press), each of which it must acknowledge by its envelope_id.

// EndpointConnectionsOpen opens a Socket Mode connection.
const EndpointConnectionsOpen = "apps.connections.open"

// DefaultAppToken is the app-level token a Server accepts by default.
const DefaultAppToken = "xapp-1-quotawatch-test"

const socketPath = "/socket-mode"

// socketState holds the Socket Mode connections and the envelopes waiting
// for their acknowledgement.
type socketState struct {
	mu     sync.Mutex
	conns  []*socketConn
	seq    int
	acked  map[string]chan struct{} // envelope id → closed when acknowledged
	joined chan struct{}            // closed and replaced when a connection joins
}

type socketConn struct {
	mu   sync.Mutex // serialises writes
	ws   *websocket.Conn
	gone chan struct{}
}

func (c *socketConn) write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (s *Server) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	token := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	rec := Received{Endpoint: EndpointConnectionsOpen, Time: time.Now(), Status: http.StatusOK}
	fields := map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.URL, "http") + socketPath}
	switch {
	case token == "":
		fields = map[string]any{"ok": false, "error": "not_authed"}
	case token != s.AppToken:
		fields = map[string]any{"ok": false, "error": "invalid_auth"}
	}
	rec.OK = fields["ok"] == true
	rec.Error, _ = fields["error"].(string)
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(fields)
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) socketMode(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &socketConn{ws: ws, gone: make(chan struct{})}
	defer close(c.gone)
	defer ws.Close()
	if err := c.write(map[string]any{"type": "hello", "num_connections": 1,
		"debug_info": map[string]any{"host": "slacksink"}, "connection_info": map[string]any{"app_id": "A000"}}); err != nil {
		return
	}
	st := &s.sock
	st.mu.Lock()
	st.conns = append(st.conns, c)
	if st.joined != nil {
		close(st.joined)
		st.joined = nil
	}
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		for i, x := range st.conns {
			if x == c {
				st.conns = append(st.conns[:i], st.conns[i+1:]...)
				break
			}
		}
		st.mu.Unlock()
	}()
	for {
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if err := ws.ReadJSON(&ack); err != nil {
			return
		}
		st.mu.Lock()
		if ch, ok := st.acked[ack.EnvelopeID]; ok {
			close(ch)
			delete(st.acked, ack.EnvelopeID)
		}
		st.mu.Unlock()
	}
}

// WaitSocket waits until an app holds a Socket Mode connection.
func (s *Server) WaitSocket(ctx context.Context) error {
	st := &s.sock
	for {
		st.mu.Lock()
		if len(st.conns) > 0 {
			st.mu.Unlock()
			return nil
		}
		if st.joined == nil {
			st.joined = make(chan struct{})
		}
		ch := st.joined
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("no socket mode connection: %w", ctx.Err())
		}
	}
}

// ErrNotAcknowledged is returned by Press when the app did not acknowledge
// the envelope in time.
var ErrNotAcknowledged = errors.New("envelope not acknowledged")

// Press delivers, over the Socket Mode connection, the block_actions
// envelope of user pressing the button actionID (with value) of the
// message at channel/ts, and waits for the app to acknowledge it by its
// envelope_id: ErrNotAcknowledged otherwise.
func (s *Server) Press(ctx context.Context, user, channel, ts, actionID, value string) error {
	if err := s.WaitSocket(ctx); err != nil {
		return err
	}
	st := &s.sock
	st.mu.Lock()
	st.seq++
	env := fmt.Sprintf("env-%06d", st.seq)
	if st.acked == nil {
		st.acked = map[string]chan struct{}{}
	}
	ack := make(chan struct{})
	st.acked[env] = ack
	c := st.conns[len(st.conns)-1]
	st.mu.Unlock()
	now := fmt.Sprintf("%d.000100", time.Now().Unix())
	payload := map[string]any{
		"type":       "block_actions",
		"team":       map[string]any{"id": "T000", "domain": "quotawatch-test"},
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "team_id": "T000"},
		"api_app_id": "A000",
		"token":      "verification-token",
		"trigger_id": "trigger-" + env,
		"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"channel":    map[string]any{"id": channel, "name": "quota"},
		"message":    map[string]any{"type": "message", "ts": ts},
		"actions": []map[string]any{{
			"action_id": actionID, "block_id": "proposal-" + value, "value": value, "type": "button",
			"action_ts": now, "text": map[string]any{"type": "plain_text", "text": actionID},
		}},
	}
	if err := c.write(map[string]any{"envelope_id": env, "type": "interactive", "payload": payload, "accepts_response_payload": false}); err != nil {
		return fmt.Errorf("socket mode: send envelope: %w", err)
	}
	select {
	case <-ack:
		return nil
	case <-c.gone:
		return fmt.Errorf("%w: the connection closed", ErrNotAcknowledged)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotAcknowledged, ctx.Err())
	}
}
