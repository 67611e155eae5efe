package httpboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Config is what a Handler serves and whom it tells.
type Config struct {
	// Resolve returns the tree that /files/ and /blob/ URLs of this request address: usually
	// the client's boot plan (an overlay of WIM images, folders, ...). Errors wrapping
	// fs.ErrNotExist give 404, fs.ErrPermission 403, others 500. Nil serves no files.
	Resolve func(r *http.Request, client ClientInfo) (fs.FS, error)
	// Script renders the iPXE script or menu called name ("boot.ipxe" for /boot.ipxe) for the
	// client. Errors wrapping fs.ErrNotExist give 404, others 500. Nil serves no scripts.
	Script func(ctx context.Context, client ClientInfo, name string) (string, error)
	// Clients finds DHCP's record of the client: by the URL's MAC when it also implements
	// MACClients (boot.Registry does), else by the remote IP. Optional.
	Clients Clients
	// Logger receives one record per request. Nil means slog.Default().
	Logger *slog.Logger
	// Observer sees each request start, progress and end. Optional.
	Observer Observer
	// ProgressInterval is the least time between two Progress events of a request; 0 means 1s.
	ProgressInterval time.Duration
	// FilesMaxAge, when positive, lets caches reuse /files/ responses for that long without
	// revalidating ("public, max-age=N", whole seconds); 0 sends "no-cache" (always
	// revalidate). Set it only if serving a replaced file for that long is acceptable and a
	// URL names the same file for every client (the tree from Resolve does not differ per
	// client, or URLs carry ?mac=).
	FilesMaxAge time.Duration
	// VerifyWait bounds how long a request waits for the verdict on a file that is not
	// verified yet (see Verdicter) before it gets 503 with Retry-After; 0 means
	// DefaultVerifyWait.
	VerifyWait time.Duration
}

// DefaultVerifyWait is Config.VerifyWait's default: long enough for a boot.wim of a few hundred
// MB to be verified on a busy server, short enough that a booting client is told to retry
// (iPXE honours Retry-After) rather than left hanging.
const DefaultVerifyWait = 20 * time.Second

// verifyRetryAfter is the Retry-After of a 503 sent while a file is being verified.
const verifyRetryAfter = "5"

// Handler serves scripts and store files over HTTP (see the package doc for URLs and caching).
// It is safe for concurrent use.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	nextID atomic.Uint64
}

// NewHandler returns a Handler for cfg.
func NewHandler(cfg Config) *Handler {
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	if cfg.VerifyWait <= 0 {
		cfg.VerifyWait = DefaultVerifyWait
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{cfg: cfg, log: log}
}

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev := &Event{
		ID: h.nextID.Add(1), Start: time.Now(), Method: r.Method, Path: r.URL.Path,
		Kind: "none", Range: r.Header.Get("Range"), Size: -1,
	}
	rt, routeErr := parseRoute(r.URL.Path)
	ev.Client = identify(r, rt.mac, h.cfg.Clients)
	if routeErr == nil {
		ev.Kind, ev.Name = rt.kind.String(), rt.name
	}
	rw := &recorder{ResponseWriter: w, ev: ev, obs: h.cfg.Observer, every: h.cfg.ProgressInterval, lastTick: ev.Start}
	if h.cfg.Observer != nil {
		h.cfg.Observer.Started(*ev)
	}
	err := routeErr
	if err == nil {
		err = h.serve(rw, r, rt, ev)
	}
	if err != nil && ev.Status == 0 {
		sendError(rw, r, err)
	}
	ev.Err, ev.Duration = err, time.Since(ev.Start)
	if h.cfg.Observer != nil {
		h.cfg.Observer.Ended(*ev)
	}
	h.logRequest(r, ev)
}

// serve dispatches a routed request. An error returned before the response header is written
// becomes an error response; after it, it is only logged (the body is cut short).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt route, ev *Event) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return &httpError{status: http.StatusMethodNotAllowed, msg: "method " + r.Method + " not allowed"}
	}
	switch rt.kind {
	case routeScript:
		return h.serveScript(w, r, rt.name, ev)
	default:
		return h.serveFile(w, r, rt, ev)
	}
}

