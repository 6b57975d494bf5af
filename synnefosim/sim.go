package synnefosim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// serveSim serves the /_sim/ control endpoints. They are not logged and not
// subject to faults.
func (c *Cloud) serveSim(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_sim"), "/")
	switch {
	case p == "/state":
		if r.Method != http.MethodGet {
			notAllowed(w, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, c.State())
	case p == "/requests":
		switch r.Method {
		case http.MethodGet:
			reqs := c.Requests()
			if reqs == nil {
				reqs = []Request{}
			}
			writeJSON(w, http.StatusOK, reqs)
		case http.MethodDelete:
			c.ResetRequests()
			w.WriteHeader(http.StatusNoContent)
		default:
			notAllowed(w, http.MethodGet, http.MethodDelete)
		}
	case p == "/faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, c.Faults())
		case http.MethodPost, http.MethodPut:
			var faults []Fault
			if !decodeSim(w, r, &faults) {
				return
			}
			sc := Scenario{Faults: faults}
			if err := sc.Validate(); err != nil {
				writeFault(w, http.StatusBadRequest, "", err.Error(), "")
				return
			}
			c.SetFaults(faults)
			writeJSON(w, http.StatusOK, c.Faults())
		default:
			notAllowed(w, http.MethodGet, http.MethodPost)
		}
	case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/grow"):
		parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/grow"), "/")
		if len(parts) != 2 {
			endpointNotFound(w)
			return
		}
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		var req struct {
			Bytes *int64 `json:"bytes"`
		}
		if !decodeSim(w, r, &req) {
			return
		}
		if req.Bytes == nil {
			writeFault(w, http.StatusBadRequest, "", "Missing 'bytes' attribute.", "")
			return
		}
		if err := c.GrowContainer(parts[0], parts[1], *req.Bytes); err != nil {
			writeFault(w, http.StatusNotFound, "", err.Error(), "")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case p == "/clock":
		c.serveSimClock(w, r)
	case p == "/drift":
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		var d Drift
		if !decodeSim(w, r, &d) {
			return
		}
		if err := c.SetDrift(d.User, d.Project, d.Resource, d.Amount); err != nil {
			writeFault(w, http.StatusBadRequest, "", err.Error(), "")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case p == "/memberships":
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		var m struct {
			Project string `json:"project"`
			User    string `json:"user"`
			State   string `json:"state"`
		}
		if !decodeSim(w, r, &m) {
			return
		}
		if err := c.SetMembership(m.Project, m.User, m.State); err != nil {
			writeFault(w, http.StatusBadRequest, "", err.Error(), "")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "/users/") && strings.HasSuffix(p, "/token"):
		if r.Method != http.MethodPost {
			notAllowed(w, http.MethodPost)
			return
		}
		var req struct {
			Token string `json:"token"`
		}
		if r.ContentLength != 0 && !decodeSim(w, r, &req) {
			return
		}
		user := strings.TrimSuffix(strings.TrimPrefix(p, "/users/"), "/token")
		tok, exp, err := c.RenewToken(user, req.Token)
		if err != nil {
			writeFault(w, http.StatusBadRequest, "", err.Error(), "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": tok, "expires": c.timestamp(exp)})
	default:
		writeFault(w, http.StatusNotFound, "", "Unknown simulator endpoint", "")
	}
}

// serveSimClock reads (GET) or moves on (POST {"advance": "48h"}) the
// cloud's clock.
func (c *Cloud) serveSimClock(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var req struct {
			Advance Duration `json:"advance"`
		}
		if !decodeSim(w, r, &req) {
			return
		}
		if req.Advance < 0 {
			writeFault(w, http.StatusBadRequest, "", "advance must not be negative", "")
			return
		}
		c.AdvanceClock(time.Duration(req.Advance))
	default:
		notAllowed(w, http.MethodGet, http.MethodPost)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"now": c.timestamp(c.now())})
}

func decodeSim(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
	}
	if err != nil {
		writeFault(w, http.StatusBadRequest, "", "Could not decode request body as JSON", "")
		return false
	}
	return true
}
