package config

import (
	"fmt"
	"log/slog"
)

// redacted is what a Secret shows instead of its value, whatever prints it.
const redacted = "<secret>"

// Secret is a credential read from the configuration (a token or a webhook
// URL). Every way of printing or marshalling it shows "<secret>", so a Config
// can be logged, dumped or served without leaking anything; only Reveal
// returns the value, and only the code that sends it over the wire should
// call it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// unread is the placeholder of a secret not read (Options.NoSecrets); no
// credential can hold a NUL byte.
const unread Secret = "\x00not read"

// Unread reports whether s is a placeholder for a secret that was given
// but not read, because the configuration was loaded with NoSecrets.
func (s Secret) Unread() bool { return s == unread }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// String returns "<secret>".
func (s Secret) String() string { return redacted }

// GoString returns "<secret>", so %#v does not print the value either.
func (s Secret) GoString() string { return redacted }

// Format writes "<secret>" for every verb (%v, %+v, %#v, %s, %q, %x, ...):
// implementing fmt.Formatter is the only way to cover verbs such as %x and
// %q, which would otherwise format the underlying string.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns the JSON string "<secret>".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalYAML returns "<secret>".
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalText returns "<secret>"; encoders that use encoding.TextMarshaler
// (slog's text handler, map keys in JSON) see only that.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "<secret>", so slog never logs the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
