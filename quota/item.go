package quota

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is a kind of movable item.
type Kind string

// The kinds of item Synnefo can reassign to another project.
const (
	KindContainer  Kind = "container"
	KindServer     Kind = "server"
	KindFloatingIP Kind = "floating_ip"
	KindNetwork    Kind = "network"
	KindVolume     Kind = "volume"
	// KindLimit is not an item: it marks a journaled raise of a
	// project's limit (Move.Raise), never moved.
	KindLimit Kind = "limit"
)

// Kinds lists every movable kind.
func Kinds() []Kind {
	return []Kind{KindContainer, KindServer, KindFloatingIP, KindNetwork, KindVolume}
}

// Valid reports whether k is a movable kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds() {
		if k == v {
			return true
		}
	}
	return false
}

// Quantities maps resource names to the amount an item carries.
type Quantities map[string]int64

// Resources returns the resource names in q, sorted.
func (q Quantities) Resources() []string {
	rs := make([]string, 0, len(q))
	for r := range q {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	return rs
}

// String renders the quantities as "res=n, res=n" in name order.
func (q Quantities) String() string {
	var b strings.Builder
	for i, r := range q.Resources() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", r, q[r])
	}
	return b.String()
}

// Item is something charged to a project that can be moved to another.
type Item struct {
	Kind    Kind   `json:"kind"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Owner   string `json:"owner"`   // user UUID the quota is charged to
	Project string `json:"project"` // project it is charged to now
	// Quantities is what moves with the item, per resource.
	Quantities Quantities `json:"quantities"`
	// Busy is set when the cloud would refuse to move the item now (a
	// server being built, a task pending, a system volume).
	Busy string `json:"busy,omitempty"`
	// Shared is the item's shared_to_project: members of its project see
	// it. A Cyclades reassign sends it, so a move keeps the item shared
	// (false unshares); containers have no such flag.
	Shared bool `json:"shared,omitempty"`
}
