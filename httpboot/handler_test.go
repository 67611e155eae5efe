package httpboot

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/boot"
)

const wimSize = 200_000

// fixture is a Handler over a memFS with WIM-like (hashed) and folder-like (plain) files.
type fixture struct {
	fs   *memFS
	h    *Handler
	wim  []byte   // sources/boot.wim, hashed
	sum  [20]byte // its SHA-1
	efi  []byte   // boot/x64/ipxe.efi, plain
	logs *bytes.Buffer
	obs  *eventLog
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	fx := &fixture{fs: newMemFS(), wim: randomBytes(wimSize, 1), efi: randomBytes(5000, 2), logs: &bytes.Buffer{}, obs: &eventLog{}}
	fx.sum = sha1.Sum(fx.wim)
	fx.fs.put("sources/boot.wim", fx.wim, true)
	fx.fs.put("boot/x64/ipxe.efi", fx.efi, false)
	fx.fs.put("Boot/BCD", []byte("regf fake hive"), true)
	fx.fs.put("notes.txt", []byte("hello\n"), false)
	cfg := Config{
		Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return fx.fs, nil },
		Script: func(_ context.Context, c ClientInfo, name string) (string, error) {
			if name == "broken.ipxe" {
				return "", errors.New("template exploded")
			}
			if name != "boot.ipxe" && name != "menu.ipxe" {
				return "", fmt.Errorf("no script %q: %w", name, fs.ErrNotExist)
			}
			return fmt.Sprintf("#!ipxe\necho %s mac=%s uuid=%s arch=%s platform=%s dhcp=%v\n",
				name, c.MACString(), c.UUID, c.BuildArch, c.Platform, c.FromDHCP), nil
		},
		Logger:   slog.New(slog.NewJSONHandler(fx.logs, nil)),
		Observer: fx.obs,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	fx.h = NewHandler(cfg)
	return fx
}

func (fx *fixture) blobPath() string {
	return "/blob/" + hex.EncodeToString(fx.sum[:]) + "/sources/boot.wim"
}

// do runs one request through the handler; headers alternate name, value.
func (fx *fixture) do(method, target string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "192.0.2.10:40000"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, req)
	return rec
}

// eventLog is an Observer that records every event.
type eventLog struct {
	mu     sync.Mutex
	events []string
	ended  []Event
}

func (l *eventLog) add(kind string, ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%d:%s", ev.ID, kind))
	if kind == "ended" {
		l.ended = append(l.ended, ev)
	}
}
func (l *eventLog) Started(ev Event)  { l.add("started", ev) }
func (l *eventLog) Progress(ev Event) { l.add("progress", ev) }
func (l *eventLog) Ended(ev Event)    { l.add("ended", ev) }

func (l *eventLog) lastEnded(t *testing.T) Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ended) == 0 {
		t.Fatal("no Ended event")
	}
	return l.ended[len(l.ended)-1]
}

// checkBody verifies a 200/206 response against data: whole body, one range, or multipart.
func checkBody(t *testing.T, status int, hdr http.Header, body []byte, data []byte, want [][2]int64) {
	t.Helper()
	size := int64(len(data))
	switch {
	case status == http.StatusOK:
		if !bytes.Equal(body, data) {
			t.Fatalf("200 body differs from the file (%d vs %d bytes)", len(body), len(data))
		}
	case status == http.StatusPartialContent && len(want) == 1:
		checkPart(t, hdr.Get("Content-Range"), body, data, want[0])
	case status == http.StatusPartialContent:
		mt, params, err := mime.ParseMediaType(hdr.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type %q, want multipart/byteranges", hdr.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for i := 0; ; i++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("got %d parts, want %d", i, len(want))
				}
				break
			}
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			pb, _ := io.ReadAll(p)
			if i >= len(want) {
				t.Fatalf("more parts than the %d wanted", len(want))
			}
			checkPart(t, p.Header.Get("Content-Range"), pb, data, want[i])
		}
	case status == http.StatusRequestedRangeNotSatisfiable:
		if cr := hdr.Get("Content-Range"); cr != "" && cr != "bytes */"+strconv.FormatInt(size, 10) {
			t.Errorf("416 Content-Range %q", cr)
		}
	}
}

