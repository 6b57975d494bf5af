package quota

// Ledger holds one account's quotas per project and resource, and simulates
// moves on them, so that several moves planned in one cycle see each other.
type Ledger struct {
	q map[pr]Quota
}

type pr struct{ project, resource string }

// NewLedger builds a ledger from a snapshot's entries.
func NewLedger(entries []Entry) *Ledger {
	l := &Ledger{q: make(map[pr]Quota, len(entries))}
	for _, e := range entries {
		l.q[pr{e.Project, e.Resource}] = e.Quota
	}
	return l
}

// Get returns the quota of resource in project.
func (l *Ledger) Get(project, resource string) (Quota, bool) {
	q, ok := l.q[pr{project, resource}]
	return q, ok
}

// Set replaces the quota of resource in project.
func (l *Ledger) Set(project, resource string, q Quota) { l.q[pr{project, resource}] = q }

// Shortfall explains why a move does not fit.
type Shortfall struct {
	Resource string
	Need     int64
	Headroom int64
	Missing  bool // the project holds no quota for the resource at all
}

// Fits reports whether project can take every quantity in qs. The first
// resource (in name order) that does not fit is returned as the shortfall.
func (l *Ledger) Fits(project string, qs Quantities) (bool, Shortfall) {
	for _, r := range qs.Resources() {
		n := qs[r]
		q, ok := l.q[pr{project, r}]
		if !ok {
			if Hidden(r) {
				continue
			}
			return false, Shortfall{Resource: r, Need: n, Missing: true}
		}
		if !q.Fits(n) {
			return false, Shortfall{Resource: r, Need: n, Headroom: q.Headroom()}
		}
	}
	return true, Shortfall{}
}

// Move applies a move of qs from one project to another.
func (l *Ledger) Move(from, to string, qs Quantities) {
	for r, n := range qs {
		if q, ok := l.q[pr{from, r}]; ok {
			l.q[pr{from, r}] = q.Add(-n)
		}
		if q, ok := l.q[pr{to, r}]; ok {
			l.q[pr{to, r}] = q.Add(n)
		}
	}
}

// Clone returns an independent copy.
func (l *Ledger) Clone() *Ledger {
	c := &Ledger{q: make(map[pr]Quota, len(l.q))}
	for k, v := range l.q {
		c.q[k] = v
	}
	return c
}

// Projects returns the projects that hold a quota for resource.
func (l *Ledger) Projects(resource string) []string {
	var ps []string
	for k := range l.q {
		if k.resource == resource {
			ps = append(ps, k.project)
		}
	}
	return ps
}

// MoveProject applies the project-level side of another account's move:
// the project usage of both projects changes, this account's own usage
// does not. Ledgers of different accounts in the same projects stay right.
func (l *Ledger) MoveProject(from, to string, qs Quantities) {
	for r, n := range qs {
		if q, ok := l.q[pr{from, r}]; ok {
			q.ProjectUsage = addSat(q.ProjectUsage, -n)
			l.q[pr{from, r}] = q
		}
		if q, ok := l.q[pr{to, r}]; ok {
			q.ProjectUsage = addSat(q.ProjectUsage, n)
			l.q[pr{to, r}] = q
		}
	}
}
