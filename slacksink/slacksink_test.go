package slacksink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type answer struct {
	status     int
	retryAfter string
	body       string
	json       map[string]any
}

func do(t *testing.T, method, u, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &a.json))
	}
	return a
}

func postWebhook(t *testing.T, s *Server, text string) answer {
	t.Helper()
	body, err := json.Marshal(map[string]any{"text": text, "blocks": []any{map[string]any{"type": "divider"}}})
	require.NoError(t, err)
	return do(t, http.MethodPost, s.WebhookURL(), "application/json", string(body))
}

func callAPI(t *testing.T, s *Server, method string, v url.Values) answer {
	t.Helper()
	return do(t, http.MethodPost, s.APIURL()+method, "application/x-www-form-urlencoded", v.Encode())
}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		answer string
	}{
		{"accepted", WebhookPath, `{"text":"hello"}`, 200, "ok"},
		{"blocks only", WebhookPath, `{"blocks":[{"type":"divider"}]}`, 200, "ok"},
		{"unknown hook", "/services/T000/B000/YYYY", `{"text":"hello"}`, 404, "no_service"},
		{"not json", WebhookPath, `text=hello`, 400, "invalid_payload"},
		{"empty", WebhookPath, `{}`, 400, "no_text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			defer s.Close()
			a := do(t, http.MethodPost, s.URL+tt.path, "application/json", tt.body)
			require.Equal(t, tt.status, a.status)
			require.Equal(t, tt.answer, a.body)
			require.Len(t, s.Requests(), 1)
			if tt.status == 200 {
				require.Len(t, s.Messages(), 1)
				require.Equal(t, EndpointWebhook, s.Messages()[0].Endpoint)
			} else {
				require.Empty(t, s.Messages())
			}
		})
	}
}

func TestFailures(t *testing.T) {
	s := New()
	defer s.Close()

	s.FailNext(2, http.StatusTooManyRequests, 1500*time.Millisecond)
	a := postWebhook(t, s, "one")
	require.Equal(t, 429, a.status)
	require.Equal(t, "2", a.retryAfter, "rounded up to whole seconds")
	a = callAPI(t, s, EndpointPostMessage, url.Values{"token": {DefaultToken}, "channel": {"C1"}, "text": {"x"}})
	require.Equal(t, 429, a.status)
	require.Equal(t, "ratelimited", a.json["error"])
	require.Equal(t, 200, postWebhook(t, s, "two").status, "only two failures were asked for")

	s.SetDown(true)
	require.Equal(t, 503, postWebhook(t, s, "three").status)
	require.Equal(t, 503, callAPI(t, s, EndpointAuthTest, url.Values{"token": {DefaultToken}}).status)
	s.SetDown(false)

	s.FailWith("channel_not_found")
	a = callAPI(t, s, EndpointPostMessage, url.Values{"token": {DefaultToken}, "channel": {"C1"}, "text": {"x"}})
	require.Equal(t, 200, a.status)
	require.Equal(t, false, a.json["ok"])
	require.Equal(t, "channel_not_found", a.json["error"])
	a = postWebhook(t, s, "four")
	require.Equal(t, 404, a.status)
	require.Equal(t, "channel_not_found", a.body)
	s.FailWith("")
	require.Equal(t, 200, postWebhook(t, s, "five").status)

	var texts []string
	for _, m := range s.Messages() {
		texts = append(texts, m.Text)
	}
	require.Equal(t, []string{"two", "five"}, texts)
	require.Len(t, s.Requests(), 8)
}

