package watcher_test

import (
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/internal/smtptest"
	"github.com/quotawatch/quotawatch/synnefosim"
)

const bob = "b0b00000-0000-4000-8000-0000000000b0"

// TestEmailOwnersOfAMove runs the seed's rule over the simulator with an
// e-mail notifier: the owners of the container and of both projects are
// told, over STARTTLS with AUTH, with addresses from the user catalog.
func TestEmailOwnersOfAMove(t *testing.T) {
	const password = "smtp-e2e-secret"
	srv := smtptest.Start(t, smtptest.Options{Username: "quotawatch", Password: password})
	secrets := t.TempDir()
	caFile := filepath.Join(secrets, "smtp-ca.pem")
	require.NoError(t, os.WriteFile(caFile, srv.PEM(), 0o600))
	pwFile := filepath.Join(secrets, "smtp-password")
	require.NoError(t, os.WriteFile(pwFile, []byte(password+"\n"), 0o600))

	sc, err := synnefosim.LoadScenario(filepath.Join("..", "synnefosim", "testdata", "seed.yaml"))
	require.NoError(t, err)
	// Bob owns the lab project the container moves to.
	sc.Users = append(sc.Users, synnefosim.User{UUID: bob, Name: "Bob@Example.org", Token: "bob-token"})
	for i := range sc.Projects {
		if sc.Projects[i].ID == cs333 {
			sc.Projects[i].Owner = bob
			sc.Projects[i].Members = append(sc.Projects[i].Members, bob)
		}
	}
	h := newHarnessFrom(t, sc, rulesSeed, fmt.Sprintf(`  - name: owners
    email:
      smtp: %s
      ca_file: %s
      from: quotawatch@example.org
      username: quotawatch
      password_file: %s
      to: [item_owner, project_owner, ops@example.org]`, srv.Addr(), caFile, pwFile))

	rep := h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.Equal(t, cs333, h.container("course_container").Project)
	require.Equal(t, 0, rep.Undelivered, "logs:\n%s", h.logs.String())

	bodies := map[string]string{}
	for _, m := range srv.Messages() {
		require.True(t, m.TLS)
		require.Equal(t, "quotawatch", m.User)
		require.Len(t, m.To, 1)
		pm, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		require.NoError(t, err)
		b, err := io.ReadAll(quotedprintable.NewReader(pm.Body))
		require.NoError(t, err)
		bodies[m.To[0]] += string(b)
	}
	// The firing went to ops only; the move to alice (container and source
	// project, one message), bob (destination) and ops.
	require.Len(t, srv.Messages(), 4)
	require.Len(t, bodies, 3)
	require.Contains(t, bodies["alice@example.org"], "because you own the container and the project it was moved out of")
	require.Contains(t, bodies["bob@example.org"], "because you own the project it was moved into")
	for _, b := range bodies {
		require.Contains(t, b, `quotawatch moved the container "course_container"`)
		require.Contains(t, b, `into the project "CS333 lab assignments"`)
		require.Contains(t, b, `"quotawatch undo 1"`)
	}
	require.Contains(t, bodies["ops@example.org"], "[WARNING] container-rebalance")
	require.NotContains(t, h.logs.String(), password)
	catalogs := 0
	for _, r := range h.cloud.Cloud.Requests() {
		if r.Path == "/account/v1.0/user_catalogs" {
			catalogs++
		}
	}
	require.Equal(t, 1, catalogs)
}
