package watcher

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/internal/smallfile"
	"github.com/quotawatch/quotawatch/notify"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store"
)

// emailNotifier builds an e-mail notifier whose owners and addresses come
// from the accounts of e.
func (w *Watcher) emailNotifier(e *env, n config.Notifier) (Notifier, error) {
	c := n.Email
	set := notify.EmailSettings{
		Host: c.Host, Port: c.Port, TLS: c.TLS,
		From: c.From, ReplyTo: c.ReplyTo,
		Username: c.Username, Password: c.Password.Reveal(),
		To: c.To, PerHour: c.MaxPerHour,
	}
	if c.CAFile != "" {
		pem, err := smallfile.Read(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		set.RootCAs = x509.NewCertPool()
		if !set.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", c.CAFile)
		}
	}
	opt := notify.Options{Now: w.now, Logger: w.log.With("notifier", n.Name)}
	dir := &directory{e: e, now: w.now, owners: map[string]*projectOwners{}, names: w.names}
	return notify.NewEmail(n.Name, set, dir, journal{st: w.store}, opt), nil
}

// directory finds the people of a move through its account's cloud: the
// item's owner by reading the item, the projects' owners from the
// project listing (cached like project names), addresses from the user
// catalog (cached by the notifier).
type directory struct {
	e   *env
	now func() time.Time
	// names holds the display names already read from the user catalogs
	// (for system projects), which are the addresses.
	names *nameCache

	mu     sync.Mutex
	owners map[string]*projectOwners // by account
}

type projectOwners struct {
	owner   map[string]string // project id → owner UUID
	fetched time.Time
}

func (d *directory) cloud(account string) (Cloud, error) {
	a := d.e.account(account)
	if a == nil {
		return nil, fmt.Errorf("account %s is not configured", account)
	}
	return a.cloud, nil
}

// Emails implements notify.Directory.
func (d *directory) Emails(ctx context.Context, account string, uuids []string) (map[string]string, error) {
	c, err := d.cloud(account)
	if err != nil {
		return nil, err
	}
	out, ask := d.names.knownUsers(uuids)
	if len(ask) == 0 {
		return out, nil
	}
	got, err := c.UserCatalog(ctx, ask)
	if err != nil {
		return nil, err
	}
	d.names.addUsers(got)
	for id, name := range got {
		out[id] = name
	}
	return out, nil
}

// Owners implements notify.Directory.
func (d *directory) Owners(ctx context.Context, m quota.Move) (item, from, to string, err error) {
	c, err := d.cloud(m.Account)
	if err != nil {
		return "", "", "", err
	}
	item = m.Owner
	if item == "" {
		it, err := c.Item(ctx, m.Kind, m.ItemID)
		switch {
		case client.IsNotFound(err):
			// Gone since: its owner cannot be told, the projects' can.
		case err != nil:
			return "", "", "", fmt.Errorf("read %s %s: %w", m.Kind, m.ItemName, err)
		default:
			item = it.Owner
		}
	}
	if from, err = d.projectOwner(ctx, c, m.Account, m.From); err != nil {
		return "", "", "", err
	}
	if to, err = d.projectOwner(ctx, c, m.Account, m.To); err != nil {
		return "", "", "", err
	}
	return item, from, to, nil
}

// projectOwner returns the owner of project, listing the account's
// projects when the cache is older than namesTTL or lacks the project.
func (d *directory) projectOwner(ctx context.Context, c Cloud, account, project string) (string, error) {
	now := d.now()
	d.mu.Lock()
	po := d.owners[account]
	if po != nil && now.Sub(po.fetched) < namesTTL {
		if o, ok := po.owner[project]; ok {
			d.mu.Unlock()
			return o, nil
		}
	}
	d.mu.Unlock()
	ps, err := c.Projects(ctx, client.ProjectFilter{})
	if err != nil {
		return "", fmt.Errorf("list projects: %w", err)
	}
	po = &projectOwners{owner: make(map[string]string, len(ps)), fetched: now}
	for _, p := range ps {
		o := p.Owner
		if p.SystemProject {
			// A system project's id is its user's UUID; Astakos gives it no owner.
			o = p.ID
		}
		po.owner[p.ID] = o
	}
	d.mu.Lock()
	d.owners[account] = po
	d.mu.Unlock()
	return po.owner[project], nil
}

// journal finds a move's entry in the store's action journal.
type journal struct{ st *store.Store }

// ActionID implements notify.Journal: the latest live entry of the same
// move (rule, item, source and destination) made at or before at.
func (j journal) ActionID(_ context.Context, m quota.Move, at time.Time) (uint64, bool, error) {
	acts, err := j.st.ActionsForItem(m.Kind, m.ItemID)
	if err != nil {
		return 0, false, err
	}
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		if a.Account == m.Account && a.Rule == m.Rule && a.From == m.From && a.To == m.To && !a.DryRun && !a.Time.After(at) {
			return a.ID, true, nil
		}
	}
	return 0, false, nil
}
