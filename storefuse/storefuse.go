// Package storefuse mounts an io/fs.FS read-only as a Linux folder through FUSE, so that programs
// that need real files (Samba's smbd, for the Windows Setup share) read pxewim's store in place.
//
// Why a view and not an extracted copy: Windows Setup reads sources/install.wim (3-6 GB) once per
// installing machine, from the ISO it came on. pxewim already reads every ISO in place (package
// iso over the store's io.ReaderAt, local or sftp://); the view hands smbd those same bytes, so
// nothing is extracted, there is no second copy on disk, no disk budget to manage or evict, and
// the share is ready the moment the ISO is in the store (BENCHMARKS.md, "Windows Setup share":
// bytes written to disk, time to first read and throughput against a plain folder share).
//
// The view is dynamic: every lookup, directory listing and open goes to the fs.FS (the kernel
// caches names and attributes for one second), so ISOs added, replaced or removed show up
// without a remount. Files must implement io.ReaderAt; reads are served with ReadAt, so
// concurrent readers of one file never share a seek position. Everything is read-only: files
// are 0444 and folders 0555, the mount itself is MS_RDONLY, and opens for writing get EROFS.
// allow_other lets the user smbd maps its clients to read the view (the daemon runs as root or
// holds CAP_SYS_ADMIN to mount).
//
// A daemon that dies leaves its mount behind ("transport endpoint is not connected"); Mount
// detaches any mount already on the folder before mounting, so the next start cleans up.
package storefuse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configures a Mount.
type Options struct {
	// Name is shown as the file system's source in /proc/mounts ("pxewim" if empty).
	Name string
	// Logger receives mount, unmount and read-error lines; nil uses slog.Default().
	Logger *slog.Logger
}

// Mount is one mounted view. Close (or the context given to New) unmounts it.
type Mount struct {
	dir    string
	server *fuse.Server
	log    *slog.Logger

	once sync.Once
	err  error
	done chan struct{}
}

// Available reports why FUSE mounts cannot work here, or nil: /dev/fuse must exist and be
// openable, and mounting needs root (CAP_SYS_ADMIN).
func Available() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("storefuse: /dev/fuse: %w", err)
	}
	f.Close()
	if os.Geteuid() != 0 {
		return errors.New("storefuse: mounting a FUSE view needs root (CAP_SYS_ADMIN)")
	}
	return nil
}

// New mounts fsys read-only at dir (created if missing) and serves it until ctx ends or Close
// is called. A stale mount left on dir by a process that died is detached first.
func New(ctx context.Context, dir string, fsys iofs.FS, opts Options) (*Mount, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := opts.Name
	if name == "" {
		name = "pxewim"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storefuse: mount point %q: %w", dir, err)
	}
	if stale, err := Mounted(abs); err != nil {
		return nil, err
	} else if stale {
		log.Warn("storefuse: detaching a mount left on the folder (a previous run did not unmount)", "dir", abs)
		if err := detach(abs); err != nil {
			return nil, fmt.Errorf("storefuse: detach stale mount at %s: %w", abs, err)
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("storefuse: mount point: %w", err)
	}
	if ents, err := os.ReadDir(abs); err != nil {
		return nil, fmt.Errorf("storefuse: mount point: %w", err)
	} else if len(ents) != 0 {
		return nil, fmt.Errorf("storefuse: mount point %s is not empty", abs)
	}

	second := time.Second
	root := &node{fsys: fsys, name: ".", log: log}
	fopts := &fs.Options{
		EntryTimeout:    &second,
		AttrTimeout:     &second,
		NegativeTimeout: &second,
		MountOptions: fuse.MountOptions{
			AllowOther:        true,
			FsName:            name,
			Name:              "pxewim",
			DirectMountStrict: true,
			DirectMountFlags:  syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC,
			MaxWrite:          1 << 20, // reads of up to 1 MiB per request (Linux 4.20+)
			MaxReadAhead:      1 << 20,
			DisableXAttrs:     true,
		},
		RootStableAttr: &fs.StableAttr{Ino: 1, Mode: fuse.S_IFDIR},
	}
	server, err := fs.Mount(abs, root, fopts)
	if err != nil {
		return nil, fmt.Errorf("storefuse: mount %s: %w", abs, err)
	}
	m := &Mount{dir: abs, server: server, log: log, done: make(chan struct{})}
	log.Info("storefuse: store view mounted", "dir", abs)
	go func() {
		select {
		case <-ctx.Done():
			m.Close()
		case <-m.done:
		}
	}()
	return m, nil
}

// Dir is the mount point.
func (m *Mount) Dir() string { return m.dir }

// Close unmounts the view. If a reader still holds a file open, the mount is detached (lazy
// unmount): it disappears from the folder now, the open files keep reading, and the kernel
// drops the mount when the last one is closed.
func (m *Mount) Close() error {
	m.once.Do(func() {
		defer close(m.done)
		if err := m.server.Unmount(); err != nil {
			if derr := detach(m.dir); derr != nil {
				m.err = fmt.Errorf("storefuse: unmount %s: %w (detach: %v)", m.dir, err, derr)
				return
			}
			// Detached: the folder is empty again, and the files still open keep being served
			// until their readers close them (then the kernel ends the connection).
			m.log.Info("storefuse: store view detached; open files are served until closed", "dir", m.dir, "busy", err)
			return
		}
		m.server.Wait()
		m.log.Info("storefuse: store view unmounted", "dir", m.dir)
	})
	return m.err
}

// detach lazily unmounts dir (MNT_DETACH), which also works on a mount whose daemon is gone.
func detach(dir string) error {
	err := syscall.Unmount(dir, syscall.MNT_DETACH)
	if err == syscall.EINVAL { // not a mount point (any more)
		return nil
	}
	return err
}

// Mounted reports whether dir is a mount point, from /proc/self/mountinfo (a stat of a dead
// FUSE mount fails with ENOTCONN, so the folder itself cannot be asked).
func Mounted(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("storefuse: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for space and so on).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// node is a file or folder of the view, named by its fs.FS path.
type node struct {
	fs.Inode
	fsys iofs.FS
	name string // fs.ValidPath path; "." for the root
	log  *slog.Logger
}

var (
	_ fs.NodeLookuper  = (*node)(nil)
	_ fs.NodeReaddirer = (*node)(nil)
	_ fs.NodeGetattrer = (*node)(nil)
	_ fs.NodeOpener    = (*node)(nil)
	_ fs.NodeReader    = (*node)(nil)
	_ fs.NodeStatfser  = (*node)(nil)
)

func (n *node) child(name string) string {
	if n.name == "." {
		return name
	}
	return n.name + "/" + name
}

// ino gives each path a stable inode number (FNV-1a 64 of the path; 1 is the root).
func ino(name string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, name)
	v := h.Sum64()
	if v < 2 {
		v += 2
	}
	return v
}

func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, iofs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, iofs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, iofs.ErrInvalid):
		return syscall.EINVAL
	}
	return syscall.EIO
}

