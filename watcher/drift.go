package watcher

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"sync"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
)

// driftMarks remembers the sources whose releases the cloud refused (quota
// drift: it records less usage than their items hold) with their numbers
// at the refusal. Retrying cannot succeed until an operator reconciles the
// cloud's accounting, which changes the numbers; until then the planner
// moves nothing out of them.
type driftMarks struct {
	mu    sync.Mutex
	marks map[rules.DriftKey]driftMark
	last  map[string][]quota.Entry // account → entries of its last poll
}

type driftMark struct {
	reason string
	// quotas are the source's numbers of the item's resources as first
	// polled after the refusal (nil until then).
	quotas    map[string]quota.Quota
	resources []string
}

func newDriftMarks() *driftMarks {
	return &driftMarks{marks: map[rules.DriftKey]driftMark{}, last: map[string][]quota.Entry{}}
}

// current forgets the marks whose source's numbers changed in this cycle's
// polls (an account not polled keeps its marks) and returns the reasons of
// the others, for the planner.
func (d *driftMarks) current(snaps []quota.Snapshot) map[rules.DriftKey]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range snaps {
		if s := &snaps[i]; !s.Service {
			d.last[s.Account] = s.Entries
		}
	}
	out := map[rules.DriftKey]string{}
	for k, m := range d.marks {
		if polled(snaps, k.Account) {
			now := d.quotasLocked(k, m.resources)
			switch {
			case m.quotas == nil:
				m.quotas = now
				d.marks[k] = m
			case !maps.Equal(m.quotas, now):
				delete(d.marks, k)
				continue
			}
		}
		out[k] = m.reason
	}
	return out
}

func polled(snaps []quota.Snapshot, account string) bool {
	for i := range snaps {
		if snaps[i].Account == account && !snaps[i].Service {
			return true
		}
	}
	return false
}

// quotasLocked returns the source's quotas of the resources want from
// the account's last poll.
func (d *driftMarks) quotasLocked(k rules.DriftKey, want []string) map[string]quota.Quota {
	out := map[string]quota.Quota{}
	for _, e := range d.last[k.Account] {
		if e.Project == k.Project && slices.Contains(want, e.Resource) {
			out[e.Resource] = e.Quota
		}
	}
	return out
}

// resourceLabels maps the labels of a 413's details back to resources.
var resourceLabels = map[string]string{
	"Disk": quota.Disk, "Virtual Machine": quota.VM, "CPU": quota.CPU, "RAM": quota.RAM,
	"Floating IP address": quota.FloatingIP, "Private Network": quota.PrivateNetwork,
	"Storage space": quota.DiskSpace,
}

var labelRe = regexp.MustCompile(`resource '([^']+)'`)

// note records a release refused at m's source and returns the reason to
// tell.
func (d *driftMarks) note(m quota.Move, err error) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := rules.DriftKey{Account: m.Account, Project: m.From}
	qs := d.quotasLocked(k, m.Quantities.Resources())
	res := ""
	for _, r := range m.Quantities.Resources() {
		if q, ok := qs[r]; ok && (q.Usage-q.Pending < m.Quantities[r] || q.ProjectUsage-q.ProjectPending < m.Quantities[r]) {
			res = r
			break
		}
	}
	var ce *client.Error
	if res == "" && errors.As(err, &ce) {
		if s := labelRe.FindStringSubmatch(ce.Details); s != nil {
			res = resourceLabels[s[1]]
			if res == "" {
				res = s[1]
			}
		}
	}
	if res == "" {
		res = m.Resource
	}
	name := m.FromName
	if name == "" {
		name = m.From
	}
	reason := rules.DriftReason(name, res, m.ItemName)
	d.marks[k] = driftMark{reason: reason, resources: m.Quantities.Resources()}
	return reason
}
