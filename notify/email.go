package notify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/quotawatch/quotawatch/quota"
)

// Keywords of EmailSettings.To that stand for people found per event.
const (
	// ToItemOwner is the owner of a moved item.
	ToItemOwner = "item_owner"
	// ToProjectOwner is the owners of the projects a moved item left and
	// joined.
	ToProjectOwner = "project_owner"
)

// TLS modes of EmailSettings.TLS.
const (
	// TLSStartTLS upgrades a plain connection with STARTTLS, which the
	// server must offer (usually port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (usually port 465).
	TLSImplicit = "tls"
	// TLSNone sends in the clear; for a relay on the loopback interface only
	// (the configuration refuses any other host).
	TLSNone = "none"
)

// Defaults applied by NewEmail.
const (
	// DefaultEmailPerHour is how many messages one address gets per hour at
	// most; the rest wait. A dozen moves in an hour is already a lot for a
	// person to read.
	DefaultEmailPerHour = 12
	// catalogTTL is how long a UUID's address is trusted; an unknown UUID
	// is asked again after catalogMissTTL.
	catalogTTL     = 24 * time.Hour
	catalogMissTTL = time.Hour
	// progressTTL bounds how long the notifier remembers which recipients
	// of a still-pending event already got it.
	progressTTL = 7 * 24 * time.Hour
	// rateWindow is the span of the per-recipient limit.
	rateWindow = time.Hour
)

// Op values of the email notifier's errors.
const (
	opSMTPConnect = "smtp connect"
	opSMTPSend    = "smtp send"
	opDirectory   = "directory"
	opRateLimit   = "rate limit"
)

// EmailSettings configures an e-mail notifier.
type EmailSettings struct {
	// Host and Port locate the SMTP server.
	Host string
	Port int
	// TLS is TLSStartTLS (the default when empty), TLSImplicit or TLSNone.
	TLS string
	// RootCAs, when set, is trusted instead of the system roots.
	RootCAs *x509.CertPool
	// From is the sender address.
	From string
	// ReplyTo is where replies go ("how to ask for it back"); empty means
	// the addresses listed in To, else From.
	ReplyTo string
	// Username and Password authenticate to the server; no Username means
	// no authentication.
	Username string
	Password string
	// To lists ToItemOwner, ToProjectOwner and addresses.
	To []string
	// PerHour caps the messages one address gets per hour; 0 means
	// DefaultEmailPerHour. The excess waits in the outbox.
	PerHour int
}

// Directory tells who the people of a move are and how to reach them. The
// daemon backs it with each account's cloud.
type Directory interface {
	// Emails maps user UUIDs of the account's cloud to their display names,
	// which Synnefo sets to the user's e-mail address. UUIDs it does not
	// know are left out.
	Emails(ctx context.Context, account string, uuids []string) (map[string]string, error)
	// Owners returns the UUIDs of the owners of m's item and of its source
	// and destination projects; "" for one it cannot tell.
	Owners(ctx context.Context, m quota.Move) (item, from, to string, err error)
}

// Journal finds the action journal entry of an applied move, so that the
// message can name it for "quotawatch undo ACTION_ID". It may be nil.
type Journal interface {
	ActionID(ctx context.Context, m quota.Move, at time.Time) (id uint64, ok bool, err error)
}

// Email sends one plain-text message per person an event concerns, over
// SMTP (STARTTLS or implicit TLS) with github.com/wneessen/go-mail.
//
// Who gets what: a move that was applied (not a dry run) goes to the
// item's owner and the owners of both projects, as To allows, and to every
// address listed in To. Everything else (firing, resolved, failed and
// skipped moves, dry runs, poll failures) goes only to the listed
// addresses: owners hear of what was done to their things, not of the
// daemon's deliberations.
//
// Delivery keeps the outbox's guarantees. A message the server refuses for
// good (a 5xx to MAIL, RCPT or DATA) sets its event aside once its other
// recipients got it; any other
// failure (a 4xx, no connection, TLS or authentication trouble) stops
// delivery, and that event and the ones behind it wait for a retry, so a
// broken relay or password loses nothing. Recipients who already got an
// event are remembered while it is pending, so a retry does not send it to
// them again (unless the daemon restarted meanwhile). An address that
// reached PerHour waits until its hour frees a slot; its later events wait
// with it, in order, while other addresses are served.
//
// The password never appears in an error or a log line.
type Email struct {
	name    string
	set     EmailSettings
	dir     Directory
	journal Journal
	opt     Options
	secrets []string

	// notifying is held for a whole Notify: progress is the state of one
	// delivery at a time.
	notifying sync.Mutex

	mu       sync.Mutex
	catalog  map[string]catalogEntry // account + "\x00" + uuid
	progress map[string]*progress    // event fingerprint
	sends    map[string][]time.Time  // address → sends within rateWindow
}