func (h *Handler) serveScript(w http.ResponseWriter, r *http.Request, name string, ev *Event) error {
	if h.cfg.Script == nil {
		return notFound("no script renderer configured")
	}
	script, err := h.cfg.Script(r.Context(), ev.Client, name)
	if err != nil {
		return fmt.Errorf("script %q: %w", name, err)
	}
	ev.Size = int64(len(script))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", CachePrivate)
	serveContent(w, r, name, time.Time{}, strings.NewReader(script), int64(len(script)))
	return nil
}

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, rt route, ev *Event) error {
	if h.cfg.Resolve == nil {
		return notFound("no store configured")
	}
	fsys, err := h.cfg.Resolve(r, ev.Client)
	if err != nil {
		return fmt.Errorf("tree for client %s: %w", clientLabel(ev.Client), err)
	}
	f, err := fsys.Open(rt.name)
	if err != nil {
		return openError(rt.name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %q: %w", rt.name, err)
	}
	if !fi.Mode().IsRegular() {
		return notFound("%q is not a regular file", rt.name)
	}
	if fi.Size() < 0 {
		return fmt.Errorf("%q: the tree reports a negative size %d", rt.name, fi.Size())
	}
	ev.Size = fi.Size()
	if err := h.awaitVerdict(w, r, f); err != nil {
		return fmt.Errorf("%q: %w", rt.name, err)
	}
	body, err := contentReader(f, fi.Size())
	if err != nil {
		return fmt.Errorf("%q: %w", rt.name, err)
	}
	sum, hashed := fileHash(f)
	hdr := w.Header()
	switch {
	case rt.kind == routeBlob && (!hashed || sum != rt.sum):
		// The URL promises content that this file no longer has (or never had): serving the
		// current bytes under it would poison every cache for a year.
		return notFound("%q has no content with hash %x", rt.name, rt.sum)
	case rt.kind == routeBlob && fileVerified(f):
		hdr.Set("Cache-Control", CacheImmutable)
	case rt.kind == routeBlob:
		// Not verified yet: a cache may keep what completes (never wrong bytes: see
		// Verdicter) but asks again; the URL becomes immutable once the verdict is in.
		hdr.Set("Cache-Control", CacheRevalidate)
	case h.cfg.FilesMaxAge > 0:
		hdr.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(h.cfg.FilesMaxAge/time.Second), 10))
	default:
		hdr.Set("Cache-Control", CacheRevalidate)
	}
	if hashed {
		hdr.Set("ETag", hashETag(sum))
	} else if e, ok := fileETag(f); ok {
		hdr.Set("ETag", e)
	} else {
		hdr.Set("ETag", statETag(rt.name, fi))
	}
	hdr.Set("Content-Type", ContentType(rt.name))
	var content io.ReadSeeker = body
	if kf, ok := kernelFile(f); ok {
		content = newKernelBody(kf, fi.Size()) // the kernel copies it (sendfile), see kernelFile
	}
	serveContent(w, r, rt.name, fi.ModTime(), content, fi.Size())
	if body.err != nil {
		return body.err
	}
	return cutShort(w, r, ev)
}

// awaitVerdict holds a request that could receive unverified wrong bytes until the file's
// verdict is in (see Verdicter): a range request, or a full GET of a file whose full reads are
// not checked. It returns an error response when the verdict does not come in time (503,
// Retry-After) or is bad (500, corrupt).
func (h *Handler) awaitVerdict(w http.ResponseWriter, r *http.Request, f fs.File) error {
	v, ok := f.(Verdicter)
	if !ok || r.Method != http.MethodGet || v.Verified() {
		return nil
	}
	if r.Header.Get("Range") == "" && v.FullReadChecked() {
		return nil // a full read fails before its last bytes if they are wrong
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.VerifyWait)
	defer cancel()
	err := v.WaitVerified(ctx)
	switch {
	case err == nil:
		return nil
	case r.Context().Err() != nil:
		return err // the client went away
	case ctx.Err() != nil:
		w.Header().Set("Retry-After", verifyRetryAfter)
		return &httpError{status: http.StatusServiceUnavailable,
			msg: "this file is being verified; retry in a few seconds", cause: fmt.Errorf("not verified after %v: %w", h.cfg.VerifyWait, err)}
	}
	return &httpError{status: http.StatusInternalServerError, msg: "the server's copy of this file is damaged", cause: err}
}

// cutShort reports a body that ended before its Content-Length: the client went away or the
// connection broke. ServeContent does not say so, and "the PXE client stopped at 40%" is what
// an admin needs to see in the log and on the dashboard.
func cutShort(w http.ResponseWriter, r *http.Request, ev *Event) error {
	if r.Method == http.MethodHead {
		return nil
	}
	want, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64)
	if err != nil || ev.Bytes >= want {
		return nil
	}
	return fmt.Errorf("response cut short: sent %d of %d bytes", ev.Bytes, want)
}

