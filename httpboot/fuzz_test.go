package httpboot

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzPath checks the path cleaner and router on arbitrary decoded paths: a name they accept is
// a valid fs path with no parent reference, backslash or NUL, cleaning it again changes nothing,
// and a path with a ".." segment is never accepted.
func FuzzPath(f *testing.F) {
	for _, s := range []string{
		"/files/sources/boot.wim", `\Boot\BCD`, "/files/../etc/passwd", "/files/..\\..\\x",
		"/blob/" + strings.Repeat("ab", 20) + "/boot.wim", "/mac/52-54-00-12-34-56/boot.ipxe",
		"/files/a\x00b", "/files/\xc0\xae\xc0\xae/x", "/ipxe/menu.ipxe", "//..//", ".../...", "/files/.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, err := CleanName(p)
		hasDotDot := false
		for _, seg := range strings.Split(strings.ReplaceAll(p, `\`, "/"), "/") {
			hasDotDot = hasDotDot || seg == ".."
		}
		if err == nil {
			if hasDotDot {
				t.Fatalf("CleanName(%q) accepted a path with a .. segment: %q", p, name)
			}
			checkName(t, p, name)
			if again, err := CleanName(name); err != nil || again != name {
				t.Fatalf("CleanName not idempotent: %q -> %q -> %q, %v", p, name, again, err)
			}
		}
		rt, err := parseRoute(p)
		if err != nil {
			if s := statusOf(err); s != 400 && s != 404 {
				t.Fatalf("parseRoute(%q) refused with status %d", p, s)
			}
			return
		}
		if hasDotDot {
			t.Fatalf("parseRoute(%q) accepted a path with a .. segment", p)
		}
		checkName(t, p, rt.name)
	})
}

func checkName(t *testing.T, p, name string) {
	t.Helper()
	if !fs.ValidPath(name) || strings.ContainsAny(name, "\\\x00") || len(name) > MaxPathLen {
		t.Fatalf("%q cleaned to %q: not a safe fs path", p, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			t.Fatalf("%q cleaned to %q, which has a .. segment", p, name)
		}
	}
}

// FuzzServe sends arbitrary paths and Range headers through the whole handler: no panic, only
// the statuses the handler is meant to answer, and every 200 or single-range 206 body is exactly
// the bytes of the file it claims to be.
func FuzzServe(f *testing.F) {
	for _, s := range [][2]string{
		{"/files/f.bin", "bytes=0-9"}, {"/files/f.bin", "bytes=-5"}, {"/files/f.bin", "bytes=10-"},
		{"/files/f.bin", "bytes=0-0,5-6"}, {"/files/f.bin", "bytes=0-99999999999999999999"},
		{"/files/f.bin", "bytes=999-"}, {"/blob/" + strings.Repeat("00", 20) + "/f.bin", ""},
		{"/files/../f.bin", ""}, {"/files/f.bin", "bytes=-0"}, {"/boot.ipxe", "bytes=0-3"},
	} {
		f.Add(s[0], s[1])
	}
	data := randomBytes(1000, 7)
	m := newMemFS()
	m.put("f.bin", data, true)
	script := "#!ipxe\necho fuzz\n"
	h := NewHandler(Config{
		Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return m, nil },
		Script:  func(context.Context, ClientInfo, string) (string, error) { return script, nil },
		Logger:  discardLogger(),
	})
	f.Fuzz(func(t *testing.T, path, rng string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = &url.URL{Path: path}
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := data
		if rec.Header().Get("Content-Type") == "text/plain; charset=utf-8" && rec.Header().Get("Cache-Control") == CachePrivate {
			want = []byte(script)
		}
		switch rec.Code {
		case 200:
			if !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("%q Range %q: 200 body differs", path, rng)
			}
		case 206:
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "multipart/") {
				return
			}
			var start, end, size int64
			if _, err := fmt.Sscanf(rec.Header().Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err != nil ||
				size != int64(len(want)) || start < 0 || end < start || end >= size {
				t.Fatalf("%q Range %q: Content-Range %q", path, rng, rec.Header().Get("Content-Range"))
			}
			if !bytes.Equal(rec.Body.Bytes(), want[start:end+1]) {
				t.Fatalf("%q Range %q: 206 body differs from bytes %d-%d", path, rng, start, end)
			}
		case 400, 404, 416:
		default:
			t.Fatalf("%q Range %q: unexpected status %d", path, rng, rec.Code)
		}
	})
}
