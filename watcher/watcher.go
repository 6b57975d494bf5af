// Package watcher runs quotawatch's cycle: poll every account's quotas,
// record them, evaluate the rules, plan and apply moves, and deliver the
// resulting notifications. It wires client, store, rules and notify
// together through small interfaces declared here, and adds the scheduler,
// configuration reload and the HTTP endpoints of the daemon.
package watcher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/quotawatch/quotawatch/client"
	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/ha"
	"github.com/quotawatch/quotawatch/internal/smallfile"
	"github.com/quotawatch/quotawatch/notify"
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// ServiceAccount is the account name of the cloud-wide project view that a
// service token gives.
const ServiceAccount = "service"

// Cloud is what the watcher needs of one account's Synnefo client.
type Cloud interface {
	Authenticate(ctx context.Context) (*client.Identity, error)
	QuotaEntries(ctx context.Context) ([]quota.Entry, error)
	Projects(ctx context.Context, f client.ProjectFilter) ([]client.Project, error)
	Items(ctx context.Context, kind quota.Kind, project string) ([]quota.Item, error)
	Item(ctx context.Context, kind quota.Kind, id string) (quota.Item, error)
	Reassign(ctx context.Context, it quota.Item, project string) error
	// UserCatalog maps user UUIDs to display names (e-mail addresses), for
	// the e-mail notifiers.
	UserCatalog(ctx context.Context, uuids []string) (map[string]string, error)
}

// ServiceCloud is what the watcher needs of a service-token client.
type ServiceCloud interface {
	ServiceProjectQuotas(ctx context.Context, projects ...string) (client.Quotas, error)
}

// Notifier delivers one notifier's due outbox events, in order, and
// reports what became of each to settle, before returning and as soon as
// it is known, so that a message sent is recorded before the next is
// tried. An event it does not report counts as not delivered.
type Notifier interface {
	Notify(ctx context.Context, pending []notify.Pending, settle notify.Settle)
}

var (
	_ Notifier = (*notify.Webhook)(nil)
	_ Notifier = (*notify.Bot)(nil)
	_ Notifier = (*notify.Email)(nil)
)

// Options configure a Watcher.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Progress, if set, is told what a cycle is doing as it goes: the
	// phase ("polling", "planning", "moving", "delivering") and, where it
	// counts, how many of how many are done. `once` and `plan` show it on a
	// terminal.
	Progress func(phase string, done, total int)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registry receives the daemon's metrics and is served on /metrics;
	// nil means a new private registry.
	Registry *prometheus.Registry
	// HTTPClient, when set, is used for every outbound call (tests, CA files).
	HTTPClient *http.Client
	// NotifyRate paces messages toward Slack; 0 means notify's default.
	NotifyRate float64
	// RetryBase and RetryMax set the backoff of a failed notification
	// that Slack gave no Retry-After: RetryBase doubling per previous
	// attempt, capped at RetryMax; zero means 5s and a minute. The outbox
	// timer retries it then, between cycles.
	RetryBase, RetryMax time.Duration
	// Sleep waits out Slack's Retry-After during a delivery: d, or until
	// ctx ends and then its error. Nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// ReadOnly plans without changing anything: no store writes, no moves,
	// no messages (quotawatch plan).
	ReadOnly bool
	// Store, when set, is used instead of opening Config.Store.Path.
	Store *store.Store
	// SettleWindow, when set, replaces the configuration's settle_window.
	SettleWindow time.Duration

	// NewCloud builds the client of one configured account; nil means the
	// Synnefo client, with HTTPClient, the CA file and the shared request
	// budget. It is called for every account at New and at every Reload.
	NewCloud func(a config.Account) (Cloud, error)
	// NewServiceCloud builds a client of the service view for each service
	// token of the configuration: it is given the cloud section with
	// ServiceTokens holding that one token (and ServiceToken it); nil means
	// the Synnefo client.
	NewServiceCloud func(c config.Cloud) (ServiceCloud, error)
	// NewNotifier builds one configured notifier; nil means notify's
	// webhook, bot or e-mail notifier. threads keeps a bot's incident
	// threads in the store.
	NewNotifier func(n config.Notifier, threads notify.Threads) (Notifier, error)
	// NewCoordinator, with ha configured, joins the election instead of
	// ha.New; st is the store whose writes it must share.
	NewCoordinator func(self ha.Member, st *store.Store) (Coordinator, error)
	// Member, when set, is this instance as the election names it instead
	// of host/pid.
	Member *ha.Member
}