// openError classifies a failure to open a file of the tree. Besides "not exist" and
// "permission", trees refuse names for reasons of their own (os.Root: "path escapes from
// parent" for a symlink leading out; a WIM: a name that is not valid there): for the client
// they all mean the name is not in this tree, so 404, with the cause kept for the log.
func openError(name string, err error) error {
	err = fmt.Errorf("open %q: %w", name, err)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return err
	}
	if IsCorrupt(err) {
		// The tree refuses a file it knows to be damaged (a WIM that failed verification).
		return &httpError{status: http.StatusInternalServerError, msg: "the server's copy of this file is damaged", cause: err}
	}
	return &httpError{status: http.StatusNotFound, msg: "file not found", cause: err}
}

// contentReader gives ServeContent a private seekable view of the file. ReaderAt is preferred:
// a SectionReader keeps its own offset, so concurrent requests never share a file position, and
// nothing is buffered. A file that is only a ReadSeeker (each Open returns its own) also works.
func contentReader(f fs.File, size int64) (*errReader, error) {
	switch f := f.(type) {
	case io.ReaderAt:
		return &errReader{rs: io.NewSectionReader(f, 0, size)}, nil
	case io.ReadSeeker:
		return &errReader{rs: f}, nil
	}
	return nil, errors.New("file supports neither ReadAt nor Seek, cannot serve ranges")
}

// kernelFile returns f itself when it is a plain file of the operating system: an
// io.ReadSeeker with a file descriptor of its own (syscall.Conn), as an *os.File or a store's
// cached copy of a file is. ServeContent then copies from it through the connection's ReadFrom,
// which hands the copy to the kernel (sendfile: no bytes through user space). Such a file is
// read from its own offset, so the tree must give each Open its own descriptor (os files do).
func kernelFile(f fs.File) (kernelSource, bool) {
	kf, ok := f.(kernelSource)
	return kf, ok
}

// IsCorrupt reports whether err says that a file's stored bytes are damaged: somewhere in its
// chain is an error with a Corrupt() bool method returning true (wim.ChecksumError: a WIM
// stream read in full does not match its SHA-1). Trees report it as a read error instead of
// the file's last bytes, so the response is cut before its body completes (net/http closes
// the connection when fewer bytes than the Content-Length were written): no client and no
// cache in front ever holds a complete wrong body. The request is logged at ERROR level.
func IsCorrupt(err error) bool {
	var c interface{ Corrupt() bool }
	return errors.As(err, &c) && c.Corrupt()
}

// errReader remembers the first read error: ServeContent drops errors during the body copy,
// and a store that fails mid-file (a corrupt WIM chunk) must show up in the log.
type errReader struct {
	rs  io.ReadSeeker
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.rs.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = fmt.Errorf("reading body: %w", err)
	}
	return n, err
}

func (e *errReader) Seek(off int64, whence int) (int64, error) { return e.rs.Seek(off, whence) }

// sendError writes an error response. Errors are never cached: a file missing now may be in
// the store a minute later.
func sendError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	msg := http.StatusText(status)
	var he *httpError
	if errors.As(err, &he) {
		msg = he.msg // refusals name the problem; internal errors stay in the log
	} else if status == http.StatusNotFound {
		msg = "file not found"
	}
	w.Header().Del("ETag")
	w.Header().Del("Last-Modified")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		return
	}
	http.Error(w, msg, status)
}

// clientLabel names a client in messages: its MAC, else its IP.
func clientLabel(c ClientInfo) string {
	if s := c.MACString(); s != "" {
		return s
	}
	return c.IP.String()
}

func (h *Handler) logRequest(r *http.Request, ev *Event) {
	// Warn when the operator has something to fix: a server error, a body cut short by a
	// store error, or a refusal by the tree for a reason other than "not found". Damaged
	// content (a checksum mismatch, the body cut before its last bytes) is an error.
	level := slog.LevelInfo
	var he *httpError
	switch {
	case IsCorrupt(ev.Err):
		level = slog.LevelError
	case ev.Status >= 500 || (ev.Err != nil && ev.Status < 400) || (errors.As(ev.Err, &he) && he.cause != nil):
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Uint64("id", ev.ID),
		slog.String("method", ev.Method),
		slog.String("path", truncate(ev.Path, 512)),
		slog.String("range", truncate(ev.Range, 256)),
		slog.Int("status", ev.Status),
		slog.Int64("bytes", ev.Bytes),
		slog.Int64("size", ev.Size),
		slog.Duration("duration", ev.Duration),
		slog.String("mac", ev.Client.MACString()),
		slog.String("remote", r.RemoteAddr),
		slog.String("user_agent", truncate(ev.Client.UserAgent, 256)),
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("error", ev.Err.Error()))
	}
	h.log.LogAttrs(r.Context(), level, "http request", attrs...)
}

// truncate bounds client-supplied strings in log records: a hostile client must not be able to
// write 64 KiB of log per request.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...(truncated)"
}
