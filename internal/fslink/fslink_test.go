package fslink

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// node of a toy tree: directories have kids, links a target.
type node struct {
	name   string
	parent *node
	kids   map[string]*node
	link   *string
}

type tree struct{ root *node }

func (t tree) Root() *node { return t.root }
func (t tree) Parent(n *node) (*node, bool) {
	return n.parent, n.parent != nil
}
func (t tree) Child(d *node, name string) (*node, bool) { c, ok := d.kids[name]; return c, ok }
func (t tree) IsDir(n *node) bool                       { return n.kids != nil }
func (t tree) Link(n *node) (string, bool, error) {
	if n.link == nil {
		return "", false, nil
	}
	return *n.link, true, nil
}
func (t tree) Path(n *node) string {
	if n.parent == nil {
		return "."
	}
	if n.parent.parent == nil {
		return n.name
	}
	return t.Path(n.parent) + "/" + n.name
}

// build makes a tree from "path" (dir if it ends in /, file) and "path -> target" lines.
func build(spec string) tree {
	root := &node{kids: map[string]*node{}}
	for _, line := range strings.Split(spec, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, target, isLink := strings.Cut(line, " -> ")
		dir := strings.HasSuffix(p, "/")
		parts := strings.Split(strings.Trim(p, "/"), "/")
		cur := root
		for i, part := range parts {
			c, ok := cur.kids[part]
			if !ok {
				c = &node{name: part, parent: cur}
				if i < len(parts)-1 || dir {
					c.kids = map[string]*node{}
				}
				if i == len(parts)-1 && isLink {
					t := target
					c.link = &t
				}
				if cur.kids == nil {
					break
				}
				cur.kids[part] = c
			}
			cur = c
		}
	}
	return tree{root}
}

const spec = `
boot/
boot/vmlinuz-6.1
boot/vmlinuz -> vmlinuz-6.1
vmlinuz -> /boot/vmlinuz
bootdir -> boot
a/b/
a/b/up -> ../../boot/vmlinuz
loop1 -> loop2
loop2 -> loop1
esc -> ../x
escabs -> /../x
mid -> a/../../x
empty -> 
file-as-dir -> boot/vmlinuz-6.1/x
`

func TestResolve(t *testing.T) {
	tr := build(spec)
	for _, c := range []struct {
		name, want string // want: the resolved node's path, or an error marker
		follow     bool
		err        error
	}{
		{"boot/vmlinuz", "boot/vmlinuz-6.1", true, nil},
		{"boot/vmlinuz", "boot/vmlinuz", false, nil},
		{"vmlinuz", "boot/vmlinuz-6.1", true, nil},
		{"bootdir/vmlinuz", "boot/vmlinuz-6.1", true, nil},
		{"bootdir/vmlinuz", "boot/vmlinuz", false, nil}, // intermediate links are always followed
		{"a/b/up", "boot/vmlinuz-6.1", true, nil},
		{".", ".", true, nil},
		{"loop1", "", true, ErrLoop},
		{"loop1", "loop1", false, nil},
		{"esc", "", true, ErrEscape},
		{"escabs", "", true, ErrEscape},
		{"mid", "", true, ErrEscape},
		{"empty", "", true, fs.ErrNotExist},
		{"file-as-dir", "", true, fs.ErrNotExist},
		{"nothing", "", true, fs.ErrNotExist},
		{"../x", "", true, fs.ErrInvalid},
	} {
		n, err := Resolve[*node](tr, c.name, c.follow)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Resolve(%q, %v) = %v, want %v", c.name, c.follow, err, c.err)
			}
			continue
		}
		if err != nil || tr.Path(n) != c.want {
			t.Errorf("Resolve(%q, %v) = %v, %v; want %s", c.name, c.follow, n, err, c.want)
		}
	}
	// The error classes servers rely on.
	if !errors.Is(ErrLoop, fs.ErrNotExist) || !errors.Is(ErrEscape, fs.ErrPermission) {
		t.Error("ErrLoop must match fs.ErrNotExist and ErrEscape fs.ErrPermission")
	}
}

// FuzzResolve: any tree of links and any name resolve to a node of the tree or an error, in
// bounded work.
func FuzzResolve(f *testing.F) {
	f.Add(spec, "vmlinuz")
	f.Add("x -> x/x/x/x/x/x/x/x", "x/x/x")
	f.Add("a/\na/b -> ../../..\nc -> /a/b", "c")
	f.Fuzz(func(t *testing.T, spec, name string) {
		if len(spec) > 4096 {
			return
		}
		tr := build(spec)
		n, err := Resolve[*node](tr, name, true)
		if err != nil {
			return
		}
		for x := n; x != tr.root; x = x.parent {
			if x == nil {
				t.Fatalf("resolved to a node outside the tree")
			}
		}
	})
}
