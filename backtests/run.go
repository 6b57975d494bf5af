package backtests

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/replay"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// ser is one series as the replay has it now.
type ser struct {
	key   quota.Key
	acct  int
	pos   int // index in its account's ledger; -1 while absent
	q     quota.Quota
	known bool
	first int64 // first observation (ms)
	last  int64 // last observation (ms)
	// changed is the time of its last change (ms); forecast marks a series
	// a forecasting rule watches, pts its change points of the last day.
	changed  int64
	forecast bool
	active   bool // in the forecast-active list
	pts      []point
	// hc[hoff:] are its forecast samples as of the last call, made up to
	// poll hnext (an account's poll count) for a window from hlo.
	hc    []quota.Sample
	hoff  int
	hnext int64
	hlo   int64
	// tr is its forecast trend, made up to poll tnext for a window from
	// tlo, while it is active and the budget allows.
	tr    *rules.Trend
	tnext int64
	tlo   int64
	tlen  int  // tr.Len() as last counted in run.trended
	stamp int  // cycle it was last selected in
	live  bool // evaluated when polled: in the ledger, not shadowed
}

// acct is one account's ledger: its present series in key order.
type acct struct {
	name    string
	service bool
	last    int64       // its last poll (ms)
	seen    bool        // polled since the replay began
	polls   []time.Time // of the last day and an hour
	pollMs  []int64     // the same, in ms
	npolls  int64       // polls since the replay began
	ledger  []quota.Entry
	members []int            // series index of each ledger entry
	byRes   map[string][]int // ledger positions of each resource
	// polledAt is the time of its last poll replayed (ms).
	polledAt int64
	sel      []int // ledger positions selected this cycle
	// order are the ledger positions of this cycle's snapshot, and next
	// the first of them not asked for a trend yet: the engine asks in
	// entry order, so most asks find their series without a lookup.
	order []int
	next  int
	es    []quota.Entry // the snapshot's entries, reused: a cycle keeps none
}

// point is a change of a series kept for its forecast.
type point struct {
	t int64
	q quota.Quota
}

type change struct {
	t   int64
	idx int
	q   quota.Quota
}

type item struct {
	quota.Item
	account string
}

type itemID struct {
	kind quota.Kind
	id   string
}

type listKey struct {
	account, project string
	kind             quota.Kind
}

