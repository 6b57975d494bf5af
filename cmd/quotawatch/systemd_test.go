package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The unit carries what the daemon relies on: notify readiness, a
// watchdog, reload by SIGHUP, a dynamic user with a state directory,
// credentials, no restart loop on a bad config, and the hardening set.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "systemd", "quotawatch.service"))
	require.NoError(t, err)
	unit := string(b)
	for _, want := range []string{
		"Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
		"ExecStart=/usr/bin/quotawatch run --config /etc/quotawatch/config.yaml",
		"ExecStartPre=/usr/bin/quotawatch validate --config /etc/quotawatch/config.yaml",
		"RestartPreventExitStatus=2", "DynamicUser=yes", "StateDirectory=quotawatch", "LoadCredential=",
		"ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service",
		"CapabilityBoundingSet=\n", "MemoryDenyWriteExecute=yes", "UMask=0077",
		"PrivateUsers=yes", "PrivateMounts=yes", "SystemCallFilter=~@resources",
		"Documentation=man:quotawatch(1) file:/usr/share/doc/quotawatch/README.md",
	} {
		require.Contains(t, unit, want)
	}
	// Taking over a store last written by another host is an operator's
	// decision, never the unit's.
	for _, l := range strings.Split(unit, "\n") {
		if !strings.HasPrefix(l, "#") {
			require.NotContains(t, l, "--takeover")
		}
	}
}

// The systemd example config validates with the credentials and state
// directory systemd provides.
func TestSystemdConfigValidates(t *testing.T) {
	creds := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(creds, "alice.token"), []byte("tok\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(creds, "slack-webhook"), []byte("https://hooks.slack.com/services/T/B/X\n"), 0o600))
	env := map[string]string{"CREDENTIALS_DIRECTORY": creds, "STATE_DIRECTORY": t.TempDir()}
	code, stdout, stderr := runCmd(t, env, "validate", "--config", filepath.Join("..", "..", "systemd", "config.yaml"))
	require.Equal(t, exitOK, code, stderr)
	require.True(t, strings.Contains(stdout, "OK"), stdout)
	require.NotContains(t, stdout+stderr, "tok")
}
