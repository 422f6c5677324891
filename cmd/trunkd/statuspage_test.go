package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
)

// artifactsDir is where tests keep what a person may want to look at
// (the status page's screenshot): $TRUNKD_ARTIFACTS, else the repository's
// testdata/artifacts (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TRUNKD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless chromium for t, or skips t where it is not
// installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (make deps installs Debian's chromium): skipping the status page's browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1500, 700))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(func() { cancelTime(); cancel(); cancelAlloc() })
	return ctx
}

// TestStatusPageInBrowser: chromium loads the status page of a trunkd
// with trunks, takes the token once, shows every trunk, and its figures
// move when a call is placed; the token outlives a reload of the page
// (sessionStorage); no credential reaches the page.
func TestStatusPageInBrowser(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	d := startDaemonArgs(t, dir, "--http-listen", "127.0.0.1:0", "--status-page", "--drain-timeout", "1s")
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, auth.ScopeAdmin))
	f := startFarEnd(t, "uas_answer.xml", 1)
	addCarrierTrunk(t, c, "carrier", f, func(tr *trunk.Trunk) {
		tr.ChannelLimit, tr.SIPPassword, tr.SIPUsername = 4, "never-on-the-page", "acme"
	})
	for _, id := range []string{"spare-1", "spare-2"} {
		tr := sipTrunk(id, freeSIPPort(t))
		if err := c.AddTrunk(context.Background(), tr); err != nil {
			t.Fatal(err)
		}
	}

	url := "https://" + d.HTTPAddr().String() + "/"
	field := func(name string) chromedp.CSS {
		return chromedp.CSS(`tr[data-trunk="carrier"] [data-field="` + name + `"]`)
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token(t, dir, auth.ScopeRead)),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(field("calls")),
	)
	if err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("tr[data-trunk]")].map(r => r.dataset.trunk).join(",")`))
	if calls, asr := text(field("calls")), text(field("asr")); err != nil || rows != "carrier,spare-1,spare-2" || calls != "0 / 4" || asr != "–" {
		t.Fatalf("page before the call: rows %q (%v), calls %q, ASR %q; want the three trunks, 0 / 4, –", rows, err, calls, asr)
	}

	call := placeCall(t, c, rpc.DialRequest{TrunkID: "carrier", To: "+15551230", TimeoutSec: 5})
	_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('tr[data-trunk="carrier"] [data-field="calls"]').textContent.trim() === "1 / 4"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("the page's calls did not turn to 1 / 4 after the call: %v (shows %q)", err, text(field("calls")))
	}
	if asr, state := text(field("asr")), text(chromedp.CSS(`tr[data-call="`+call.CallID+`"] .st-answered`)); asr != "100%" || state != "answered" {
		t.Errorf("page after the call: ASR %q, call state %q; want 100%%, answered", asr, state)
	}

	err = chromedp.Do(ctx,
		chromedp.Reload(), // the token stays in the tab
		chromedp.WaitVisible(chromedp.CSS(`tr[data-call="`+call.CallID+`"]`)),
	)
	if err != nil {
		t.Fatalf("reloading the page: %v", err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "never-on-the-page") {
		t.Error("the page shows the trunk's SIP password")
	}
	png := filepath.Join(artifactsDir(t), "status-page.png")
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", png)

	hangup(t, c, call.CallID)
	f.stop()
}