type run struct {
	st       Store
	opt      Options
	sim      *replay.Sim
	sers     []ser
	index    map[quota.Key]int
	byID     []int32 // series index by store id (see seriesOf)
	accts    []*acct
	byLast   []int // series indexes by last observation
	gone     int   // byLast[:gone] are absent for good
	dirty    bool  // a ledger must be rebuilt
	shadow   map[[2]string]bool
	projects map[string]quota.Project
	items    []item // known from the journal
	listings map[listKey][]store.Listing
	moved    map[itemID]item // where the backtest moved items
	// How the item lists asked for were found.
	listedAtTime, listedLater, listedJournal, listedNone int

	active []int // forecast series whose usage changed in the last day
	cycle  int
	now    time.Time
	buf    []quota.Sample // history's scratch
	cached int            // samples the history caches hold
	// trended is how many samples the trends hold; scratch serves the
	// series beyond the budget.
	trended int
	scratch rules.Trend
	// ended are the series no longer evaluated whose states are still to
	// end: at the next cycle where their account is polled.
	ended []int

	rep       Report
	open      map[quota.InstanceKey]int // open incident → index in rep.Incidents
	openSer   map[int][]int             // series → its open incidents
	refusals  map[string]int
	messages  map[[2]string]int
	notifiers map[string]bool
	errors    map[string]bool
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func newRun(st Store, opt Options) (*run, error) {
	r := &run{
		st: st, opt: opt,
		sim:      replay.New(rules.NewEngine(opt.Rules), opt.MaxActions, opt.DryRun),
		index:    map[quota.Key]int{},
		open:     map[quota.InstanceKey]int{},
		openSer:  map[int][]int{},
		refusals: map[string]int{},
		messages: map[[2]string]int{},
		errors:   map[string]bool{},
		listings: map[listKey][]store.Listing{},
		moved:    map[itemID]item{},
	}
	r.notifiers = map[string]bool{}
	for _, n := range opt.Notifiers {
		r.notifiers[n] = true
	}
	r.rep.From, r.rep.To = opt.From.UTC(), opt.To.UTC()
	var err error
	if r.projects, err = st.Projects(); err != nil {
		return nil, fmt.Errorf("backtest: read projects: %w", err)
	}
	keys, err := st.Keys()
	if err != nil {
		return nil, fmt.Errorf("backtest: read series: %w", err)
	}
	engine := r.sim.Engine()
	acctOf := map[string]int{}
	r.sers = make([]ser, 0, len(keys))
	for _, k := range keys {
		last, ok, err := st.LastSeen(k)
		if err != nil {
			return nil, fmt.Errorf("backtest: read series %s: %w", k, err)
		}
		if !ok || last.Before(opt.From.Add(-forecastWindow)) {
			continue // gone before the replay starts
		}
		a, ok := acctOf[k.Account]
		if !ok {
			a = len(r.accts)
			acctOf[k.Account] = a
			r.accts = append(r.accts, &acct{name: k.Account, service: k.Account == ServiceAccount})
		}
		r.accts[a].last = max(r.accts[a].last, ms(last))
		r.index[k] = len(r.sers)
		r.sers = append(r.sers, ser{key: k, acct: a, pos: -1, last: ms(last), stamp: -1,
			forecast: engine.UsesHistory(k.Resource, k.Project, r.projects[k.Project].Name)})
	}
	r.rep.Series = len(r.sers)
	r.byLast = make([]int, len(r.sers))
	for i := range r.byLast {
		r.byLast[i] = i
	}
	slices.SortStableFunc(r.byLast, func(a, b int) int { return cmp.Compare(r.sers[a].last, r.sers[b].last) })
	if err := r.loadItems(); err != nil {
		return nil, err
	}
	return r, nil
}

// loadItems takes the items the journal knows, placed where they were
// when the replay starts.
func (r *run) loadItems() error {
	acts, err := r.st.Actions(time.Time{}, r.opt.To)
	if err != nil {
		return fmt.Errorf("backtest: read the action journal: %w", err)
	}
	slices.SortStableFunc(acts, func(a, b quota.Action) int { return a.Time.Compare(b.Time) })
	at := map[itemID]int{}
	for _, a := range acts {
		if a.DryRun || (a.State != quota.ActionApplied && a.State != quota.ActionVerified) {
			continue
		}
		k := itemID{a.Kind, a.ItemID}
		i, seen := at[k]
		if !seen {
			i = len(r.items)
			at[k] = i
			r.items = append(r.items, item{account: a.Account})
		}
		it := &r.items[i]
		before := a.Time.Before(r.opt.From)
		if !seen || before {
			it.Item = quota.Item{Kind: a.Kind, ID: a.ItemID, Name: a.ItemName, Owner: a.Owner,
				Quantities: a.Quantities, Project: a.From}
			if before {
				it.Project = a.To
			}
		}
	}
	ls, err := r.st.Listings(r.opt.From, r.opt.To)
	if err != nil {
		return fmt.Errorf("backtest: read item listings: %w", err)
	}
	for _, l := range ls {
		k := listKey{l.Account, l.Project, l.Kind}
		r.listings[k] = append(r.listings[k], l)
	}
	return nil
}

// listItems is what listing the items of a kind in a project would have
// returned at the current cycle: the listing in force then, or failing
// that the first one made later, or failing that the items the journal
// knows there; with the items the backtest moved put where it moved them.
func (r *run) listItems(account, project string, kind quota.Kind) []quota.Item {
	ls := r.listings[listKey{account, project, kind}]
	i := sort.Search(len(ls), func(i int) bool { return ls[i].Time.After(r.now) })
	var base []quota.Item
	switch {
	case i > 0:
		base = ls[i-1].Items
		r.listedAtTime++
	case len(ls) > 0:
		base = ls[0].Items
		r.listedLater++
	default:
		for _, it := range r.items {
			if it.account == account && it.Project == project && it.Kind == kind {
				base = append(base, it.Item)
			}
		}
		if len(base) > 0 {
			r.listedJournal++
		} else {
			r.listedNone++
		}
	}
	out := make([]quota.Item, 0, len(base))
	seen := map[string]bool{}
	for _, it := range base {
		if m, ok := r.moved[itemID{it.Kind, it.ID}]; ok && m.Project != project {
			continue
		}
		seen[it.ID] = true
		out = append(out, it)
	}
	for k, m := range r.moved {
		if m.account == account && k.kind == kind && m.Project == project && !seen[k.id] {
			out = append(out, m.Item)
		}
	}
	slices.SortFunc(out, func(a, b quota.Item) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// releaseEvery is how long the reader holds the store file at most
// between blocks.
const releaseEvery = 2 * time.Second

// blockRead is one day block of the history, or why it could not be read.
type blockRead struct {
	b   *store.Block
	err error
}

// run reads the history a day block at a time, in its own goroutine so
// reading and evaluating share the time, starting a day early so the
// forecasts have their history, and replays each poll of [From,To].
func (r *run) run() error {
	to := ms(r.opt.To)
	begin := ms(r.opt.From.Add(-forecastWindow)) - 1
	blocks := make(chan blockRead)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(blocks)
		held := time.Now()
		for t := time.UnixMilli(begin).UTC(); !t.After(r.opt.To); {
			b, err := r.st.Block(t)
			// Let the file go now and then, so a daemon's cycle waits
			// for it at most a few seconds (each reopening costs a load
			// of the store's cache, so not after every block), and
			// always before waiting for the replay.
			release := func() {
				if rerr := r.st.Release(); rerr != nil && err == nil {
					err = fmt.Errorf("backtest: release the store: %w", rerr)
				}
				held = time.Now()
			}
			if time.Since(held) >= releaseEvery || err != nil || !b.End.Before(r.opt.To) {
				release()
			}
			select {
			case blocks <- blockRead{b, err}:
			default:
				release()
				select {
				case blocks <- blockRead{b, err}:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
			t = b.End
		}
	}()
	acctOf := map[string]int{}
	for i, ac := range r.accts {
		acctOf[ac.name] = i
	}
	seeded := false
	var at int64 // the polls being gathered are at this time
	var changed []int
	flush := func() {
		if at > begin {
			r.poll(at, changed)
		}
		changed = changed[:0]
	}
	for br := range blocks {
		if br.err != nil {
			return br.err
		}
		b := br.b
		for b.Next() {
			tm := b.PollMs()
			if tm > to {
				break
			}
			if tm != at {
				flush()
				at = tm
			}
			if !seeded && tm > begin {
				if err := r.seed(begin); err != nil {
					return err
				}
				seeded = true
			}
			acct, _ := b.Poll()
			ai, ok := acctOf[acct]
			if !ok {
				continue // every series of it ended before
			}
			if tm > begin {
				r.accts[ai].polledAt = tm
			}
			cs := b.Changes()
			for x := range cs {
				c := &cs[x]
				i := r.seriesOf(c.ID, b, c)
				if i < 0 {
					continue
				}
				if s := &r.sers[i]; s.known && s.q == c.Quota {
					continue // as it was at its last poll
				}
				r.apply(&change{t: tm, idx: i, q: c.Quota})
				if tm > begin {
					changed = append(changed, i)
				}
			}
		}
		if err := b.Err(); err != nil {
			return fmt.Errorf("backtest: read the history: %w", err)
		}
		if r.opt.Progress != nil {
			r.opt.Progress(time.UnixMilli(min(ms(b.End), to)).UTC())
		}
	}
	flush()
	r.finish()
	return nil
}

// seriesOf returns the index of the series of a change, by its store id,
// or -1 for one the replay leaves out.
func (r *run) seriesOf(id uint32, b *store.Block, c *store.Change) int {
	for int64(len(r.byID)) <= int64(id) {
		r.byID = append(r.byID, 0)
	}
	switch x := r.byID[id]; x {
	case 0:
	case leftOut:
		return -1
	default:
		return int(x) - 1
	}
	i, ok := r.index[b.Key(c)]
	if !ok {
		r.byID[id] = leftOut
		return -1
	}
	r.byID[id] = int32(i) + 1
	return i
}

// leftOut marks in run.byID a series the replay leaves out; 0 is one not
// met yet, others are the index + 1.
const leftOut = -1

// seed gives the series not seen by begin (ms) the values they had then,
// if any: a block holds a series only from its first poll there, and one
// absent for a while was last seen in an earlier block.
func (r *run) seed(begin int64) error {
	at := time.UnixMilli(begin).UTC()
	for i := range r.sers {
		s := &r.sers[i]
		if s.known {
			continue
		}
		smp, ok, err := r.st.At(s.key, at)
		if err != nil {
			return fmt.Errorf("backtest: read series %s: %w", s.key, err)
		}
		if ok {
			r.apply(&change{t: ms(smp.Time), idx: i, q: smp.Quota})
		}
	}
	return nil
}

// apply takes one change of a series' values.
func (r *run) apply(c *change) {
	s := &r.sers[c.idx]
	if !s.known {
		s.known, s.first = true, c.t
		r.dirty = true
	}
	usageChanged := s.q.Usage != c.q.Usage || len(s.pts) == 0
	s.q, s.changed = c.q, c.t
	if s.pos >= 0 {
		r.accts[s.acct].ledger[s.pos].Quota = c.q
	}
	if !s.forecast {
		return
	}
	s.pts = append(s.pts, point{c.t, c.q})
	cut := c.t - keepWindow.Milliseconds()
	if len(s.pts) > 8 && s.pts[len(s.pts)/2].t <= cut {
		// Drop what fell out of the window (keeping the point in force at
		// its start) once it is half of them, so a busy series does not
		// move its points at every change.
		i := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > cut }) - 1
		s.pts = append(s.pts[:0], s.pts[i:]...)
	}
	if usageChanged && !s.active {
		s.active = true
		r.active = append(r.active, c.idx)
	}
}

// rebuild lays out every account's ledger again after series appeared or
// ended.
func (r *run) rebuild(t int64) {
	for r.gone < len(r.byLast) && r.sers[r.byLast[r.gone]].last < t {
		r.gone++
	}
	for _, ac := range r.accts {
		ac.ledger, ac.members = ac.ledger[:0], ac.members[:0]
		ac.byRes = map[string][]int{}
	}
	was := make([]bool, len(r.sers))
	for i := range r.sers {
		was[i] = r.sers[i].live
	}
	for i := range r.sers {
		s := &r.sers[i]
		s.pos, s.live = -1, false
		if !s.known || s.first > t || s.last < t {
			continue
		}
		ac := r.accts[s.acct]
		s.pos = len(ac.ledger)
		ac.byRes[s.key.Resource] = append(ac.byRes[s.key.Resource], s.pos)
		ac.ledger = append(ac.ledger, quota.Entry{Project: s.key.Project, Resource: s.key.Resource, Quota: s.q})
		ac.members = append(ac.members, i)
	}
	// The service view does not watch what an account sees.
	r.shadow = map[[2]string]bool{}
	for _, ac := range r.accts {
		if ac.service {
			continue
		}
		for _, e := range ac.ledger {
			r.shadow[[2]string{e.Project, e.Resource}] = true
		}
	}
	for i := range r.sers {
		s := &r.sers[i]
		s.live = s.pos >= 0 && !(r.accts[s.acct].service && r.shadow[[2]string{s.key.Project, s.key.Resource}])
		if was[i] && !s.live {
			r.ended = append(r.ended, i)
		}
	}
	r.dirty = false
}

// poll replays the poll at t (ms): history is kept from the warm-up on;
// cycles before From are not evaluated.
func (r *run) poll(t int64, changed []int) {
	// A series ends after its last observation.
	if r.gone < len(r.byLast) && r.sers[r.byLast[r.gone]].last < t {
		r.dirty = true
	}
	if r.dirty {
		r.rebuild(t)
	}
	now := time.UnixMilli(t).UTC()
	cut := now.Add(-keepWindow)
	for _, ac := range r.accts {
		if ac.polledAt != t {
			continue
		}
		ac.seen = true
		ac.polls = append(ac.polls, now)
		ac.pollMs = append(ac.pollMs, t)
		ac.npolls++
		i := 0
		for i < len(ac.polls) && ac.polls[i].Before(cut) {
			i++
		}
		if i > 0 {
			ac.polls = append(ac.polls[:0], ac.polls[i:]...)
			ac.pollMs = append(ac.pollMs[:0], ac.pollMs[i:]...)
		}
	}
	if t < ms(r.opt.From) {
		return
	}
	r.now = now
	r.cycle++
	r.rep.Cycles++
	c := r.cycle

	sel := func(i int) {
		s := &r.sers[i]
		if !s.live || s.stamp == c {
			return
		}
		s.stamp = c
		r.accts[s.acct].sel = append(r.accts[s.acct].sel, s.pos)
	}
	for _, i := range changed {
		sel(i)
	}
	// The series whose rule states may change though their values did not.
	for _, k := range r.sim.Due(now) {
		if i, ok := r.index[k]; ok {
			sel(i)
		}
	}
	keep := r.active[:0]
	for _, i := range r.active {
		s := &r.sers[i]
		if t-s.changed > keepWindow.Milliseconds() {
			s.active = false
			r.dropHistory(s)
			r.dropTrend(s)
			continue
		}
		keep = append(keep, i)
		sel(i)
	}
	r.active = keep

	var snaps []quota.Snapshot
	var polled []*acct
	failed := map[string]string{}
	for _, ac := range r.accts {
		picked := ac.sel
		ac.sel = ac.sel[:0]
		if ac.polledAt != t {
			if ac.seen && t <= ac.last {
				failed[ac.name] = "no poll recorded at this time"
			}
			continue
		}
		polled = append(polled, ac)
		if r.opt.evaluateAll || c == 1 {
			// The first cycle starts from no state: everything counts.
			picked = picked[:0]
			for pos, i := range ac.members {
				if r.sers[i].live {
					picked = append(picked, pos)
				}
			}
		}
		slices.Sort(picked)
		ac.order, ac.next = picked, 0
		es := ac.es[:0]
		for _, pos := range picked {
			es = append(es, ac.ledger[pos])
		}
		ac.es = es
		snaps = append(snaps, quota.Snapshot{Account: ac.name, Time: now, Service: ac.service, Entries: es})
	}

	ledgers := func(resources []string, series []quota.Key) []quota.Snapshot {
		out := make([]quota.Snapshot, 0, len(polled))
		for _, ac := range polled {
			var es []quota.Entry
			for _, res := range resources {
				for _, pos := range ac.byRes[res] {
					es = append(es, ac.ledger[pos])
				}
			}
			for _, k := range series {
				i, ok := r.index[k]
				if ok && k.Account == ac.name && r.sers[i].pos >= 0 && !slices.Contains(resources, k.Resource) {
					es = append(es, ac.ledger[r.sers[i].pos])
				}
			}
			out = append(out, quota.Snapshot{Account: ac.name, Time: now, Service: ac.service, Entries: es})
		}
		return out
	}
	cy := replay.Cycle{
		Now: now, Snapshots: snaps, Ledgers: ledgers, Failed: failed, Projects: r.projects,
		History: r.history, Trend: r.trend, Items: r.listItems,
	}
	if r.opt.evaluateAll {
		cy.Ledgers, cy.Trend = nil, nil
	} else {
		cy.Partial = true
		for _, i := range r.ended {
			cy.Gone = append(cy.Gone, r.sers[i].key)
		}
	}
	res := r.sim.Step(cy)
	// A series' states end once its account is evaluated.
	r.ended = slices.DeleteFunc(r.ended, func(i int) bool {
		a := r.accts[r.sers[i].acct]
		_, f := failed[a.name]
		return a.polledAt == t && !f
	})
	r.record(now, &res, changed)
	if r.opt.afterPoll != nil {
		r.opt.afterPoll(r)
	}
}

// history returns the samples of the last day of a series a forecasting
// rule watches, as observed at each of its account's polls; nil for the
// others (their events then show no trend) and for a flat usage, whose
// slope is 0 either way. The slice is reused by the next call.
func (r *run) history(k quota.Key) []quota.Sample {
	i, ok := r.index[k]
	if !ok {
		return nil
	}
	s := &r.sers[i]
	if !s.forecast || len(s.pts) == 0 || flat(s.pts) {
		r.dropHistory(s)
		return nil
	}
	ac := r.accts[s.acct]
	lo, hi := max(ms(r.now)-forecastWindow.Milliseconds(), s.first), min(ms(r.now), s.last)
	base := ac.npolls - int64(len(ac.pollMs))
	if s.hc == nil || s.hnext < base || lo < s.hlo {
		return r.rebuildHistory(s, ac, lo, hi)
	}
	// The window slid by the polls since the last call: add those, drop
	// what fell out.
	for x := s.hnext; x < ac.npolls; x++ {
		tm := ac.pollMs[x-base]
		if tm < lo || tm > hi {
			continue
		}
		j := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > tm }) - 1
		if j >= 0 {
			s.hc = append(s.hc, quota.Sample{Time: ac.polls[x-base], Quota: s.pts[j].q})
			r.cached++
		}
	}
	s.hnext, s.hlo = ac.npolls, lo
	for s.hoff < len(s.hc) && s.hc[s.hoff].Time.UnixMilli() < lo {
		s.hoff++
	}
	if s.hoff > len(s.hc)/2 {
		r.cached -= s.hoff
		s.hc = append(s.hc[:0], s.hc[s.hoff:]...)
		s.hoff = 0
	}
	return s.hc[s.hoff:len(s.hc):len(s.hc)]
}

