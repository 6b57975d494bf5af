package notify

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/internal/smtptest"
	"github.com/quotawatch/quotawatch/internal/testutil"
	"github.com/quotawatch/quotawatch/quota"
)

const (
	smtpUser     = "quotawatch"
	smtpPassword = "hunter2-s3cret-Pa55"
	aliceUUID    = sysID // the system project's id is its owner's UUID
	bobUUID      = "b0b00000-0000-4000-8000-000000000002"
	aliceAddr    = "alice@example.org"
	bobAddr      = "bob@example.org"
	opsAddr      = "ops@example.org"
)

// fakeDirectory knows alice (who owns the container and her system
// project) and bob (who owns the lab), and counts its lookups.
type fakeDirectory struct {
	mu      sync.Mutex
	names   map[string]string
	owners  map[string]string // project → owner
	item    string            // owner of any item not in items
	items   map[string]string // item id → owner
	err     error
	lookups [][]string
	owned   int
}

func newDirectory() *fakeDirectory {
	return &fakeDirectory{
		names:  map[string]string{aliceUUID: aliceAddr, bobUUID: bobAddr},
		owners: map[string]string{sysID: aliceUUID, labID: bobUUID},
		item:   aliceUUID,
	}
}

func (d *fakeDirectory) Emails(_ context.Context, account string, uuids []string) (map[string]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	d.lookups = append(d.lookups, append([]string{account}, uuids...))
	out := map[string]string{}
	for _, u := range uuids {
		if n, ok := d.names[u]; ok {
			out[u] = n
		}
	}
	return out, nil
}

func (d *fakeDirectory) Owners(_ context.Context, m quota.Move) (string, string, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.owned++
	if d.err != nil {
		return "", "", "", d.err
	}
	item := d.item
	if o, ok := d.items[m.ItemID]; ok {
		item = o
	}
	return item, d.owners[m.From], d.owners[m.To], nil
}

type fakeJournal struct{ id uint64 }

func (j fakeJournal) ActionID(context.Context, quota.Move, time.Time) (uint64, bool, error) {
	return j.id, j.id != 0, nil
}

// testClock is the notifier's clock, settable by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type emailHarness struct {
	t     *testing.T
	srv   *smtptest.Server
	dir   *fakeDirectory
	clock *testClock
	logs  *testutil.SyncBuffer
	n     *Email
}

// newEmailHarness starts a STARTTLS server with AUTH PLAIN and a notifier
// writing to the owners and to ops; mutate adjusts the settings.
func newEmailHarness(t *testing.T, mode smtptest.Mode, mutate func(*EmailSettings)) *emailHarness {
	t.Helper()
	h := &emailHarness{t: t, dir: newDirectory(), clock: &testClock{t: t0}}
	h.srv = smtptest.Start(t, smtptest.Options{Mode: mode, Username: smtpUser, Password: smtpPassword})
	opt, logs := testOptions(t)
	opt.Now = h.clock.Now
	opt.Timeout = 5 * time.Second
	h.logs = logs
	set := EmailSettings{
		Host: h.srv.Host, Port: h.srv.Port, RootCAs: h.srv.RootCAs,
		From: "quotawatch@example.org", Username: smtpUser, Password: smtpPassword,
		To: []string{ToItemOwner, ToProjectOwner, opsAddr},
	}
	if mode == smtptest.Implicit {
		set.TLS = TLSImplicit
	}
	if mode == smtptest.Plain {
		set.TLS = TLSNone
	}
	if mutate != nil {
		mutate(&set)
	}
	h.n = NewEmail("owners", set, h.dir, fakeJournal{id: 7}, opt)
	return h
}

func (h *emailHarness) notify(evs ...quota.Event) []Outcome {
	return h.notifyAttempts(0, evs...)
}

func (h *emailHarness) notifyAttempts(attempts int, evs ...quota.Event) []Outcome {
	ps := make([]Pending, len(evs))
	for i, ev := range evs {
		ps[i] = Pending{Event: ev, Attempts: attempts}
	}
	return collect(h.t, h.n, context.Background(), ps)
}

// received is one accepted message, parsed.
type received struct {
	smtptest.Message
	header mail.Header
	body   string
}

