// Package config loads and validates quotawatch's YAML configuration
// (docs/design.md#configuration; config.example.yaml at the repository root documents every
// option).
//
// Load reads a file and Parse checks bytes; both return a fully validated
// *Config or an error listing every problem of the file, one per line and in
// line order, each rendered FILE:LINE: message. The error is an errors.Join
// of *Error values (File, Line, Msg), so a caller can also walk them; a
// problem of a rule wraps the *rules.Error that rules.Parse reported.
//
// Checking is strict: unknown and duplicate keys are errors, values must have
// the right type (true/false only for booleans, integers where integers are
// expected), and cross-field rules are enforced (one form per secret, at least
// one account unless a service token is set, a Slack notifier is either a
// webhook or a bot token with a channel, an e-mail notifier's `tls: none`
// is only for a loopback host). The `rules:` section is compiled by
// rules.Parse, which type-checks every expression at load time.
//
// The file is walked as a yaml.Node tree rather than decoded into structs:
// that gives the line of every problem, lets all of them be collected, and
// sidesteps yaml.v3 dropping KnownFields in custom unmarshalers.
//
// # Secrets
//
// Every secret (account token, service token, Slack webhook URL, Slack bot
// token, SMTP password) has three forms: x (inline), x_file (read at load time and trimmed
// of surrounding whitespace) and x_env (an environment variable); one may be
// set. An empty value counts as not set. Secrets are held in the Secret type,
// which prints and marshals as "<secret>" everywhere (fmt, JSON, YAML, text,
// slog); Reveal returns the value. No problem message contains a secret.
//
// The private key of ha.etcd (key_file) is a secret too, held as a Secret
// (KeyPEM); the CA and the client certificate beside it are not.
//
// # Paths
//
// x_file, ca_file (and ha.etcd's cert_file and key_file) and store.path
// expand ${VAR} (the braced form only; an unset or empty variable is an
// error naming it), then are taken relative to the configuration file's
// folder. So `token_file:
// ${CREDENTIALS_DIRECTORY}/alice.token` reads a systemd LoadCredential=
// credential, and `store.path` defaults to $STATE_DIRECTORY/quotawatch.db
// when systemd sets STATE_DIRECTORY. Options replaces the environment and
// the file system for tests.
//
// # Reload
//
// Load has no side effects beyond reading files, so a SIGHUP reload is: call
// Load, and swap in the new *Config only when it returns no error. Secret
// files are read again on every Load, so rotated credentials take effect.
package config
