package main

// A small Chrome DevTools Protocol client for the dashboard's browser test: headless Chromium
// (Debian's chromium) is started with a private profile and a DevTools port, and driven over
// the page's websocket. Only the three calls the test needs are here.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

type cdpBrowser struct {
	cmd  *exec.Cmd
	ws   *websocket.Conn
	mu   sync.Mutex
	next int
}

// startChromium launches headless Chromium on url and connects to its page. It skips the
// test when chromium is not installed.
func startChromium(t *testing.T, url string) *cdpBrowser {
	t.Helper()
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		t.Skip("chromium not found: install Debian's chromium package for the dashboard browser test")
	}
	// Not t.TempDir: Chromium's helper processes may still be writing the profile for a moment
	// after they are killed, and TempDir's cleanup fails the test on a non-empty folder.
	profile, err := os.MkdirTemp("", "pxewim-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-dev-shm-usage", "--window-size=1500,800", "--user-data-dir="+profile, "--remote-debugging-port=0",
		"--remote-allow-origins=http://127.0.0.1", url) // x/net/websocket sends this Origin
	cmd.Stdout, cmd.Stderr = nil, nil
	// Its own process group, so that cleanup reaches the renderer and helper processes too
	// (all started by this test) and not only the browser process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		t.Fatalf("starting chromium: %v", err)
	}
	b := &cdpBrowser{cmd: cmd}
	t.Cleanup(func() {
		if b.ws != nil {
			b.ws.Close()
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group this test started
		cmd.Wait()
		for i := 0; i < 20; i++ {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s left behind", profile)
	})
	port := waitDevToolsPort(t, filepath.Join(profile, "DevToolsActivePort"))
	wsURL := waitPageTarget(t, port)
	ws, err := websocket.Dial(wsURL, "", "http://127.0.0.1")
	if err != nil {
		t.Fatalf("connecting to chromium's page: %v", err)
	}
	ws.MaxPayloadBytes = 64 << 20 // screenshots
	b.ws = ws
	return b
}

// waitDevToolsPort reads the port Chromium chose (first line of DevToolsActivePort).
func waitDevToolsPort(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			ok := sc.Scan()
			f.Close()
			if ok && sc.Text() != "" {
				return sc.Text()
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("chromium did not open its DevTools port (%s)", path)
	return ""
}

func waitPageTarget(t *testing.T, port string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err == nil {
			var targets []struct{ Type, URL, WebSocketDebuggerURL string }
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
			for _, tg := range targets {
				if err == nil && tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
					return tg.WebSocketDebuggerURL
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("chromium shows no page target")
	return ""
}

// call sends one CDP command and waits for its answer (events in between are skipped).
func (b *cdpBrowser) call(ctx context.Context, method string, params any, result any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	if err := websocket.JSON.Send(b.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("CDP %s: %w", method, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		b.ws.SetReadDeadline(dl)
	}
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := websocket.JSON.Receive(b.ws, &msg); err != nil {
			return fmt.Errorf("CDP %s: %w", method, err)
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			return fmt.Errorf("CDP %s: %s", method, msg.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, result)
	}
}

// eval runs a JavaScript expression in the page and decodes its JSON-able value into out.
func (b *cdpBrowser) eval(t *testing.T, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		t.Fatal(err)
	}
	if res.ExceptionDetails != nil {
		t.Fatalf("page script %q: %s", expr, res.ExceptionDetails.Text)
	}
	if err := json.Unmarshal(res.Result.Value, out); err != nil {
		t.Fatalf("page script %q gave %s: %v", expr, res.Result.Value, err)
	}
}

// screenshot saves a PNG of the page under dir and returns its path.
func (b *cdpBrowser) screenshot(t *testing.T, dir, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var res struct{ Data string }
	if err := b.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatalf("screenshot is not a PNG (%v)", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

// waitEval polls expr until it returns true.
func (b *cdpBrowser) waitEval(t *testing.T, max time.Duration, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(max)
	guarded := "(() => { try { return !!(" + expr + ") } catch (e) { return false } })()" // page may still load
	for {
		var ok bool
		b.eval(t, guarded, &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var html string
			b.eval(t, "document.body.innerText", &html)
			t.Fatalf("waiting for %s: not after %v; page text:\n%s", what, max, html)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