// maxCached bounds the samples the forecast caches hold, all series
// together (about 72 MB); beyond it, samples are built at each call.
const maxCached = 1 << 20

// rebuildHistory builds the samples of s in [lo,hi] from its change
// points, and keeps them for the next call when the budget allows.
func (r *run) rebuildHistory(s *ser, ac *acct, lo, hi int64) []quota.Sample {
	r.dropHistory(s)
	a := sort.Search(len(ac.pollMs), func(i int) bool { return ac.pollMs[i] >= lo })
	b := sort.Search(len(ac.pollMs), func(i int) bool { return ac.pollMs[i] > hi })
	out := r.buf[:0]
	keep := r.cached+(b-a) <= maxCached
	if keep {
		out = make([]quota.Sample, 0, 2*(b-a))
	}
	j := 0
	if a < b {
		j = max(sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > ac.pollMs[a] })-1, 0)
	}
	for x := a; x < b; x++ {
		tm := ac.pollMs[x]
		for j+1 < len(s.pts) && s.pts[j+1].t <= tm {
			j++
		}
		if s.pts[j].t > tm {
			continue // not observed yet
		}
		out = append(out, quota.Sample{Time: ac.polls[x], Quota: s.pts[j].q})
	}
	if !keep {
		r.buf = out
		return out
	}
	s.hc, s.hoff, s.hlo = out, 0, lo
	s.hnext = ac.npolls
	r.cached += len(out)
	return out[:len(out):len(out)]
}

