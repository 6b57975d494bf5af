package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quotawatch/quotawatch/internal/smallfile"
	"github.com/quotawatch/quotawatch/rules"
)

// Defaults applied to options the file leaves out.
const (
	// DefaultSchedule polls every five minutes.
	DefaultSchedule = "@every 5m"
	// DefaultTimeout bounds each API request.
	DefaultTimeout = 30 * time.Second
	// DefaultRequestsPerSecond is the request budget towards the cloud.
	DefaultRequestsPerSecond = 10.0
	// DefaultStoreDir holds the store when systemd sets no STATE_DIRECTORY.
	DefaultStoreDir = "/var/lib/quotawatch"
	// DefaultStoreFile is the store's file name inside its directory.
	DefaultStoreFile = "quotawatch.db"
	// DefaultRetention is how long history is kept.
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultListen is the HTTP listener's address.
	DefaultListen = "127.0.0.1:9457"
	// DefaultMaxActionsPerCycle caps the moves of one cycle.
	DefaultMaxActionsPerCycle = 10
	// DefaultSettleWindow is how long a move whose answer was lost may
	// still land: longer than any cloud's processing of a reassign.
	DefaultSettleWindow = 15 * time.Minute
	// DefaultTokenWarning is how long before a token expires it is warned about.
	DefaultTokenWarning = 7 * 24 * time.Hour
	// DefaultSlackAPIURL is the base of Slack's Web API.
	DefaultSlackAPIURL = "https://slack.com/api/"
	// DefaultDigestAfter is how many incidents of one rule may open (or
	// resolve) in one cycle before a notifier groups them into a digest.
	DefaultDigestAfter = 5
)

// ServiceAccount is the account name under which the cloud-wide view of the
// service token is recorded; no configured account may use it.
const ServiceAccount = "service"

// Config is a loaded and fully validated configuration file (docs/design.md#configuration).
// Relative file paths in it are already resolved, secrets already read.
type Config struct {
	// File is the absolute path the configuration was loaded from.
	File string
	// Cloud says how to reach the Synnefo cloud and as whom.
	Cloud Cloud
	// Schedule is the polling schedule, a robfig/cron spec that
	// ParseSchedule accepts (validated).
	Schedule string
	// Store locates the history database.
	Store Store
	// HTTP configures the metrics/health/status listener.
	HTTP HTTP
	// DryRun plans and reports moves without applying any.
	DryRun bool
	// RequireApproval makes every rule's moves proposals (a rule may also
	// ask for it alone); ApprovalTTL is how long a proposal waits (0: the
	// default, see ProposalTTL).
	RequireApproval bool
	ApprovalTTL     time.Duration
	// MaxActionsPerCycle caps the moves applied in one cycle (0: none).
	MaxActionsPerCycle int
	// DigestAfter is the most incidents of one rule that open (or resolve)
	// in one cycle and are still told one by one; more become one digest
	// message. A notifier may override it.
	DigestAfter int
	// SettleWindow is how long a move whose outcome is unknown, and whose
	// item is still in its source, is waited for before it is called
	// failed (interrupted).
	SettleWindow time.Duration
	// Notifiers are the Slack and e-mail destinations, in file order.
	Notifiers []Notifier
	// Rules are the compiled rules, in file order.
	Rules []*rules.Rule
	// HA, when set, makes this instance one of several that elect a leader
	// through etcd; nil without an `ha:` section.
	HA *HA
}

// Cloud is the `cloud:` section.
type Cloud struct {
	// AuthURL is the identity endpoint (an absolute http or https URL).
	AuthURL string
	// Accounts are the users whose quotas are polled and whose items may
	// be moved; names are unique and never "service".
	Accounts []Account
	// ServiceToken, when set, adds the cloud-wide project view under the
	// account name "service" (alerts only).
	ServiceToken Secret
	// ServiceTokens are component tokens (service_tokens): the service
	// view is the union of what each sees. Only one of ServiceToken and
	// ServiceTokens is set.
	ServiceTokens []ServiceToken
	// AdminToken is a project admin's token (a user listed in
	// ASTAKOS_PROJECT_ADMINS), required by raise_limit rules: it submits
	// and approves modification applications.
	AdminToken Secret
	// Timeout bounds each API request.
	Timeout time.Duration
	// CAFile is the absolute path of a PEM bundle to trust instead of the
	// system roots, or "".
	CAFile string
	// RequestsPerSecond is the one request budget shared by polling and
	// acting.
	RequestsPerSecond float64
	// TokenWarning is how long before a token expires a token_expiring
	// event goes out.
	TokenWarning time.Duration
}

// Account is one user of the cloud.
type Account struct {
	// Name identifies the account in rules, metrics, the store and messages.
	Name string
	// Token is the user's API token.
	Token Secret
	// TokenFile is the absolute path of the file Token was read from, or
	// "" (inline or environment): read again when the cloud refuses the
	// token, so that a renewed token needs no restart.
	TokenFile string
}

// Store is the `store:` section.
type Store struct {
	// Path is the absolute path of the bbolt file.
	Path string
	// Retention is how long history is kept.
	Retention time.Duration
}

