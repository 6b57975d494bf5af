package synnefosim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server serves a Cloud over real HTTP on a loopback address, like
// httptest.Server.
type Server struct {
	// URL is the base URL, http://ip:port, with no trailing slash.
	URL string
	// Cloud is the cloud being served; use it to steer and inspect the state.
	Cloud *Cloud

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// NewServer serves a new cloud on 127.0.0.1 at a free port. It panics on an
// invalid scenario, like httptest.NewServer on a listen failure.
func NewServer(sc *Scenario) *Server {
	s, err := Start(sc, "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("synnefosim: %v", err))
	}
	return s
}

// Start serves a new cloud on addr ("127.0.0.1:0" picks a free port).
func Start(sc *Scenario, addr string) (*Server, error) {
	c, err := New(sc)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{
		URL:   "http://" + ln.Addr().String(),
		Cloud: c,
		srv:   &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second},
		ln:    ln,
		done:  make(chan struct{}),
	}
	c.BaseURL = s.URL
	go func() {
		defer close(s.done)
		// Serve returns ErrServerClosed on Close; any other error means the
		// listener broke, which the next request will show the caller.
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// AuthURL is the identity endpoint a client is configured with.
func (s *Server) AuthURL() string { return s.URL + "/identity/v2.0" }

// Close stops the server, waiting briefly for requests in flight.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}
