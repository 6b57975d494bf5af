package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
)

const statusURL = "https://quota.example.org"

// notifyAll is collect for deliveries with digests, whose events are
// reported each once as their message goes, not always in order.
func notifyAll(t *testing.T, n notifier, ctx context.Context, pending []Pending) []Outcome {
	t.Helper()
	out := make([]Outcome, len(pending))
	seen := make([]bool, len(pending))
	for i := range out {
		out[i] = Outcome{Err: errNotDelivered}
	}
	n.Notify(ctx, pending, func(from, to int, o Outcome) {
		require.Greater(t, to, from)
		for i := from; i < to; i++ {
			require.False(t, seen[i], "event %d reported twice", i)
			seen[i] = true
			out[i] = o
		}
	})
	return out
}

// crossing returns n firing events of one rule in one cycle, on distinct
// projects, each a little fuller than the one before.
func crossing(n int) []quota.Event {
	evs := manyEvents(n)
	for i := range evs {
		evs[i].Quota = diskQuota(int64(19*quota.GiB)+int64(i)*5*quota.MiB, 20*quota.GiB)
	}
	return evs
}

func resolving(evs []quota.Event, at time.Time) []quota.Event {
	out := make([]quota.Event, len(evs))
	for i, ev := range evs {
		ev.Kind, ev.Time, ev.Since = quota.EventResolved, at, ev.Time
		ev.Quota = diskQuota(quota.GiB, 20*quota.GiB)
		out[i] = ev
	}
	return out
}

func TestDigests(t *testing.T) {
	ev := sampleEvents()
	later := func(evs []quota.Event) []quota.Event {
		for i := range evs {
			evs[i].Time = evs[i].Time.Add(5 * time.Minute)
		}
		return evs
	}
	other := func(evs []quota.Event) []quota.Event {
		for i := range evs {
			evs[i].Key.Rule = "other"
		}
		return evs
	}
	repeats := func(evs []quota.Event) []quota.Event {
		for i := range evs {
			evs[i].Repeat = true
		}
		return evs
	}
	cat := func(parts ...[]quota.Event) []quota.Event {
		var out []quota.Event
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name   string
		events []quota.Event
		after  int
		want   []int // sizes of the groups
	}{
		{"five are told one by one", crossing(5), 5, nil},
		{"six make a digest", crossing(6), 5, []int{6}},
		{"a lower threshold", crossing(3), 2, []int{3}},
		{"never", crossing(50), -1, nil},
		{"other cycles are other digests", cat(crossing(6), later(crossing(6))), 5, []int{6, 6}},
		{"by rule", cat(crossing(4), other(crossing(4))), 5, nil},
		{"repeats apart from firings", cat(crossing(6), repeats(crossing(3))), 5, []int{6}},
		{"resolutions too", resolving(crossing(7), t0), 5, []int{7}},
		{"actions and polls never", []quota.Event{ev["action_applied"], ev["action_applied"], ev["poll_failed"], ev["poll_failed"]}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sizes []int
			for _, g := range digests(tt.events, tt.after) {
				sizes = append(sizes, len(g))
			}
			require.Equal(t, tt.want, sizes)
		})
	}
}

// TestWebhookDigest: 150 incidents opening at once are one digest that
// names them all, with the fullest first and a link to the status page;
// the other events of the cycle are one message of lines.
func TestWebhookDigest(t *testing.T) {
	srv := slacksink.New()
	defer srv.Close()
	opt, _ := testOptions(t)
	opt.StatusURL = statusURL + "/"
	ev := sampleEvents()
	events := append([]quota.Event{ev["poll_failed"]}, crossing(150)...)
	events = append(events, ev["action_applied"])
	outs := notifyAll(t, NewWebhook("ops", srv.WebhookURL(), opt), context.Background(), pendingOf(0, events...))
	require.Equal(t, make([]Outcome, len(events)), outs, "every event delivered")
	msgs := srv.Messages()
	require.Len(t, msgs, 2)
	require.Contains(t, msgs[0].Text, "quotawatch: 1 moved, 1 poll failing")
	digest := string(msgs[1].Blocks)
	require.Contains(t, msgs[1].Text, "150 firing: container-rebalance")
	require.Len(t, projectsNamed(digest), 150, "every incident is named")
	// The fullest come first, in full.
	require.Less(t, strings.Index(digest, "*Project 149*"), strings.Index(digest, "*Project 140*"))
	require.NotContains(t, digest, "*Project 139*", "ten in full")
	require.Contains(t, digest, "`project-t-149`")
	require.Contains(t, digest, statusURL+"/|status page")
	blockLimits(t, Message{Text: msgs[1].Text, Blocks: decodeBlocks(t, msgs[1].Blocks)})
}