func (h *emailHarness) received(t *testing.T) []received {
	t.Helper()
	var out []received
	for _, m := range h.srv.Messages() {
		pm, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		require.NoError(t, err)
		var r io.Reader = pm.Body
		if strings.EqualFold(pm.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(r)
		}
		body, err := io.ReadAll(r)
		require.NoError(t, err)
		out = append(out, received{Message: m, header: pm.Header, body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	}
	return out
}

func rcpts(rs []received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, strings.Join(r.To, ","))
	}
	return out
}

func applied() quota.Event { return sampleEvents()["action_applied"] }

func checkGoldenText(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.txt")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./notify -update to create it")
	require.Equal(t, string(want), got)
}

func TestEmailMoveTellsTheOwners(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, nil)
	outs := h.notify(applied())
	require.Len(t, outs, 1)
	require.NoError(t, outs[0].Err)

	got := h.received(t)
	// Alice owns the container and the source project: one message.
	require.Equal(t, []string{aliceAddr, bobAddr, opsAddr}, rcpts(got))
	for _, r := range got {
		require.True(t, r.TLS, "sent after STARTTLS")
		require.Equal(t, smtpUser, r.User, "logged in with AUTH PLAIN")
		require.Equal(t, "quotawatch@example.org", r.From)
		require.Equal(t, `"quotawatch" <quotawatch@example.org>`, r.header.Get("From"))
		require.Equal(t, "<"+opsAddr+">", r.header.Get("Reply-To"))
		require.Equal(t, "auto-generated", r.header.Get("Auto-Submitted"))
		subj, err := new(mime.WordDecoder).DecodeHeader(r.header.Get("Subject"))
		require.NoError(t, err)
		require.Equal(t, "quotawatch moved container course_container to CS333 lab assignments", subj)
		require.NotEmpty(t, r.header.Get("Message-Id"))
	}
	checkGoldenText(t, "email_move_owner", got[0].body)
	checkGoldenText(t, "email_move_listed", got[2].body)
	require.Contains(t, got[1].body, "You get this message because you own the project it was moved into.")
	require.NotContains(t, got[0].body, smtpPassword)
}

func TestEmailSameOwnerGetsOneMessage(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, func(s *EmailSettings) { s.To = []string{ToItemOwner, ToProjectOwner} })
	h.dir.owners[labID] = aliceUUID
	require.NoError(t, h.notify(applied())[0].Err)
	got := h.received(t)
	require.Equal(t, []string{aliceAddr}, rcpts(got))
	require.Contains(t, got[0].body, "because you own the container, the project it was moved out of and the project it was moved into.")
}

func TestEmailKeywordsChooseTheOwners(t *testing.T) {
	tests := []struct {
		to   []string
		want []string
	}{
		{[]string{ToItemOwner}, []string{aliceAddr}},
		{[]string{ToProjectOwner}, []string{aliceAddr, bobAddr}},
		{[]string{opsAddr}, []string{opsAddr}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.to, ","), func(t *testing.T) {
			h := newEmailHarness(t, smtptest.StartTLS, func(s *EmailSettings) { s.To = tt.to })
			require.NoError(t, h.notify(applied())[0].Err)
			require.Equal(t, tt.want, rcpts(h.received(t)))
		})
	}
}

func TestEmailOtherEventsOnlyToListedAddresses(t *testing.T) {
	for _, name := range []string{"firing", "repeat", "resolved", "action_failed", "action_skipped", "action_skipped_item", "dry_run", "poll_failed", "poll_recovered"} {
		t.Run(name, func(t *testing.T) {
			h := newEmailHarness(t, smtptest.StartTLS, nil)
			ev := sampleEvents()[name]
			require.NoError(t, h.notify(ev)[0].Err)
			got := h.received(t)
			require.Equal(t, []string{opsAddr}, rcpts(got))
			require.Zero(t, h.dir.owned, "owners are not looked up")
			require.Contains(t, got[0].body, `You get this message because this address is listed in the notifier "owners".`)
			subj, err := new(mime.WordDecoder).DecodeHeader(got[0].header.Get("Subject"))
			require.NoError(t, err)
			require.Equal(t, truncate(layout(ev).summary, maxSubject), subj)
		})
	}
	// With no listed address, such an event is done without a message.
	h := newEmailHarness(t, smtptest.StartTLS, func(s *EmailSettings) { s.To = []string{ToItemOwner, ToProjectOwner} })
	require.NoError(t, h.notify(sampleEvents()["firing"])[0].Err)
	require.Empty(t, h.srv.Messages())
}

