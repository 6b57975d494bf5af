package notify

import (
	"context"
	"testing"

	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/slacksink"
)

func BenchmarkRender(b *testing.B) {
	evs := sampleEvents()
	events := make([]quota.Event, 0, len(evs))
	for _, ev := range evs {
		events = append(events, ev)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = Render(events[i%len(events)])
		i++
	}
}

// BenchmarkRenderBatch lays out a busy cycle: 1,000 events for one webhook.
func BenchmarkRenderBatch(b *testing.B) {
	events := manyEvents(1000)
	b.ReportAllocs()
	var msgs int
	for b.Loop() {
		msgs = len(RenderBatch(events))
	}
	b.ReportMetric(float64(msgs), "messages/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// BenchmarkWebhookSend delivers a 20-event cycle over loopback HTTP to the
// fake, unpaced: the cost of quotawatch's side of a delivery.
func BenchmarkWebhookSend(b *testing.B) {
	srv := slacksink.New()
	defer srv.Close()
	w := NewWebhook("ops", srv.WebhookURL(), Options{Rate: rate.Inf})
	events := manyEvents(20)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := w.send(ctx, events, 0, nil); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	b.ReportMetric(float64(len(srv.Requests()))/float64(b.N), "requests/op")
}

// BenchmarkBotSend delivers one incident event (parent update and reply).
func BenchmarkBotSend(b *testing.B) {
	srv := slacksink.New()
	defer srv.Close()
	bot := NewBot("ops", slacksink.DefaultToken, "C0QUOTA", srv.APIURL(), nil, Options{Rate: rate.Inf})
	ctx := context.Background()
	first := bot.send(ctx, sampleEvents()["firing"], Thread{}, 0)
	if first.Err != nil {
		b.Fatal(first.Err)
	}
	ev := sampleEvents()["repeat"]
	b.ReportAllocs()
	for b.Loop() {
		if res := bot.send(ctx, ev, first.Thread, 0); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	b.ReportMetric(float64(len(srv.Requests())-1)/float64(b.N), "requests/event")
}