var projectRE = regexp.MustCompile(`Project (\d+)\b`)

// projectsNamed returns the manyEvents projects a text names.
func projectsNamed(s string) map[string]bool {
	out := map[string]bool{}
	for _, m := range projectRE.FindAllStringSubmatch(s, -1) {
		out[m[1]] = true
	}
	return out
}

func decodeBlocks(t *testing.T, raw json.RawMessage) []slack.Block {
	t.Helper()
	var bs slack.Blocks
	require.NoError(t, json.Unmarshal(raw, &bs))
	return bs.BlockSet
}

// TestBotDigest follows 150 incidents that open at once, one of which
// moves later, and all of which resolve at once: at most a handful of
// messages, each incident in the digest's thread, the digest's parent
// never rewritten for one incident.
func TestBotDigest(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	opt.StatusURL = statusURL
	threads := newFakeThreads()
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
	ctx := context.Background()
	evs := crossing(150)

	outs := notifyAll(t, b, ctx, pendingOf(0, append(evs, sampleEvents()["poll_failed"])...))
	require.Equal(t, make([]Outcome, 151), outs)
	msgs := srv.Messages()
	require.LessOrEqual(t, len(msgs), 5, "a handful of messages")
	parent := msgs[0]
	require.Equal(t, slacksink.EndpointPostMessage, parent.Endpoint)
	require.Empty(t, parent.ThreadTS)
	require.Contains(t, parent.Text, "150 firing")
	require.Contains(t, string(parent.Blocks), "Each incident is in the thread")
	th := Thread{Channel: parent.Channel, TS: parent.TS}
	var thread strings.Builder
	for _, r := range srv.Replies(th.Channel, th.TS) {
		thread.Write(r.Blocks)
	}
	for i, ev := range evs {
		require.Equal(t, th, threads.m[ev.Key], "incident %d's thread is the digest's", i)
		require.Contains(t, thread.String(), "*Project "+strconv.Itoa(i)+"*", "incident %d is in the thread", i)
	}
	require.Len(t, projectsNamed(thread.String()), 150)

	// A later event of one incident replies in the digest's thread and
	// leaves the digest as it is.
	moved := sampleEvents()["action_applied"]
	moved.Key = evs[7].Key
	before := len(srv.Messages())
	require.Equal(t, []Outcome{{}}, notifyAll(t, b, ctx, pendingOf(0, moved)))
	require.Equal(t, []string{"chat.postMessage reply"}, endpoints(srv.Messages()[before:]))
	got, ok := srv.Message(th.Channel, th.TS)
	require.True(t, ok)
	require.Equal(t, parent.Text, got.Text, "the digest is never rewritten for one incident")

	// They all resolve: one more digest, threaded the same way.
	before = len(srv.Messages())
	res := resolving(evs, t0.Add(time.Hour))
	require.Equal(t, make([]Outcome, 150), notifyAll(t, b, ctx, pendingOf(0, res...)))
	after := srv.Messages()[before:]
	require.LessOrEqual(t, len(after), 4)
	require.Contains(t, after[0].Text, "150 resolved")
	require.NotContains(t, endpoints(after), "chat.update")
}

// TestBotDigestRetry: a digest whose replies failed is retried under the
// parent already posted, even when fewer incidents than the threshold are
// left.
func TestBotDigestRetry(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	threads := newFakeThreads()
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
	ctx := context.Background()
	evs := crossing(8)
	b.opt.HTTPClient.Transport = &scripted{answers: map[int]scriptedAnswer{
		2: {status: http.StatusBadGateway, body: "<html>bad gateway</html>"},
	}}
	outs := notifyAll(t, b, ctx, pendingOf(0, evs...))
	require.Equal(t, make([]bool, 8), delivered(outs), "the reply failed: nothing is told yet")
	require.Len(t, srv.Messages(), 1, "the parent went")
	parent := srv.Messages()[0]

	// Only three are due again (say the others were set aside): still
	// under the same parent.
	outs = notifyAll(t, b, ctx, pendingOf(1, evs[:3]...))
	require.Equal(t, []bool{true, true, true}, delivered(outs))
	msgs := srv.Messages()
	require.Len(t, msgs, 2)
	require.Equal(t, parent.TS, msgs[1].ThreadTS)
	require.Contains(t, msgs[1].Text, "container-rebalance: 3 firing (1–3)")
}