func checkPart(t *testing.T, contentRange string, got, data []byte, want [2]int64) {
	t.Helper()
	wantCR := fmt.Sprintf("bytes %d-%d/%d", want[0], want[1], len(data))
	if contentRange != wantCR {
		t.Fatalf("Content-Range %q, want %q", contentRange, wantCR)
	}
	if !bytes.Equal(got, data[want[0]:want[1]+1]) {
		t.Fatalf("range %v: body differs from the file", want)
	}
}

func TestRanges(t *testing.T) {
	const n = wimSize
	tests := []struct {
		name, rng string
		status    int
		want      [][2]int64 // inclusive byte ranges expected in a 206
	}{
		{"none", "", 200, nil},
		{"single", "bytes=0-99", 206, [][2]int64{{0, 99}}},
		{"middle", "bytes=1000-1999", 206, [][2]int64{{1000, 1999}}},
		{"suffix", "bytes=-500", 206, [][2]int64{{n - 500, n - 1}}},
		{"suffix larger than file", "bytes=-999999", 206, [][2]int64{{0, n - 1}}},
		{"open-ended", "bytes=199000-", 206, [][2]int64{{199000, n - 1}}},
		{"end past size clamps", "bytes=100-99999999", 206, [][2]int64{{100, n - 1}}},
		{"last byte", "bytes=199999-199999", 206, [][2]int64{{n - 1, n - 1}}},
		{"multiple", "bytes=0-9,100-109,-10", 206, [][2]int64{{0, 9}, {100, 109}, {n - 10, n - 1}}},
		{"multiple overlapping", "bytes=0-99,50-149", 206, [][2]int64{{0, 99}, {50, 149}}},
		{"multiple summing past size ignored", "bytes=0-,0-", 200, nil},
		{"start at size", "bytes=200000-", 416, nil},
		{"start past size", "bytes=300000-300010", 416, nil},
		{"reversed", "bytes=5-2", 416, nil},
		{"overflowing end", "bytes=0-99999999999999999999", 416, nil},
		{"overflowing start", "bytes=99999999999999999999-", 416, nil},
		{"overflowing suffix", "bytes=-99999999999999999999", 416, nil},
		{"negative", "bytes=-5-10", 416, nil},
		{"garbage", "bytes=abc", 416, nil},
		{"empty set is no range", "bytes=", 200, nil},
		{"zero suffix", "bytes=-0", 416, nil},
		{"zero suffix padded", "bytes= -000 ", 416, nil},
		{"zero suffix among others", "bytes=0-9,-0", 206, [][2]int64{{0, 9}}},
		{"zero suffix twice", "bytes=-0,-0", 416, nil},
	}
	fx := newFixture(t, nil)
	for _, path := range []string{"/files/sources/boot.wim", fx.blobPath()} {
		for _, tt := range tests {
			t.Run(path[1:5]+"/"+tt.name, func(t *testing.T) {
				rec := fx.do("GET", path, "Range", tt.rng)
				if rec.Code != tt.status {
					t.Fatalf("Range %q: status %d, want %d (body %.80q)", tt.rng, rec.Code, tt.status, rec.Body.String())
				}
				checkBody(t, rec.Code, rec.Header(), rec.Body.Bytes(), fx.wim, tt.want)
				if ev := fx.obs.lastEnded(t); ev.Range != tt.rng || ev.Status != tt.status || ev.Bytes != int64(rec.Body.Len()) {
					t.Errorf("Ended event range=%q status=%d bytes=%d, want %q %d %d", ev.Range, ev.Status, ev.Bytes, tt.rng, tt.status, rec.Body.Len())
				}
			})
		}
	}
}