func TestEmailEventBodies(t *testing.T) {
	for _, name := range []string{"firing", "action_failed", "poll_failed"} {
		t.Run(name, func(t *testing.T) {
			body := emailBody(sampleEvents()[name], recipient{addr: opsAddr}, "owners", opsAddr, 0, false)
			checkGoldenText(t, "email_"+name, body)
		})
	}
}

func TestEmailTemporaryFailureIsRetried(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, nil)
	h.srv.Script(smtptest.Reply{Stage: smtptest.StageRcpt, Rcpt: bobAddr, Code: 451, Message: "try again later"})
	behind := sampleEvents()["firing"]
	outs := h.notify(applied(), behind)
	require.Len(t, outs, 2)
	for _, o := range outs {
		require.Error(t, o.Err)
		require.False(t, o.Permanent)
		require.Equal(t, t0.Add(Backoff(0)), o.RetryAt)
	}
	require.Contains(t, outs[0].Err.Error(), "451")
	require.Contains(t, outs[0].Err.Error(), bobAddr)
	require.Equal(t, []string{aliceAddr}, rcpts(h.received(t)), "the event behind was not tried")

	// At the retry, bob and ops get it; alice does not get it twice.
	h.clock.Advance(Backoff(0))
	outs = h.notifyAttempts(1, applied(), behind)
	require.NoError(t, outs[0].Err)
	require.NoError(t, outs[1].Err)
	require.Equal(t, []string{aliceAddr, bobAddr, opsAddr, opsAddr}, rcpts(h.received(t)))
}

func TestEmailPermanentFailureIsSetAside(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, nil)
	h.srv.Script(smtptest.Reply{Stage: smtptest.StageData, Rcpt: bobAddr, Code: 554, Message: "message refused"})
	outs := h.notify(applied(), sampleEvents()["firing"])
	require.Error(t, outs[0].Err)
	require.True(t, outs[0].Permanent)
	require.Contains(t, outs[0].Err.Error(), "554")
	// Its other recipients got it, and the event behind it is not held up.
	require.NoError(t, outs[1].Err)
	require.Equal(t, []string{aliceAddr, opsAddr, opsAddr}, rcpts(h.received(t)))
	require.Contains(t, h.logs.String(), "email delivery failed")
}

func TestEmailConnectionTroubleWaits(t *testing.T) {
	// A wrong password is the operator's to fix: the messages wait.
	h := newEmailHarness(t, smtptest.StartTLS, func(s *EmailSettings) { s.Password = "wrong-" + smtpPassword })
	outs := h.notify(applied(), applied())
	for _, o := range outs {
		require.Error(t, o.Err)
		require.False(t, o.Permanent)
		require.False(t, o.RetryAt.IsZero())
	}
	require.Contains(t, outs[0].Err.Error(), "smtp connect")
	require.Empty(t, h.srv.Messages())
	require.Equal(t, []string{"wrong-" + smtpPassword}, h.srv.Passwords(), "one login tried, not one per event")
}

func TestEmailImplicitTLS(t *testing.T) {
	h := newEmailHarness(t, smtptest.Implicit, nil)
	require.NoError(t, h.notify(applied())[0].Err)
	got := h.received(t)
	require.Len(t, got, 3)
	require.True(t, got[0].TLS)
}

func TestEmailIPv6Host(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Username: smtpUser, Password: smtpPassword, IPv6: true})
	opt, _ := testOptions(t)
	n := NewEmail("owners", EmailSettings{
		Host: srv.Host, Port: srv.Port, RootCAs: srv.RootCAs, From: "quotawatch@example.org",
		Username: smtpUser, Password: smtpPassword, To: []string{opsAddr},
	}, nil, nil, opt)
	require.Equal(t, "::1", srv.Host)
	require.NoError(t, collect(t, n, context.Background(), []Pending{{Event: applied()}})[0].Err)
	require.Len(t, srv.Messages(), 1)
}

func TestEmailNoTLSOnLoopbackOnly(t *testing.T) {
	h := newEmailHarness(t, smtptest.Plain, nil)
	require.NoError(t, h.notify(applied())[0].Err)
	got := h.received(t)
	require.Len(t, got, 3)
	require.False(t, got[0].TLS)

	// Anywhere else the notifier refuses before connecting.
	h = newEmailHarness(t, smtptest.Plain, func(s *EmailSettings) { s.Host = "192.0.2.1" })
	o := h.notify(applied())[0]
	require.ErrorContains(t, o.Err, "tls none is allowed only toward a loopback address")
	require.False(t, o.Permanent)
}

