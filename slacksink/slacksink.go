// Package slacksink is a Slack-compatible fake over HTTP, for tests and for
// `quotawatch demo`. It serves an incoming webhook and the Web API methods
// quotawatch uses (chat.postMessage, chat.update, auth.test), records what
// it received, and can be told to fail.
package slacksink

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultToken is the bot token a new Server accepts.
const DefaultToken = "xoxb-slacksink-token"

// WebhookPath is the path of the fake's incoming webhook.
const WebhookPath = "/services/T000/B000/XXXX"

// Endpoints recorded in Received.Endpoint.
const (
	EndpointWebhook     = "webhook"
	EndpointPostMessage = "chat.postMessage"
	EndpointUpdate      = "chat.update"
	EndpointAuthTest    = "auth.test"
)

// Received is one request the fake got.
type Received struct {
	// Endpoint is "webhook" or the Web API method.
	Endpoint string `json:"endpoint"`
	// Status is the HTTP status answered; OK is whether the request was
	// accepted (HTTP 200 and, for the Web API, ok:true).
	Status int  `json:"status"`
	OK     bool `json:"ok"`
	// Error is the Slack error code answered, if any.
	Error string `json:"error,omitempty"`
	// Channel is the channel ID (as returned by chat.postMessage).
	Channel  string `json:"channel,omitempty"`
	TS       string `json:"ts,omitempty"`
	ThreadTS string `json:"thread_ts,omitempty"`
	Text     string `json:"text,omitempty"`
	// Blocks is the raw Block Kit JSON of the message.
	Blocks json.RawMessage `json:"blocks,omitempty"`
	// Body is the raw request body.
	Body []byte `json:"-"`
	// Time is when the request arrived.
	Time time.Time `json:"time"`
}

type failure struct {
	status     int
	retryAfter time.Duration
}

// Server is the fake. Set Token and Print before the first request.
type Server struct {
	// URL is the base URL, like httptest.Server.URL.
	URL string
	// Token is the bot token the Web API accepts; a request with another
	// one gets ok:false invalid_auth.
	Token string
	// Print, if set, gets each accepted message's text, readably.
	Print io.Writer
	// AppToken is the app-level token apps.connections.open accepts, for
	// Socket Mode (see Press).
	AppToken string

	srv *httptest.Server

	mu        sync.Mutex
	requests  []Received
	failNext  []failure
	every     int // with failEvery: every every-th request fails
	counted   int // requests since FailEvery
	failEvery failure
	failWith  string
	down      bool
	seq       int
	channels  map[string]string   // name → ID
	current   map[string]Received // channel/ts → the message as it stands

	sock socketState
}

// Option configures a Server.
type Option func(*Server)

// WithToken sets the accepted bot token.
func WithToken(token string) Option { return func(s *Server) { s.Token = token } }

// WithPrint makes the fake write each accepted message's text to w.
func WithPrint(w io.Writer) Option { return func(s *Server) { s.Print = w } }

// New starts a fake on a loopback port. Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		Token:    DefaultToken,
		AppToken: DefaultAppToken,
		channels: map[string]string{},
		current:  map[string]Received{},
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/services/", s.webhook)
	mux.HandleFunc("/api/{method}", s.api)
	mux.HandleFunc("/api/"+EndpointConnectionsOpen, s.connectionsOpen)
	mux.HandleFunc(socketPath, s.socketMode)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close shuts the fake down.
func (s *Server) Close() { s.srv.Close() }

// WebhookURL is the URL of the fake's incoming webhook.
func (s *Server) WebhookURL() string { return s.URL + WebhookPath }

// APIURL is the Web API base, with the trailing slash slack-go expects.
func (s *Server) APIURL() string { return s.URL + "/api/" }

// FailNext makes the next n requests (to any endpoint) answer HTTP status,
// with a Retry-After header of retryAfter (rounded up to whole seconds)
// when it is positive.
func (s *Server) FailNext(n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, failure{status: status, retryAfter: retryAfter})
	}
}

// FailEvery makes every n-th following request (to any endpoint) answer
// HTTP status, with a Retry-After as in FailNext: with n = 2, the second,
// fourth, ... request fail. n <= 0 stops failing. FailNext comes first.
func (s *Server) FailEvery(n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.every, s.counted = n, 0
	s.failEvery = failure{status: status, retryAfter: retryAfter}
}

