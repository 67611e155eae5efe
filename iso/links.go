package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pxewim/pxewim/internal/fslink"
)

// Symbolic links (Rock Ridge SL entries, UDF symlink file entries) resolve inside the image:
// Open, OpenFile, Stat and ReadDir follow them (at most fslink.MaxHops per path; a relative
// target from the link's directory, an absolute one from the image root); Lstat, ReadLink and
// ReadDir's entries see the link itself. A loop fails with fslink.ErrLoop (fs.ErrNotExist), a
// target above the root or outside the volume with fslink.ErrEscape (fs.ErrPermission).

var _ fs.ReadLinkFS = (*FS)(nil)

// maxLinkData bounds a UDF symlink's path component data (Linux allows one page).
const maxLinkData = 4096

// isLink reports whether n is a symbolic link.
func (n *node) isLink() bool { return n.mode&fs.ModeSymlink != 0 }

// resolve finds name, following links (the last element's too when followLast).
func (fsys *FS) resolve(op, name string, followLast bool) (*node, error) {
	n, err := fslink.Resolve[*node](linkTree{fsys}, name, followLast)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

// Lstat describes the named file; a symbolic link at the end of name is described itself.
func (fsys *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := fsys.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return fileInfo{n}, nil
}

// ReadLink returns a symbolic link's target as recorded ('/' separators; absolute targets
// start with '/').
func (fsys *FS) ReadLink(name string) (string, error) {
	n, err := fsys.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if !n.isLink() {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("not a symbolic link")}
	}
	t, err := fsys.linkTarget(n)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

// linkTarget returns a link's target: Rock Ridge's, decoded with the tree, or UDF's, read
// from the link's data now.
func (fsys *FS) linkTarget(n *node) (string, error) {
	if n.linkErr != nil {
		return "", n.linkErr
	}
	if n.linkSet {
		return n.link, nil
	}
	if n.size > maxLinkData {
		return "", fmt.Errorf("UDF symlink data of %d bytes exceeds %d", n.size, maxLinkData)
	}
	data := n.inline
	if data == nil {
		data = make([]byte, 0, n.size)
		for _, e := range n.ext {
			want := min(e.n, n.size-int64(len(data)))
			if want <= 0 {
				break
			}
			if e.off < 0 {
				data = append(data, make([]byte, want)...)
				continue
			}
			b, err := fsys.readAt(e.off, want)
			if err != nil {
				return "", fmt.Errorf("UDF symlink data: %w", err)
			}
			data = append(data, b...)
		}
	}
	return udfLinkTarget(data)
}

// rockRidgeLinksIntoUDF gives the UDF tree the symbolic links it could not record: a writer
// such as genisoimage -udf -R puts a link into the UDF tree as an empty regular file and into
// the Rock Ridge tree as what it is. Where the ISO 9660 tree has Rock Ridge, each of its links
// whose path holds an empty regular file in the UDF tree makes that file the link. Nothing
// changes when there is no Rock Ridge tree (Windows media) or it cannot be read.
func (fsys *FS) rockRidgeLinksIntoUDF() {
	if !hasEmptyFile(fsys.root) {
		return // nothing a link could have become: skip reading the second tree
	}
	pvd, _, err := fsys.volumeDescriptors()
	if err != nil || !fsys.primaryHasRockRidge(pvd) {
		return
	}
	rr := &FS{r: fsys.r, size: fsys.size}
	if rr.open9660() != nil {
		return
	}
	var walk func(rrDir, udfDir *node)
	walk = func(rrDir, udfDir *node) {
		for _, c := range rrDir.kids {
			u := udfDir.child(c.name)
			switch {
			case u == nil || u.name != c.name:
			case c.dir && u.dir:
				walk(c, u)
			case c.isLink() && !u.dir && !u.isLink() && u.size == 0:
				u.mode, u.link, u.linkSet, u.linkErr, u.ext, u.inline = c.mode, c.link, true, c.linkErr, nil, nil
			}
		}
	}
	walk(rr.root, fsys.root)
}

// hasEmptyFile reports whether the tree under n holds an empty regular file.
func hasEmptyFile(n *node) bool {
	for _, c := range n.kids {
		if c.dir && hasEmptyFile(c) || !c.dir && !c.isLink() && c.size == 0 {
			return true
		}
	}
	return false
}

// linkTree is an image as fslink sees it.
type linkTree struct{ fsys *FS }

func (t linkTree) Root() *node                  { return t.fsys.root }
func (t linkTree) Parent(n *node) (*node, bool) { return n.parent, n.parent != nil }
func (t linkTree) IsDir(n *node) bool           { return n.dir }
func (t linkTree) Path(n *node) string          { return n.path() }
func (t linkTree) Child(d *node, s string) (*node, bool) {
	c := d.child(s)
	return c, c != nil
}
func (t linkTree) Link(n *node) (string, bool, error) {
	if !n.isLink() {
		return "", false, nil
	}
	target, err := t.fsys.linkTarget(n)
	return target, true, err
}

// Rock Ridge SL component flags (RRIP 1.12, 4.1.3.1).
const (
	slContinue = 0x01
	slCurrent  = 0x02
	slParent   = 0x04
	slRoot     = 0x08
	slVolRoot  = 0x10 // obsolete: the mount point of the volume
	slHost     = 0x20 // obsolete: the host name
)

// rrLinkTarget decodes the component records of a file's SL entries, concatenated.
func rrLinkTarget(b []byte) (string, error) {
	var parts []string
	var cur strings.Builder
	abs, open := false, false
	for len(b) > 0 {
		if len(b) < 2 || 2+int(b[1]) > len(b) {
			return "", errors.New("iso: Rock Ridge SL component record overruns its entry")
		}
		flags, content := b[0], b[2:2+int(b[1])]
		b = b[2+int(b[1]):]
		switch {
		case flags&(slVolRoot|slHost) != 0:
			return "", fmt.Errorf("iso: Rock Ridge SL names the volume's mount point or host: %w", fslink.ErrEscape)
		case flags&slRoot != 0:
			parts, abs = nil, true
			cur.Reset()
			open = false
			continue
		case flags&slParent != 0:
			cur.WriteString("..")
		case flags&slCurrent != 0:
			cur.WriteString(".")
		default:
			cur.Write(content) // bytes, as NM names are taken
		}
		open = flags&slContinue != 0
		if !open {
			parts = append(parts, cur.String())
			cur.Reset()
		}
	}
	if open || cur.Len() > 0 {
		parts = append(parts, cur.String())
	}
	t := strings.Join(parts, "/")
	if abs {
		t = "/" + t
	}
	if strings.ContainsRune(t, 0) {
		return "", errors.New("iso: Rock Ridge SL target contains a NUL")
	}
	return t, nil
}

// udfLinkTarget decodes a UDF symlink's path components (ECMA-167 4/14.16).
func udfLinkTarget(b []byte) (string, error) {
	var parts []string
	abs := false
	for len(b) > 0 {
		if len(b) < 4 || 4+int(b[1]) > len(b) {
			return "", errors.New("UDF path component overruns the symlink data")
		}
		typ, ident := b[0], b[4:4+int(b[1])]
		_ = binary.LittleEndian.Uint16(b[2:]) // component file version: ignored
		b = b[4+int(b[1]):]
		switch typ {
		case 1:
			if len(ident) > 0 { // a root "agreed upon between originator and recipient"
				return "", fmt.Errorf("UDF symlink names an implementation-defined root: %w", fslink.ErrEscape)
			}
			parts, abs = nil, true
		case 2:
			parts, abs = nil, true
		case 3:
			parts = append(parts, "..")
		case 4:
			parts = append(parts, ".")
		case 5:
			name, err := osta(ident)
			if err != nil {
				return "", fmt.Errorf("UDF symlink component: %w", err)
			}
			if name == "" || strings.ContainsAny(name, "/\x00") {
				return "", fmt.Errorf("UDF symlink component %q is not a file name", name)
			}
			parts = append(parts, name)
		default:
			return "", fmt.Errorf("UDF path component type %d is invalid", typ)
		}
	}
	t := strings.Join(parts, "/")
	if abs {
		t = "/" + t
	}
	return t, nil
}
