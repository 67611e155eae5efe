package wiminterop

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/wim"
)

// content makes n bytes that compress somewhat (runs of text between random bytes), so every
// codec produces real compressed chunks.
func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, 0, n)
	for len(b) < n {
		if r.IntN(2) == 0 {
			b = append(b, []byte(fmt.Sprintf("line %d of the boot image; ", r.IntN(1000)))...)
		} else {
			for range r.IntN(64) {
				b = append(b, byte(r.Uint32()))
			}
		}
	}
	return b[:n]
}

func TestServeRealWIM(t *testing.T) {
	imagex, err := exec.LookPath("wimlib-imagex")
	if err != nil {
		t.Skip("wimlib-imagex not found: install the Debian package wimtools (./test.sh does)")
	}
	src := filepath.Join(t.TempDir(), "src")
	files := map[string][]byte{
		"sources/boot.wim":     content(3<<20+12345, 1),
		"Boot/BCD":             content(12<<10, 2),
		"EFI/Boot/bootx64.efi": content(300<<10, 3),
		"boot/boot.sdi":        bytes.Repeat([]byte{0}, 100<<10),
		"empty.txt":            nil,
	}
	for name, data := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, comp := range [][]string{{"--compress=none"}, {"--compress=XPRESS"}, {"--compress=LZX"}, {"--compress=LZMS"}, {"--compress=LZMS", "--solid"}} {
		t.Run(strings.Join(comp, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "test.wim")
			args := append([]string{"capture", src, out, "test"}, comp...)
			if b, err := exec.Command(imagex, args...).CombinedOutput(); err != nil {
				t.Fatalf("wimlib-imagex %v: %v\n%s", args, err, b)
			}
			rc, err := wim.OpenFile(out, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			img, err := rc.Image(1)
			if err != nil {
				t.Fatal(err)
			}
			serveAndCompare(t, img, files)
		})
	}
}

func serveAndCompare(t *testing.T, img fs.FS, files map[string][]byte) {
	t.Helper()
	h := httpboot.NewHandler(httpboot.Config{
		Resolve: func(*http.Request, httpboot.ClientInfo) (fs.FS, error) { return img, nil },
		Logger:  slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for name, data := range files {
		u, err := httpboot.URL(img, srv.URL, name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum(data)
		wantBlob := len(data) > 0 // WIMs store no hash for empty streams
		if got := strings.Contains(u, "/blob/"+hex.EncodeToString(sum[:])+"/"); got != wantBlob {
			t.Errorf("%s: URL %s, want a blob URL: %v", name, u, wantBlob)
		}
		if direct, err := fs.ReadFile(img, name); err != nil || !bytes.Equal(direct, data) {
			// Not httpboot's doing: say so, so that the failure lands on the right package.
			t.Errorf("%s: package wim itself reads it wrongly (fs.ReadFile: %d bytes, err %v, identical=%v)", name, len(direct), err, bytes.Equal(direct, data))
			continue
		}
		status, hdr, body := get(t, u, "")
		if status != 200 || !bytes.Equal(body, data) {
			t.Fatalf("%s: status %d, %d bytes, identical=%v", name, status, len(body), bytes.Equal(body, data))
		}
		if wantBlob && (hdr.Get("ETag") != `"`+hex.EncodeToString(sum[:])+`"` || hdr.Get("Cache-Control") != httpboot.CacheImmutable) {
			t.Errorf("%s: ETag %s Cache-Control %q", name, hdr.Get("ETag"), hdr.Get("Cache-Control"))
		}
		n := int64(len(data))
		for _, r := range [][2]int64{{0, 0}, {32767, 32768}, {65530, 70000}, {n - 1, n - 1}, {n / 3, n - 1}, {100000, 1 << 20}} {
			if n == 0 || r[0] >= n {
				continue
			}
			end := min(r[1], n-1)
			status, _, body := get(t, u, fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
			if status != 206 || !bytes.Equal(body, data[r[0]:end+1]) {
				t.Errorf("%s range %d-%d: status %d, identical=%v", name, r[0], r[1], status, bytes.Equal(body, data[r[0]:end+1]))
			}
		}
	}
	// Many clients at once on one WIM file: each request reads through ReadAt on its own.
	data := files["sources/boot.wim"]
	u, _ := httpboot.URL(img, srv.URL, "sources/boot.wim")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			start := int64(i) * int64(len(data)) / 8
			end := min(start+300_000, int64(len(data))-1)
			status, _, body := get(t, u, fmt.Sprintf("bytes=%d-%d", start, end))
			if status != 206 || !bytes.Equal(body, data[start:end+1]) {
				t.Errorf("concurrent range %d-%d: status %d, identical=%v", start, end, status, bytes.Equal(body, data[start:end+1]))
			}
		})
	}
	wg.Wait()
	// What Windows tools and firmware send: backslashes and any case.
	status, _, body := get(t, srv.URL+`/files\BOOT\bcd`, "")
	if status != 200 || !bytes.Equal(body, files["Boot/BCD"]) {
		t.Errorf(`/files\BOOT\bcd: status %d, identical=%v`, status, bytes.Equal(body, files["Boot/BCD"]))
	}
}

func get(t *testing.T, url, rng string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}