func TestHeaders(t *testing.T) {
	fx := newFixture(t, nil)
	sumTag := `"` + hex.EncodeToString(fx.sum[:]) + `"`
	tests := []struct {
		target             string
		status             int
		ctype, cache, etag string // etag "*" means any strong 16-hex validator
		lastModified       bool
		contentLength      int
	}{
		{fx.blobPath(), 200, "application/octet-stream", CacheImmutable, sumTag, true, wimSize},
		{"/files/sources/boot.wim", 200, "application/octet-stream", CacheRevalidate, sumTag, true, wimSize},
		{"/files/boot/x64/ipxe.efi", 200, "application/efi", CacheRevalidate, "*", true, 5000},
		{"/files/notes.txt", 200, "text/plain; charset=utf-8", CacheRevalidate, "*", true, 6},
		{"/boot.ipxe?mac=52-54-00-12-34-56", 200, "text/plain; charset=utf-8", CachePrivate, "", false, -1},
		{"/files/missing.wim", 404, "text/plain; charset=utf-8", "no-store", "", false, -1},
	}
	for _, method := range []string{"GET", "HEAD"} {
		for _, tt := range tests {
			t.Run(method+tt.target, func(t *testing.T) {
				rec := fx.do(method, tt.target)
				h := rec.Header()
				if rec.Code != tt.status {
					t.Fatalf("status %d, want %d", rec.Code, tt.status)
				}
				if got := h.Get("Content-Type"); got != tt.ctype {
					t.Errorf("Content-Type %q, want %q", got, tt.ctype)
				}
				if got := h.Get("Cache-Control"); got != tt.cache {
					t.Errorf("Cache-Control %q, want %q", got, tt.cache)
				}
				etag := h.Get("ETag")
				switch {
				case tt.etag == "*":
					if len(etag) != 18 || etag[0] != '"' || strings.HasPrefix(etag, "W/") {
						t.Errorf("ETag %q, want a strong 16-hex validator", etag)
					}
				case etag != tt.etag:
					t.Errorf("ETag %q, want %q", etag, tt.etag)
				}
				if got := h.Get("Last-Modified") != ""; got != tt.lastModified {
					t.Errorf("Last-Modified %q, want present=%v", h.Get("Last-Modified"), tt.lastModified)
				}
				if tt.contentLength >= 0 {
					if got := h.Get("Content-Length"); got != strconv.Itoa(tt.contentLength) {
						t.Errorf("Content-Length %q, want %d", got, tt.contentLength)
					}
				}
				if tt.status == 200 && h.Get("Accept-Ranges") != "bytes" {
					t.Errorf("Accept-Ranges %q", h.Get("Accept-Ranges"))
				}
				if method == "HEAD" && rec.Body.Len() != 0 {
					t.Errorf("HEAD returned a %d-byte body", rec.Body.Len())
				}
			})
		}
	}
}

func TestFilesMaxAge(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.FilesMaxAge = 90 * time.Second })
	if got := fx.do("GET", "/files/notes.txt").Header().Get("Cache-Control"); got != "public, max-age=90" {
		t.Errorf("/files/ Cache-Control %q with FilesMaxAge 90s", got)
	}
	if got := fx.do("GET", fx.blobPath()).Header().Get("Cache-Control"); got != CacheImmutable {
		t.Errorf("/blob/ Cache-Control %q", got)
	}
}

