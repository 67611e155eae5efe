package wim

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/pxewim/pxewim/internal/fslink"
)

// Symbolic links and junctions inside an image resolve inside the same image: Open, Stat,
// ReadFile and ReadDir follow them (at most fslink.MaxHops per path); Lstat, Lookup, Walk,
// ReadDir's entries, Apply and Extract see the links themselves.
//
// A target is taken as wimlib-imagex presents it on UNIX (see LinkTarget): a relative one
// from the link's directory. An absolute one ("\??\C:\boot\vmlinuz", which is also how wimlib
// stores a Linux "/boot/vmlinuz") starts at the image root, whichever drive letter it names,
// when the image can vouch for it: wimlib fixed it at capture (it pointed inside the captured
// tree: rpfix), or the link was captured on UNIX (--unix-data), where an absolute link means
// the captured system's own root, as under chroot. An absolute target that was not fixed on
// a Windows capture points outside the captured tree and fails, as does a target no image can
// hold (another server "\??\UNC\...", a volume "\??\Volume{...}", a device path) or one
// climbing above the root: errors matching fslink.ErrEscape and fs.ErrPermission. A loop
// fails with fslink.ErrLoop (fs.ErrNotExist).

// resolve is lookup that follows symbolic links, the last element's too.
func (img *Image) resolve(op, name string) (*Entry, error) {
	e, err := fslink.Resolve[*Entry](linkTree{img}, name, true)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return e, nil
}

// linkTree is an image as fslink sees it.
type linkTree struct{ img *Image }

func (t linkTree) Root() *Entry { return t.img.root }

func (t linkTree) Parent(e *Entry) (*Entry, bool) { return e.parent, e.parent != nil }

func (t linkTree) Child(dir *Entry, name string) (*Entry, bool) {
	c := lookupChild(dir, name)
	return c, c != nil
}

func (t linkTree) IsDir(e *Entry) bool { return e.IsDir() }

func (t linkTree) Path(e *Entry) string { return e.Path() }

func (t linkTree) Link(e *Entry) (string, bool, error) {
	if !e.IsSymlink() {
		return "", false, nil
	}
	target, err := t.img.linkTargetInImage(e)
	return target, true, err
}

// linkTargetInImage returns a link's target as a path inside the image ('/' separators; a
// leading '/' for the image root).
func (img *Image) linkTargetInImage(e *Entry) (string, error) {
	rp, err := img.ReparseData(e)
	if err != nil {
		return "", err
	}
	t, relative, err := linkTarget(rp)
	if err != nil {
		return "", err
	}
	p, err := imagePath(t, relative)
	if err == nil && !relative && e.UNIX == nil && !(e.LinkFixed() && img.a.hdr.Flags&FlagRPFix != 0) {
		return "", fmt.Errorf("absolute target %q was outside the captured tree (not fixed at capture): %w", t, fslink.ErrEscape)
	}
	return p, err
}

// imagePath maps a reparse point's substitute name into the image.
func imagePath(t string, relative bool) (string, error) {
	if relative {
		if isDrivePath(t) || strings.HasPrefix(t, `\\`) {
			return "", fmt.Errorf("relative target %q names a drive or server: %w", t, fslink.ErrEscape)
		}
		return strings.ReplaceAll(t, `\`, "/"), nil
	}
	rest, ok := strings.CutPrefix(t, `\??\`)
	if !ok {
		rest, ok = strings.CutPrefix(t, `\\?\`)
	}
	switch {
	case ok && isDrivePath(rest): // \??\C:\x: the volume the image was captured from
		rest = rest[2:]
	case !ok && isDrivePath(t): // C:\x
		rest = t[2:]
	case !ok && strings.HasPrefix(t, `\`) && !strings.HasPrefix(t, `\\`) && !isDevicePath(t): // \x: the current drive's root
		rest = t
	default: // \??\UNC\server\share, \??\Volume{GUID}\, \\server\share, \Device\...
		return "", fmt.Errorf("target %q is not on the image's volume: %w", t, fslink.ErrEscape)
	}
	return "/" + strings.TrimLeft(strings.ReplaceAll(rest, `\`, "/"), "/"), nil
}

// isDevicePath reports an NT object path such as \Device\HarddiskVolume1\x.
func isDevicePath(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, `\device\`) || strings.HasPrefix(l, `\global??\`)
}

// isDrivePath reports "X:" at the start of s.
func isDrivePath(s string) bool {
	return len(s) >= 2 && s[1] == ':' && (s[0]|0x20 >= 'a' && s[0]|0x20 <= 'z')
}
