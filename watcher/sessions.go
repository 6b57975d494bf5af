package watcher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/store"
)

// A token answer kept in the store stands in for a later process's token
// request (so `once` from a timer makes one request, as a daemon's cycle
// does) for as long as project names do; the client holds its endpoints
// to the token request's rules, and asks again when the cloud refuses the
// token.

// resumer is what a Cloud offers to start from a kept token answer.
type resumer interface {
	Resume(id *client.Identity) error
}

var _ resumer = (*client.Client)(nil)

// sessionKey is what a kept answer is for: the identity endpoint and the
// token. Only this digest is stored, never the token.
func sessionKey(authURL, token string) string {
	h := sha256.Sum256([]byte(authURL + "\x00" + token))
	return hex.EncodeToString(h[:])
}

// resumeSession gives the account's client the answer kept for its
// endpoint and token, when it is recent; a is then counted as kept.
func (w *Watcher) resumeSession(a *account, now time.Time) {
	r, ok := a.cloud.(resumer)
	if !ok || a.sessKey == "" {
		return
	}
	ss, ok, err := w.store.Session(a.name)
	if err != nil {
		w.log.Warn("reading the kept token answer failed", "account", a.name, "err", err)
		return
	}
	if !ok || ss.Key != a.sessKey || now.Sub(ss.Time) >= namesTTL || ss.Time.After(now) {
		return
	}
	var id client.Identity
	if err := json.Unmarshal(ss.Data, &id); err != nil {
		w.log.Warn("the kept token answer is unreadable; authenticating", "account", a.name, "err", err)
		return
	}
	if err := r.Resume(&id); err != nil {
		w.log.Debug("the kept token answer is not used", "account", a.name, "err", err)
		return
	}
	a.kept = true
}

// keepSession records the account's token answer once per process (unless
// it resumed one), for the next process.
func (w *Watcher) keepSession(a *account, id *client.Identity, now time.Time) {
	if a.kept || w.readOnly || a.sessKey == "" {
		return
	}
	if _, ok := a.cloud.(resumer); !ok {
		return
	}
	data, err := json.Marshal(id)
	if err == nil {
		err = w.store.SetSession(a.name, store.Session{Key: a.sessKey, Time: now, Data: data})
	}
	if err != nil {
		w.log.Warn("keeping the token answer failed", "account", a.name, "err", err)
		return
	}
	a.kept = true
}