func TestConditional(t *testing.T) {
	fx := newFixture(t, nil)
	first := fx.do("GET", "/files/boot/x64/ipxe.efi")
	plainTag, plainMod := first.Header().Get("ETag"), first.Header().Get("Last-Modified")
	sumTag := `"` + hex.EncodeToString(fx.sum[:]) + `"`
	wimFile := "/files/sources/boot.wim"
	tests := []struct {
		name, target string
		headers      []string
		status       int
		want         [][2]int64
	}{
		{"blob If-None-Match", fx.blobPath(), []string{"If-None-Match", sumTag}, 304, nil},
		{"file If-None-Match hash", wimFile, []string{"If-None-Match", sumTag}, 304, nil},
		{"file If-None-Match list", wimFile, []string{"If-None-Match", `"abc", ` + sumTag}, 304, nil},
		{"file If-None-Match star", wimFile, []string{"If-None-Match", "*"}, 304, nil},
		{"file If-None-Match other", wimFile, []string{"If-None-Match", `"0000"`}, 200, nil},
		{"plain If-None-Match", "/files/boot/x64/ipxe.efi", []string{"If-None-Match", plainTag}, 304, nil},
		{"plain If-Modified-Since", "/files/boot/x64/ipxe.efi", []string{"If-Modified-Since", plainMod}, 304, nil},
		{"If-Range match", wimFile, []string{"Range", "bytes=10-19", "If-Range", sumTag}, 206, [][2]int64{{10, 19}}},
		{"If-Range stale etag", wimFile, []string{"Range", "bytes=10-19", "If-Range", `"0123"`}, 200, nil},
		{"If-Range weak etag", wimFile, []string{"Range", "bytes=10-19", "If-Range", "W/" + sumTag}, 200, nil},
		{"If-Range date", "/files/boot/x64/ipxe.efi", []string{"Range", "bytes=10-19", "If-Range", plainMod}, 206, [][2]int64{{10, 19}}},
		{"If-Range stale, zero suffix", wimFile, []string{"Range", "bytes=-0", "If-Range", `"0123"`}, 200, nil},
		{"If-Range match, zero suffix", wimFile, []string{"Range", "bytes=-0", "If-Range", sumTag}, 416, nil},
		{"If-Match mismatch", wimFile, []string{"If-Match", `"0123"`}, 412, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := fx.do("GET", tt.target, tt.headers...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			data := fx.wim
			if strings.HasSuffix(tt.target, ".efi") {
				data = fx.efi
			}
			if tt.status == 304 && rec.Body.Len() != 0 {
				t.Errorf("304 with a %d-byte body", rec.Body.Len())
			}
			checkBody(t, rec.Code, rec.Header(), rec.Body.Bytes(), data, tt.want)
		})
	}
	// Replacing a plain file changes its validator, so a cache's old ETag no longer matches.
	fx.fs.touch("boot/x64/ipxe.efi", []byte("new build"))
	rec := fx.do("GET", "/files/boot/x64/ipxe.efi", "If-None-Match", plainTag)
	if rec.Code != 200 || rec.Body.String() != "new build" || rec.Header().Get("ETag") == plainTag {
		t.Errorf("after replacing the file: status %d body %q ETag %s (old %s)", rec.Code, rec.Body.String(), rec.Header().Get("ETag"), plainTag)
	}
}

func TestBlobIntegrity(t *testing.T) {
	fx := newFixture(t, nil)
	otherSum := sha1.Sum([]byte("other"))
	tests := []struct {
		name, target string
		status       int
	}{
		{"right hash", fx.blobPath(), 200},
		{"wrong hash", "/blob/" + hex.EncodeToString(otherSum[:]) + "/sources/boot.wim", 404},
		{"plain file has no blob", "/blob/" + hex.EncodeToString(otherSum[:]) + "/boot/x64/ipxe.efi", 404},
		{"uppercase hash", "/blob/" + strings.ToUpper(hex.EncodeToString(fx.sum[:])) + "/sources/boot.wim", 400},
		{"short hash", "/blob/abcdef/sources/boot.wim", 400},
		{"non-hex hash", "/blob/" + strings.Repeat("zz", 20) + "/sources/boot.wim", 400},
		{"no name", "/blob/" + hex.EncodeToString(fx.sum[:]), 404},
		{"no hash", "/blob/", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := fx.do("GET", tt.target); rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.status, rec.Body.String())
			}
		})
	}
	// The store changed: the old URL must not serve the new bytes (caches would keep them a year).
	fx.fs.touch("sources/boot.wim", []byte("a new boot.wim"))
	if rec := fx.do("GET", fx.blobPath()); rec.Code != 404 {
		t.Errorf("blob URL after content change: status %d, want 404", rec.Code)
	}
	newSum := sha1.Sum([]byte("a new boot.wim"))
	u, err := URL(fx.fs, "http://x", "sources/boot.wim")
	if err != nil || u != BlobURL("http://x", newSum, "sources/boot.wim") {
		t.Fatalf("URL after change = %q, %v", u, err)
	}
	if rec := fx.do("GET", strings.TrimPrefix(u, "http://x")); rec.Code != 200 || rec.Body.String() != "a new boot.wim" {
		t.Errorf("new blob URL: status %d body %q", rec.Code, rec.Body.String())
	}
}

