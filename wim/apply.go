package wim

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ApplyOptions configures Apply and Extract.
type ApplyOptions struct {
	// UnixData restores wimlib's UNIX owner, group, mode and special files (wimlib-imagex
	// --unix-data); without it files get default modes and special files become empty files.
	UnixData bool
	// Progress, when set, is called with bytes written so far and the total.
	Progress func(done, total int64)
	// Logger receives warnings (skipped entries); nil means slog.Default().
	Logger *slog.Logger
}

// Apply extracts the whole image into the directory target (created if needed), as
// wimlib-imagex apply does on Linux: directories, regular files, hard links, symbolic links
// (absolute targets fixed at capture are re-rooted at target) and timestamps. Nothing is ever
// written outside target.
func (img *Image) Apply(ctx context.Context, target string, opts *ApplyOptions) error {
	return img.extractTree(ctx, img.root, target, opts, true)
}

// Extract extracts the entries at paths (fs.ValidPath names, "." for the whole image) into
// destDir, each under its own base name, like wimlib-imagex extract.
func (img *Image) Extract(ctx context.Context, paths []string, destDir string, opts *ApplyOptions) error {
	if err := os.MkdirAll(destDir, 0o777); err != nil {
		return fmt.Errorf("wim: extract: %w", err)
	}
	for _, p := range paths {
		e, err := img.Lookup(p)
		if err != nil {
			return fmt.Errorf("wim: image %d: %w", img.index, err)
		}
		dst := destDir
		if e.parent != nil {
			dst = filepath.Join(destDir, e.Name)
		}
		// wimlib re-roots fixed absolute links only when applying a whole image.
		if err := img.extractTree(ctx, e, dst, opts, false); err != nil {
			return err
		}
	}
	return nil
}

// extractor carries the state of one Apply/Extract.
type extractor struct {
	img      *Image
	ctx      context.Context
	opts     ApplyOptions
	log      *slog.Logger
	rootAbs  string // absolute target, for re-rooting fixed symlinks
	rpfix    bool   // re-root fixed absolute symlinks at rootAbs
	links    map[linkKey]string
	done     int64
	total    int64
	dirTimes []dirTime
	buf      []byte
}

type linkKey struct {
	group uint64
	hash  [sha1.Size]byte
}

type dirTime struct {
	path string
	e    *Entry
}

func (img *Image) extractTree(ctx context.Context, top *Entry, target string, opts *ApplyOptions, rpfix bool) error {
	x := &extractor{img: img, ctx: ctx, links: map[linkKey]string{}, buf: make([]byte, 1<<20), rpfix: rpfix}
	if opts != nil {
		x.opts = *opts
	}
	x.log = x.opts.Logger
	if x.log == nil {
		x.log = slog.Default()
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("wim: apply: %w", err)
	}
	x.rootAbs = abs
	if x.opts.Progress != nil {
		walkEntries(top, func(e *Entry) { x.total += e.Size })
	}
	if err := x.entry(top, abs); err != nil {
		return err
	}
	// Directory modes and times last: creating children changes the times, and a read-only
	// mode would stop a non-root user from creating them.
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		if x.opts.UnixData && d.e.UNIX != nil {
			if err := unix.Chmod(d.path, d.e.UNIX.Mode&0o7777); err != nil {
				return fmt.Errorf("wim: chmod %s: %w", d.path, err)
			}
		}
		if err := x.setTimes(d.path, d.e); err != nil {
			return err
		}
	}
	return nil
}

func walkEntries(e *Entry, fn func(*Entry)) {
	stack := []*Entry{e}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(e)
		stack = append(stack, e.children...)
	}
}

// entry extracts e (and, for directories, its subtree) to path.
func (x *extractor) entry(e *Entry, path string) error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	var err error
	switch {
	case e.Attributes&AttrEncrypted != 0:
		x.log.Warn("wim: skipping encrypted file", "path", e.Path())
		return nil
	case e.IsDir():
		if err = x.mkdir(path); err != nil {
			return err
		}
		if err = x.setMeta(path, e, false); err != nil {
			return err
		}
		x.dirTimes = append(x.dirTimes, dirTime{path, e})
		for _, c := range e.Children() {
			if err := x.entry(c, filepath.Join(path, c.Name)); err != nil {
				return err
			}
		}
		return nil
	case e.IsSymlink():
		err = x.symlink(e, path)
	case x.opts.UnixData && e.UNIX != nil && e.Mode()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
		err = replacing(path, func() error { return unix.Mknod(path, e.UNIX.Mode, int(e.UNIX.Rdev)) })
	default:
		if linked, lerr := x.hardlink(e, path); lerr != nil || linked {
			return lerr
		}
		err = x.file(e, path)
	}
	if err != nil {
		return fmt.Errorf("extracting %s to %s: %w", e.Path(), path, err)
	}
	return x.setMeta(path, e, e.IsSymlink())
}

