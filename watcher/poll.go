package watcher

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

// namesTTL is how long project names are trusted before they are listed
// again (an unknown project id triggers a refresh sooner).
const namesTTL = time.Hour

// nameCache maps project ids to what quotawatch knows of them. Names are
// global in Synnefo, so one cache serves every account; each account
// remembers when it last listed its projects.
type nameCache struct {
	mu       sync.Mutex
	projects map[string]quota.Project
	fetched  map[string]time.Time // account → last successful listing
	dirty    map[string]bool      // ids whose entry changed since the last drain
	// members are each account user's membership states by project id, as
	// last listed (memberships are the user's, not the project's).
	members map[string]map[string]string
	// userNames are display names (e-mails) by user UUID.
	userNames map[string]string
}

func newNameCache() *nameCache {
	return &nameCache{projects: map[string]quota.Project{}, fetched: map[string]time.Time{}, dirty: map[string]bool{},
		members: map[string]map[string]string{}, userNames: map[string]string{}}
}

func (n *nameCache) seed(ps map[string]quota.Project) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, p := range ps {
		n.projects[id] = p
	}
}

func (n *nameCache) put(p quota.Project) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p.Membership = "" // one account's; kept in members
	if old, ok := n.projects[p.ID]; ok && p.Display == "" {
		p.Display = old.Display // from the user catalogs, not the listing
	}
	if old, ok := n.projects[p.ID]; ok && old == p {
		return
	}
	n.projects[p.ID] = p
	n.dirty[p.ID] = true
}

// name returns the project's name, or its id when unknown.
func (n *nameCache) name(id string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.projects[id]; ok && p.Name != "" {
		return p.Name
	}
	return id
}

// view returns the map of every known project itself, not a copy: it must
// only be read, and only by the cycle, which is the one goroutine that
// writes it (in its poll step, before anything reads the view).
func (n *nameCache) view() map[string]quota.Project { return n.projects }

// drain returns the projects that changed since the last drain, by id:
// the store inserts keys in the order given, and a bbolt node shifts
// every later key at each insertion, so the first cycle of a large cloud
// would spend seconds on a random order.
func (n *nameCache) drain() []quota.Project {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.dirty) == 0 {
		return nil
	}
	ps := make([]quota.Project, 0, len(n.dirty))
	for id := range n.dirty {
		ps = append(ps, n.projects[id])
	}
	clear(n.dirty)
	slices.SortFunc(ps, func(a, b quota.Project) int { return strings.Compare(a.ID, b.ID) })
	return ps
}

// redo marks projects changed again after a drain that was not recorded.
func (n *nameCache) redo(ps []quota.Project) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range ps {
		n.dirty[p.ID] = true
	}
}

// stale reports whether account should list its projects again: never
// listed, listed over an hour ago, or a project id it sees is unknown.
func (n *nameCache) stale(account string, now time.Time, ids func(yield func(string) bool)) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.fetched[account]
	if !ok || now.Sub(t) >= namesTTL {
		return true
	}
	stale := false
	ids(func(id string) bool {
		if _, ok := n.projects[id]; !ok {
			stale = true
			return false
		}
		return true
	})
	return stale
}

func (n *nameCache) setMembers(account string, ms map[string]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members[account] = ms
}

// memberships returns every account's membership states; like view, only
// the cycle reads it.
func (n *nameCache) memberships() map[string]map[string]string { return n.members }

// users returns display names by user UUID, from the user catalogs.
func (n *nameCache) users() map[string]string { return n.userNames }

func (n *nameCache) listed(account string, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fetched[account] = now
}

// everListed reports whether this process knows when account last listed
// its projects.
func (n *nameCache) everListed(account string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.fetched[account]
	return ok
}

