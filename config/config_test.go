package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/rules"
)

// testEnv is the environment every table test loads with, so nothing depends
// on the machine's own variables.
func testEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"ALICE_TOKEN":           "alice-env-token",
		"EMPTY_TOKEN":           "",
		"CREDENTIALS_DIRECTORY": absTestdata(t, "secrets"),
	}
}

func absTestdata(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", rel))
	require.NoError(t, err)
	return p
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestLoadBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string // $DIR stands for the absolute path of testdata
	}{
		{"invalid-yaml-syntax.yaml", `testdata/invalid-yaml-syntax.yaml:6: invalid YAML: did not find expected ',' or ']'`},
		{"invalid-empty.yaml", `testdata/invalid-empty.yaml:1: configuration is empty`},
		{"invalid-multi-doc.yaml", `testdata/invalid-multi-doc.yaml:6: only one YAML document is allowed`},
		{"invalid-top-type.yaml", `testdata/invalid-top-type.yaml:1: configuration: expected a mapping, got a list`},
		{"invalid-unknown-key.yaml", `testdata/invalid-unknown-key.yaml:6: unknown key "shedule"`},
		{"invalid-unknown-key-nested.yaml", `testdata/invalid-unknown-key-nested.yaml:5: cloud.accounts[0]: unknown key "tokne"`},
		{"invalid-duplicate-key.yaml", `testdata/invalid-duplicate-key.yaml:7: duplicate key "dry_run" (first on line 6)`},
		{"invalid-section-type.yaml", `testdata/invalid-section-type.yaml:6: store: expected a mapping, got "/var/lib/quotawatch"`},
		{"invalid-missing-cloud.yaml", `testdata/invalid-missing-cloud.yaml:1: cloud is required`},
		{"invalid-auth-url-missing.yaml", `testdata/invalid-auth-url-missing.yaml:1: cloud: auth_url is required`},
		{"invalid-auth-url.yaml", `testdata/invalid-auth-url.yaml:2: cloud.auth_url: must be an absolute http or https URL, got "accounts.example.org/identity/v2.0"`},
		{"invalid-no-accounts.yaml", `testdata/invalid-no-accounts.yaml:3: cloud: at least one account is required unless service_token is set`},
		{"invalid-raise-no-admin-token.yaml", `testdata/invalid-raise-no-admin-token.yaml:7: rules: raise-disk: raise_limit needs cloud.admin_token_file (a project admin's token)`},
		{"invalid-service-tokens-both.yaml", `testdata/invalid-service-tokens-both.yaml:4: cloud.service_tokens: only one of service_token (or service_token_file, service_token_env) and service_tokens may be set`},
		{"invalid-service-tokens-component.yaml", "testdata/invalid-service-tokens-component.yaml:4: cloud.service_tokens[0].component: unknown component \"nova\" (want astakos, cyclades or pithos)\n" +
			"testdata/invalid-service-tokens-component.yaml:6: cloud.service_tokens[1]: component is required"},
		{"invalid-accounts-type.yaml", `testdata/invalid-accounts-type.yaml:4: cloud.accounts: expected a list, got a mapping`},
		{"invalid-account-name.yaml", `testdata/invalid-account-name.yaml:4: cloud.accounts[0].name: account name "Alice" must match [a-z0-9_-]+`},
		{"invalid-account-name-missing.yaml", `testdata/invalid-account-name-missing.yaml:4: cloud.accounts[0]: name is required`},
		{"invalid-account-name-reserved.yaml", `testdata/invalid-account-name-reserved.yaml:4: cloud.accounts[0].name: "service" is reserved for the service token's view`},
		{"invalid-account-name-duplicate.yaml", `testdata/invalid-account-name-duplicate.yaml:6: cloud.accounts[1].name: duplicate account name "alice" (first on line 4)`},
		{"invalid-token-missing.yaml", `testdata/invalid-token-missing.yaml:4: cloud.accounts[0]: one of token, token_file or token_env is required`},
		{"invalid-token-two-forms.yaml", `testdata/invalid-token-two-forms.yaml:6: cloud.accounts[0].token_env: only one of token, token_file and token_env may be set`},
		{"invalid-token-type.yaml", `testdata/invalid-token-type.yaml:5: cloud.accounts[0].token: expected a string, got a list`},
		{"invalid-token-blank.yaml", `testdata/invalid-token-blank.yaml:5: cloud.accounts[0].token: is empty`},
		{"invalid-token-file-missing.yaml", `testdata/invalid-token-file-missing.yaml:5: cloud.accounts[0].token_file: no file of that name can be read (no such file or directory); the value is not shown in case it is a secret`},
		{"invalid-token-file-empty.yaml", `testdata/invalid-token-file-empty.yaml:5: cloud.accounts[0].token_file: file $DIR/secrets/empty.token is empty`},
		{"invalid-token-file-unset-var.yaml", `testdata/invalid-token-file-unset-var.yaml:5: cloud.accounts[0].token_file: environment variable UNSET_DIRECTORY is not set`},
		{"invalid-token-file-bad-var.yaml", `testdata/invalid-token-file-bad-var.yaml:5: cloud.accounts[0].token_file: unterminated ${ in "${CREDENTIALS_DIRECTORY/alice.token"`},
		{"invalid-token-env-unset.yaml", `testdata/invalid-token-env-unset.yaml:5: cloud.accounts[0].token_env: environment variable UNSET_TOKEN is not set`},
		{"invalid-token-env-empty.yaml", `testdata/invalid-token-env-empty.yaml:5: cloud.accounts[0].token_env: environment variable EMPTY_TOKEN is empty`},
		{"invalid-token-env-name.yaml", `testdata/invalid-token-env-name.yaml:5: cloud.accounts[0].token_env: must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), not hold the secret`},
		{"invalid-service-token-two-forms.yaml", `testdata/invalid-service-token-two-forms.yaml:7: cloud.service_token: only one of service_token, service_token_file and service_token_env may be set`},
		{"invalid-timeout-zero.yaml", `testdata/invalid-timeout-zero.yaml:6: cloud.timeout: must be positive, got 0s`},
		{"invalid-timeout-syntax.yaml", `testdata/invalid-timeout-syntax.yaml:6: cloud.timeout: invalid duration "30": use a number with a unit such as 30s, 5m, 12h or 7d`},
		{"invalid-rps-zero.yaml", `testdata/invalid-rps-zero.yaml:6: cloud.requests_per_second: must be positive, got 0`},
		{"invalid-rps-type.yaml", `testdata/invalid-rps-type.yaml:6: cloud.requests_per_second: expected a number, got "fast"`},
		{"invalid-ca-file-missing.yaml", `testdata/invalid-ca-file-missing.yaml:6: cloud.ca_file: open $DIR/secrets/nothere.pem: no such file or directory`},
		{"invalid-ca-file-not-pem.yaml", `testdata/invalid-ca-file-not-pem.yaml:6: cloud.ca_file: no PEM certificate found in $DIR/secrets/not-pem.txt`},
		{"invalid-schedule.yaml", `testdata/invalid-schedule.yaml:6: schedule: invalid schedule "*/5 * * *": expected 5 to 6 fields, found 4: [*/5 * * *]`},
		{"invalid-schedule-tz.yaml", `testdata/invalid-schedule-tz.yaml:6: schedule: time zone prefixes (TZ=, CRON_TZ=) are not supported: schedules run in UTC`},
		{"invalid-schedule-tz-nospace.yaml", `testdata/invalid-schedule-tz-nospace.yaml:6: schedule: time zone prefixes (TZ=, CRON_TZ=) are not supported: schedules run in UTC`},
		{"invalid-schedule-every-short.yaml", `testdata/invalid-schedule-every-short.yaml:6: schedule: @every needs an interval of at least 1s, got 500ms`},
		{"invalid-schedule-never.yaml", `testdata/invalid-schedule-never.yaml:6: schedule: schedule "0 0 30 2 *" never runs`},
		{"invalid-schedule-descriptor.yaml", `testdata/invalid-schedule-descriptor.yaml:6: schedule: invalid schedule "@fortnightly": unrecognized descriptor: @fortnightly`},
		{"invalid-retention-zero.yaml", `testdata/invalid-retention-zero.yaml:7: store.retention: must be positive, got 0d`},
		{"invalid-store-path-empty.yaml", `testdata/invalid-store-path-empty.yaml:7: store.path: must not be empty`},
		{"invalid-external-url.yaml", `testdata/invalid-external-url.yaml:7: http.external_url: must be an absolute http or https URL, got "quota.example.org"`},
		{"invalid-digest-after.yaml", strings.Join([]string{
			`testdata/invalid-digest-after.yaml:6: digest_after: must be 1 or more, got 0`,
			`testdata/invalid-digest-after.yaml:9: notifiers[0].digest_after: expected an integer, got "many"`,
		}, "\n")},
		{"invalid-listen.yaml", `testdata/invalid-listen.yaml:7: http.listen: must be host:port (such as 127.0.0.1:9457 or :9457) or "" to disable, got "localhost"`},
		{"invalid-dry-run.yaml", `testdata/invalid-dry-run.yaml:6: dry_run: expected true or false, got "yes"`},
		{"invalid-max-actions.yaml", `testdata/invalid-max-actions.yaml:6: max_actions_per_cycle: must be 0 or more, got -1`},
		{"invalid-max-actions-type.yaml", `testdata/invalid-max-actions-type.yaml:6: max_actions_per_cycle: expected an integer, got "1.5"`},
		{"invalid-settle-window.yaml", `testdata/invalid-settle-window.yaml:6: settle_window: must be positive, got 0s`},
		{"invalid-settle-window-type.yaml", `testdata/invalid-settle-window-type.yaml:6: settle_window: invalid duration "soon": use a number with a unit such as 30s, 5m, 12h or 7d`},
		{"invalid-notifier-name-duplicate.yaml", `testdata/invalid-notifier-name-duplicate.yaml:10: notifiers[1].name: duplicate notifier name "ops" (first on line 7)`},
		{"invalid-notifier-no-slack.yaml", `testdata/invalid-notifier-no-slack.yaml:7: notifiers[0]: slack or email is required`},
		{"invalid-slack-none.yaml", `testdata/invalid-slack-none.yaml:8: notifiers[0].slack: one of webhook_url, webhook_url_file, webhook_url_env (incoming webhook) or token, token_file, token_env (bot token, with channel) is required`},
		{"invalid-slack-both.yaml", `testdata/invalid-slack-both.yaml:10: notifiers[0].slack.token_file: set either webhook_url (incoming webhook) or token with channel, not both`},
		{"invalid-slack-no-channel.yaml", `testdata/invalid-slack-no-channel.yaml:8: notifiers[0].slack: channel is required with a bot token (quote a #name: "#ops")`},
		{"invalid-slack-channel-type.yaml", `testdata/invalid-slack-channel-type.yaml:10: notifiers[0].slack.channel: expected a string, got a list`},
		{"invalid-slack-webhook-channel.yaml", `testdata/invalid-slack-webhook-channel.yaml:10: notifiers[0].slack.channel: applies only to a bot token: an incoming webhook posts to its own channel`},
		{"invalid-slack-webhook-url.yaml", `testdata/invalid-slack-webhook-url.yaml:9: notifiers[0].slack.webhook_url: the webhook URL is not an absolute http or https URL`},
		{"invalid-slack-api-url.yaml", `testdata/invalid-slack-api-url.yaml:11: notifiers[0].slack.api_url: must be an absolute http or https URL, got "/api/"`},
		{"invalid-rule-notifier.yaml", `testdata/invalid-rule-notifier.yaml:14: rule full: notify: unknown notifier "opps"`},
		{"invalid-rule-no-notifiers.yaml", `testdata/invalid-rule-no-notifiers.yaml:10: rule full: notify: unknown notifier "ops"`},
		{"invalid-rule-when.yaml", `testdata/invalid-rule-when.yaml:9: rule typo: when: unknown name ratoi`},
		{"invalid-rules-type.yaml", `testdata/invalid-rules-type.yaml:7: rules: must be a list of rules`},
		{"invalid-rules-and-config.yaml", strings.Join([]string{
			`testdata/invalid-rules-and-config.yaml:7: cloud.timeout: invalid duration "soon": use a number with a unit such as 30s, 5m, 12h or 7d`,
			`testdata/invalid-rules-and-config.yaml:12: rule full: for: invalid duration "10x"`,
			`testdata/invalid-rules-and-config.yaml:13: rule full: notify: unknown notifier "ops"`,
			`testdata/invalid-rules-and-config.yaml:14: rule #2: must be a mapping`,
			`testdata/invalid-rules-and-config.yaml:15: dry_run: expected true or false, got "maybe"`,
		}, "\n")},
		{"invalid-merge.yaml", `testdata/invalid-merge.yaml:6: cloud.accounts[0]: << must merge a mapping or a list of mappings, got "just-a-string"`},
		{"invalid-rule-merge.yaml", `testdata/invalid-rule-merge.yaml:11: rule #2: <<: must merge a mapping or a list of mappings`},
		{"invalid-several.yaml", strings.Join([]string{
			`testdata/invalid-several.yaml:3: cloud.auth_url: must be an absolute http or https URL, got "ftp://accounts.example.org"`,
			`testdata/invalid-several.yaml:7: cloud.accounts[0].token_env: only one of token, token_file and token_env may be set`,
			`testdata/invalid-several.yaml:8: cloud.accounts[1].name: duplicate account name "alice" (first on line 5)`,
			`testdata/invalid-several.yaml:9: cloud.accounts[1].token_env: environment variable UNSET_TOKEN is not set`,
			`testdata/invalid-several.yaml:10: cloud.timeout: must be positive, got -5s`,
			`testdata/invalid-several.yaml:11: schedule: invalid schedule "@every 1x": failed to parse duration @every 1x: time: unknown unit "x" in duration "1x"`,
			`testdata/invalid-several.yaml:12: unknown key "colour"`,
			`testdata/invalid-several.yaml:14: store.retention: invalid duration "1w": use a number with a unit such as 30s, 5m, 12h or 7d`,
			`testdata/invalid-several.yaml:16: notifiers[0].name: notifier name "Ops" must match [a-z0-9_-]+`,
			`testdata/invalid-several.yaml:17: notifiers[0].slack: channel is required with a bot token (quote a #name: "#ops")`,
		}, "\n")},
	}
	dir := absTestdata(t, "")
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("testdata", tt.file), config.Options{LookupEnv: lookup(testEnv(t))})
			require.Nil(t, cfg)
			require.EqualError(t, err, strings.ReplaceAll(tt.want, "$DIR", dir))
		})
	}
	// Every fixture must be in the table, so none is silently skipped.
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		require.True(t, seen[filepath.Base(f)], "%s has no test case", f)
	}
}