func TestEmailStartTLSRequired(t *testing.T) {
	// A server that offers no STARTTLS is not written to in the clear.
	h := newEmailHarness(t, smtptest.Plain, func(s *EmailSettings) { s.TLS = TLSStartTLS })
	o := h.notify(applied())[0]
	require.ErrorContains(t, o.Err, "STARTTLS")
	require.Empty(t, h.srv.Messages())
	require.Empty(t, h.srv.Passwords(), "no password sent in the clear")
}

func TestEmailRateLimitPerRecipient(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, func(s *EmailSettings) { s.PerHour = 2; s.To = []string{opsAddr} })
	ev := func(i int) quota.Event {
		e := sampleEvents()["firing"]
		e.Time = t0.Add(time.Duration(i) * time.Second)
		return e
	}
	outs := h.notify(ev(1), ev(2), ev(3), ev(4))
	require.NoError(t, outs[0].Err)
	require.NoError(t, outs[1].Err)
	for _, o := range outs[2:] {
		require.Error(t, o.Err)
		require.False(t, o.Permanent, "the excess is not dropped")
		require.Equal(t, t0.Add(time.Hour), o.RetryAt, "when the first message of the hour is an hour old")
		require.ErrorContains(t, o.Err, "limit of 2 messages per hour")
	}
	require.Len(t, h.srv.Messages(), 2)

	// Still within the hour: nothing more goes.
	h.clock.Advance(59 * time.Minute)
	require.Error(t, h.notifyAttempts(1, ev(3), ev(4))[0].Err)
	require.Len(t, h.srv.Messages(), 2)

	h.clock.Advance(time.Minute)
	outs = h.notifyAttempts(2, ev(3), ev(4))
	require.NoError(t, outs[0].Err)
	require.NoError(t, outs[1].Err)
	require.Len(t, h.srv.Messages(), 4)
}

func TestEmailRateLimitSparesOthers(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, func(s *EmailSettings) { s.PerHour = 1; s.To = []string{ToItemOwner} })
	h.dir.items = map[string]string{"4242": bobUUID} // bob owns vm1
	first := applied()
	again := applied()
	again.Time = t0.Add(time.Minute)
	bobs := sampleEvents()["action_applied_server"]
	outs := h.notify(first, again, bobs)
	require.NoError(t, outs[0].Err)
	require.Error(t, outs[1].Err, "alice had her message this hour")
	require.NoError(t, outs[2].Err, "bob is not held up by alice's limit")
	require.Equal(t, []string{aliceAddr, bobAddr}, rcpts(h.received(t)))
}

func TestEmailCatalogIsCached(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, nil)
	h.dir.names = map[string]string{aliceUUID: aliceAddr} // bob is unknown
	second := applied()
	second.Time = t0.Add(time.Minute)
	outs := h.notify(applied(), second)
	require.NoError(t, outs[0].Err)
	require.NoError(t, outs[1].Err)
	require.Equal(t, [][]string{{"alice", aliceUUID, bobUUID}}, h.dir.lookups, "one lookup for both events, misses included")
	require.Equal(t, []string{aliceAddr, opsAddr, aliceAddr, opsAddr}, rcpts(h.received(t)))
	require.Contains(t, h.logs.String(), "no e-mail address for an owner")

	// A miss is asked again after an hour, a hit after a day.
	h.clock.Advance(time.Hour)
	third := applied()
	third.Time = t0.Add(2 * time.Hour)
	require.NoError(t, h.notify(third)[0].Err)
	require.Equal(t, [][]string{{"alice", aliceUUID, bobUUID}, {"alice", bobUUID}}, h.dir.lookups)
}

func TestEmailDisplayNameNotAnAddress(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, nil)
	h.dir.names[bobUUID] = "Bob Builder"
	require.NoError(t, h.notify(applied())[0].Err)
	require.Equal(t, []string{aliceAddr, opsAddr}, rcpts(h.received(t)))
}

