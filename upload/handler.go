package upload

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
)

type logger = *slog.Logger

// incomingName is the writable folder as clients see it.
const incomingName = "incoming"

// handler serves one SFTP session (pkg/sftp Handlers).
type handler struct {
	s       *Server
	ctx     context.Context
	sessDir string // store-relative slash path of this session's incoming folder
	stderr  io.Writer
	log     logger

	stderrM sync.Mutex
}

// tell writes a line to the client's stderr (OpenSSH sftp prints it) and logs it.
func (h *handler) tell(level slog.Level, msg string, args ...any) {
	h.log.Log(h.ctx, level, msg, args...)
	h.stderrM.Lock()
	defer h.stderrM.Unlock()
	line := "pxewim: " + msg
	for i := 0; i+1 < len(args); i += 2 {
		line += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	fmt.Fprintf(h.stderr, "%s\r\n", line)
}

// refuse reports a refused request to the client and returns the SFTP error.
func (h *handler) refuse(op, p, why string) error {
	h.tell(slog.LevelWarn, "refused "+op+" "+p+": "+why)
	return fmt.Errorf("pxewim: %s %s refused: %s: %w", op, p, why, fs.ErrPermission)
}

// target maps a client path to a store-relative path and whether it lies in the incoming
// area. Client paths arrive cleaned and absolute (pkg/sftp), so ".." cannot climb above "/".
func (h *handler) target(p string) (rel string, incoming bool, err error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return ".", false, nil
	}
	rel = strings.TrimPrefix(p, "/")
	if rel == incomingName || strings.HasPrefix(rel, incomingName+"/") {
		inner := strings.TrimPrefix(strings.TrimPrefix(rel, incomingName), "/")
		if inner == "" {
			return h.sessDir, true, nil
		}
		if err := checkName(inner); err != nil {
			return "", true, err
		}
		return path.Join(h.sessDir, inner), true, nil
	}
	if err := checkName(rel); err != nil {
		return "", false, err
	}
	return rel, false, nil
}

// checkName refuses hidden path elements (the incoming area itself is one) and odd bytes.
func checkName(rel string) error {
	for _, e := range strings.Split(rel, "/") {
		if e == "" || strings.HasPrefix(e, ".") || strings.ContainsAny(e, "\x00\\") {
			return fmt.Errorf("name %q is not allowed (hidden or invalid element)", rel)
		}
	}
	return nil
}

// Filewrite opens a file for upload; only under /incoming and only allowed extensions.
func (h *handler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	rel, incoming, err := h.target(r.Filepath)
	if err != nil {
		return nil, h.refuse("write", r.Filepath, err.Error())
	}
	if !incoming || rel == h.sessDir {
		return nil, h.refuse("write", r.Filepath, "uploads go under /incoming/ (e.g. put boot.wim /incoming/)")
	}
	if !h.s.extensionAllowed(rel) {
		return nil, h.refuse("write", r.Filepath, "extension not accepted (images: .wim .esd .iso "+
			strings.Join(h.s.cfg.AllowExt, " ")+")")
	}
	if err := h.s.checkSpace(0); err != nil {
		return nil, h.refuse("write", r.Filepath, err.Error())
	}
	if err := h.s.store.MkdirAll(path.Dir(rel), 0o700); err != nil {
		return nil, fmt.Errorf("pxewim: creating %s: %w", path.Dir(r.Filepath), err)
	}
	f, err := h.s.store.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pxewim: creating %s: %w", r.Filepath, err)
	}
	pub := strings.TrimPrefix(rel, h.sessDir+"/")
	h.log.Info("upload: receiving", "file", pub)
	return &upload{h: h, f: f, rel: rel, name: pub, started: time.Now()}, nil
}

// Fileread lets admins download store files (read-only access to the store).
func (h *handler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	rel, _, err := h.target(r.Filepath)
	if err != nil {
		return nil, h.refuse("read", r.Filepath, err.Error())
	}
	f, err := h.s.store.Open(rel)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("pxewim: %s is not a regular file: %w", r.Filepath, fs.ErrInvalid)
	}
	return f, nil
}

// Filecmd allows mkdir, remove and setstat (ignored) inside /incoming; nothing else.
func (h *handler) Filecmd(r *sftp.Request) error {
	rel, incoming, err := h.target(r.Filepath)
	if err != nil {
		return h.refuse(strings.ToLower(r.Method), r.Filepath, err.Error())
	}
	if !incoming {
		return h.refuse(strings.ToLower(r.Method), r.Filepath, "the store is read-only; only /incoming/ is writable")
	}
	switch r.Method {
	case "Setstat":
		return nil // modes and times of uploads are ours to set
	case "Mkdir":
		return h.s.store.MkdirAll(rel, 0o700)
	case "Remove", "Rmdir":
		if rel == h.sessDir {
			return h.refuse("remove", r.Filepath, "the incoming folder itself stays")
		}
		return h.s.store.Remove(rel)
	}
	return h.refuse(strings.ToLower(r.Method), r.Filepath, "not supported (upload under the final name instead)")
}

// Filelist lists and stats the store (read-only view) and /incoming.
func (h *handler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	rel, incoming, err := h.target(r.Filepath)
	if err != nil {
		return nil, h.refuse(strings.ToLower(r.Method), r.Filepath, err.Error())
	}
	if incoming && rel == h.sessDir {
		// The session folder appears on the first write; show it empty until then.
		if err := h.s.store.MkdirAll(rel, 0o700); err != nil {
			return nil, err
		}
	}
	switch r.Method {
	case "Stat":
		st, err := h.s.store.Stat(rel)
		if err != nil {
			return nil, err
		}
		return listerAt{named{st, path.Base(r.Filepath)}}, nil
	case "List":
		return h.list(rel, rel == ".")
	}
	return nil, h.refuse(strings.ToLower(r.Method), r.Filepath, "not supported")
}