func TestLoadGoodConfigs(t *testing.T) {
	dir := absTestdata(t, "")
	tests := []struct {
		name string
		file string
		env  map[string]string
		want config.Config
	}{
		{
			name: "defaults",
			file: "good-minimal.yaml",
			env:  map[string]string{},
			want: config.Config{
				File: filepath.Join(dir, "good-minimal.yaml"),
				Cloud: config.Cloud{
					AuthURL:           "https://accounts.example.org/identity/v2.0",
					Accounts:          []config.Account{{Name: "alice", Token: "alice-inline-token"}},
					Timeout:           30 * time.Second,
					RequestsPerSecond: 10,
					TokenWarning:      config.DefaultTokenWarning,
				},
				Schedule:           "@every 5m",
				Store:              config.Store{Path: "/var/lib/quotawatch/quotawatch.db", Retention: 90 * 24 * time.Hour},
				HTTP:               config.HTTP{Listen: "127.0.0.1:9457"},
				MaxActionsPerCycle: 10,
				DigestAfter:        5,
				SettleWindow:       15 * time.Minute,
			},
		},
		{
			name: "store under systemd's StateDirectory",
			file: "good-minimal.yaml",
			env:  map[string]string{"STATE_DIRECTORY": "/var/lib/private/quotawatch:/var/lib/other"},
			want: config.Config{
				File: filepath.Join(dir, "good-minimal.yaml"),
				Cloud: config.Cloud{
					AuthURL:           "https://accounts.example.org/identity/v2.0",
					Accounts:          []config.Account{{Name: "alice", Token: "alice-inline-token"}},
					Timeout:           30 * time.Second,
					RequestsPerSecond: 10,
					TokenWarning:      config.DefaultTokenWarning,
				},
				Schedule:           "@every 5m",
				Store:              config.Store{Path: "/var/lib/private/quotawatch/quotawatch.db", Retention: 90 * 24 * time.Hour},
				HTTP:               config.HTTP{Listen: "127.0.0.1:9457"},
				MaxActionsPerCycle: 10,
				DigestAfter:        5,
				SettleWindow:       15 * time.Minute,
			},
		},
		{
			name: "every option",
			file: "good-full.yaml",
			env:  testEnv(t),
			want: config.Config{
				File: filepath.Join(dir, "good-full.yaml"),
				Cloud: config.Cloud{
					AuthURL: "http://127.0.0.1:8080/identity/v2.0",
					Accounts: []config.Account{
						{Name: "alice", Token: "alice-file-token", TokenFile: abs(t, "testdata/secrets/alice.token")},
						{Name: "bob", Token: "bob-file-token", TokenFile: abs(t, "testdata/secrets/bob.token")},
						{Name: "carol_2", Token: "alice-env-token"},
						{Name: "dave-x", Token: "dave-inline-token"},
					},
					ServiceToken:      "service-file-token",
					Timeout:           26 * time.Hour,
					CAFile:            filepath.Join(dir, "secrets", "ca.pem"),
					RequestsPerSecond: 2.5,
					TokenWarning:      config.DefaultTokenWarning,
				},
				Schedule:           "*/30 * * * * *",
				Store:              config.Store{Path: filepath.Join(dir, "state", "quotawatch.db"), Retention: 7 * 24 * time.Hour},
				HTTP:               config.HTTP{Listen: "", ExternalURL: "https://quota.example.org"},
				DryRun:             true,
				MaxActionsPerCycle: 0,
				DigestAfter:        8,
				SettleWindow:       20 * time.Minute,
				Notifiers: []config.Notifier{
					{Name: "ops", Slack: config.Slack{
						WebhookURL: "https://hooks.slack.example/services/T000/B000/webhooksecret",
						APIURL:     "https://slack.com/api/",
					}, DigestAfter: 8},
					{Name: "bot", Slack: config.Slack{
						Token:   "xoxb-file-bot-token",
						Channel: "#quota",
						APIURL:  "http://127.0.0.1:9999/api/",
					}, DigestAfter: 3},
					{Name: "inline", Slack: config.Slack{
						WebhookURL: "https://hooks.slack.example/services/T1/B1/inlinewebhook",
						APIURL:     "https://slack.com/api/",
					}, DigestAfter: 8},
					{Name: "env", Slack: config.Slack{
						Token:   "alice-env-token",
						Channel: "C0123",
						APIURL:  "https://slack.com/api/",
					}, DigestAfter: 8},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("testdata", tt.file), config.Options{LookupEnv: lookup(tt.env)})
			require.NoError(t, err)
			require.Equal(t, tt.want, *cfg)
			sched, err := cfg.CronSchedule()
			require.NoError(t, err)
			require.NotNil(t, sched)
		})
	}
}

func TestLoadUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := config.Load(path, config.Options{})
	require.EqualError(t, err, path+": read configuration: open "+path+": no such file or directory")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestErrorsCarryLines(t *testing.T) {
	_, err := config.Load("testdata/invalid-several.yaml", config.Options{LookupEnv: lookup(testEnv(t))})
	require.Error(t, err)
	var lines []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *config.Error
		require.ErrorAs(t, e, &ce)
		require.Equal(t, "testdata/invalid-several.yaml", ce.File)
		lines = append(lines, ce.Line)
	}
	require.Equal(t, []int{3, 7, 8, 9, 10, 11, 12, 14, 16, 17}, lines)
}

func TestLoadRules(t *testing.T) {
	cfg, err := config.Load("testdata/good-rules.yaml", config.Options{LookupEnv: lookup(nil)})
	require.NoError(t, err)
	require.Len(t, cfg.Rules, 2)
	require.Equal(t, "container-rebalance", cfg.Rules[0].Name)
	require.Equal(t, 48*time.Hour, cfg.Rules[0].Cooldown)
	require.Equal(t, []string{"ops"}, cfg.Rules[0].Notify)
	require.NotNil(t, cfg.Rules[0].Action)
	require.Equal(t, "full-soon", cfg.Rules[1].Name)
	require.Nil(t, cfg.Rules[1].Action)

	// The problems of rules keep their structured form underneath.
	_, err = config.Load("testdata/invalid-rule-when.yaml", config.Options{LookupEnv: lookup(testEnv(t))})
	var re *rules.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, "typo", re.Rule)
	require.Equal(t, "when", re.Field)
}

