package watcher

import (
	"context"
	"slices"

	"github.com/quotawatch/quotawatch/quota"
)

// System projects are named system:<uuid> by Synnefo, which tells people
// nothing: they are shown by their user's e-mail, from the user catalogs,
// as "alice@example.org (personal)". The names stay what they are for rule
// and silence globs; only what people read changes.

// refreshUsers looks up the users of the system projects and the owners
// of the projects not yet named, once each (a name does not change): the
// first name system projects, all are the addresses the e-mail notifiers
// use. Their projects are marked changed so that the store keeps the names
// people know. A failure only costs the nicer names.
func (w *Watcher) refreshUsers(ctx context.Context, a *account) {
	var ids []string
	w.names.mu.Lock()
	want := map[string]bool{}
	for id, p := range w.names.projects {
		switch {
		case p.System:
			want[id] = true
		case p.Owner != "":
			want[p.Owner] = true
		}
	}
	for id := range want {
		if _, known := w.names.userNames[id]; !known {
			ids = append(ids, id)
		}
	}
	w.names.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	got, err := a.cloud.UserCatalog(ctx, ids)
	if err != nil {
		w.log.Warn("reading the user catalogs failed; system projects keep their ids", "account", a.name, "err", err)
		return
	}
	w.names.mu.Lock()
	defer w.names.mu.Unlock()
	for _, id := range ids {
		name, ok := got[id]
		w.names.userNames[id] = name // "" for unknown: not asked again
		if !ok || name == "" {
			continue
		}
		p, ok := w.names.projects[id]
		if !ok || !p.System {
			continue
		}
		p.Display = quota.PersonalName(name)
		w.names.projects[id] = p
		w.names.dirty[id] = true
	}
}

// shown returns the name to show people for a project id; name is what
// the caller has (used when the cache does not know the project).
func (n *nameCache) shown(id, name string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.projects[id]; ok && p.Display != "" {
		return p.Display
	}
	if name != "" {
		return name
	}
	return id
}

// shownEvent gives an event the names people know, for messages.
func (n *nameCache) shownEvent(ev quota.Event) quota.Event {
	if ev.Key.Project != "" {
		ev.ProjectName = n.shown(ev.Key.Project, ev.ProjectName)
	}
	if ev.Move != nil {
		m := *ev.Move
		if m.From != "" {
			m.FromName = n.shown(m.From, m.FromName)
		}
		if m.To != "" {
			m.ToName = n.shown(m.To, m.ToName)
		}
		ev.Move = &m
	}
	return ev
}

// knownUsers splits uuids into the display names already known and the
// uuids to ask the user catalogs for.
func (n *nameCache) knownUsers(uuids []string) (map[string]string, []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	var ask []string
	for _, id := range uuids {
		if name := n.userNames[id]; name != "" {
			out[id] = name
		} else {
			ask = append(ask, id)
		}
	}
	return out, ask
}

// addUsers remembers display names read from the user catalogs.
func (n *nameCache) addUsers(names map[string]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, name := range names {
		n.userNames[id] = name
	}
}

// shownRows gives the plan's rows the names people know.
func (n *nameCache) shownRows(rows []PlanRow) {
	for i := range rows {
		r := &rows[i]
		if r.From != "" {
			r.FromName = n.shown(r.From, r.FromName)
		}
		if r.To != "" {
			r.ToName = n.shown(r.To, r.ToName)
		}
	}
}

// shownEvents gives a report's events the names people know.
func (n *nameCache) shownEvents(evs []quota.Event) {
	for i := range evs {
		evs[i] = n.shownEvent(evs[i])
	}
}