// trend returns the forecast trend of a series a forecasting rule watches:
// its samples as history returns them, kept up to date from one call to
// the next. A flat usage has a slope of 0 either way.
func (r *run) trend(k quota.Key) *rules.Trend {
	i, ok := r.inOrder(k)
	if !ok {
		if i, ok = r.index[k]; !ok {
			return nil
		}
		r.resync(i)
	}
	s := &r.sers[i]
	if !s.forecast || len(s.pts) == 0 {
		r.dropTrend(s)
		return nil
	}
	r.countTrend(s)
	ac := r.accts[s.acct]
	lo, hi := max(ms(r.now)-forecastWindow.Milliseconds(), s.first), min(ms(r.now), s.last)
	base := ac.npolls - int64(len(ac.pollMs))
	tr, from := s.tr, s.tnext
	if tr == nil || s.tnext < base || lo < s.tlo {
		r.dropTrend(s)
		tr, from = &r.scratch, base
		if r.trended+len(ac.pollMs) <= maxTrended {
			tr = &rules.Trend{}
			s.tr = tr
		}
		tr.Reset()
	}
	// The polls since the last call; Growth drops what left the window.
	j := -1
	for x := from; x < ac.npolls; x++ {
		tm := ac.pollMs[x-base]
		if tm < lo || tm > hi {
			continue
		}
		if j < 0 {
			// Usually the newest point: look back from it.
			j = len(s.pts) - 1
			for j >= 0 && s.pts[j].t > tm {
				j--
			}
		}
		for j+1 < len(s.pts) && s.pts[j+1].t <= tm {
			j++
		}
		if j >= 0 && s.pts[j].t <= tm {
			tr.Add(ac.polls[x-base], s.pts[j].q.Usage)
		}
	}
	if tr == s.tr {
		s.tnext, s.tlo = ac.npolls, lo
		r.countTrend(s)
	}
	return tr
}