func TestContentType(t *testing.T) {
	tests := map[string]string{
		"ipxe.efi": "application/efi", "EFI/BOOT/BOOTX64.EFI": "application/efi", "snponly.efi": "application/efi",
		"rescue.iso": "application/vnd.efi-iso", "RESCUE.ISO": "application/vnd.efi-iso",
		"disk.img": "application/vnd.efi-img", "floppy.ima": "application/vnd.efi-img",
		"sources/boot.wim": "application/octet-stream", "boot/boot.sdi": "application/octet-stream",
		"Boot/BCD": "application/octet-stream", "undionly.kpxe": "application/octet-stream",
		"pxeboot.com": "application/octet-stream", "pxelinux.0": "application/octet-stream",
		"pxeboot.n12": "application/octet-stream", "vmlinuz": "application/octet-stream",
		"initrd.gz": "application/octet-stream", "weird.html": "application/octet-stream",
		"boot.ipxe": "text/plain; charset=utf-8", "pxelinux.cfg": "text/plain; charset=utf-8",
		"README.TXT": "text/plain; charset=utf-8",
	}
	for name, want := range tests {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestFileHashZeroMeansNone(t *testing.T) {
	f := struct {
		fs.File
		ContentHasher
	}{nil, zeroHasher{}}
	if _, ok := fileHash(f); ok {
		t.Error("an all-zero Hash() counts as a content hash")
	}
}

type zeroHasher struct{}

func (zeroHasher) Hash() [20]byte { return [20]byte{} }

func TestScripts(t *testing.T) {
	fx := newFixture(t, func(c *Config) {
		c.Clients = ClientsFunc(func(ip netip.Addr) (boot.Client, bool) {
			if ip == netip.MustParseAddr("192.0.2.10") {
				return boot.Client{MAC: mustMAC("aa:bb:cc:dd:ee:ff"), IP: ip, Arch: 7, UUID: "dhcp-uuid"}, true
			}
			return boot.Client{}, false
		})
	})
	tests := []struct {
		target string
		status int
		body   string
	}{
		{"/boot.ipxe?mac=52-54-00-12-34-56&uuid=ABC&arch=x86_64&platform=efi", 200,
			"#!ipxe\necho boot.ipxe mac=52:54:00:12:34:56 uuid=abc arch=x86_64 platform=efi dhcp=false\n"},
		{"/boot.ipxe", 200, "#!ipxe\necho boot.ipxe mac=aa:bb:cc:dd:ee:ff uuid=dhcp-uuid arch= platform= dhcp=true\n"},
		{"/boot.ipxe?mac=aa:bb:cc:dd:ee:ff&uuid=q", 200, "#!ipxe\necho boot.ipxe mac=aa:bb:cc:dd:ee:ff uuid=q arch= platform= dhcp=true\n"},
		{"/boot.ipxe?mac=52-54-00-12-34-56&uuid=00000000-0000-0000-0000-000000000000", 200,
			"#!ipxe\necho boot.ipxe mac=52:54:00:12:34:56 uuid= arch= platform= dhcp=false\n"},
		{"/boot.ipxe?mac=", 200, "#!ipxe\necho boot.ipxe mac=aa:bb:cc:dd:ee:ff uuid=dhcp-uuid arch= platform= dhcp=true\n"},
		{"/mac/525400123456/ipxe/menu.ipxe?arch=i386", 200, "#!ipxe\necho menu.ipxe mac=52:54:00:12:34:56 uuid= arch=i386 platform= dhcp=false\n"},
		{"/ipxe/menu.ipxe", 200, "#!ipxe\necho menu.ipxe mac=aa:bb:cc:dd:ee:ff uuid=dhcp-uuid arch= platform= dhcp=true\n"},
		{"/ipxe/nope.ipxe", 404, "file not found\n"},
		{"/ipxe/broken.ipxe", 500, "Internal Server Error\n"},
		{"/ipxe/", 404, ""},
		{"/mac/zz/boot.ipxe", 400, ""},
		{"/boot.ipxe/x", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := fx.do("GET", tt.target)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%q)", rec.Code, tt.status, rec.Body.String())
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("body %q\nwant %q", rec.Body.String(), tt.body)
			}
		})
	}
	if !strings.Contains(fx.logs.String(), `"error":"script \"broken.ipxe\": template exploded"`) {
		t.Errorf("the 500's cause is not logged:\n%s", fx.logs.String())
	}
}