type catalogEntry struct {
	name  string // "" when the cloud does not know the UUID
	until time.Time
}

// progress is what one pending event has reached.
type progress struct {
	recipients []recipient
	resolved   bool
	sent       map[string]bool
	refused    *Outcome // a recipient's final refusal, told once all are done
	touched    time.Time
}

// recipient is one address and why it gets the event.
type recipient struct {
	addr string
	// roles are what the person owns, for "you get this because ...";
	// empty for a listed address.
	roles []string
}

// NewEmail returns an e-mail notifier. dir resolves item_owner and
// project_owner (nil: only listed addresses are written to); journal names
// the action of a move (nil: messages do not name it).
func NewEmail(name string, set EmailSettings, dir Directory, journal Journal, opt Options) *Email {
	opt = opt.withDefaults()
	if set.TLS == "" {
		set.TLS = TLSStartTLS
	}
	if set.PerHour <= 0 {
		set.PerHour = DefaultEmailPerHour
	}
	e := &Email{
		name: name, set: set, dir: dir, journal: journal, opt: opt,
		catalog: map[string]catalogEntry{}, progress: map[string]*progress{}, sends: map[string][]time.Time{},
	}
	if set.Password != "" {
		// A server may echo what it was sent: AUTH PLAIN's and LOGIN's
		// base64 forms are as secret as the password.
		e.secrets = []string{
			set.Password,
			base64.StdEncoding.EncodeToString([]byte(set.Password)),
			base64.StdEncoding.EncodeToString([]byte("\x00" + set.Username + "\x00" + set.Password)),
		}
	}
	return e
}

// Name returns the notifier's name.
func (e *Email) Name() string { return e.name }

// Notify delivers the events in order, one message per recipient, and
// returns one Outcome per event.
func (e *Email) Notify(ctx context.Context, pending []Pending, settle Settle) {
	if len(pending) == 0 {
		return
	}
	out := make([]Outcome, len(pending))
	// Each event is settled as soon as its fate is known, so a crash never
	// mails the recipients of a delivered event again.
	e.notifying.Lock()
	defer e.notifying.Unlock()
	now := e.opt.Now()
	e.prune(now)
	s := &session{e: e, held: map[string]time.Time{}}
	defer s.close()
	for i, p := range pending {
		switch err := ctx.Err(); {
		case s.stop != nil:
			out[i] = *s.stop
		case err != nil:
			// Nothing of the rest was tried: due again at once.
			out[i] = Outcome{Err: &Error{Notifier: e.name, Op: opPace, detail: err.Error(), ctxErr: err, paced: true}, RetryAt: now}
		default:
			out[i] = s.deliver(ctx, p, now)
		}
		if settle != nil {
			settle(i, i+1, out[i])
		}
	}
}

// session is one Notify call: its SMTP connection (opened at the first
// message) and the addresses held back by the rate limit.
type session struct {
	e    *Email
	c    *gomail.Client
	held map[string]time.Time // address → when its limit frees
	stop *Outcome             // set after a failure that the rest shares
}

func (s *session) close() {
	if s.c != nil {
		_ = s.c.Close()
		s.c = nil
	}
}