// countTrend brings run.trended up to date with the samples the trend of
// s holds now (its Growth drops the old ones).
func (r *run) countTrend(s *ser) {
	n := 0
	if s.tr != nil {
		n = s.tr.Len()
	}
	r.trended += n - s.tlen
	s.tlen = n
}

// inOrder finds a series of this cycle's snapshots from the entry after
// the last one found in its account.
func (r *run) inOrder(k quota.Key) (int, bool) {
	for _, ac := range r.accts {
		if ac.name != k.Account {
			continue
		}
		for x := ac.next; x < min(ac.next+16, len(ac.order)); x++ {
			if e := &ac.ledger[ac.order[x]]; e.Project == k.Project && e.Resource == k.Resource {
				ac.next = x + 1
				return ac.members[ac.order[x]], true
			}
		}
		return 0, false
	}
	return 0, false
}

// resync puts the account's next after series i, found otherwise.
func (r *run) resync(i int) {
	s := &r.sers[i]
	if ac := r.accts[s.acct]; s.pos >= 0 {
		if x, ok := slices.BinarySearch(ac.order, s.pos); ok {
			ac.next = x + 1
		}
	}
}

// maxTrended bounds the samples the trends hold, all series together
// (16 bytes each); beyond it, a trend is built at each call.
const maxTrended = 4 << 20