func TestWebAPI(t *testing.T) {
	s := New(WithToken("xoxb-right"))
	defer s.Close()

	a := callAPI(t, s, EndpointAuthTest, url.Values{"token": {"xoxb-wrong"}})
	require.Equal(t, "invalid_auth", a.json["error"])
	a = callAPI(t, s, EndpointAuthTest, url.Values{})
	require.Equal(t, "not_authed", a.json["error"])
	a = callAPI(t, s, EndpointAuthTest, url.Values{"token": {"xoxb-right"}})
	require.Equal(t, true, a.json["ok"])

	a = callAPI(t, s, EndpointPostMessage, url.Values{"token": {"xoxb-right"}, "channel": {"#ops"}, "text": {"parent"},
		"blocks": {`[{"type":"divider"}]`}})
	require.Equal(t, true, a.json["ok"])
	ch, ts := a.json["channel"].(string), a.json["ts"].(string)
	require.Equal(t, "C00000001", ch)
	require.NotEmpty(t, ts)

	// A JSON body with a bearer token works too.
	req, err := http.NewRequest(http.MethodPost, s.APIURL()+EndpointPostMessage,
		bytes.NewReader([]byte(`{"channel":"`+ch+`","thread_ts":"`+ts+`","text":"reply"}`)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer xoxb-right")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())

	a = callAPI(t, s, EndpointUpdate, url.Values{"token": {"xoxb-right"}, "channel": {"#ops"}, "ts": {ts}, "text": {"x"}})
	require.Equal(t, "channel_not_found", a.json["error"], "chat.update wants the channel ID")
	a = callAPI(t, s, EndpointUpdate, url.Values{"token": {"xoxb-right"}, "channel": {ch}, "ts": {"1.2"}, "text": {"x"}})
	require.Equal(t, "message_not_found", a.json["error"])
	a = callAPI(t, s, EndpointUpdate, url.Values{"token": {"xoxb-right"}, "channel": {ch}, "ts": {ts}, "text": {"parent, updated"}})
	require.Equal(t, true, a.json["ok"])

	a = callAPI(t, s, EndpointPostMessage, url.Values{"token": {"xoxb-right"}, "channel": {ch}, "thread_ts": {"9.9"}, "text": {"x"}})
	require.Equal(t, "thread_not_found", a.json["error"])
	a = callAPI(t, s, "chat.delete", url.Values{"token": {"xoxb-right"}})
	require.Equal(t, "unknown_method", a.json["error"])

	m, ok := s.Message(ch, ts)
	require.True(t, ok)
	require.Equal(t, "parent, updated", m.Text)
	require.Empty(t, m.Blocks, "an update replaces text and blocks")
	replies := s.Replies(ch, ts)
	require.Len(t, replies, 1)
	require.Equal(t, "reply", replies[0].Text)

	var eps []string
	for _, r := range s.Messages() {
		eps = append(eps, r.Endpoint)
	}
	require.Equal(t, []string{EndpointPostMessage, EndpointPostMessage, EndpointUpdate}, eps)
}

func TestPrint(t *testing.T) {
	var out bytes.Buffer
	s := New(WithPrint(&out))
	defer s.Close()
	postWebhook(t, s, "quotawatch: 2 events\n• one\n• two")
	a := callAPI(t, s, EndpointPostMessage, url.Values{"token": {DefaultToken}, "channel": {"ops"}, "text": {"parent"}})
	ts := a.json["ts"].(string)
	callAPI(t, s, EndpointPostMessage, url.Values{"token": {DefaultToken}, "channel": {"ops"}, "thread_ts": {ts}, "text": {"reply"}})
	callAPI(t, s, EndpointUpdate, url.Values{"token": {DefaultToken}, "channel": {"C00000001"}, "ts": {ts}, "text": {"resolved"}})
	callAPI(t, s, EndpointAuthTest, url.Values{"token": {DefaultToken}})
	require.Equal(t, "[slack webhook] quotawatch: 2 events\n    • one\n    • two\n"+
		"[slack C00000001] parent\n"+
		"[slack C00000001 thread "+ts+"] reply\n"+
		"[slack C00000001 update "+ts+"] resolved\n", out.String())
}

func TestFailEvery(t *testing.T) {
	s := New()
	defer s.Close()
	before := time.Now()
	s.FailNext(1, http.StatusInternalServerError, 0)
	s.FailEvery(2, http.StatusTooManyRequests, time.Second)
	var statuses []int
	for i := range 5 {
		a := postWebhook(t, s, fmt.Sprint(i))
		statuses = append(statuses, a.status)
		if a.status == 429 {
			require.Equal(t, "1", a.retryAfter)
		}
	}
	require.Equal(t, []int{500, 200, 429, 200, 429}, statuses, "FailNext first, then every second request")
	s.FailEvery(0, 0, 0)
	require.Equal(t, 200, postWebhook(t, s, "5").status)
	for _, r := range s.Requests() {
		require.False(t, r.Time.Before(before), "arrival time recorded")
	}
}