// deliver sends one event to each of its recipients that has not got it.
func (s *session) deliver(ctx context.Context, p Pending, now time.Time) Outcome {
	e := s.e
	fp := fingerprint(p.Event)
	pr := e.progressOf(fp, now)
	if !pr.resolved {
		rs, err := e.recipients(ctx, p.Event, now)
		if err != nil {
			o := e.fail(ctx, &Error{Notifier: e.name, Op: opDirectory, detail: err.Error()}, err, p.Attempts, now)
			s.stop = &o
			return o
		}
		pr.recipients, pr.resolved = rs, true
	}
	var heldUntil time.Time
	subject := emailSubject(p.Event)
	var actionID uint64
	var haveID, looked bool
	for _, r := range pr.recipients {
		if pr.sent[r.addr] {
			continue
		}
		if t, ok := s.held[strings.ToLower(r.addr)]; ok {
			heldUntil = later(heldUntil, t)
			continue
		}
		if t, ok := e.limited(r.addr, now); ok {
			s.held[strings.ToLower(r.addr)] = t
			heldUntil = later(heldUntil, t)
			continue
		}
		if !looked {
			actionID, haveID = e.actionID(ctx, p.Event)
			looked = true
		}
		body := emailBody(p.Event, r, e.name, e.replyTo(), actionID, haveID)
		msg, err := e.message(r.addr, subject, body, fp, now)
		if err != nil {
			// An address that cannot be written to will never be: the
			// event's other recipients still get it.
			e.opt.Logger.LogAttrs(ctx, slog.LevelWarn, "email recipient skipped",
				slog.String("notifier", e.name), slog.String("to", r.addr), slog.String("err", e.scrub(err.Error())))
			pr.sent[r.addr] = true
			continue
		}
		if err := s.send(ctx, msg); err != nil {
			o := s.failed(ctx, p, r.addr, err, now)
			if !o.Permanent {
				return o
			}
			// Refused for good: the others still get it, and the event is
			// set aside at the end to show the refusal.
			pr.sent[r.addr] = true
			pr.refused = &o
			continue
		}
		pr.sent[r.addr] = true
		e.sent(r.addr, now)
		e.opt.Logger.LogAttrs(ctx, slog.LevelDebug, "email sent",
			slog.String("notifier", e.name), slog.String("to", r.addr), slog.String("event", string(p.Event.Kind)))
	}
	if !heldUntil.IsZero() {
		err := &Error{Notifier: e.name, Op: opRateLimit,
			detail: fmt.Sprintf("a recipient reached its limit of %d messages per hour; the event waits for it", e.set.PerHour)}
		return Outcome{Err: err, RetryAt: heldUntil}
	}
	e.forget(fp)
	if pr.refused != nil {
		return *pr.refused
	}
	return Outcome{}
}

// send writes one message, connecting first if need be.
func (s *session) send(ctx context.Context, msg *gomail.Msg) error {
	return s.sendOnce(ctx, msg, true)
}

func (s *session) sendOnce(ctx context.Context, msg *gomail.Msg, again bool) error {
	if s.c == nil {
		c, err := s.e.client()
		if err != nil {
			return &connectError{err}
		}
		if err := c.DialWithContext(ctx); err != nil {
			return &connectError{err}
		}
		s.c = c
	}
	if err := s.c.Send(msg); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && se.Reason == gomail.ErrConnCheck && again {
			// The connection went away between messages: once more on a
			// new one.
			s.close()
			return s.sendOnce(ctx, msg, false)
		}
		return err
	}
	return nil
}

// connectError marks a failure to connect, greet, start TLS or log in:
// about the server or the credentials, not the message.
type connectError struct{ err error }

func (c *connectError) Error() string { return c.err.Error() }
func (c *connectError) Unwrap() error { return c.err }

// failed turns a send failure into the event's outcome. A final refusal of
// the message is permanent; anything else stops delivery, and the rest
// shares the outcome.
func (s *session) failed(ctx context.Context, p Pending, addr string, err error, now time.Time) Outcome {
	e := s.e
	op := opSMTPSend
	var ce *connectError
	connect := errors.As(err, &ce)
	if connect {
		op = opSMTPConnect
		s.close()
	}
	code := smtpCode(err)
	detail := err.Error()
	if !connect {
		detail = "to " + addr + ": " + detail
	}
	// The reply code is in the detail already, as the server gave it.
	ee := &Error{Notifier: e.name, Op: op, detail: detail}
	// A 5xx about this message is final; a 5xx while connecting (say, a
	// wrong password) is the operator's to fix, and the messages wait.
	ee.Permanent = !connect && code >= 500 && code < 600
	o := e.fail(ctx, ee, err, p.Attempts, now)
	if ee.Permanent {
		return o
	}
	s.close() // a 4xx may leave the conversation in any state
	s.stop = &o
	return o
}

// fail scrubs, logs and returns the outcome of a failed event.
func (e *Email) fail(ctx context.Context, ee *Error, cause error, attempts int, now time.Time) Outcome {
	switch {
	case errors.Is(cause, context.Canceled):
		ee.ctxErr = context.Canceled
	case errors.Is(cause, context.DeadlineExceeded):
		ee.ctxErr = context.DeadlineExceeded
	}
	ee.detail = e.scrub(ee.detail)
	level := slog.LevelWarn
	if ee.Permanent {
		level = slog.LevelError
	}
	e.opt.Logger.LogAttrs(ctx, level, "email delivery failed",
		slog.String("notifier", e.name), slog.String("op", ee.Op),
		slog.Bool("permanent", ee.Permanent), slog.String("err", ee.Error()))
	o := Outcome{Err: ee, Permanent: ee.Permanent}
	if !ee.Permanent {
		o.RetryAt = now.Add(Backoff(attempts))
	}
	return o
}