// PollResult is the outcome of polling one account.
type PollResult struct {
	Account string `json:"account"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Entries int    `json:"entries"`
}

// pollAll polls every account (and the service view) one after the other:
// one request budget covers them all, so parallel polls would only queue.
func (w *Watcher) pollAll(ctx context.Context, e *env, now time.Time) ([]quota.Snapshot, map[string]string, []PollResult) {
	var snaps []quota.Snapshot
	failed := map[string]string{}
	var res []PollResult
	for i, a := range e.accounts {
		w.progress("polling", i, len(e.accounts))
		s, err := w.pollAccount(ctx, a, now)
		if err != nil && ctx.Err() != nil {
			return nil, nil, res // stopping: not a failure of the cloud
		}
		if err != nil {
			msg := err.Error()
			failed[a.name] = msg
			res = append(res, PollResult{Account: a.name, Error: msg})
			w.log.Warn("poll failed", "account", a.name, "err", msg)
			w.metrics.pollFailed(a.name)
			continue
		}
		snaps = append(snaps, s)
		res = append(res, PollResult{Account: a.name, OK: true, Entries: len(s.Entries)})
		w.metrics.pollOK(a.name, now)
	}
	if len(e.services) > 0 {
		s, err := w.pollService(ctx, e, now)
		if err != nil {
			msg := err.Error()
			failed[ServiceAccount] = msg
			res = append(res, PollResult{Account: ServiceAccount, Error: msg})
			w.log.Warn("poll failed", "account", ServiceAccount, "err", msg)
			w.metrics.pollFailed(ServiceAccount)
		} else {
			snaps = append(snaps, s)
			res = append(res, PollResult{Account: ServiceAccount, OK: true, Entries: len(s.Entries)})
			w.metrics.pollOK(ServiceAccount, now)
		}
	}
	return snaps, failed, res
}

func (w *Watcher) pollAccount(ctx context.Context, a *account, now time.Time) (quota.Snapshot, error) {
	// The client's errors already say which call failed.
	id, err := a.cloud.Authenticate(ctx)
	if err != nil {
		return quota.Snapshot{}, err
	}
	a.user, a.expires = id.UserID, id.Expires
	w.keepSession(a, id, now)
	es, err := a.cloud.QuotaEntries(ctx)
	if err != nil {
		return quota.Snapshot{}, err
	}
	if id2, err := a.cloud.Authenticate(ctx); err == nil {
		// A refused token may have been replaced by a renewed one during
		// the call (the identity is cached: no request).
		a.expires = id2.Expires
	}
	s := quota.Snapshot{Account: a.name, User: a.user, Time: now, Entries: es}
	if !w.names.everListed(a.name) {
		// A process that runs one cycle (`once`) lists names as rarely as
		// a daemon does: when the store says they are fresh, they are.
		if l, ok, err := w.store.ProjectsListed(a.name); err != nil {
			w.log.Warn("reading when projects were listed failed", "account", a.name, "err", err)
		} else if ok {
			if l.Memberships != nil {
				w.names.setMembers(a.name, l.Memberships)
			}
			w.names.listed(a.name, l.Time)
		}
	}
	if w.names.stale(a.name, now, func(yield func(string) bool) {
		last := ""
		for i := range es {
			if p := es[i].Project; p != last {
				if !yield(p) {
					return
				}
				last = p
			}
		}
	}) {
		w.refreshNames(ctx, a, now)
		w.refreshUsers(ctx, a)
		w.recordNames(now)
	}
	return s, nil
}

// recordNames writes the names a listing changed now, in a transaction of
// their own: listing 100,000 projects changes them all, and written with
// the cycle they would add to its largest write. What fails to be written
// is written with the cycle.
func (w *Watcher) recordNames(now time.Time) {
	if w.readOnly {
		return
	}
	ps := w.names.drain()
	if len(ps) == 0 {
		return
	}
	if err := w.store.Commit(&store.Batch{Time: now, Projects: ps}); err != nil {
		w.names.redo(ps)
		w.log.Warn("recording project names failed; they are written with the cycle", "err", err)
	}
}

// summarizer is a Cloud that also lists its user's memberships.
type summarizer interface {
	ProjectSummaries(ctx context.Context) (map[string]quota.Project, error)
}

// refreshNames lists the account's projects, with their states and the
// account user's memberships where the cloud tells them. A failure only
// costs names (ids are shown instead), so it does not fail the poll.
func (w *Watcher) refreshNames(ctx context.Context, a *account, now time.Time) {
	if s, ok := a.cloud.(summarizer); ok {
		ps, err := s.ProjectSummaries(ctx)
		if err == nil {
			ms := make(map[string]string, len(ps))
			in := interner{}
			for id, p := range ps {
				ms[id] = in.of(p.Membership)
				if p.Name != "" || p.State != "" {
					p.State, p.Owner = in.of(p.State), in.of(p.Owner)
					w.names.put(p)
				}
			}
			w.names.setMembers(a.name, ms)
			w.names.listed(a.name, now)
			w.recordListing(a.name, store.ProjectListing{Time: now, Memberships: ms})
			return
		}
		w.log.Warn("listing memberships failed; listing projects only", "account", a.name, "err", err)
	}
	ps, err := a.cloud.Projects(ctx, client.ProjectFilter{})
	if err != nil {
		w.log.Warn("listing projects failed; showing ids", "account", a.name, "err", err)
		return
	}
	in := interner{}
	for _, p := range ps {
		q := p.Summary()
		q.State, q.Owner = in.of(q.State), in.of(q.Owner)
		w.names.put(q)
	}
	w.names.listed(a.name, now)
	w.recordListing(a.name, store.ProjectListing{Time: now})
}

// interner hands out one string for equal values: a listing decodes each
// project's state, membership and owner as strings of their own, yet a
// cloud of 100,000 projects has a handful of states and few owners, and
// the name cache keeps them until the next listing.
type interner map[string]string

func (in interner) of(s string) string {
	if t, ok := in[s]; ok {
		return t
	}
	in[s] = s
	return s
}

// recordListing keeps when the account's projects were listed, and its
// memberships, so that a later `once` lists them as rarely as a daemon
// does. The names themselves are written with the cycle; if that fails,
// the ids they lack make the next run list them again.
func (w *Watcher) recordListing(account string, l store.ProjectListing) {
	if w.readOnly {
		return
	}
	if err := w.store.SetProjectsListed(account, l); err != nil {
		w.log.Warn("recording when projects were listed failed", "account", account, "err", err)
	}
}

func (w *Watcher) pollService(ctx context.Context, e *env, now time.Time) (quota.Snapshot, error) {
	es, err := serviceUnion(ctx, e.services)
	if err != nil {
		return quota.Snapshot{}, err
	}
	return quota.Snapshot{Account: ServiceAccount, Time: now, Service: true, Entries: projectLevel(es)}, nil
}

// projectLevel copies the project-level numbers of the service view into
// the member fields, so that usage, limit and ratio speak of the project:
// a service token sees no member level.
func projectLevel(es []quota.Entry) []quota.Entry {
	for i := range es {
		q := &es[i].Quota
		q.Usage, q.Limit, q.Pending = q.ProjectUsage, q.ProjectLimit, q.ProjectPending
	}
	return es
}
