package quota

import (
	"time"
)

// Key names one quota series: an account's quota for one resource in one
// project. Account is the configured account name ("service" for the
// cloud-wide project view of a service token).
type Key struct {
	Account  string `json:"account"`
	Project  string `json:"project"`
	Resource string `json:"resource"`
}

// String renders the key as account/project/resource.
func (k Key) String() string { return k.Account + "/" + k.Project + "/" + k.Resource }

// Entry is one polled quota of a snapshot.
type Entry struct {
	Project  string `json:"project"`
	Resource string `json:"resource"`
	Quota
}

// Snapshot is what one poll of one account returned.
type Snapshot struct {
	Account string    `json:"account"`
	User    string    `json:"user"` // the account's user UUID; empty for the service view
	Time    time.Time `json:"time"`
	// Service marks the project-level view of a service token: only the
	// project_* fields are meaningful and nothing is moved from it.
	Service bool    `json:"service,omitempty"`
	Entries []Entry `json:"entries"`
}

// Sample is a quota as observed at one time.
type Sample struct {
	Time time.Time `json:"time"`
	Quota
}

// Project is what quotawatch knows about a project besides its quotas.
type Project struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	System bool   `json:"system"`
	// State is the project's: active, suspended, terminated, uninitialized
	// or deleted. Only an active project grants quota.
	State string `json:"state,omitempty"`
	// Owner is the owner's user UUID; empty for a system project.
	Owner string `json:"owner,omitempty"`
	// Membership is the account user's membership state in the project
	// (accepted, leave_requested, suspended, removed, requested, rejected,
	// cancelled), empty when unknown or none. A good destination for the
	// user's items is an active project where it is "accepted".
	Membership string `json:"membership,omitempty"`
	// Display is the name people know the project by, when it is not
	// Name: for a system project (named system:<uuid>), its user's e-mail
	// and "(personal)", e.g. "alice@example.org (personal)".
	Display string `json:"display,omitempty"`
}

// Shown is the name to show people: Display, else Name, else the id.
func (p Project) Shown() string {
	switch {
	case p.Display != "":
		return p.Display
	case p.Name != "":
		return p.Name
	}
	return p.ID
}

// PersonalName is how a system project is shown: its user's display name
// (the e-mail Astakos keeps) and "(personal)".
func PersonalName(user string) string { return user + " (personal)" }