// FailWith makes every following request fail with Slack error code
// errCode: Web API calls answer HTTP 200 ok:false, the webhook answers the
// code as text with the status Slack uses for it. "" stops failing.
func (s *Server) FailWith(errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = errCode
}

// SetDown makes every request answer 503 while down is true.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Messages returns the accepted messages (webhook posts, posts and
// updates), in the order received.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Received
	for _, r := range s.requests {
		if r.OK && r.Endpoint != EndpointAuthTest {
			out = append(out, r)
		}
	}
	return out
}

// Requests returns every request received, failed ones included.
func (s *Server) Requests() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.requests...)
}

// Message returns a posted message as it stands after any updates.
func (s *Server) Message(channel, ts string) (Received, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.current[channel+"/"+ts]
	return r, ok
}

// Replies returns the accepted replies in the thread of ts, in order.
func (s *Server) Replies(channel, ts string) []Received {
	var out []Received
	for _, r := range s.Messages() {
		if r.Endpoint == EndpointPostMessage && r.Channel == channel && r.ThreadTS == ts {
			out = append(out, r)
		}
	}
	return out
}

// injected returns the failure to answer with, if any; s.mu is held.
func (s *Server) injected() (failure, bool) {
	if s.down {
		return failure{status: http.StatusServiceUnavailable}, true
	}
	if len(s.failNext) > 0 {
		f := s.failNext[0]
		s.failNext = s.failNext[1:]
		return f, true
	}
	if s.every > 0 {
		s.counted++
		if s.counted%s.every == 0 {
			return s.failEvery, true
		}
	}
	return failure{}, false
}