func TestLoadAnchors(t *testing.T) {
	cfg, err := config.Load("testdata/good-anchors.yaml", config.Options{LookupEnv: lookup(nil)})
	require.NoError(t, err)
	require.Equal(t, []config.Account{
		{Name: "alice", Token: "alice-file-token", TokenFile: abs(t, "testdata/secrets/alice.token")},
		{Name: "alice2", Token: "alice-file-token", TokenFile: abs(t, "testdata/secrets/alice.token")},
	}, cfg.Cloud.Accounts)
	var channels []string
	for _, n := range cfg.Notifiers {
		require.Equal(t, "xoxb-file-bot-token", n.Slack.Token.Reveal(), n.Name)
		channels = append(channels, n.Slack.Channel)
	}
	require.Equal(t, []string{"#a", "#b", "#a"}, channels)
}

// TestLoadRuleMergeKeys: merge keys work inside rules: too.
func TestLoadRuleMergeKeys(t *testing.T) {
	cfg, err := config.Load("testdata/good-rules-merge.yaml", config.Options{LookupEnv: lookup(nil)})
	require.NoError(t, err)
	type summary struct {
		Name, Resource, When string
		Line                 int
		Action               *rules.Reassign
	}
	var got []summary
	for _, r := range cfg.Rules {
		got = append(got, summary{r.Name, r.Resource, r.When, r.Line, r.Action})
	}
	move := &rules.Reassign{Kind: "container", Select: rules.DefaultSelect, MaxItems: 2, To: []string{"*"}, Strategy: rules.DefaultStrategy, KeepShared: true}
	require.Equal(t, []summary{
		{"full", "pithos.diskspace", "ratio > 0.9", 10, nil},
		{"full2", "pithos.diskspace", "ratio > 0.9", 14, nil},
		{"full3", "pithos.diskspace", "ratio > 0.95", 16, move},
		{"full4", "pithos.diskspace", "ratio > 0.9", 23, &rules.Reassign{Kind: "container", Select: rules.DefaultSelect,
			MaxItems: 2, To: []string{"lab-*"}, Strategy: rules.DefaultStrategy, KeepShared: true}},
	}, got)
}

// abs is the absolute path of a file under the package's folder.
func abs(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	require.NoError(t, err)
	return p
}