// dropTrend forgets the trend of s.
func (r *run) dropTrend(s *ser) {
	s.tr = nil
	r.countTrend(s)
}

// dropHistory forgets the cached samples of s.
func (r *run) dropHistory(s *ser) {
	r.cached -= len(s.hc) - s.hoff
	s.hc, s.hoff = nil, 0
}

func flat(pts []point) bool {
	for _, p := range pts[1:] {
		if p.q.Usage != pts[0].q.Usage {
			return false
		}
	}
	return true
}

// record takes what one cycle told and did into the report.
func (r *run) record(now time.Time, res *replay.Result, changed []int) {
	for _, err := range res.Errors {
		r.errors[err.Error()] = true
	}
	for i := range res.Events {
		ev := &res.Events[i]
		targets := ev.Notify
		if len(targets) == 0 {
			targets = r.opt.Notifiers
		}
		for _, n := range targets {
			if r.notifiers[n] {
				r.messages[[2]string{n, string(ev.Kind)}]++
			}
		}
		switch {
		case ev.Kind == quota.EventFiring && !ev.Repeat:
			if _, open := r.open[ev.Key]; open {
				continue
			}
			r.open[ev.Key] = len(r.rep.Incidents)
			if i, ok := r.index[quota.Key{Account: ev.Key.Account, Project: ev.Key.Project, Resource: ev.Key.Resource}]; ok {
				r.openSer[i] = append(r.openSer[i], len(r.rep.Incidents))
			}
			r.rep.Incidents = append(r.rep.Incidents, Incident{
				Rule: ev.Key.Rule, Account: ev.Key.Account, Project: ev.Key.Project, ProjectName: ev.ProjectName,
				Resource: ev.Key.Resource, Opened: now, PeakRatio: ev.Quota.Ratio(),
			})
		case ev.Kind == quota.EventResolved:
			if x, open := r.open[ev.Key]; open {
				t := now
				r.rep.Incidents[x].Resolved = &t
				delete(r.open, ev.Key)
				if i, ok := r.index[quota.Key{Account: ev.Key.Account, Project: ev.Key.Project, Resource: ev.Key.Resource}]; ok {
					r.openSer[i] = slices.DeleteFunc(r.openSer[i], func(y int) bool { return y == x })
					if len(r.openSer[i]) == 0 {
						delete(r.openSer, i)
					}
				}
			}
		}
	}
	// An open incident's peak moves only when its series changes.
	for _, i := range changed {
		for _, x := range r.openSer[i] {
			in := &r.rep.Incidents[x]
			in.PeakRatio = max(in.PeakRatio, r.sers[i].q.Ratio())
		}
	}
	for _, m := range res.Moves {
		r.rep.Moves = append(r.rep.Moves, Move{Time: now, Move: m.Move, DryRun: m.DryRun})
		if m.DryRun {
			continue
		}
		it := m.Item
		it.Project = m.To
		r.moved[itemID{m.Kind, m.ItemID}] = item{Item: it, account: m.Account}
	}
	for _, f := range res.Refusals {
		r.refusals[f.Reason]++
	}
}

