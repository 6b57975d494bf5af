package watcher_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless chromium for the test, or skips it when none
// is installed; in CI (CI=true) a missing browser is a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no browser at %s: CI installs chromium (apt-get install chromium)", chromiumPath)
		}
		t.Skipf("no browser at %s; install it with: apt-get install chromium", chromiumPath)
	}
	// A fresh profile, removed once the browser and its helpers are gone
	// (they may still be writing to it as the browser exits).
	profile, err := os.MkdirTemp("", "quotawatch-chromium-")
	require.NoError(t, err)
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove %s", profile)
	})
	// Only these flags: nothing leaves loopback.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(profile),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		// Close the browser properly, then the context.
		_ = chromedp.Cancel(ctx)
		cancel()
	})
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelT)
	return ctx
}

// console collects what the page says on the console, its uncaught
// exceptions and the browser's own error log (failed loads, policy
// violations).
type console struct {
	mu   sync.Mutex
	msgs []string
}

func (c *console) listen(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			c.msgs = append(c.msgs, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		case *runtime.EventExceptionThrown:
			c.msgs = append(c.msgs, "exception: "+ev.ExceptionDetails.Error())
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError || ev.Entry.Level == cdplog.LevelWarning {
				c.msgs = append(c.msgs, fmt.Sprintf("log %s %s: %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
}

func (c *console) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// artifacts is where the test leaves its screenshots.
func artifacts(t *testing.T) string {
	if d := os.Getenv("QUOTAWATCH_ARTIFACTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.TempDir()
}

// plotInfo is what the browser sees of one plot.
type plotInfo struct {
	Series  string `json:"series"`
	Points  int    `json:"points"`
	Samples string `json:"samples"`
}

const readPlots = `Array.from(document.querySelectorAll("svg.plot")).map(s => {
	const u = s.querySelector("polyline.usage");
	return {series: s.dataset.series, points: u ? u.points.numberOfItems : 0, samples: u ? u.dataset.samples : ""};
})`

// TestStatusPageInBrowser renders the status page and a project page of a
// watcher on the simulated cloud in a real browser: no console error or
// exception, the key elements present, one plot point pair per stored
// sample, and a screenshot of each.
func TestStatusPageInBrowser(t *testing.T) {
	ctx := browser(t)
	h := newHarness(t, "seed.yaml", rulesSeed+`
  - name: lab-growing
    description: The lab project is filling up
    resource: pithos.diskspace
    projects: ["CS333*"]
    when: ratio > 0.25
    severity: info
  - name: ips-exhausted
    description: No floating IP left
    resource: cyclades.floating_ip
    when: ratio >= 1
    severity: critical
`)
	srv := httptest.NewServer(h.w.Handler(nil))
	t.Cleanup(srv.Close)
	// The system project fills up over an hour, the container moves to the
	// lab, which goes on growing past its own threshold.
	require.NoError(t, h.cloud.Cloud.GrowContainer(alice, "course_container", -4*gib))
	for range 24 {
		h.cycle()
		require.NoError(t, h.cloud.Cloud.GrowContainer(alice, "course_container", gib/2))
	}
	h.cycle()
	require.Len(t, h.journal(), 1, "one move")

	var c console
	c.listen(ctx)
	dir := artifacts(t)
	update := os.Getenv("QUOTAWATCH_UPDATE_SCREENSHOTS") != ""

	// The status page.
	var version, accounts, incidents, outbox string
	var plots []plotInfo
	var shot []byte
	require.NoError(t, chromedp.Run(ctx,
		cdplog.Enable(), runtime.Enable(),
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#incidents", chromedp.ByQuery),
		chromedp.Text("#version", &version, chromedp.ByQuery),
		chromedp.Text("#accounts tbody", &accounts, chromedp.ByQuery),
		chromedp.Text("#incidents", &incidents, chromedp.ByQuery),
		chromedp.Text("#outbox", &outbox, chromedp.ByQuery),
		chromedp.Evaluate(readPlots, &plots),
		chromedp.FullScreenshot(&shot, 100),
	))
	require.NotEmpty(t, strings.TrimSpace(version))
	require.Contains(t, accounts, "alice")
	require.Contains(t, accounts, "ok")
	require.Contains(t, incidents, "lab-growing")
	require.Contains(t, incidents, "ips-exhausted")
	require.Contains(t, incidents, "CS333 lab assignments")
	require.NotContains(t, incidents, "container-rebalance", "resolved after the move")
	require.Contains(t, outbox, "pending")
	require.Len(t, plots, 2, "one plot per firing incident")
	checkPlots(t, h, plots, 7*24*time.Hour)
	writeShot(t, dir, "status-page.png", shot, update)

	// The lab's page: one plot per limited resource, the move marked.
	var title string
	var marks int
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/project/"+cs333),
		chromedp.WaitVisible("#project", chromedp.ByQuery),
		chromedp.Text("#project h2", &title, chromedp.ByQuery),
		chromedp.Evaluate(readPlots, &plots),
		chromedp.Evaluate(`document.querySelectorAll("svg.plot[data-series$='pithos.diskspace'] .move.in").length`, &marks),
		chromedp.FullScreenshot(&shot, 100),
	))
	require.Equal(t, "CS333 lab assignments", title)
	require.Len(t, plots, 7, "every resource of the lab has a limit")
	require.Equal(t, 1, marks, "the move into the lab is marked on its diskspace")
	checkPlots(t, h, plots, 7*24*time.Hour)
	writeShot(t, dir, "project-page.png", shot, update)

	require.Empty(t, c.all(), "the pages log nothing on the console")

	// The listener hears what a page would say: a script the policy
	// blocks, and one that logs an error where no policy blocks it.
	canary := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/blocked" {
			rw.Header().Set("Content-Security-Policy", "default-src 'self'")
		}
		fmt.Fprint(rw, `<!DOCTYPE html><title>canary</title><script>console.error("canary")</script>`)
	}))
	t.Cleanup(canary.Close)
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(canary.URL+"/open"), chromedp.Navigate(canary.URL+"/blocked")))
	require.Eventually(t, func() bool {
		msgs := strings.Join(c.all(), "\n")
		return strings.Contains(msgs, "canary") && strings.Contains(msgs, "Content Security Policy")
	}, 10*time.Second, 50*time.Millisecond, "heard: %q", c.all())
}

// checkPlots compares each plot's polyline with the samples stored for
// its series over the window: a step line has two points per sample after
// the first.
func checkPlots(t *testing.T, h *harness, plots []plotInfo, window time.Duration) {
	t.Helper()
	st := h.w.Store()
	defer func() { require.NoError(t, st.Release()) }()
	now := h.clock.Now()
	for _, p := range plots {
		parts := strings.SplitN(p.Series, "/", 3)
		require.Len(t, parts, 3, "plot %q names its series", p.Series)
		samples, err := st.Series(quota.Key{Account: parts[0], Project: parts[1], Resource: parts[2]}, now.Add(-window), now)
		require.NoError(t, err)
		require.Greater(t, len(samples), 20, p.Series)
		require.Equal(t, fmt.Sprint(len(samples)), p.Samples, p.Series)
		require.Equal(t, 2*len(samples)-1, p.Points, p.Series)
	}
}

func writeShot(t *testing.T, dir, name string, png []byte, update bool) {
	t.Helper()
	require.True(t, len(png) > 8 && string(png[1:4]) == "PNG", "a PNG screenshot")
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
	t.Logf("screenshot: %s", filepath.Join(dir, name))
	if update {
		require.NoError(t, os.WriteFile(filepath.Join("..", "docs", name), png, 0o644))
	}
}
