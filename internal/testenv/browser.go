package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is headless Chromium driven with chromedp (over its DevTools pipe), for the
// dashboard's browser tests. StartBrowser skips the test when Chromium is not installed.
type Browser struct {
	ctx    context.Context // the tab's chromedp context
	cancel context.CancelFunc
}

// BrowserOptions tune StartBrowser.
type BrowserOptions struct {
	// Netns runs Chromium inside a network namespace (through `ip netns exec`), so the page
	// can reach a server that listens only there. nil runs it in the test's own namespace.
	Netns *Netns
	// Width and Height of the window; 0 means 1500x900.
	Width, Height int
}

// chromiumPath finds Debian's chromium (or another Chromium-based browser).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// StartBrowser opens url in a fresh headless Chromium (private profile, no network other
// than the page's server) and returns it; the browser is stopped when the test ends.
func StartBrowser(t testing.TB, url string, opts BrowserOptions) *Browser {
	t.Helper()
	exe := chromiumPath()
	if exe == "" {
		t.Skip("chromium not found: install Debian's chromium package for the dashboard browser tests")
	}
	if opts.Width == 0 {
		opts.Width, opts.Height = 1500, 900
	}
	// Not t.TempDir: Chromium's helper processes may still be writing the profile for a moment
	// after they are killed, and TempDir's cleanup fails the test on a non-empty folder.
	profile, err := os.MkdirTemp("", "pxewim-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Netns != nil {
		// chromedp talks to the browser over file descriptors 3 and 4, which `ip netns exec`
		// passes on to the program it runs.
		wrapper := filepath.Join(profile, "chromium-in-netns")
		script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", opts.Netns.Name, exe)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		exe = wrapper
	}
	stderr := &lockedWriter{}
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(profile, "profile")),
		chromedp.WindowSize(opts.Width, opts.Height),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.CombinedOutput(stderr),
	)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{ctx: ctx, cancel: func() { cancel(); acancel() }}
	t.Cleanup(func() {
		b.cancel() // chromedp stops the browser and waits for it
		for i := 0; i < 20; i++ {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s left behind", profile)
	})
	// The first Run starts the browser; it gets no timeout (that would stop the browser).
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("chromium opening %s: %v\nbrowser output:\n%s", url, err, Tail(stderr.String(), 20))
	}
	return b
}

// lockedWriter lets the allocator's output goroutine write while a test reads on failure;
// it keeps the first MiB.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() < 1<<20 {
		w.b.Write(p)
	}
	return len(p), nil
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Eval runs a JavaScript expression in the page and decodes its JSON-able value into out.
func (b *Browser) Eval(t testing.TB, expr string, out any) {
	t.Helper()
	if err := b.eval(expr, 10*time.Second, out); err != nil {
		t.Fatal(err)
	}
}

func (b *Browser) eval(expr string, limit time.Duration, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		return fmt.Errorf("page script %q: %w", expr, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("page script %q gave %s: %w", expr, raw, err)
	}
	return nil
}

// String runs expr and returns its value as text ("" when it is not a string).
func (b *Browser) String(t testing.TB, expr string) string {
	t.Helper()
	var v any
	b.Eval(t, expr, &v)
	s, _ := v.(string)
	return s
}

// WaitEval waits until expr is true in the page, re-evaluating it after each animation frame
// the page renders (so it follows the page's own updates, not a fixed schedule). It fails the
// test, with the page's text, when max passes first.
func (b *Browser) WaitEval(t testing.TB, max time.Duration, expr, what string) {
	t.Helper()
	// The page may still be loading or re-rendering: a throwing expression counts as false.
	waiter := `new Promise((resolve) => {
		const check = () => { try { if (` + expr + `) { resolve(true); return; } } catch (e) {} requestAnimationFrame(check); };
		check();
	})`
	ctx, cancel := context.WithTimeout(b.ctx, max)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](waiter, chromedp.EvalAwaitPromise))
	if err == nil {
		return
	}
	var text string
	_ = b.eval("document.body.innerText", 5*time.Second, &text)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for %s: not after %v; page text:\n%s", what, max, text)
	}
	t.Fatalf("waiting for %s: %v; page text:\n%s", what, err, text)
}

// Screenshot saves a PNG of what the window shows (the viewport, as a user sees it) as
// dir/name and returns its path.
func (b *Browser) Screenshot(t testing.TB, dir, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

// ArtifactsDir is $PXEWIM_TEST_ARTIFACTS (kept after the run: screenshots, logs), or a test
// temp dir when it is not set.
func ArtifactsDir(t testing.TB) string {
	if d := os.Getenv("PXEWIM_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}
