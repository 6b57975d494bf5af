package watcher

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/internal/smallfile"
	"github.com/quotawatch/quotawatch/quota"
)

// tokenSource reads an account's token again after the cloud refused it:
// from its token file, where an operator puts a renewed token (no API call
// renews one), read by the same rules as at start-up. An inline or
// environment token cannot change without a reload, so it is given as is.
func tokenSource(a config.Account) func() (string, error) {
	if a.TokenFile == "" {
		tok := a.Token.Reveal()
		return func() (string, error) { return tok, nil }
	}
	path := a.TokenFile
	return func() (string, error) {
		b, err := smallfile.Read(path)
		if err != nil {
			return "", fmt.Errorf("token_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

func newTokenGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	return promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "quotawatch_token_expiry_timestamp_seconds", Help: "When the account's token expires, as the cloud says.",
	}, []string{"account"})
}

// tokenEvents exports each polled account's token expiry and returns a
// token_expiring event for each token that expires within the warning and
// was not warned about yet, with the account states that record the
// warning (merged into the engine's: persisted, so a restart does not
// repeat it).
func (w *Watcher) tokenEvents(e *env, now time.Time, polled map[string]bool, accounts []quota.AccountState) ([]quota.Event, []quota.AccountState) {
	warn := e.cfg.Cloud.TokenWarning
	if warn <= 0 {
		warn = config.DefaultTokenWarning
	}
	var evs []quota.Event
	for _, a := range e.accounts {
		if !polled[a.name] || a.expires.IsZero() {
			continue
		}
		w.tokenExpiry.WithLabelValues(a.name).Set(float64(a.expires.Unix()))
		if left := a.expires.Sub(now); left > warn || left <= 0 {
			// Expired by our clock yet just accepted: the clocks disagree,
			// and the cloud's is the one that counts.
			continue
		}
		i := -1
		for j := range accounts {
			if accounts[j].Account == a.name {
				i = j
			}
		}
		st := w.accts[a.name]
		if i >= 0 {
			st = accounts[i]
		}
		if st.TokenWarned.Equal(a.expires) {
			continue
		}
		st.Account, st.TokenWarned = a.name, a.expires
		if i >= 0 {
			accounts[i] = st
		} else {
			accounts = append(accounts, st)
		}
		evs = append(evs, quota.Event{
			Kind: quota.EventTokenExpiring, Time: now, Key: quota.InstanceKey{Account: a.name},
			Severity: quota.Warning, Expires: a.expires,
			Reason: fmt.Sprintf("the token expires at %s, in about %s: renew it and put the new token in its token file (no API call can renew it)",
				a.expires.UTC().Format(time.RFC3339), aboutDays(a.expires.Sub(now))),
		})
	}
	return evs, accounts
}

// aboutDays rounds a time left for people: "3 days", "1 day", "5 hours".
func aboutDays(d time.Duration) string {
	if d < 36*time.Hour {
		h := max(1, int(math.Round(d.Hours())))
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", h)
	}
	return fmt.Sprintf("%d days", int(math.Round(d.Hours()/24)))
}
