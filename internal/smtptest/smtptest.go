// Package smtptest runs an SMTP server on the loopback interface for tests, built on
// github.com/emersion/go-smtp: STARTTLS (or implicit TLS) with a
// self-signed certificate made at start, AUTH PLAIN, and replies of the
// test's choosing (a 4xx or a 5xx to MAIL, RCPT or DATA, or to AUTH).
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how the server speaks TLS.
type Mode int

// Modes.
const (
	// StartTLS offers STARTTLS and refuses AUTH before it.
	StartTLS Mode = iota
	// Implicit speaks TLS from the first byte.
	Implicit
	// Plain offers no TLS and allows AUTH in the clear.
	Plain
)

// Options configure a Server.
type Options struct {
	Mode Mode
	// Username and Password are the only credentials accepted; no
	// Username means no AUTH is offered nor required.
	Username, Password string
	// IPv6 listens on [::1] instead of 127.0.0.1.
	IPv6 bool
}

// Stage is the SMTP command a scripted reply answers.
type Stage string

// Stages.
const (
	StageAuth Stage = "AUTH"
	StageMail Stage = "MAIL"
	StageRcpt Stage = "RCPT"
	StageData Stage = "DATA"
)

// Reply is a scripted refusal: the next Times commands of Stage (for RCPT
// and DATA: to Rcpt only, when set) get Code and Message.
type Reply struct {
	Stage   Stage
	Rcpt    string
	Code    int
	Message string
	Times   int
}

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS reports that the message came over TLS; User is who logged in.
	TLS  bool
	User string
}

// Server is a running test SMTP server.
type Server struct {
	// Host and Port are where it listens (127.0.0.1 or ::1).
	Host string
	Port int
	// RootCAs trusts the server's certificate.
	RootCAs *x509.CertPool

	opt Options
	srv *smtp.Server
	pem []byte

	mu      sync.Mutex
	msgs    []Message
	replies []*Reply
	auths   []string // every password tried, to prove what was sent
}

// Start runs a server until the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	cert, pool, err := selfSigned()
	if err != nil {
		t.Fatalf("smtptest: certificate: %v", err)
	}
	s := &Server{RootCAs: pool, opt: opt, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 50
	srv.ErrorLog = discard{}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	addr := "127.0.0.1:0"
	if opt.IPv6 {
		addr = "[::1]:0"
	}
	var l net.Listener
	switch opt.Mode {
	case Implicit:
		l, err = tls.Listen("tcp", addr, tc)
	case Plain:
		srv.AllowInsecureAuth = true
		l, err = net.Listen("tcp", addr)
	default:
		srv.TLSConfig = tc
		l, err = net.Listen("tcp", addr)
	}
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	host, port, _ := net.SplitHostPort(l.Addr().String())
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	s.srv = srv
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		// The listener too: Close only knows it once Serve has started.
		_ = l.Close()
		_ = srv.Close()
		<-done
	})
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Script queues a refusal.
func (s *Server) Script(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Times <= 0 {
		r.Times = 1
	}
	s.replies = append(s.replies, &r)
}

// Messages returns the accepted messages, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Passwords returns every password a client tried.
func (s *Server) Passwords() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// scripted returns the error a command at stage (to rcpt) gets, or nil.
func (s *Server) scripted(stage Stage, rcpt string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.replies {
		if r.Stage != stage || (r.Rcpt != "" && !strings.EqualFold(r.Rcpt, rcpt)) {
			continue
		}
		r.Times--
		if r.Times == 0 {
			s.replies = append(s.replies[:i], s.replies[i+1:]...)
		}
		class := r.Code / 100
		return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode{class, 0, 0}, Message: r.Message}
	}
	return nil
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (se *session) AuthMechanisms() []string {
	if se.s.opt.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		se.s.mu.Lock()
		se.s.auths = append(se.s.auths, password)
		se.s.mu.Unlock()
		if err := se.s.scripted(StageAuth, ""); err != nil {
			return err
		}
		if username != se.s.opt.Username || password != se.s.opt.Password {
			return smtp.ErrAuthFailed
		}
		se.user = username
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opt.Username != "" && se.user == "" {
		return smtp.ErrAuthRequired
	}
	if err := se.s.scripted(StageMail, ""); err != nil {
		return err
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := se.s.scripted(StageRcpt, to); err != nil {
		return err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, to := range se.to {
		if err := se.s.scripted(StageData, to); err != nil {
			return err
		}
	}
	_, isTLS := se.c.TLSConnectionState()
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	se.s.msgs = append(se.s.msgs, Message{From: se.from, To: append([]string(nil), se.to...), Data: data, TLS: isTLS, User: se.user})
	return nil
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// PEM returns the server certificate as PEM, for a ca_file.
func (s *Server) PEM() []byte { return s.pem }

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}