// smtpCode is the server's reply code in err, 0 if the server said nothing.
func smtpCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func (e *Email) scrub(s string) string { return scrub(s, e.secrets...) }

// client builds the go-mail client of one session.
func (e *Email) client() (*gomail.Client, error) {
	tc := &tls.Config{ServerName: e.set.Host, RootCAs: e.set.RootCAs, MinVersion: tls.VersionTLS12}
	opts := []gomail.Option{
		gomail.WithPort(e.set.Port),
		gomail.WithTimeout(e.opt.Timeout),
		gomail.WithTLSConfig(tc),
	}
	switch e.set.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if e.set.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if e.set.TLS == TLSNone {
			// Only a loopback relay is allowed without TLS.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(e.set.Username), gomail.WithPassword(e.set.Password))
	}
	if e.set.TLS == TLSNone && !isLoopback(e.set.Host) {
		return nil, fmt.Errorf("tls none is allowed only toward a loopback address, not %s", e.set.Host)
	}
	host := e.set.Host
	if strings.Contains(host, ":") {
		// go-mail joins host and port with a bare colon.
		host = "[" + host + "]"
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return c, nil
}

// message composes one message. Its Message-ID is derived from the event
// and the address, so a retry after an unclear failure carries the same id
// and mail systems can drop the duplicate.
func (e *Email) message(to, subject, body, fp string, now time.Time) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.FromFormat("quotawatch", e.set.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(to); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if rt := e.replyTo(); rt != "" {
		if err := m.ReplyTo(rt); err != nil {
			return nil, fmt.Errorf("reply-to: %w", err)
		}
	}
	m.Subject(subject)
	m.SetDateWithValue(now)
	sum := sha256.Sum256([]byte(fp + "\x00" + to))
	domain := "quotawatch"
	if _, d, ok := strings.Cut(e.set.From, "@"); ok {
		domain = d
	}
	m.SetMessageIDWithValue(hex.EncodeToString(sum[:12]) + "@" + domain)
	m.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, body)
	return m, nil
}

// replyTo is where people are asked to write: ReplyTo, else the listed
// addresses, else From.
func (e *Email) replyTo() string {
	if e.set.ReplyTo != "" {
		return e.set.ReplyTo
	}
	var listed []string
	for _, t := range e.set.To {
		if t != ToItemOwner && t != ToProjectOwner {
			listed = append(listed, t)
		}
	}
	if len(listed) > 0 {
		return strings.Join(listed, ", ")
	}
	return e.set.From
}

// recipients lists who gets ev: the owners of an applied move (as To
// allows) and the listed addresses, each address once.
func (e *Email) recipients(ctx context.Context, ev quota.Event, now time.Time) ([]recipient, error) {
	var out []recipient
	add := func(addr, role string) {
		key := strings.ToLower(addr)
		for i := range out {
			if strings.ToLower(out[i].addr) == key {
				if role != "" && !slices.Contains(out[i].roles, role) {
					out[i].roles = append(out[i].roles, role)
				}
				return
			}
		}
		r := recipient{addr: addr}
		if role != "" {
			r.roles = []string{role}
		}
		out = append(out, r)
	}
	wantItem, wantProjects := slices.Contains(e.set.To, ToItemOwner), slices.Contains(e.set.To, ToProjectOwner)
	if m := ev.Move; toOwners(ev) && e.dir != nil && (wantItem || wantProjects) {
		item, from, to, err := e.dir.Owners(ctx, *m)
		if err != nil {
			return nil, fmt.Errorf("owners of %s %s: %w", m.Kind, m.ItemName, err)
		}
		if m.Owner != "" {
			item = m.Owner
		}
		type want struct{ uuid, role string }
		var wants []want
		if wantItem {
			wants = append(wants, want{item, "the " + kindName(m.Kind)})
		}
		if wantProjects {
			wants = append(wants, want{from, "the project it was moved out of"}, want{to, "the project it was moved into"})
		}
		var uuids []string
		for _, w := range wants {
			if w.uuid != "" && !slices.Contains(uuids, w.uuid) {
				uuids = append(uuids, w.uuid)
			}
		}
		names, err := e.emails(ctx, m.Account, uuids, now)
		if err != nil {
			return nil, err
		}
		for _, w := range wants {
			if w.uuid == "" {
				continue
			}
			addr, ok := names[w.uuid]
			if !ok {
				e.opt.Logger.LogAttrs(ctx, slog.LevelWarn, "no e-mail address for an owner",
					slog.String("notifier", e.name), slog.String("account", m.Account), slog.String("user", w.uuid))
				continue
			}
			add(addr, w.role)
		}
	}
	for _, t := range e.set.To {
		if t != ToItemOwner && t != ToProjectOwner {
			add(t, "")
		}
	}
	return out, nil
}