func mustMAC(s string) []byte {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestMethodNotAllowed(t *testing.T) {
	fx := newFixture(t, nil)
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		rec := fx.do(m, "/files/notes.txt")
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
	}{
		{fmt.Errorf("no plan for client: %w", fs.ErrNotExist), 404},
		{fmt.Errorf("client banned: %w", fs.ErrPermission), 403},
		{errors.New("sftp store down"), 500},
	}
	for _, tt := range tests {
		fx := newFixture(t, func(c *Config) {
			c.Resolve = func(*http.Request, ClientInfo) (fs.FS, error) { return nil, tt.err }
		})
		if rec := fx.do("GET", "/files/notes.txt"); rec.Code != tt.status || strings.Contains(rec.Body.String(), "sftp") {
			t.Errorf("Resolve error %v: status %d body %q, want %d without internals", tt.err, rec.Code, rec.Body.String(), tt.status)
		}
	}
}

func TestLogAndObserver(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.ProgressInterval = time.Nanosecond })
	rec := fx.do("GET", "/files/sources/boot.wim?mac=52-54-00-aa-bb-cc", "Range", "bytes=0-99999", "User-Agent", "iPXE/1.0.0")
	if rec.Code != 206 {
		t.Fatalf("status %d", rec.Code)
	}
	ev := fx.obs.lastEnded(t)
	if ev.Kind != "file" || ev.Name != "sources/boot.wim" || ev.Size != wimSize || ev.Bytes != 100000 ||
		ev.Status != 206 || ev.Client.MACString() != "52:54:00:aa:bb:cc" || ev.Err != nil {
		t.Errorf("Ended event %+v", ev)
	}
	fx.obs.mu.Lock()
	evs := fx.obs.events
	fx.obs.mu.Unlock()
	id := strconv.FormatUint(ev.ID, 10)
	if evs[0] != id+":started" || evs[len(evs)-1] != id+":ended" || len(evs) < 3 || evs[1] != id+":progress" {
		t.Errorf("event order %v", evs)
	}
	line := fx.logs.String()
	for _, want := range []string{`"method":"GET"`, `"path":"/files/sources/boot.wim"`, `"range":"bytes=0-99999"`,
		`"status":206`, `"bytes":100000`, `"mac":"52:54:00:aa:bb:cc"`, `"user_agent":"iPXE/1.0.0"`, `"duration":`} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %s:\n%s", want, line)
		}
	}
}

