package watcher_test

import (
	"encoding/base64"
	"encoding/json"
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
	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/synnefosim"
)

const bob = "b0b00000-0000-4000-8000-0000000000b0"

// TestEmailOwnersOfAMove runs the seed's rule over the simulator with an
// e-mail notifier: the owners of the container and of both projects are
// told, over STARTTLS with AUTH, with addresses from the user catalog.
func TestEmailOwnersOfAMove(t *testing.T) {
	const password = "smtp-e2e-secret"
	srv, h := newEmailHarness(t, password)

	rep := h.cycle()
	require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
	require.Equal(t, cs333, h.container("course_container").Project)
	require.Equal(t, 0, rep.Undelivered, "logs:\n%s", h.logs.String())

	bodies := map[string]string{}
	for _, m := range srv.Messages() {
		require.True(t, m.TLS)
		require.Equal(t, "quotawatch", m.User)
		require.Len(t, m.To, 1)
		bodies[m.To[0]] += messageBody(t, m)
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

// TestEmailThroughTheOutbox: a refused login and a 4xx leave the messages
// in the outbox for the next cycle, a 5xx sets one aside, nobody is told
// twice, and the password shows nowhere, though the server quotes it.
func TestEmailThroughTheOutbox(t *testing.T) {
	const password = "smtp-e2e-secret"
	srv, h := newEmailHarness(t, password)
	var seen []string
	record := func(v any) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		seen = append(seen, string(b))
	}

	srv.Script(smtptest.Reply{Stage: smtptest.StageAuth, Code: 535, Message: "bad password " + password})
	rep := h.cycle()
	record(rep)
	require.Len(t, rep.Plan, 1)
	require.Equal(t, 2, rep.Undelivered, "the firing and the move wait")
	require.Empty(t, srv.Messages())

	srv.Script(smtptest.Reply{Stage: smtptest.StageRcpt, Rcpt: "bob@example.org", Code: 451, Message: "greylisted " + password})
	rep = h.cycle()
	record(rep)
	require.Equal(t, 1, countEvents(rep, quota.EventResolved, ""))
	require.Equal(t, 2, rep.Undelivered, "the move waits for bob, the resolution behind it")
	require.Len(t, srv.Messages(), 2)

	srv.Script(smtptest.Reply{Stage: smtptest.StageData, Rcpt: "ops@example.org", Code: 554, Message: "refused " + password})
	rep = h.cycle()
	record(rep)
	require.Equal(t, 0, rep.Undelivered)
	st := h.w.Store()
	_, dead, err := st.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 1, dead, "ops refused the move for good: set aside")
	require.NoError(t, st.Release())

	var to []string
	for _, m := range srv.Messages() {
		to = append(to, m.To[0])
	}
	require.Equal(t, []string{"ops@example.org", "alice@example.org", "bob@example.org", "ops@example.org"}, to)

	logs := h.logs.String()
	require.Contains(t, logs, "email delivery failed")
	all := logs + strings.Join(seen, "\n")
	require.NotContains(t, all, password)
	require.NotContains(t, all, base64.StdEncoding.EncodeToString([]byte("\x00quotawatch\x00"+password)))
}

// newEmailHarness runs the seed over the simulator, where bob owns the
// lab project, with an e-mail notifier "owners" toward a test SMTP server.
func newEmailHarness(t *testing.T, password string) (*smtptest.Server, *harness) {
	t.Helper()
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
	return srv, h
}

// messageBody decodes a message's quoted-printable body.
func messageBody(t *testing.T, m smtptest.Message) string {
	t.Helper()
	pm, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	require.NoError(t, err)
	b, err := io.ReadAll(quotedprintable.NewReader(pm.Body))
	require.NoError(t, err)
	return string(b)
}