// toOwners reports whether owners hear of ev: a move that was made.
func toOwners(ev quota.Event) bool {
	return ev.Kind == quota.EventAction && ev.Result == quota.ResultApplied && !ev.DryRun &&
		ev.Move != nil && ev.Move.To != ""
}

// emails returns the addresses of uuids, asking the directory only for the
// ones not cached. A display name that is not an address is left out.
func (e *Email) emails(ctx context.Context, account string, uuids []string, now time.Time) (map[string]string, error) {
	out := map[string]string{}
	var ask []string
	e.mu.Lock()
	for _, u := range uuids {
		c, ok := e.catalog[account+"\x00"+u]
		switch {
		case ok && now.Before(c.until) && c.name != "":
			out[u] = c.name
		case ok && now.Before(c.until):
		default:
			ask = append(ask, u)
		}
	}
	e.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	got, err := e.dir.Emails(ctx, account, ask)
	if err != nil {
		return nil, fmt.Errorf("user catalog of account %s: %w", account, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, u := range ask {
		name := ""
		if n, ok := got[u]; ok {
			if a, err := mail.ParseAddress(n); err == nil && a.Name == "" && strings.Contains(a.Address, "@") {
				name = a.Address
			} else {
				e.opt.Logger.LogAttrs(ctx, slog.LevelWarn, "a user's display name is not an e-mail address",
					slog.String("notifier", e.name), slog.String("account", account), slog.String("user", u))
			}
		}
		ttl := catalogTTL
		if name == "" {
			ttl = catalogMissTTL
		}
		e.catalog[account+"\x00"+u] = catalogEntry{name: name, until: now.Add(ttl)}
		if name != "" {
			out[u] = name
		}
	}
	return out, nil
}

// actionID asks the journal for the action of an applied move.
func (e *Email) actionID(ctx context.Context, ev quota.Event) (uint64, bool) {
	if e.journal == nil || ev.Move == nil || ev.Kind != quota.EventAction || ev.Result != quota.ResultApplied {
		return 0, false
	}
	id, ok, err := e.journal.ActionID(ctx, *ev.Move, ev.Time)
	if err != nil {
		// The message goes without it: it still says what moved and when.
		e.opt.Logger.LogAttrs(ctx, slog.LevelWarn, "looking up the move's action failed",
			slog.String("notifier", e.name), slog.String("err", e.scrub(err.Error())))
		return 0, false
	}
	return id, ok
}

// limited reports whether addr has used its hour, and when a slot frees.
func (e *Email) limited(addr string, now time.Time) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := strings.ToLower(addr)
	ts := e.sends[key]
	for len(ts) > 0 && !now.Before(ts[0].Add(rateWindow)) {
		ts = ts[1:]
	}
	e.sends[key] = ts
	if len(ts) < e.set.PerHour {
		return time.Time{}, false
	}
	return ts[len(ts)-e.set.PerHour].Add(rateWindow), true
}

func (e *Email) sent(addr string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := strings.ToLower(addr)
	e.sends[key] = append(e.sends[key], now)
}

func (e *Email) progressOf(fp string, now time.Time) *progress {
	e.mu.Lock()
	defer e.mu.Unlock()
	pr, ok := e.progress[fp]
	if !ok {
		pr = &progress{sent: map[string]bool{}}
		e.progress[fp] = pr
	}
	pr.touched = now
	return pr
}

func (e *Email) forget(fp string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.progress, fp)
}

// prune drops what is no longer needed: progress of events not seen for a
// week (set aside elsewhere), expired catalog entries and old sends.
func (e *Email) prune(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for fp, pr := range e.progress {
		if now.Sub(pr.touched) > progressTTL {
			delete(e.progress, fp)
		}
	}
	for k, c := range e.catalog {
		if !now.Before(c.until) {
			delete(e.catalog, k)
		}
	}
	for k, ts := range e.sends {
		if len(ts) == 0 || !now.Before(ts[len(ts)-1].Add(rateWindow)) {
			delete(e.sends, k)
		}
	}
}

// fingerprint identifies an event across retries.
func fingerprint(ev quota.Event) string {
	raw, err := json.Marshal(ev)
	if err != nil {
		raw = []byte(fmt.Sprintf("%#v", ev))
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// isLoopback reports whether host (a name or an address) is the loopback
// interface: "localhost" or an address in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
