// Package quota holds quotawatch's domain types and Synnefo's quota
// arithmetic. It does no I/O and imports nothing else of quotawatch, so every
// other package can share these types.
package quota

import (
	"math"
	"strings"
)

// Unlimited is how Synnefo spells "no limit" (2^63-1, units.PRACTICALLY_INFINITE).
const Unlimited int64 = math.MaxInt64

// Resource names that Synnefo registers.
const (
	DiskSpace      = "pithos.diskspace"
	VM             = "cyclades.vm"
	CPU            = "cyclades.cpu"
	TotalCPU       = "cyclades.total_cpu"
	RAM            = "cyclades.ram"
	TotalRAM       = "cyclades.total_ram"
	Disk           = "cyclades.disk"
	PrivateNetwork = "cyclades.network.private"
	FloatingIP     = "cyclades.floating_ip"
	PendingApp     = "astakos.pending_app"
)

// Unit is the unit a resource is counted in.
type Unit string

// Units of Synnefo resources.
const (
	Bytes Unit = "bytes"
	Count Unit = "count"
)

// resourceUnits lists every resource Synnefo registers (docs/synnefo-wire.md#resource-names).
var resourceUnits = map[string]Unit{
	DiskSpace:      Bytes,
	VM:             Count,
	CPU:            Count,
	TotalCPU:       Count,
	RAM:            Bytes,
	TotalRAM:       Bytes,
	Disk:           Bytes,
	PrivateNetwork: Count,
	FloatingIP:     Count,
	PendingApp:     Count,
}

// KnownResources returns the names of every resource Synnefo registers, sorted.
func KnownResources() []string {
	return []string{
		PendingApp, CPU, Disk, FloatingIP, PrivateNetwork, RAM,
		TotalCPU, TotalRAM, VM, DiskSpace,
	}
}

// UnitOf returns the unit of a resource. Unknown resources are guessed from
// their name: Synnefo's byte-valued resources all mention ram, disk or space.
func UnitOf(resource string) Unit {
	if u, ok := resourceUnits[resource]; ok {
		return u
	}
	r := strings.ToLower(resource)
	if strings.Contains(r, "ram") || strings.Contains(r, "disk") || strings.Contains(r, "space") {
		return Bytes
	}
	return Count
}

// Quota is one user's quota for one resource in one project, as Synnefo's
// /quotas reports it. Usage already includes Pending.
type Quota struct {
	Usage          int64 `json:"usage"`
	Limit          int64 `json:"limit"`
	Pending        int64 `json:"pending"`
	ProjectUsage   int64 `json:"project_usage"`
	ProjectLimit   int64 `json:"project_limit"`
	ProjectPending int64 `json:"project_pending"`
}

// TakenByOthers is what the other members of the project use.
func (q Quota) TakenByOthers() int64 { return subSat(q.ProjectUsage, q.Usage) }

// EffectiveLimit is the most this user can hold in the project: the member
// limit, or what the project has left after the other members, if smaller.
func (q Quota) EffectiveLimit() int64 {
	return min(q.Limit, subSat(q.ProjectLimit, q.TakenByOthers()))
}

// Headroom is how much more the user can allocate; negative when over limit.
func (q Quota) Headroom() int64 { return subSat(q.EffectiveLimit(), q.Usage) }

// Ratio is usage over the effective limit. A zero (or negative) effective
// limit gives 0 when nothing is used and +Inf otherwise.
func (q Quota) Ratio() float64 { return ratio(q.Usage, q.EffectiveLimit()) }

// ProjectRatio is the project's usage over the project's limit.
func (q Quota) ProjectRatio() float64 { return ratio(q.ProjectUsage, q.ProjectLimit) }

// IsUnlimited reports whether neither the member nor the project level limits
// this quota.
func (q Quota) IsUnlimited() bool { return q.Limit == Unlimited && q.ProjectLimit == Unlimited }

// HasPending reports whether allocations are in flight at member or project
// level; moves touching such a quota are refused.
func (q Quota) HasPending() bool { return q.Pending != 0 || q.ProjectPending != 0 }

// Fits reports whether allocating n more fits, exactly as Synnefo's
// quotaholder decides it: usage+n <= limit and project_usage+n <= project_limit.
// It is written as n <= headroom so it cannot overflow.
func (q Quota) Fits(n int64) bool {
	if n <= 0 {
		// Releases never fail; a zero provision still fails on a holding
		// that is already over its limit (docs/quota.md#does-a-move-fit).
		return n < 0 || q.Headroom() >= 0
	}
	return n <= q.Headroom()
}

// Add returns the quota after allocating n (negative n releases). Usage and
// project usage move together because the user is a member of the project.
func (q Quota) Add(n int64) Quota {
	q.Usage = addSat(q.Usage, n)
	q.ProjectUsage = addSat(q.ProjectUsage, n)
	return q
}

func ratio(usage, limit int64) float64 {
	if limit <= 0 {
		if usage <= 0 {
			return 0
		}
		return math.Inf(1)
	}
	return float64(usage) / float64(limit)
}

// subSat returns a-b clamped to the int64 range.
func subSat(a, b int64) int64 {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		if b > 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return d
}

// addSat returns a+b clamped to the int64 range.
func addSat(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// Hidden reports whether Synnefo keeps a resource out of /quotas
// (api_visible=false by default). A move still carries it, but its limit is
// unlimited unless an admin set one, so a missing entry is not a refusal.
func Hidden(resource string) bool {
	return resource == TotalCPU || resource == TotalRAM || resource == PendingApp
}