// finish sorts the report's counts.
func (r *run) finish() {
	r.rep.Items = fmt.Sprintf("%d item lists: %d as listed at the time, %d from a later listing (none was kept from before), "+
		"%d from the action journal only (its moved items), %d with no items known",
		r.listedAtTime+r.listedLater+r.listedJournal+r.listedNone, r.listedAtTime, r.listedLater, r.listedJournal, r.listedNone)
	for reason, n := range r.refusals {
		r.rep.Refusals = append(r.rep.Refusals, Refusal{Reason: reason, Count: n})
	}
	slices.SortFunc(r.rep.Refusals, func(a, b Refusal) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason)) })
	for k, n := range r.messages {
		r.rep.Messages = append(r.rep.Messages, Messages{Notifier: k[0], Kind: quota.EventKind(k[1]), Count: n})
	}
	slices.SortFunc(r.rep.Messages, func(a, b Messages) int {
		return cmp.Or(cmp.Compare(a.Notifier, b.Notifier), cmp.Compare(a.Kind, b.Kind))
	})
	for e := range r.errors {
		r.rep.Errors = append(r.rep.Errors, e)
	}
	slices.Sort(r.rep.Errors)
	if r.rep.Incidents == nil {
		r.rep.Incidents = []Incident{}
	}
	if r.rep.Moves == nil {
		r.rep.Moves = []Move{}
	}
	if r.rep.Refusals == nil {
		r.rep.Refusals = []Refusal{}
	}
	if r.rep.Messages == nil {
		r.rep.Messages = []Messages{}
	}
}

func (r *run) report() *Report { return &r.rep }
