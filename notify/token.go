package notify

import (
	"fmt"

	"github.com/quotawatch/quotawatch/quota"
)

// layoutTokenExpiring tells that an account's token must be renewed: no
// API call can renew it, and once expired every poll fails.
func layoutTokenExpiring(ev quota.Event) rendered {
	left := formatDuration(ev.Expires.Sub(ev.Time))
	return rendered{
		summary: fmt.Sprintf("The token of account %s expires at %s (in %s); renew it and put the new token in its token file",
			ev.Key.Account, formatTime(ev.Expires), left),
		line: fmt.Sprintf(":hourglass_flowing_sand: *The token of account %s expires* %s (in %s) — renew it and put the new token in its token file; quotawatch reads it again without a restart",
			esc(ev.Key.Account), slackDate(ev.Expires), left),
	}
}

// layoutTakeover tells that another quotawatch instance took the lead.
func layoutTakeover(ev quota.Event) rendered {
	return rendered{
		summary: "quotawatch changed leader: " + ev.Reason,
		line:    ":twisted_rightwards_arrows: *quotawatch changed leader*: " + esc(ev.Reason),
	}
}