func writeFailure(w http.ResponseWriter, f failure, api bool) {
	if f.retryAfter > 0 {
		secs := int64((f.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if api && f.status == http.StatusTooManyRequests {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, http.StatusText(f.status))
}

// webhookStatus is the HTTP status Slack answers a webhook error with.
func webhookStatus(code string) int {
	switch code {
	case "no_service", "channel_not_found", "no_team":
		return http.StatusNotFound
	case "action_prohibited", "posting_to_general_channel_denied", "invalid_token":
		return http.StatusForbidden
	case "channel_is_archived", "team_disabled":
		return http.StatusGone
	case "rollup_error", "internal_error":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Received{Endpoint: EndpointWebhook, Body: body, Time: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.injected(); ok {
		rec.Status = f.status
		s.requests = append(s.requests, rec)
		writeFailure(w, f, false)
		return
	}
	answer := func(status int, code string) {
		rec.Status, rec.Error = status, code
		s.requests = append(s.requests, rec)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, code)
	}
	switch {
	case r.Method != http.MethodPost:
		answer(http.StatusMethodNotAllowed, "invalid_method")
		return
	case r.URL.Path != WebhookPath:
		answer(http.StatusNotFound, "no_service")
		return
	case s.failWith != "":
		answer(webhookStatus(s.failWith), s.failWith)
		return
	}
	var msg struct {
		Text     string          `json:"text"`
		Channel  string          `json:"channel"`
		ThreadTS string          `json:"thread_ts"`
		Blocks   json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		answer(http.StatusBadRequest, "invalid_payload")
		return
	}
	if msg.Text == "" && len(msg.Blocks) == 0 {
		answer(http.StatusBadRequest, "no_text")
		return
	}
	rec.Status, rec.OK = http.StatusOK, true
	rec.Text, rec.Channel, rec.ThreadTS, rec.Blocks = msg.Text, msg.Channel, msg.ThreadTS, msg.Blocks
	s.requests = append(s.requests, rec)
	s.print(rec)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
}

// params reads a Web API call's arguments from a form or a JSON body, and
// the token from the form or the Authorization header.
func params(r *http.Request, body []byte) (url.Values, string) {
	v := url.Values{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			for k, x := range m {
				switch x := x.(type) {
				case string:
					v.Set(k, x)
				default:
					raw, _ := json.Marshal(x)
					v.Set(k, string(raw))
				}
			}
		}
	default:
		if q, err := url.ParseQuery(string(body)); err == nil {
			v = q
		}
	}
	for k, vs := range r.URL.Query() {
		if v.Get(k) == "" && len(vs) > 0 {
			v.Set(k, vs[0])
		}
	}
	token := v.Get("token")
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	return v, token
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	body, _ := io.ReadAll(r.Body)
	v, token := params(r, body)
	rec := Received{
		Endpoint: method, Body: body, Time: time.Now(),
		Channel: v.Get("channel"), TS: v.Get("ts"), ThreadTS: v.Get("thread_ts"), Text: v.Get("text"),
	}
	if b := v.Get("blocks"); b != "" {
		rec.Blocks = json.RawMessage(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.injected(); ok {
		rec.Status = f.status
		s.requests = append(s.requests, rec)
		writeFailure(w, f, true)
		return
	}
	reply := func(fields map[string]any) {
		if fields == nil {
			fields = map[string]any{}
		}
		code, _ := fields["error"].(string)
		fields["ok"] = code == ""
		rec.Status, rec.OK, rec.Error = http.StatusOK, code == "", code
		s.requests = append(s.requests, rec)
		if rec.OK && method != EndpointAuthTest {
			s.print(rec)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(fields)
	}
	fail := func(code string) { reply(map[string]any{"error": code}) }
	switch {
	case r.Method != http.MethodPost && r.Method != http.MethodGet:
		fail("invalid_request")
		return
	case token == "":
		fail("not_authed")
		return
	case token != s.Token:
		fail("invalid_auth")
		return
	case s.failWith != "":
		fail(s.failWith)
		return
	}
	switch method {
	case EndpointAuthTest:
		reply(map[string]any{"url": s.URL + "/", "team": "quotawatch-test", "user": "quotawatch",
			"team_id": "T000", "user_id": "U000", "bot_id": "B000"})
	case EndpointPostMessage:
		if rec.Channel == "" {
			fail("channel_not_found")
			return
		}
		if rec.Text == "" && len(rec.Blocks) == 0 {
			fail("no_text")
			return
		}
		if rec.ThreadTS != "" {
			if _, ok := s.current[s.channelID(rec.Channel)+"/"+rec.ThreadTS]; !ok {
				fail("thread_not_found")
				return
			}
		}
		rec.Channel = s.channelID(rec.Channel)
		s.seq++
		rec.TS = fmt.Sprintf("1700000000.%06d", s.seq)
		s.current[rec.Channel+"/"+rec.TS] = rec
		reply(map[string]any{"channel": rec.Channel, "ts": rec.TS,
			"message": map[string]any{"text": rec.Text, "ts": rec.TS, "thread_ts": rec.ThreadTS}})
	case EndpointUpdate:
		key := rec.Channel + "/" + rec.TS
		old, ok := s.current[key]
		if !ok {
			if _, named := s.channels[strings.TrimPrefix(rec.Channel, "#")]; named || rec.Channel == "" {
				// chat.update wants the channel ID that chat.postMessage returned.
				fail("channel_not_found")
			} else {
				fail("message_not_found")
			}
			return
		}
		old.Text, old.Blocks = rec.Text, rec.Blocks
		s.current[key] = old
		reply(map[string]any{"channel": rec.Channel, "ts": rec.TS, "text": rec.Text})
	default:
		fail("unknown_method")
	}
}

// channelID maps a channel name to a stable ID, as Slack answers
// chat.postMessage with the ID; IDs pass through. s.mu is held.
func (s *Server) channelID(ch string) string {
	if isChannelID(ch) {
		return ch
	}
	name := strings.TrimPrefix(ch, "#")
	if id, ok := s.channels[name]; ok {
		return id
	}
	id := fmt.Sprintf("C%08d", len(s.channels)+1)
	s.channels[name] = id
	return id
}

func isChannelID(ch string) bool {
	if len(ch) < 2 || !strings.ContainsRune("CGD", rune(ch[0])) {
		return false
	}
	for _, c := range ch[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// print writes an accepted message readably; s.mu is held.
func (s *Server) print(r Received) {
	if s.Print == nil {
		return
	}
	var where string
	switch {
	case r.Endpoint == EndpointWebhook:
		where = "slack webhook"
	case r.Endpoint == EndpointUpdate:
		where = fmt.Sprintf("slack %s update %s", r.Channel, r.TS)
	case r.ThreadTS != "":
		where = fmt.Sprintf("slack %s thread %s", r.Channel, r.ThreadTS)
	default:
		where = "slack " + r.Channel
	}
	text := strings.ReplaceAll(strings.TrimRight(r.Text, "\n"), "\n", "\n    ")
	fmt.Fprintf(s.Print, "[%s] %s\n", where, text)
}
