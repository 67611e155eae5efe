// Package fslink resolves symbolic links inside one image's directory tree (a WIM image, an
// ISO's Rock Ridge or UDF tree) the way a kernel resolves them under a chroot, except that a
// link can never lead out: targets are taken inside the image (an absolute target starts at
// the image root), at most MaxHops links are followed for one path, and a ".." above the root
// is an error rather than the root again.
package fslink

import (
	"fmt"
	"io/fs"
	"strings"
)

// MaxHops bounds the links followed while resolving one path (Linux: 40).
const MaxHops = 40

// sentinel is an error that also matches an io/fs error class, so that servers map it to the
// status they give that class (404, 403) while callers can still test for it.
type sentinel struct {
	msg   string
	class error
}

func (s *sentinel) Error() string        { return s.msg }
func (s *sentinel) Is(target error) bool { return target == s.class }

var (
	// ErrLoop: more than MaxHops links on one path, as in a loop. It matches fs.ErrNotExist.
	ErrLoop error = &sentinel{"too many levels of symbolic links", fs.ErrNotExist}
	// ErrEscape: a link whose target lies outside the image (above its root, on another
	// volume or server). It matches fs.ErrPermission.
	ErrEscape error = &sentinel{"symbolic link leads outside the image", fs.ErrPermission}
)

// Tree is what Resolve needs of a directory tree whose nodes are N.
type Tree[N comparable] interface {
	Root() N
	// Parent returns a node's directory; ok is false for the root.
	Parent(n N) (parent N, ok bool)
	// Child finds name in directory dir (the tree's own matching rules, e.g. case-insensitive).
	Child(dir N, name string) (N, bool)
	IsDir(n N) bool
	// Link reports whether n is a symbolic link and, if it is, its target with '/'
	// separators; a target starting with '/' starts at the image root. An error means the
	// link's data is unreadable or its target cannot lie in the image (wrap ErrEscape then).
	Link(n N) (target string, isLink bool, err error)
	// Path names n in errors.
	Path(n N) string
}

// Resolve returns the node at name, an fs.ValidPath, following links on the way and, when
// followLast is set, a link at the end too.
func Resolve[N comparable](t Tree[N], name string, followLast bool) (N, error) {
	var zero N
	if !fs.ValidPath(name) {
		return zero, fs.ErrInvalid
	}
	cur := t.Root()
	var rest []string // components still to walk, in order
	if name != "." {
		rest = strings.Split(name, "/")
	}
	hops := 0
	for len(rest) > 0 {
		elem := rest[0]
		rest = rest[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			p, ok := t.Parent(cur)
			if !ok {
				return zero, ErrEscape
			}
			cur = p
			continue
		}
		if !t.IsDir(cur) {
			return zero, fmt.Errorf("%s is not a directory: %w", t.Path(cur), fs.ErrNotExist)
		}
		next, ok := t.Child(cur, elem)
		if !ok {
			return zero, fs.ErrNotExist
		}
		if len(rest) == 0 && !followLast {
			return next, nil
		}
		target, isLink, err := t.Link(next)
		if err != nil {
			return zero, fmt.Errorf("symbolic link %s: %w", t.Path(next), err)
		}
		if !isLink {
			cur = next
			continue
		}
		if hops++; hops > MaxHops {
			return zero, fmt.Errorf("%s -> %s: %w (more than %d links)", t.Path(next), target, ErrLoop, MaxHops)
		}
		if target == "" {
			return zero, fmt.Errorf("symbolic link %s has an empty target: %w", t.Path(next), fs.ErrNotExist)
		}
		if strings.HasPrefix(target, "/") {
			cur = t.Root()
		}
		// The link's own directory (cur) is where a relative target starts.
		parts := strings.Split(target, "/")
		if err := climbsOut(t, cur, parts); err != nil {
			return zero, fmt.Errorf("symbolic link %s -> %s: %w", t.Path(next), target, err)
		}
		rest = append(parts, rest...)
	}
	return cur, nil
}

// climbsOut reports a target whose leading ".." components climb above the root from dir, so
// that the error names the link rather than a later component.
func climbsOut[N comparable](t Tree[N], dir N, parts []string) error {
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			up, ok := t.Parent(dir)
			if !ok {
				return ErrEscape
			}
			dir = up
			continue
		}
		return nil
	}
	return nil
}
