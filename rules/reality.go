package rules

import (
	"fmt"

	"github.com/quotawatch/quotawatch/quota"
)

// DriftKey names a source project, seen through an account, whose release
// the cloud refused because its accounting records less than its items hold.
type DriftKey struct {
	Account, Project string
}

// destRefusal tells why project d cannot take the owner's items whatever
// its headroom, or "": only an active project grants quota, and only an
// accepted membership lasts (leave_requested ends when the leave is
// accepted; a former member's holding has no limit). Unknown states refuse
// nothing, so a cloud that does not list memberships still plans as before.
func destRefusal(in planInput, d string) string {
	p, ok := in.Projects[d]
	name := label(in.Projects, d)
	if ok && p.State != "" && p.State != "active" {
		return fmt.Sprintf("%s is %s", name, p.State)
	}
	if st := in.Memberships[d]; st != "" && st != "accepted" {
		return fmt.Sprintf("%s's membership in %s is %s", in.OwnerName, name, st)
	}
	return ""
}

// DriftReason is what a release the cloud refused at the source means to
// an operator.
func DriftReason(projectName, resource, itemName string) string {
	return fmt.Sprintf("the cloud's accounting for %s is inconsistent (it records less %s than %s holds)",
		projectName, resource, itemName)
}

// drifted returns the first resource of the item that the source's
// committed usage (usage less pending, at either level) is below: the cloud
// would refuse to release it, so moving the item cannot succeed.
func drifted(l *quota.Ledger, src string, it *quota.Item) (string, bool) {
	for _, r := range it.Quantities.Resources() {
		n := it.Quantities[r]
		if n <= 0 {
			continue
		}
		q, ok := l.Get(src, r)
		if !ok {
			continue
		}
		if q.Usage-q.Pending < n || q.ProjectUsage-q.ProjectPending < n {
			return r, true
		}
	}
	return "", false
}