// Watcher runs cycles. It is safe for one cycle at a time; Run serialises
// them, and Reload swaps the configuration between cycles.
type Watcher struct {
	progressFn func(phase string, done, total int)
	beforeBulk func() // RunOptions.BeforeBulkRecord
	log        *slog.Logger
	now        func() time.Time
	readOnly   bool
	store      *store.Store
	ownStore   bool
	metrics    *metrics
	registry   *prometheus.Registry
	httpc      *http.Client
	nrate      float64
	// The notifications' retry backoff, and the wait for a rate limit.
	retryBase, retryMax time.Duration
	sleep               func(context.Context, time.Duration) error
	// outbox tells Run when a delivery left the outbox due next.
	outbox *outboxTimer
	// patience is Options.SettleWindow.
	patience time.Duration

	newCloud        func(config.Account) (Cloud, error)
	newServiceCloud func(config.Cloud) (ServiceCloud, error)
	newNotifier     func(config.Notifier, notify.Threads) (Notifier, error)

	mu  sync.Mutex          // held for a whole cycle (and a reconcile)
	env atomic.Pointer[env] // the configuration-derived parts; swapped by Reload

	names *nameCache
	drift *driftMarks
	// tokenExpiry is quotawatch_token_expiry_timestamp_seconds.
	tokenExpiry *prometheus.GaugeVec
	hist        *window
	histMu      sync.Mutex
	retained    time.Time // last retention pass
	// unsettled is set from the moment an intent is journaled until a
	// reconcile finds no move open; the cycle reconciles only then.
	unsettled bool
	histNow   time.Time // the cycle's time, for the window
	states    map[quota.InstanceKey]quota.Instance
	accts     map[string]quota.AccountState
	lastRep   *Report
	active    []quota.Instance // instances not ok after the last cycle, for the status page
	silences  []store.Silence  // as last read, for the status page
	statusMu  sync.RWMutex     // guards lastRep, active and silences

	// With ha: the election, this instance in it, and the takeovers Run
	// starts a cycle for.
	coord     Coordinator
	self      ha.Member
	takeovers chan struct{}
	slack     struct {
		mu   sync.Mutex
		ctx  context.Context // Run's
		stop func()
	}
}

// env is everything built from one configuration.
type env struct {
	cfg      *config.Config
	engine   *rules.Engine
	accounts []*account
	// services are the service view's clients, one per component token;
	// the view is the union of what they see.
	services []serviceView
	// admin is the project admin's client (cloud.admin_token), or nil.
	admin AdminCloud
	// notifiers by name; notifier holds the names in config order.
	notifiers map[string]Notifier
	notifier  []string
}

// account is one configured cloud account.
type account struct {
	name  string
	cloud Cloud
	user  string // UUID, known after the first authentication
	// expires is when its token expires, as last authenticated.
	expires time.Time
	// sessKey says for which endpoint and token a token answer is kept;
	// kept is set once this process kept one or resumed one.
	sessKey string
	kept    bool
}