// mkdir creates a directory, accepting an existing directory but never a symlink in its place.
func (x *extractor) mkdir(path string) error {
	err := os.Mkdir(path, 0o777)
	if errors.Is(err, fs.ErrExist) {
		st, serr := os.Lstat(path)
		if serr == nil && st.IsDir() {
			return nil
		}
		return fmt.Errorf("wim: %s exists and is not a directory", path)
	}
	if err != nil {
		return fmt.Errorf("wim: %w", err)
	}
	return nil
}

// hardlink links path to an already extracted member of e's inode, if any. Entries link only
// when their data hashes match too (some Windows 7 WIMs reuse group ids wrongly).
func (x *extractor) hardlink(e *Entry, path string) (bool, error) {
	if e.HardLinkGroup == 0 {
		return false, nil
	}
	k := linkKey{e.HardLinkGroup, e.Hash}
	if first, ok := x.links[k]; ok {
		if err := replacing(path, func() error { return os.Link(first, path) }); err != nil {
			return false, fmt.Errorf("wim: hard link %s: %w", e.Path(), err)
		}
		return true, nil
	}
	x.links[k] = path
	return false, nil
}

// replacing runs create, which makes path (a file, link or special file); when path exists
// and is not a directory it is removed and create runs again, as wimlib-imagex replaces what
// an earlier apply left. The old file is unlinked, never opened: a symlink or hard link left
// there cannot make the new data land outside the target.
func replacing(path string, create func() error) error {
	err := create()
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, serr := os.Lstat(path)
	if serr != nil || st.IsDir() {
		return err // a directory where the image has a file: refuse, as wimlib does
	}
	if rerr := os.Remove(path); rerr != nil {
		return fmt.Errorf("replacing %s: %w", path, rerr)
	}
	return create()
}

// file writes a regular file's unnamed data stream, checking its SHA-1.
func (x *extractor) file(e *Entry, path string) error {
	var out *os.File
	err := replacing(path, func() (err error) {
		out, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o666)
		return err
	})
	if err != nil {
		return err
	}
	f, err := x.img.OpenEntry(e)
	if err == nil {
		err = x.copy(out, f)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func (x *extractor) copy(w io.Writer, f *File) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		n, err := f.Read(x.buf)
		if n > 0 {
			if _, werr := w.Write(x.buf[:n]); werr != nil {
				return werr
			}
			x.done += int64(n)
			if x.opts.Progress != nil {
				x.opts.Progress(x.done, x.total)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// symlink creates a symbolic link; targets wimlib fixed at capture are re-rooted at the
// extraction root, as wimlib-imagex does.
func (x *extractor) symlink(e *Entry, path string) error {
	t, err := x.img.LinkTarget(e)
	if err != nil {
		return err
	}
	if x.rpfix && len(t) > 0 && t[0] == '/' && e.LinkFixed() && x.img.a.hdr.Flags&FlagRPFix != 0 {
		t = x.rootAbs + t
	}
	return replacing(path, func() error { return os.Symlink(t, path) })
}

// setMeta applies UNIX ownership and mode (with UnixData) and, except for directories (done
// last), timestamps.
func (x *extractor) setMeta(path string, e *Entry, isLink bool) error {
	if x.opts.UnixData && e.UNIX != nil {
		if err := os.Lchown(path, int(e.UNIX.UID), int(e.UNIX.GID)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("wim: %w", err)
		}
		if !isLink && !e.IsDir() {
			if err := unix.Chmod(path, e.UNIX.Mode&0o7777); err != nil {
				return fmt.Errorf("wim: chmod %s: %w", path, err)
			}
		}
	}
	if e.IsDir() {
		return nil
	}
	return x.setTimes(path, e)
}

func (x *extractor) setTimes(path string, e *Entry) error {
	ts := []unix.Timespec{timespec(e.LastAccessTime), timespec(e.LastWriteTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("wim: setting times of %s: %w", path, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}
