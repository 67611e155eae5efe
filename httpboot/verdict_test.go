package httpboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeVerdict is a store's background verification as a test controls it.
type fakeVerdict struct {
	mu      sync.Mutex
	done    chan struct{}
	err     error
	waiting chan struct{} // gets a value each time a request starts waiting
}

func newFakeVerdict() *fakeVerdict {
	return &fakeVerdict{done: make(chan struct{}), waiting: make(chan struct{}, 16)}
}

func (v *fakeVerdict) decide(err error) { v.mu.Lock(); v.err = err; v.mu.Unlock(); close(v.done) }

func (v *fakeVerdict) state() (bool, error) {
	select {
	case <-v.done:
		v.mu.Lock()
		defer v.mu.Unlock()
		return true, v.err
	default:
		return false, nil
	}
}

// damagedVerdict is a verdict of damage, marked as such (as localstore.VerifyError is).
type damagedVerdict struct{}

func (damagedVerdict) Error() string { return "WIM x.wim failed verification: SHA-1 mismatch" }
func (damagedVerdict) Corrupt() bool { return true }

// verdictFile is a WIM-like file with a verdict; checked tells whether full reads check
// themselves (a stream inside a WIM) or not (the WIM file served whole).
type verdictFile struct {
	*hashedFile
	v       *fakeVerdict
	checked bool
}

func (f *verdictFile) Verified() bool {
	known, err := f.v.state()
	return known && err == nil
}

func (f *verdictFile) WaitVerified(ctx context.Context) error {
	f.v.waiting <- struct{}{}
	select {
	case <-f.v.done:
		_, err := f.v.state()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *verdictFile) FullReadChecked() bool { return f.checked }

var _ Verdicter = (*verdictFile)(nil)

// verdictFS hands out the memFS's hashed files with the verdict.
type verdictFS struct {
	*memFS
	v       *fakeVerdict
	checked bool
	openErr error
}

func (m *verdictFS) Open(name string) (fs.File, error) {
	if m.openErr != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: m.openErr}
	}
	f, err := m.memFS.Open(name)
	if h, ok := f.(*hashedFile); ok && err == nil {
		return &verdictFile{hashedFile: h, v: m.v, checked: m.checked}, nil
	}
	return f, err
}

func newVerdictFixture(t *testing.T, checked bool, wait time.Duration) (*fixture, *verdictFS) {
	t.Helper()
	vfs := &verdictFS{v: newFakeVerdict(), checked: checked}
	fx := newFixture(t, func(c *Config) {
		c.Resolve = func(*http.Request, ClientInfo) (fs.FS, error) { return vfs, nil }
		c.VerifyWait = wait
	})
	vfs.memFS = fx.fs
	return fx, vfs
}

func TestBlobImmutableOnlyOnceVerified(t *testing.T) {
	fx, vfs := newVerdictFixture(t, true, time.Minute)
	// Not verified yet: a full GET of a self-checking file is served at once, not immutable.
	rec := fx.do("GET", fx.blobPath())
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), fx.wim) {
		t.Fatalf("unverified full GET: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if cc := rec.Header().Get("Cache-Control"); strings.Contains(cc, "immutable") || cc != CacheRevalidate {
		t.Errorf("unverified blob: Cache-Control %q, want %q", cc, CacheRevalidate)
	}
	if rec.Header().Get("ETag") == "" {
		t.Error("unverified blob lost its ETag")
	}
	if rec := fx.do("HEAD", fx.blobPath(), "Range", "bytes=0-9"); rec.Code != 206 || strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("unverified HEAD: %d %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
	vfs.v.decide(nil)
	rec = fx.do("GET", fx.blobPath())
	if cc := rec.Header().Get("Cache-Control"); rec.Code != 200 || cc != CacheImmutable {
		t.Errorf("verified blob: %d, Cache-Control %q", rec.Code, cc)
	}
}

func TestRangeWaitsForVerdict(t *testing.T) {
	fx, vfs := newVerdictFixture(t, true, time.Minute)
	type result struct {
		code int
		body []byte
		cc   string
	}
	got := make(chan result, 1)
	go func() {
		rec := fx.do("GET", fx.blobPath(), "Range", "bytes=1000-1999")
		got <- result{rec.Code, rec.Body.Bytes(), rec.Header().Get("Cache-Control")}
	}()
	<-vfs.v.waiting // the range request is held
	select {
	case r := <-got:
		t.Fatalf("range answered before the verdict: %d", r.code)
	default:
	}
	vfs.v.decide(nil)
	r := <-got
	if r.code != 206 || !bytes.Equal(r.body, fx.wim[1000:2000]) || r.cc != CacheImmutable {
		t.Fatalf("range after a good verdict: %d, %q, equal %v", r.code, r.cc, bytes.Equal(r.body, fx.wim[1000:2000]))
	}
}

func TestNoVerdictInTime503(t *testing.T) {
	fx, _ := newVerdictFixture(t, true, 20*time.Millisecond)
	rec := fx.do("GET", fx.blobPath(), "Range", "bytes=0-99")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != verifyRetryAfter {
		t.Fatalf("range without a verdict: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" || rec.Header().Get("ETag") != "" {
		t.Errorf("503 is cacheable: Cache-Control %q, ETag %q", cc, rec.Header().Get("ETag"))
	}
	if !strings.Contains(fx.logs.String(), `"status":503`) {
		t.Errorf("no 503 in the log:\n%s", fx.logs)
	}

	// The WIM file served whole: its full reads check nothing, so a full GET waits too.
	fx2, _ := newVerdictFixture(t, false, 20*time.Millisecond)
	if rec := fx2.do("GET", "/files/sources/boot.wim"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("full GET of an unchecked, unverified file: %d, want 503", rec.Code)
	}
	if rec := fx2.do("HEAD", "/files/sources/boot.wim"); rec.Code != 200 {
		t.Errorf("HEAD of an unverified file: %d, want 200 (no bytes, no wait)", rec.Code)
	}
}

func TestBadVerdict500(t *testing.T) {
	fx, vfs := newVerdictFixture(t, false, time.Minute)
	vfs.v.decide(fmt.Errorf("verifying: %w", damagedVerdict{}))
	rec := fx.do("GET", "/files/sources/boot.wim")
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "damaged") {
		t.Fatalf("bad verdict: %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(fx.logs.String(), `"level":"ERROR"`) {
		t.Errorf("bad verdict not logged at ERROR:\n%s", fx.logs)
	}
	// A store that refuses to open a file it knows is damaged: 500 too, at ERROR.
	fx2, vfs2 := newVerdictFixture(t, false, time.Minute)
	vfs2.openErr = damagedVerdict{}
	if rec := fx2.do("GET", "/files/sources/boot.wim"); rec.Code != 500 || !strings.Contains(rec.Body.String(), "damaged") {
		t.Errorf("refused damaged file: %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(fx2.logs.String(), `"level":"ERROR"`) {
		t.Errorf("refused damaged file not logged at ERROR:\n%s", fx2.logs)
	}
	if errors.Is(damagedVerdict{}, fs.ErrNotExist) {
		t.Fatal("test double misclassified")
	}
}