// New builds a Watcher from a loaded configuration: it opens the store
// (unless one is given), builds the clients and notifiers, and loads the
// persisted rule and account states.
func New(ctx context.Context, o Options) (*Watcher, error) {
	if o.Config == nil {
		return nil, errors.New("watcher: no configuration")
	}
	w := &Watcher{
		log:        o.Logger,
		now:        o.Now,
		progressFn: o.Progress,
		readOnly:   o.ReadOnly,
		store:      o.Store,
		httpc:      o.HTTPClient,
		nrate:      o.NotifyRate,
		retryBase:  o.RetryBase,
		retryMax:   o.RetryMax,
		sleep:      o.Sleep,
		outbox:     newOutboxTimer(),
		patience:   o.SettleWindow,
		names:      newNameCache(),
		drift:      newDriftMarks(),
		unsettled:  true,

		newCloud:        o.NewCloud,
		newServiceCloud: o.NewServiceCloud,
		newNotifier:     o.NewNotifier,
	}
	w.hist = newWindow(w.stored)
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.retryBase <= 0 {
		w.retryBase = notify.DefaultRetryBase
	}
	if w.retryMax <= 0 {
		w.retryMax = max(notify.DefaultRetryMax, w.retryBase)
	}
	w.registry = o.Registry
	if w.registry == nil {
		w.registry = prometheus.NewRegistry()
	}
	w.metrics = newMetrics(w.registry, w.names.name)
	w.tokenExpiry = newTokenGauge(w.registry)
	if w.store == nil {
		st, err := store.Open(o.Config.Store.Path, store.Options{ReadOnly: o.ReadOnly, Now: w.now, Logger: w.log})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		w.store, w.ownStore = st, true
	}
	// The notifiers keep their threads in the store, so it comes first.
	e, err := w.build(o.Config)
	if err != nil {
		w.Close()
		return nil, err
	}
	w.env.Store(e)
	w.metrics.loaded(o.Config, w.now())
	if err := w.newCoordinator(o); err != nil {
		w.Close()
		return nil, fmt.Errorf("ha: %w", err)
	}
	if err := w.loadState(); err != nil {
		w.Close()
		return nil, err
	}
	w.letGo()
	return w, nil
}

// Close releases the store if the watcher opened it.
func (w *Watcher) Close() error {
	if w.coord != nil {
		_ = w.coord.Close()
		w.coord = nil
	}
	if w.ownStore && w.store != nil {
		err := w.store.Close()
		w.store = nil
		return err
	}
	return nil
}

// Store returns the watcher's store.
func (w *Watcher) Store() *store.Store { return w.store }

func (w *Watcher) loadState() error {
	insts, err := w.store.Instances()
	if err != nil {
		return fmt.Errorf("load rule states: %w", err)
	}
	w.states = make(map[quota.InstanceKey]quota.Instance, len(insts))
	for _, in := range insts {
		w.states[in.Key] = in
	}
	accts, err := w.store.Accounts()
	if err != nil {
		return fmt.Errorf("load account states: %w", err)
	}
	w.accts = make(map[string]quota.AccountState, len(accts))
	for _, a := range accts {
		w.accts[a.Account] = a
	}
	projects, err := w.store.Projects()
	if err != nil {
		return fmt.Errorf("load project names: %w", err)
	}
	w.names.seed(projects)
	return nil
}

// build creates clients, notifiers and the rule engine for a configuration.
func (w *Watcher) build(cfg *config.Config) (*env, error) {
	newCloud, newServiceCloud, err := w.cloudBuilders(cfg)
	if err != nil {
		return nil, err
	}
	e := &env{
		cfg:       cfg,
		engine:    rules.NewEngine(cfg.Rules),
		notifiers: map[string]Notifier{},
	}
	for _, a := range cfg.Cloud.Accounts {
		c, err := newCloud(a)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", a.Name, err)
		}
		acc := &account{name: a.Name, cloud: c}
		if tok := a.Token.Reveal(); tok != "" {
			acc.sessKey = sessionKey(cfg.Cloud.AuthURL, tok)
			w.resumeSession(acc, w.now().UTC())
		}
		e.accounts = append(e.accounts, acc)
	}
	if cfg.Cloud.AdminToken.IsSet() {
		c, err := w.adminCloud(cfg)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		e.admin = c
	}
	for _, st := range cfg.Cloud.Services() {
		one := cfg.Cloud
		one.ServiceToken, one.ServiceTokens = st.Token, []config.ServiceToken{st}
		c, err := newServiceCloud(one)
		if err != nil {
			return nil, fmt.Errorf("service token %s: %w", componentLabel(st.Component), err)
		}
		e.services = append(e.services, serviceView{component: st.Component, cloud: c})
	}
	newNotifier := w.newNotifier
	if newNotifier == nil {
		newNotifier = func(n config.Notifier, threads notify.Threads) (Notifier, error) {
			if n.Email != nil {
				return w.emailNotifier(e, n)
			}
			return w.slackNotifier(cfg, n, threads)
		}
	}
	for _, n := range cfg.Notifiers {
		nt, err := newNotifier(n, storeThreads{st: w.store, notifier: n.Name})
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", n.Name, err)
		}
		e.notifiers[n.Name] = nt
		e.notifier = append(e.notifier, n.Name)
	}
	return e, nil
}

