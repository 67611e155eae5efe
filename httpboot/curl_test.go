package httpboot

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// loopbackServer runs h on 127.0.0.1 and counts the TCP connections it accepts.
func loopbackServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: install the Debian package %s (./test.sh does)", name, pkg)
	}
	return p
}

// curl runs curl with args and returns stdout; stderr goes to the test log on failure.
func curl(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("curl", append([]string{"--silent", "--show-error", "--max-time", "30"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// readHeaders parses a header dump written by curl -D (the last response in it).
func readHeaders(t *testing.T, dump string) (int, http.Header) {
	t.Helper()
	blocks := strings.Split(strings.TrimSpace(strings.ReplaceAll(dump, "\r\n", "\n")), "\n\n")
	last := blocks[len(blocks)-1] + "\n\n"
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(last)))
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("header dump %q: %v", dump, err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("status line %q", line)
	}
	status, _ := strconv.Atoi(f[1])
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("headers %q: %v", last, err)
	}
	return status, http.Header(mh)
}

func TestCurlRanges(t *testing.T) {
	needTool(t, "curl", "curl")
	fx := newFixture(t, nil)
	srv, _ := loopbackServer(t, fx.h)
	dir := t.TempDir()
	const n = wimSize
	tests := []struct {
		rng    string // curl -r argument, "" for none
		status int
		want   [][2]int64
	}{
		{"", 200, nil},
		{"0-99", 206, [][2]int64{{0, 99}}},
		{"-500", 206, [][2]int64{{n - 500, n - 1}}},
		{"199000-", 206, [][2]int64{{199000, n - 1}}},
		{"65536-131071", 206, [][2]int64{{65536, 131071}}},
		{"0-0,-1", 206, [][2]int64{{0, 0}, {n - 1, n - 1}}},
		{"10-19,1000-1999,150000-", 206, [][2]int64{{10, 19}, {1000, 1999}, {150000, n - 1}}},
		{"300000-", 416, nil},
	}
	for _, url := range []string{srv.URL + "/files/sources/boot.wim", srv.URL + fx.blobPath()} {
		for _, tt := range tests {
			t.Run(strings.Split(url, "/")[3]+"/"+tt.rng, func(t *testing.T) {
				out, hdr := filepath.Join(dir, "out"), filepath.Join(dir, "hdr")
				args := []string{"-o", out, "-D", hdr, url}
				if tt.rng != "" {
					args = append([]string{"-r", tt.rng}, args...)
				}
				curl(t, args...)
				dump, _ := os.ReadFile(hdr)
				body, _ := os.ReadFile(out)
				status, h := readHeaders(t, string(dump))
				if status != tt.status {
					t.Fatalf("curl -r %s: status %d, want %d", tt.rng, status, tt.status)
				}
				checkBody(t, status, h, body, fx.wim, tt.want)
			})
		}
	}
}

func TestCurlHead(t *testing.T) {
	needTool(t, "curl", "curl")
	fx := newFixture(t, nil)
	srv, _ := loopbackServer(t, fx.h)
	out, _ := curl(t, "-I", srv.URL+"/files/boot/x64/ipxe.efi")
	status, h := readHeaders(t, out)
	if status != 200 || h.Get("Content-Type") != "application/efi" || h.Get("Content-Length") != "5000" ||
		h.Get("Accept-Ranges") != "bytes" || h.Get("ETag") == "" || h.Get("Last-Modified") == "" || h.Get("Cache-Control") != CacheRevalidate {
		t.Errorf("curl -I: %d %v", status, h)
	}
	// What UEFI HTTP Boot does: HEAD then GET, both with its User-Agent.
	out, _ = curl(t, "-I", "-A", "UefiHttpBoot/1.0", srv.URL+"/mac/52-54-00-00-00-01"+fx.blobPath())
	if status, h = readHeaders(t, out); status != 200 || h.Get("Content-Length") != strconv.Itoa(wimSize) || h.Get("Cache-Control") != CacheImmutable {
		t.Errorf("curl -I blob: %d %v", status, h)
	}
	if ev := fx.obs.lastEnded(t); ev.Method != "HEAD" || ev.Bytes != 0 || ev.Client.UserAgent != "UefiHttpBoot/1.0" || ev.Client.MACString() != "52:54:00:00:00:01" {
		t.Errorf("HEAD event %+v", ev)
	}
}

func TestCurlKeepAlive(t *testing.T) {
	needTool(t, "curl", "curl")
	fx := newFixture(t, nil)
	srv, conns := loopbackServer(t, fx.h)
	_, stderr := curl(t, "--verbose", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
		srv.URL+"/files/sources/boot.wim", srv.URL+fx.blobPath(), srv.URL+"/boot.ipxe")
	if !strings.Contains(stderr, "Re-using existing connection") {
		t.Errorf("curl did not re-use the connection:\n%s", stderr)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("server accepted %d connections for 3 requests, want 1", got)
	}
}

// TestCurlResume continues a cut download with curl -C -, as a cache or download tool does.
func TestCurlResume(t *testing.T) {
	needTool(t, "curl", "curl")
	fx := newFixture(t, nil)
	srv, _ := loopbackServer(t, fx.h)
	out := filepath.Join(t.TempDir(), "boot.wim")
	if err := os.WriteFile(out, fx.wim[:77777], 0o644); err != nil {
		t.Fatal(err)
	}
	curl(t, "-C", "-", "-o", out, srv.URL+fx.blobPath())
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, fx.wim) {
		t.Fatalf("resumed file differs (%d bytes)", len(got))
	}
	if ev := fx.obs.lastEnded(t); ev.Status != 206 || ev.Bytes != wimSize-77777 {
		t.Errorf("resume request: status %d, %d bytes", ev.Status, ev.Bytes)
	}
}

func TestCurlConditional(t *testing.T) {
	needTool(t, "curl", "curl")
	fx := newFixture(t, nil)
	srv, _ := loopbackServer(t, fx.h)
	etag := fx.do("GET", "/files/notes.txt").Header().Get("ETag")
	code, _ := curl(t, "-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: "+etag, srv.URL+"/files/notes.txt")
	if code != "304" {
		t.Errorf("If-None-Match with the current ETag: %s, want 304", code)
	}
}
