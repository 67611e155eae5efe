package httpboot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corruptErr is what a WIM file returns instead of the last bytes of a stream whose SHA-1 does
// not match (wim.ChecksumError has the same Corrupt method; httpboot does not import wim).
type corruptErr struct{ name string }

func (e corruptErr) Error() string {
	return "wim: store.wim: image 1: " + e.name + ": SHA-1 mismatch: the data hashes to x, the WIM records y"
}
func (corruptErr) Corrupt() bool { return true }

// damagedFS is memFS with some files damaged the way a WIM with flipped bytes is: the file
// claims the SHA-1 of its original content, holds other bytes, and refuses the read that
// would return its last bytes (what wim.File does for a full in-order read).
type damagedFS struct {
	*memFS
	claims map[string][20]byte // name -> the SHA-1 the WIM records
}

func (d *damagedFS) Open(name string) (fs.File, error) {
	f, err := d.memFS.Open(name)
	if err != nil {
		return nil, err
	}
	sum, damaged := d.claims[name]
	if !damaged {
		return f, nil
	}
	hf := f.(*hashedFile)
	return &damagedFile{hashedFile: hf, claim: sum, name: name}, nil
}

type damagedFile struct {
	*hashedFile
	claim [20]byte
	name  string
}

func (f *damagedFile) Hash() [20]byte { return f.claim }
func (f *damagedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.hashedFile.ReadAt(p, off)
	if off+int64(n) == f.r.Size() {
		return 0, corruptErr{f.name}
	}
	return n, err
}

// damagedFixture serves sources/boot.wim damaged: 4 bytes flipped in the middle.
func damagedFixture(t *testing.T) (*fixture, *damagedFS) {
	t.Helper()
	fx := newFixture(t, nil)
	bad := bytes.Clone(fx.wim)
	for i := len(bad) / 2; i < len(bad)/2+4; i++ {
		bad[i] ^= 0xA5
	}
	fx.fs.put("sources/boot.wim", bad, true)
	dfs := &damagedFS{memFS: fx.fs, claims: map[string][20]byte{"sources/boot.wim": fx.sum}}
	fx.h.cfg.Resolve = func(*http.Request, ClientInfo) (fs.FS, error) { return dfs, nil }
	return fx, dfs
}

// TestCurlDamagedFileCutShort: a file whose bytes do not match its SHA-1 reaches curl as a
// 200 whose body stops before its Content-Length (plain /files/ path and /blob/ URL): curl
// exits non-zero ("partial file"), never holds all the bytes, and the request is logged at
// ERROR with the checksum error and ends with that error for the dashboard and metrics.
func TestCurlDamagedFileCutShort(t *testing.T) {
	needTool(t, "curl", "curl")
	fx, _ := damagedFixture(t)
	srv, _ := loopbackServer(t, fx.h)
	for _, path := range []string{"/files/sources/boot.wim", fx.blobPath(), "/files/sources/boot.wim?mac=52-54-00-12-34-56"} {
		t.Run(path, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "body")
			cmd := exec.Command("curl", "--silent", "--show-error", "--max-time", "30", "-o", out, "-w", "%{http_code} %{size_download}", srv.URL+path)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 18 {
				t.Fatalf("curl: %v (want exit 18, partial file)\n%s %s", err, stdout.String(), stderr.String())
			}
			body, _ := os.ReadFile(out)
			if len(body) >= len(fx.wim) {
				t.Fatalf("curl received %d of %d bytes", len(body), len(fx.wim))
			}
			ev := fx.obs.lastEnded(t)
			if !IsCorrupt(ev.Err) || ev.Bytes >= int64(len(fx.wim)) {
				t.Fatalf("Ended: err %v, %d bytes", ev.Err, ev.Bytes)
			}
		})
	}
	rec := lastLogRecord(t, fx.logs)
	if rec["level"] != "ERROR" || !strings.Contains(fmt.Sprint(rec["error"]), "SHA-1 mismatch") || rec["status"] != float64(200) {
		t.Fatalf("log record %v: want level ERROR with the checksum error", rec)
	}
	// Ranges are served as stored (issue 11 point 3), and an undamaged file still serves.
	if st, _, b := fetch(t, srv.URL+"/files/sources/boot.wim", "Range", "bytes=0-99"); st != 206 || len(b) != 100 {
		t.Errorf("range of the damaged file: %d, %d bytes", st, len(b))
	}
	if st, _, b := fetch(t, srv.URL+"/files/boot/x64/ipxe.efi"); st != 200 || !bytes.Equal(b, fx.efi) {
		t.Errorf("undamaged file: %d, identical=%v", st, bytes.Equal(b, fx.efi))
	}
}

// lastLogRecord decodes the last JSON log line with msg "http request".
func lastLogRecord(t *testing.T, logs *bytes.Buffer) map[string]any {
	t.Helper()
	var last map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "http request" {
			last = rec
		}
	}
	if last == nil {
		t.Fatalf("no http request log record in:\n%s", logs)
	}
	return last
}

// fetchDamaged downloads url with Go's client and returns the status, cache status and body
// bytes read before the error that must end it.
func fetchDamaged(t *testing.T, url string) (int, string, []byte, error) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Cache-Status"), b, err
}

// TestNginxNeverCachesDamaged: behind nginx proxy_cache, a blob URL whose body pxewim cuts
// short (checksum mismatch) is never stored: each client gets a truncated body (an error, never
// a complete response), and each request reaches pxewim again.
func TestNginxNeverCachesDamaged(t *testing.T) {
	fx, dfs := damagedFixture(t)
	var up upstreamLog
	srv, _ := loopbackServer(t, up.wrap(fx.h))
	cache := startNginx(t, srv.Listener.Addr().String())
	blob := fx.blobPath()
	for i := range 3 {
		status, cs, body, err := fetchDamaged(t, cache+blob)
		if err == nil || len(body) >= len(fx.wim) || cs == "HIT" {
			t.Fatalf("client %d through nginx: status %d cache %q, %d of %d bytes, err %v: want a truncated body",
				i, status, cs, len(body), len(fx.wim), err)
		}
		if got := up.count(blob); len(got) != i+1 {
			t.Fatalf("client %d: pxewim saw the blob %d times, want %d (nothing cached): %v", i, len(got), i+1, got)
		}
	}
	// Nothing of the damaged attempts was stored: once the store is repaired, the first client
	// is a MISS that reaches pxewim and gets the right bytes, the next one a HIT.
	fx.fs.put("sources/boot.wim", fx.wim, true)
	delete(dfs.claims, "sources/boot.wim") // no request is in flight
	for i, want := range []string{"MISS", "HIT"} {
		status, cs, body, err := fetchDamaged(t, cache+blob)
		if err != nil || status != 200 || cs != want || !bytes.Equal(body, fx.wim) {
			t.Fatalf("after the repair, client %d: status %d cache %q (want %s), identical=%v, err %v",
				i, status, cs, want, bytes.Equal(body, fx.wim), err)
		}
	}
	if got := up.count(blob); len(got) != 4 {
		t.Fatalf("pxewim saw the blob %d times, want 4 (3 damaged, 1 repaired): %v", len(got), got)
	}
}