// list reads a store folder; at the top the incoming area is hidden and "incoming" shown.
func (h *handler) list(rel string, top bool) (sftp.ListerAt, error) {
	d, err := h.s.store.Open(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	infos, err := d.Readdir(-1)
	if err != nil {
		return nil, err
	}
	infos = slices.DeleteFunc(infos, func(fi os.FileInfo) bool { return strings.HasPrefix(fi.Name(), ".") })
	if top {
		st, err := h.s.store.Stat(h.sessDir)
		if err == nil {
			infos = append(infos, named{st, incomingName})
		}
	}
	slices.SortFunc(infos, func(a, b os.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return listerAt(infos), nil
}

// cleanup removes what the session left in its incoming folder (uploads never closed).
func (h *handler) cleanup() {
	if err := h.s.store.RemoveAll(h.sessDir); err != nil {
		h.log.Warn("upload: cleaning the session's incoming folder", "err", err)
	}
}

type named struct {
	os.FileInfo
	name string
}

func (n named) Name() string { return n.name }

type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}

// upload is one file being received; Close validates and publishes it.
type upload struct {
	h       *handler
	f       *os.File
	rel     string // store-relative path in the incoming area
	name    string // store-relative path it is published under
	started time.Time

	mu        sync.Mutex
	aborted   error
	failed    error // the first failed or refused write: the upload is not published
	size      int64
	unchecked int64 // bytes written since the last free-space check
}

func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	n, err := u.writeAt(p, off)
	if err != nil {
		// One failed write spoils the file: an SFTP client may go on sending the rest and
		// close normally, and the hole must not be published (validation cannot see holes
		// in .img files).
		u.mu.Lock()
		if u.failed == nil {
			u.failed = err
		}
		u.mu.Unlock()
	}
	return n, err
}

func (u *upload) writeAt(p []byte, off int64) (int, error) {
	u.mu.Lock()
	failed := u.failed
	u.mu.Unlock()
	if failed != nil {
		return 0, failed
	}
	if max := u.h.s.cfg.MaxBytes; max > 0 && off+int64(len(p)) > max {
		return 0, u.h.refuse("write", u.name, fmt.Sprintf("larger than the %d-byte upload limit", max))
	}
	if err := u.checkSpace(len(p)); err != nil {
		return 0, err
	}
	n, err := u.f.WriteAt(p, off)
	u.mu.Lock()
	u.size = max(u.size, off+int64(n))
	u.mu.Unlock()
	return n, err
}

// checkSpace checks the store's free space once per spaceCheckEvery bytes written.
func (u *upload) checkSpace(n int) error {
	u.mu.Lock()
	u.unchecked += int64(n)
	due := u.unchecked >= spaceCheckEvery
	if due {
		u.unchecked = 0
	}
	u.mu.Unlock()
	if !due {
		return nil
	}
	if err := u.h.s.checkSpace(spaceCheckEvery); err != nil {
		return u.h.refuse("write", u.name, err.Error())
	}
	return nil
}

// TransferError is called by pkg/sftp when the session ends with the file still open: the
// upload is incomplete and must not be published.
func (u *upload) TransferError(err error) {
	u.mu.Lock()
	u.aborted = err
	u.mu.Unlock()
}

// Close finishes the upload: sync, validate, publish by rename, or reject and delete.
func (u *upload) Close() error {
	h, s := u.h, u.h.s
	err := u.f.Sync()
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	u.mu.Lock()
	aborted, failed := u.aborted, u.failed
	u.mu.Unlock()
	if failed != nil {
		s.store.Remove(u.rel)
		h.tell(slog.LevelWarn, "REJECTED "+u.name+": a write failed: "+failed.Error())
		return fmt.Errorf("pxewim: upload of %s failed: %w", u.name, failed)
	}
	if aborted != nil {
		s.store.Remove(u.rel)
		h.log.Warn("upload: discarded an incomplete upload", "file", u.name, "err", aborted)
		return fmt.Errorf("pxewim: upload of %s cut off: %w", u.name, aborted)
	}
	if err != nil {
		s.store.Remove(u.rel)
		return fmt.Errorf("pxewim: writing %s: %w", u.name, err)
	}
	full := filepath.Join(s.cfg.StoreDir, filepath.FromSlash(u.rel))
	if verr := s.validate(h.ctx, full); verr != nil {
		s.store.Remove(u.rel)
		h.tell(slog.LevelWarn, "REJECTED "+u.name+": "+verr.Error())
		return fmt.Errorf("pxewim: rejected %s: %w", u.name, verr)
	}
	if err := s.publish(u.rel, u.name); err != nil {
		s.store.Remove(u.rel)
		h.tell(slog.LevelError, "publishing "+u.name+" failed: "+err.Error())
		return fmt.Errorf("pxewim: publishing %s: %w", u.name, err)
	}
	h.tell(slog.LevelInfo, "published "+u.name, "bytes", u.size, "seconds", fmt.Sprintf("%.1f", time.Since(u.started).Seconds()))
	if s.cfg.OnPublish != nil {
		s.cfg.OnPublish(u.name)
	}
	return nil
}

// publish renames a validated upload to its final name and syncs the folder, so the store
// shows the whole new file (or the old one) and keeps it across a crash.
func (s *Server) publish(from, to string) error {
	if st, err := s.store.Lstat(to); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s exists and is not a regular file", to)
	}
	if err := s.store.MkdirAll(path.Dir(to), 0o755); err != nil {
		return err
	}
	if err := s.store.Rename(from, to); err != nil {
		return err
	}
	if d, err := s.store.Open(path.Dir(to)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