// HTTP is the `http:` section.
type HTTP struct {
	// Listen is the host:port of the HTTP listener; "" disables it.
	Listen string
	// ExternalURL is the address people reach the status page at (an
	// absolute http or https URL), for links in messages; "" for none.
	ExternalURL string
}

// Notifier is one named destination: Slack, or e-mail when Email is set.
type Notifier struct {
	// Name is what rules use in `notify:`.
	Name string
	// Slack configures the delivery of a Slack notifier.
	Slack Slack
	// Email, when set, makes this an e-mail notifier (and Slack is zero).
	Email *Email
	// DigestAfter overrides Config.DigestAfter for this notifier; the
	// loaded value is always the one in effect.
	DigestAfter int
}

// Slack is either an incoming webhook (WebhookURL set) or a bot token with a
// channel (Token and Channel set); never both.
type Slack struct {
	// WebhookURL is the incoming-webhook URL, a secret.
	WebhookURL Secret
	// Token is the bot token used with the Web API.
	Token Secret
	// Channel is where a bot token posts (an id or #name).
	Channel string
	// APIURL is the base URL of the Web API, ending in "/"; method names
	// are appended to it.
	APIURL string
	// AppToken (xapp-...) opens a Socket Mode connection, through which
	// the Approve and Reject buttons of proposals reach the daemon with no
	// inbound port; Approvers are the Slack user ids allowed to press them.
	AppToken  Secret
	Approvers []string
}

// IsWebhook reports whether the notifier posts through an incoming webhook
// (rather than through the Web API with a bot token).
func (s Slack) IsWebhook() bool { return s.WebhookURL.IsSet() }

// Options supplies the environment a configuration is loaded in; tests
// replace it, the daemon leaves it zero.
type Options struct {
	// LookupEnv reads environment variables (for *_env secrets, ${VAR} in
	// paths and $STATE_DIRECTORY); nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads *_file secrets and ca_file; nil means smallfile.Read
	// (regular files of at most 1 MiB).
	ReadFile func(string) ([]byte, error)
	// NoSecrets loads the configuration without reading any secret: for
	// the read-only commands, which need the store but no credential, so
	// that they run from a shell without the daemon's environment
	// (systemd's CREDENTIALS_DIRECTORY). Each secret given is set to a
	// placeholder that is no credential ([Secret.Unread]), and an unset
	// STATE_DIRECTORY in a path stands for DefaultStoreDir, where the
	// shipped unit's StateDirectory= puts the store.
	NoSecrets bool
}

func (o Options) withDefaults() Options {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = smallfile.Read
	}
	return o
}

// Error is one problem found in a configuration file. Load and Parse return
// all problems of a file joined with errors.Join, in line order.
type Error struct {
	// File is the file name as given to Load or Parse.
	File string
	// Line is the 1-based line of the offending key or value; 0 when the
	// problem has no line (such as an unreadable file).
	Line int
	// Msg describes the problem; it never contains a secret.
	Msg string
	// Err is the underlying error, if any (a *rules.Error, a file-system
	// error, ...).
	Err error
}

// Error renders the problem as FILE:LINE: message.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Load reads, parses and validates the configuration file at path.
func Load(path string, opt Options) (*Config, error) {
	opt = opt.withDefaults()
	data, err := opt.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("read configuration: %v", err), Err: err}
	}
	return Parse(path, data, opt)
}

// Parse parses and validates a configuration. file names the problems in the
// returned error and anchors relative paths (*_file, ca_file, store.path),
// which are taken relative to its folder.
func Parse(file string, data []byte, opt Options) (*Config, error) {
	opt = opt.withDefaults()
	abs := ""
	dir, err := os.Getwd()
	if file != "" {
		if abs, err = filepath.Abs(file); err == nil {
			dir = filepath.Dir(abs)
		}
	}
	name := file
	if name == "" {
		name = "config"
	}
	if err != nil {
		return nil, &Error{File: name, Msg: fmt.Sprintf("resolve path: %v", err), Err: err}
	}
	p := &parser{file: name, dir: dir, opt: opt}
	cfg := p.parse(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	cfg.File = abs
	return cfg, nil
}

// parser collects every problem of one file while walking its YAML tree.
type parser struct {
	file     string
	dir      string
	opt      Options
	problems []*Error
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.problems = append(p.problems, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) wrapf(line int, err error, format string, args ...any) {
	p.problems = append(p.problems, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...), Err: err})
}

// err returns every problem in line order (stable, so problems on one line
// keep the order they were found in), or nil.
func (p *parser) err() error {
	if len(p.problems) == 0 {
		return nil
	}
	sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
	errs := make([]error, len(p.problems))
	for i, e := range p.problems {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// document decodes the single YAML document of the file.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(1, "configuration is empty")
			return nil
		}
		p.syntax(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errorf(extra.Line, "only one YAML document is allowed")
		return nil
	} else if !errors.Is(err, io.EOF) {
		p.syntax(err)
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorf(1, "configuration is empty")
		return nil
	}
	return doc.Content[0]
}