// cloudBuilders returns the constructors of the account and service
// clients: the given ones, else Synnefo clients sharing one HTTP client
// and one request budget.
func (w *Watcher) cloudBuilders(cfg *config.Config) (func(config.Account) (Cloud, error), func(config.Cloud) (ServiceCloud, error), error) {
	newCloud, newServiceCloud := w.newCloud, w.newServiceCloud
	if newCloud != nil && newServiceCloud != nil {
		return newCloud, newServiceCloud, nil
	}
	httpc := w.httpc
	if httpc == nil && cfg.Cloud.CAFile != "" {
		c, err := caClient(cfg.Cloud.CAFile, cfg.Cloud.Timeout)
		if err != nil {
			return nil, nil, err
		}
		httpc = c
	}
	// One request budget for every account and the service view together.
	limiter := rate.NewLimiter(rate.Limit(cfg.Cloud.RequestsPerSecond), max(1, int(cfg.Cloud.RequestsPerSecond)))
	if newCloud == nil {
		newCloud = func(a config.Account) (Cloud, error) {
			cc := w.clientConfig(cfg, httpc, limiter, a.Name, a.Token.Reveal(), false)
			cc.TokenSource = tokenSource(a)
			return client.New(cc)
		}
	}
	if newServiceCloud == nil {
		newServiceCloud = func(c config.Cloud) (ServiceCloud, error) {
			cc := w.clientConfig(cfg, httpc, limiter, ServiceAccount, c.ServiceToken.Reveal(), true)
			if len(c.ServiceTokens) == 1 {
				cc.Component = c.ServiceTokens[0].Component
			}
			return client.New(cc)
		}
	}
	return newCloud, newServiceCloud, nil
}

// slackNotifier is the default NewNotifier: an incoming webhook if the
// notifier has a webhook URL, else a bot.
func (w *Watcher) slackNotifier(cfg *config.Config, n config.Notifier, threads notify.Threads) (Notifier, error) {
	opt := notify.Options{
		HTTPClient: w.httpc, Now: w.now, Logger: w.log.With("notifier", n.Name),
		RetryBase: w.retryBase, RetryMax: w.retryMax, Sleep: w.sleep,
		DigestAfter: n.DigestAfter, StatusURL: cfg.HTTP.ExternalURL,
	}
	if w.nrate > 0 {
		opt.Rate = rate.Limit(w.nrate)
	}
	s := n.Slack
	if u := s.WebhookURL.Reveal(); u != "" {
		return notify.NewWebhook(n.Name, u, opt), nil
	}
	return notify.NewBot(n.Name, s.Token.Reveal(), s.Channel, s.APIURL, threads, opt), nil
}

func (w *Watcher) clientConfig(cfg *config.Config, httpc *http.Client, limiter *rate.Limiter, name, token string, service bool) client.Config {
	return client.Config{
		AuthURL:    cfg.Cloud.AuthURL,
		Token:      token,
		Service:    service,
		HTTPClient: httpc,
		Timeout:    cfg.Cloud.Timeout,
		Limiter:    limiter,
		Logger:     w.log.With("account", name),
		Observe:    w.metrics.observeAPI,
		// Request durations are measured on the real clock, not the
		// watcher's (which tests freeze).
	}
}

// Reload builds everything that depends on the configuration from cfg and
// swaps it in between cycles. On error the running configuration stays.
func (w *Watcher) Reload(cfg *config.Config) error {
	e, err := w.build(cfg)
	if err != nil {
		return err
	}
	// A running cycle keeps the configuration it started with; the next
	// one takes this. Reload never waits for a cycle.
	w.env.Store(e)
	w.metrics.known(cfg)
	return nil
}

// caClient is an HTTP client that trusts the PEM bundle in file instead of
// the system's roots.
func caClient(file string, timeout time.Duration) (*http.Client, error) {
	pem, err := smallfile.Read(file)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate found", file)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// progress tells Options.Progress what the cycle is doing, if it listens.
func (w *Watcher) progress(phase string, done, total int) {
	if w.progressFn != nil {
		w.progressFn(phase, done, total)
	}
}