// TestOwnThreadInDigest: an incident with a thread of its own that
// resolves within a digest keeps its thread, and its parent says resolved.
func TestOwnThreadInDigest(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	threads := newFakeThreads()
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
	ctx := context.Background()
	evs := crossing(7)
	require.Equal(t, make([]Outcome, 1), notifyAll(t, b, ctx, pendingOf(0, evs[0])))
	own := threads.m[evs[0].Key]
	require.Equal(t, make([]Outcome, 7), notifyAll(t, b, ctx, pendingOf(0, resolving(evs, t0.Add(time.Hour))...)))
	require.Equal(t, own, threads.m[evs[0].Key])
	got, ok := srv.Message(own.Channel, own.TS)
	require.True(t, ok)
	require.Contains(t, string(got.Blocks), "Incident status: *resolved*")
	require.NotEqual(t, own, threads.m[evs[1].Key])
}

func TestDigestGolden(t *testing.T) {
	t.Run("webhook", func(t *testing.T) {
		srv := slacksink.New()
		defer srv.Close()
		opt, _ := testOptions(t)
		opt.StatusURL = statusURL
		events := append(crossing(14), sampleEvents()["action_skipped"])
		outs := notifyAll(t, NewWebhook("ops", srv.WebhookURL(), opt), context.Background(), pendingOf(0, events...))
		require.Equal(t, make([]Outcome, len(events)), outs)
		bodies := make([]json.RawMessage, 0, 2)
		for _, m := range srv.Messages() {
			bodies = append(bodies, m.Body)
		}
		all, err := json.Marshal(bodies)
		require.NoError(t, err)
		checkGolden(t, "digest", all)
	})
	t.Run("bot", func(t *testing.T) {
		srv := newBotServer(t)
		opt, _ := testOptions(t)
		opt.StatusURL = statusURL
		b := NewBot("ops", botToken, "quota-alerts", srv.APIURL(), nil, opt)
		evs := crossing(7)
		require.Equal(t, make([]Outcome, 7), notifyAll(t, b, context.Background(), pendingOf(0, evs...)))
		skipped := sampleEvents()["action_skipped"]
		skipped.Key, skipped.ProjectName = evs[2].Key, evs[2].ProjectName
		require.Equal(t, make([]Outcome, 1), notifyAll(t, b, context.Background(), pendingOf(0, skipped)))
		checkGolden(t, "bot_digest", botSent(t, srv))
	})
}

// TestBotRepliesTogether: the events of one cycle bound for a digest's
// thread (the refusals that follow 150 incidents opening) are a few
// replies, not one each; an incident opened anew keeps its own thread.
func TestBotRepliesTogether(t *testing.T) {
	srv := newBotServer(t)
	opt, _ := testOptions(t)
	threads := newFakeThreads()
	b := NewBot("ops", botToken, "C0QUOTA", srv.APIURL(), threads, opt)
	evs := crossing(150)
	all := append([]quota.Event(nil), evs...)
	for _, ev := range evs {
		sk := sampleEvents()["action_skipped"]
		sk.Key, sk.ProjectName, sk.Quota = ev.Key, ev.ProjectName, ev.Quota
		all = append(all, sk)
	}
	outs := notifyAll(t, b, context.Background(), pendingOf(0, all...))
	require.Equal(t, make([]Outcome, len(all)), outs)
	msgs := srv.Messages()
	require.LessOrEqual(t, len(msgs), 6, "%d messages", len(msgs))
	parent := msgs[0]
	var thread strings.Builder
	for _, r := range srv.Replies(parent.Channel, parent.TS) {
		thread.Write(r.Blocks)
	}
	require.Equal(t, 150, strings.Count(thread.String(), "Move skipped"))
	require.NotContains(t, endpoints(msgs), "chat.update")

	// Later: one incident resolves and opens again, then a refusal of the
	// new incident: that one goes to the new thread.
	before := len(srv.Messages())
	k := evs[3]
	res := resolving([]quota.Event{k}, t0.Add(time.Hour))[0]
	again := k
	again.Time = t0.Add(2 * time.Hour)
	sk := sampleEvents()["action_skipped"]
	sk.Key, sk.Time = k.Key, again.Time
	other := sampleEvents()["action_skipped"]
	other.Key, other.Time = evs[4].Key, again.Time
	require.Equal(t, make([]Outcome, 4), notifyAll(t, b, context.Background(), pendingOf(0, res, again, sk, other)))
	got := srv.Messages()[before:]
	require.Equal(t, []string{"chat.postMessage reply", "chat.postMessage", "chat.update", "chat.postMessage reply"},
		endpoints(got)[:4], "the resolution and the other refusal reply in the digest's thread, together")
	require.NotEqual(t, parent.TS, threads.m[k.Key].TS, "the incident opened anew has its own thread")
}