func TestEmailDirectoryFailureWaits(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, nil)
	h.dir.err = errors.New("GET /account/v1.0/projects: HTTP 503")
	outs := h.notify(applied(), sampleEvents()["firing"])
	for _, o := range outs {
		require.Error(t, o.Err)
		require.False(t, o.Permanent)
	}
	require.ErrorContains(t, outs[0].Err, "directory")
	require.Empty(t, h.srv.Messages())
}

func TestEmailContextEnded(t *testing.T) {
	h := newEmailHarness(t, smtptest.StartTLS, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outs := collect(t, h.n, ctx, []Pending{{Event: applied()}})
	require.ErrorIs(t, outs[0].Err, ErrPaced)
	require.Equal(t, t0, outs[0].RetryAt)
}

// TestEmailNoSecretOnAnyFailure goes through every way a delivery fails,
// with a server that quotes the password back where it can, and checks
// that neither the errors nor the logs show it in any form.
func TestEmailNoSecretOnAnyFailure(t *testing.T) {
	echo := "you sent " + smtpPassword + " / " + base64.StdEncoding.EncodeToString([]byte("\x00"+smtpUser+"\x00"+smtpPassword))
	closedPort := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
		return port
	}
	tests := []struct {
		name   string
		mode   smtptest.Mode
		mutate func(*EmailSettings)
		script []smtptest.Reply
		dirErr error
	}{
		{name: "auth refused", script: []smtptest.Reply{{Stage: smtptest.StageAuth, Code: 535, Message: echo}}},
		{name: "wrong password", mutate: func(s *EmailSettings) { s.Password = smtpPassword + "x" }},
		{name: "mail 4xx", script: []smtptest.Reply{{Stage: smtptest.StageMail, Code: 421, Message: echo}}},
		{name: "rcpt 5xx", script: []smtptest.Reply{{Stage: smtptest.StageRcpt, Code: 550, Message: echo}}},
		{name: "data 4xx", script: []smtptest.Reply{{Stage: smtptest.StageData, Code: 452, Message: echo}}},
		{name: "connection refused", mutate: func(s *EmailSettings) { s.Port = closedPort() }},
		{name: "untrusted certificate", mutate: func(s *EmailSettings) { s.RootCAs = nil }},
		{name: "no starttls", mode: smtptest.Plain, mutate: func(s *EmailSettings) { s.TLS = TLSStartTLS }},
		{name: "tls to a plain server", mode: smtptest.Plain, mutate: func(s *EmailSettings) { s.TLS = TLSImplicit }},
		{name: "none off loopback", mode: smtptest.Plain, mutate: func(s *EmailSettings) { s.Host = "192.0.2.1" }},
		{name: "directory", dirErr: errors.New("catalog said " + smtpPassword)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newEmailHarness(t, tt.mode, tt.mutate)
			for _, r := range tt.script {
				h.srv.Script(r)
			}
			h.dir.err = tt.dirErr
			outs := h.notify(applied())
			require.Error(t, outs[0].Err)
			pw := h.n.set.Password
			for _, text := range []string{outs[0].Err.Error(), h.logs.String()} {
				require.NotContains(t, text, pw)
				require.NotContains(t, text, base64.StdEncoding.EncodeToString([]byte(pw)))
				require.NotContains(t, text, base64.StdEncoding.EncodeToString([]byte("\x00"+smtpUser+"\x00"+pw)))
			}
			require.Contains(t, h.logs.String(), "email delivery failed")
		})
	}
}

func TestEmailMessageIDStableAcrossRestarts(t *testing.T) {
	// A restarted daemon sends a pending event again: the same Message-ID
	// lets mail systems drop the duplicate.
	h := newEmailHarness(t, smtptest.StartTLS, func(s *EmailSettings) { s.To = []string{opsAddr} })
	ev := sampleEvents()["firing"]
	require.NoError(t, h.notify(ev)[0].Err)
	h.n = NewEmail("owners", h.n.set, h.dir, nil, h.n.opt)
	require.NoError(t, h.notify(ev)[0].Err)
	other := ev
	other.Time = t0.Add(time.Minute)
	require.NoError(t, h.notify(other)[0].Err)
	got := h.received(t)
	require.Len(t, got, 3)
	require.Equal(t, got[0].header.Get("Message-Id"), got[1].header.Get("Message-Id"))
	require.NotEqual(t, got[0].header.Get("Message-Id"), got[2].header.Get("Message-Id"))
}
