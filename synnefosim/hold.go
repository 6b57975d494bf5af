package synnefosim

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// A fault with Hold models a cloud still processing a request: a matching
// request (every Nth with Every) waits that long and is then served as
// usual, even if its client has gone away meanwhile, so a reassign lands
// after the caller stopped waiting for it. Other fields of the fault apply
// after the hold, as to any request.

// hold waits out the holds of the faults matching r and returns the request
// to serve: once held, its client's disconnect no longer cancels it.
func (c *Cloud) hold(r *http.Request) *http.Request {
	var d time.Duration
	c.faultMu.Lock()
	for _, f := range c.faults {
		if f.Hold <= 0 || (f.Method != "" && !strings.EqualFold(f.Method, r.Method)) || !globMatch(f.Path, r.URL.Path) {
			continue
		}
		f.held++
		if f.Every > 1 && f.held%f.Every != 0 {
			continue
		}
		d += time.Duration(f.Hold)
	}
	c.faultMu.Unlock()
	if d == 0 {
		return r
	}
	r = r.WithContext(context.WithoutCancel(r.Context()))
	time.Sleep(d)
	return r
}