func fillAttr(fi iofs.FileInfo, name string, a *fuse.Attr) {
	a.Ino = ino(name)
	if name == "." {
		a.Ino = 1
	}
	if fi.IsDir() {
		a.Mode = fuse.S_IFDIR | 0o555
		a.Nlink = 2
	} else {
		a.Mode = fuse.S_IFREG | 0o444
		a.Nlink = 1
		a.Size = uint64(max(fi.Size(), 0))
		a.Blocks = (a.Size + 511) / 512
	}
	a.Blksize = 1 << 20
	if t := fi.ModTime(); !t.IsZero() && t.Unix() > 0 {
		a.SetTimes(&t, &t, &t)
	}
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	if !iofs.ValidPath(p) || strings.ContainsAny(name, `\:`) {
		return nil, syscall.ENOENT
	}
	fi, err := iofs.Stat(n.fsys, p)
	if err != nil {
		return nil, errno(err)
	}
	fillAttr(fi, p, &out.Attr)
	mode := uint32(fuse.S_IFREG)
	if fi.IsDir() {
		mode = fuse.S_IFDIR
	}
	ch := n.NewInode(ctx, &node{fsys: n.fsys, name: p, log: n.log}, fs.StableAttr{Mode: mode, Ino: out.Attr.Ino})
	return ch, 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ents, err := iofs.ReadDir(n.fsys, n.name)
	if err != nil {
		return nil, errno(err)
	}
	list := make([]fuse.DirEntry, 0, len(ents))
	for _, e := range ents {
		if strings.ContainsAny(e.Name(), `/\:`) || e.Name() == "." || e.Name() == ".." || e.Name() == "" {
			continue
		}
		mode := uint32(fuse.S_IFREG)
		if e.IsDir() {
			mode = fuse.S_IFDIR
		}
		list = append(list, fuse.DirEntry{Name: e.Name(), Mode: mode, Ino: ino(n.child(e.Name()))})
	}
	return fs.NewListDirStream(list), 0
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		if fi, err := h.f.Stat(); err == nil {
			fillAttr(fi, n.name, &out.Attr)
			return 0
		}
	}
	fi, err := iofs.Stat(n.fsys, n.name)
	if err != nil {
		return errno(err)
	}
	fillAttr(fi, n.name, &out.Attr)
	return 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = 255
	return 0
}

// handle is one open file of the view.
type handle struct {
	f  iofs.File
	ra io.ReaderAt
}

var _ fs.FileReleaser = (*handle)(nil)

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.f.Close()
	return 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND|syscall.O_CREAT) != 0 {
		return nil, 0, syscall.EROFS
	}
	f, err := n.fsys.Open(n.name)
	if err != nil {
		return nil, 0, errno(err)
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		n.log.Warn("storefuse: file cannot be read at offsets (not an io.ReaderAt)", "path", n.name)
		return nil, 0, syscall.EIO
	}
	return &handle{f: f, ra: ra}, 0, 0
}

func (n *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	got, err := h.ra.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		// No partial data: the kernel would take a short read for the end of the file.
		n.log.Warn("storefuse: read failed", "path", path.Clean(n.name), "off", off, "len", len(dest), "err", err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:got]), 0
}