// TestConcurrentReaders reads different ranges of one file from many goroutines: each request
// has its own SectionReader, so no request sees another's offset.
func TestConcurrentReaders(t *testing.T) {
	fx := newFixture(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			start := int64(i * 3000)
			rec := fx.do("GET", fx.blobPath(), "Range", fmt.Sprintf("bytes=%d-%d", start, start+2999))
			if rec.Code != 206 || !bytes.Equal(rec.Body.Bytes(), fx.wim[start:start+3000]) {
				errs <- fmt.Errorf("reader %d: status %d, %d bytes, content differs", i, rec.Code, rec.Body.Len())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// failingFS serves a file whose ReadAt fails past an offset, like a corrupt WIM chunk.
type failingFS struct{ *memFS }

type failingFile struct{ *plainFile }

func (f failingFile) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > 1000 {
		return 0, errors.New("chunk 3: LZX: bad block type")
	}
	return f.plainFile.ReadAt(p, off)
}

func (f failingFS) Open(name string) (fs.File, error) {
	file, err := f.memFS.Open(name)
	if pf, ok := file.(*plainFile); ok {
		return failingFile{pf}, nil
	}
	return file, err
}

func TestReadErrorMidBodyIsLogged(t *testing.T) {
	fx := newFixture(t, nil)
	fx.h.cfg.Resolve = func(*http.Request, ClientInfo) (fs.FS, error) { return failingFS{fx.fs}, nil }
	rec := fx.do("GET", "/files/boot/x64/ipxe.efi")
	if rec.Body.Len() >= len(fx.efi) {
		t.Fatalf("a failing file was served whole (%d bytes)", rec.Body.Len())
	}
	if ev := fx.obs.lastEnded(t); ev.Err == nil || !strings.Contains(ev.Err.Error(), "bad block type") {
		t.Errorf("Ended.Err = %v, want the read error", ev.Err)
	}
	if !strings.Contains(fx.logs.String(), "bad block type") || !strings.Contains(fx.logs.String(), `"level":"WARN"`) {
		t.Errorf("read error not logged as a warning:\n%s", fx.logs.String())
	}
}

func TestURLs(t *testing.T) {
	sum := sha1.Sum([]byte("x"))
	hexSum := hex.EncodeToString(sum[:])
	tests := []struct{ got, want string }{
		{FileURL("http://10.0.0.1:8080/", "boot/x64/ipxe.efi"), "http://10.0.0.1:8080/files/boot/x64/ipxe.efi"},
		{FileURL("http://h", "/odd name/a#b?.iso"), "http://h/files/odd%20name/a%23b%3F.iso"},
		{BlobURL("http://h", sum, "sources/boot.wim"), "http://h/blob/" + hexSum + "/sources/boot.wim"},
		{ScriptURL("http://h/", "boot.ipxe"), "http://h/boot.ipxe"},
		{ScriptURL("http://h", "menu.ipxe"), "http://h/ipxe/menu.ipxe"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	fx := newFixture(t, nil)
	for name, want := range map[string]string{
		"sources/boot.wim":  BlobURL("http://h", fx.sum, "sources/boot.wim"),
		"boot/x64/ipxe.efi": "http://h/files/boot/x64/ipxe.efi",
	} {
		if got, err := URL(fx.fs, "http://h", name); err != nil || got != want {
			t.Errorf("URL(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := URL(fx.fs, "http://h", "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("URL of a missing file: %v", err)
	}
	// Every URL the helpers build is served by the handler.
	for _, u := range []string{FileURL("http://h", "Boot/BCD"), BlobURL("http://h", sha1.Sum([]byte("regf fake hive")), "Boot/BCD")} {
		if rec := fx.do("GET", strings.TrimPrefix(u, "http://h")); rec.Code != 200 {
			t.Errorf("%s: status %d", u, rec.Code)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// shortWriter is a client that goes away after limit bytes.
type shortWriter struct {
	*httptest.ResponseRecorder
	limit int
}

func (s *shortWriter) Write(p []byte) (int, error) {
	if s.Body.Len()+len(p) > s.limit {
		return 0, errors.New("connection reset by peer")
	}
	return s.ResponseRecorder.Write(p)
}

func TestCutShortIsReported(t *testing.T) {
	fx := newFixture(t, nil)
	req := httptest.NewRequest("GET", fx.blobPath(), nil)
	fx.h.ServeHTTP(&shortWriter{httptest.NewRecorder(), 64 << 10}, req)
	ev := fx.obs.lastEnded(t)
	if ev.Err == nil || !strings.Contains(ev.Err.Error(), fmt.Sprintf("of %d bytes", wimSize)) || ev.Bytes >= wimSize {
		t.Errorf("client gone after 64 KiB: Ended %d bytes, Err %v", ev.Bytes, ev.Err)
	}
	if !strings.Contains(fx.logs.String(), "response cut short") {
		t.Errorf("not logged:\n%s", fx.logs.String())
	}
	// A complete download and a HEAD are not reported.
	for _, m := range []string{"GET", "HEAD"} {
		fx.do(m, fx.blobPath())
		if ev := fx.obs.lastEnded(t); ev.Err != nil {
			t.Errorf("%s: Err %v", m, ev.Err)
		}
	}
}

// registry is a Clients with LookupMAC, like boot.Registry.
type registry map[string]boot.Client

func (r registry) LookupIP(ip netip.Addr) (boot.Client, bool) {
	for _, c := range r {
		if c.IP == ip {
			return c, true
		}
	}
	return boot.Client{}, false
}

func (r registry) LookupMAC(mac net.HardwareAddr) (boot.Client, bool) {
	c, ok := r[mac.String()]
	return c, ok
}

func TestIdentify(t *testing.T) {
	a := boot.Client{MAC: mustMAC("aa:aa:aa:aa:aa:aa"), IP: netip.MustParseAddr("10.0.0.5"), Arch: 7, UUID: "uuid-a", Firmware: boot.FirmwareEFI64}
	b := boot.Client{MAC: mustMAC("bb:bb:bb:bb:bb:bb"), IP: netip.MustParseAddr("10.0.0.6"), Arch: 0, Firmware: boot.FirmwareBIOS}
	reg := registry{a.MAC.String(): a, b.MAC.String(): b}
	tests := []struct {
		name, remote, target string
		clients              Clients
		mac, uuid            string
		fromDHCP             bool
		arch                 uint16
	}{
		{"by IP", "10.0.0.5:1000", "/boot.ipxe", reg, "aa:aa:aa:aa:aa:aa", "uuid-a", true, 7},
		{"by MAC from another IP", "10.9.9.9:1000", "/boot.ipxe?mac=bb-bb-bb-bb-bb-bb", reg, "bb:bb:bb:bb:bb:bb", "", true, 0},
		{"MAC wins over IP", "10.0.0.5:1000", "/mac/bbbbbbbbbbbb/boot.ipxe", reg, "bb:bb:bb:bb:bb:bb", "", true, 0},
		{"IP-only lookup, other MAC", "10.0.0.5:1000", "/boot.ipxe?mac=cc-cc-cc-cc-cc-cc",
			ClientsFunc(reg.LookupIP), "cc:cc:cc:cc:cc:cc", "", false, 0},
		{"unknown", "10.9.9.9:1000", "/boot.ipxe", reg, "", "", false, 0},
		{"no registry", "10.0.0.5:1000", "/boot.ipxe?mac=aa:aa:aa:aa:aa:aa&uuid=U", nil, "aa:aa:aa:aa:aa:aa", "u", false, 0},
		{"query UUID wins", "10.0.0.5:1000", "/boot.ipxe?uuid=Q", reg, "aa:aa:aa:aa:aa:aa", "q", true, 7},
		{"IPv4-mapped remote", "[::ffff:10.0.0.5]:1000", "/boot.ipxe", reg, "aa:aa:aa:aa:aa:aa", "uuid-a", true, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			r.RemoteAddr = tt.remote
			rt, err := parseRoute(r.URL.Path)
			if err != nil {
				t.Fatal(err)
			}
			ci := identify(r, rt.mac, tt.clients)
			if ci.MACString() != tt.mac || ci.UUID != tt.uuid || ci.FromDHCP != tt.fromDHCP || ci.Arch != tt.arch {
				t.Errorf("got mac %q uuid %q fromDHCP %v arch %d; want %q %q %v %d", ci.MACString(), ci.UUID, ci.FromDHCP, ci.Arch, tt.mac, tt.uuid, tt.fromDHCP, tt.arch)
			}
			if want, _ := netip.ParseAddrPort(tt.remote); ci.IP != want.Addr().Unmap() {
				t.Errorf("IP %v, want the remote address %v", ci.IP, want.Addr().Unmap())
			}
		})
	}
}

type fixedETag string

func (e fixedETag) ETag() string { return string(e) }

func TestFileETag(t *testing.T) {
	for _, tc := range []struct {
		etag string
		ok   bool
	}{
		{`"abc123"`, true},
		{`"0123456789abcdef0123456789abcdef01234567"`, true},
		{`abc123`, false},        // not quoted
		{`"`, false},             // too short
		{`""`, true},             // empty but well-formed
		{`"a"b"`, false},         // a quote inside
		{"\"a\r\nX: y\"", false}, // header injection
	} {
		f := struct {
			fs.File
			ETagger
		}{nil, fixedETag(tc.etag)}
		got, ok := fileETag(f)
		if ok != tc.ok || (ok && got != tc.etag) {
			t.Errorf("fileETag(%q) = %q, %v; want ok=%v", tc.etag, got, ok, tc.ok)
		}
	}
	if _, ok := fileETag(struct{ fs.File }{}); ok {
		t.Error("a file without ETag() has an ETag")
	}
}
