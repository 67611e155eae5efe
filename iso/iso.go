// Package iso reads CD/DVD images (ISO 9660 with Joliet and Rock Ridge, and UDF 1.02 to 2.50)
// as an io/fs.FS whose regular files are io.ReaderAt and io.Seeker, so a Windows ISO's
// sources/boot.wim opens in place with the wim package and http.ServeContent serves byte
// ranges of any file without extracting it.
//
// An image may carry up to three directory trees describing the same files. Open reads one:
//
//   - UDF, when an Anchor Volume Descriptor Pointer sits at block 256 (block sizes 512 to
//     4096 are tried). Windows and WinPE ISOs made by oscdimg are UDF-only behind a stub ISO
//     9660 tree that holds just a README, so UDF wins whenever it is present. Physical and
//     sparable partitions (sparing tables are not applied) and the UDF 2.50 metadata partition
//     are read; virtual (VAT) partitions are not.
//   - else the primary ISO 9660 tree when it has Rock Ridge entries (as Linux prefers them:
//     POSIX names and symbolic links, which Joliet cannot record), with Rock Ridge names (NM),
//     symbolic links (SL) and relocated directories (CL/RE),
//   - else Joliet (a supplementary volume descriptor with UCS-2 names),
//   - else the plain primary tree.
//
// Symbolic links resolve inside the image (see links.go).
//
// The whole tree is read and checked by Open (descriptor tags, checksums and CRCs, extents
// inside the image, directory loops, depth and entry count limits), so a hostile image fails
// there with an error naming the problem; file data is read on demand. Names are matched
// case-insensitively (an exact match wins). An FS is safe for concurrent use.
package iso

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// Interfaces an FS and its files implement.
var (
	_ fs.FS          = (*FS)(nil)
	_ fs.ReadDirFS   = (*FS)(nil)
	_ fs.StatFS      = (*FS)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.ReadSeeker  = (*File)(nil)
	_ fs.ReadDirFile = (*dirFile)(nil)
)

// ErrNotImage is returned (wrapped) when r holds neither ISO 9660 nor UDF descriptors.
var ErrNotImage = errors.New("no ISO 9660 or UDF volume descriptors")

// Limits that bound the work and memory Open spends on a hostile image.
const (
	maxEntries  = 1 << 20  // files and directories in one image
	maxDepth    = 128      // directory nesting
	maxDirBytes = 64 << 20 // one directory's records
	maxAllDirs  = 1 << 30  // all directories' records together
)

// FS is an opened image: one of its directory trees, read in full by Open.
type FS struct {
	r      io.ReaderAt
	size   int64
	root   *node
	format string
	label  string
}

// node is one file or directory of the chosen tree.
type node struct {
	name   string
	parent *node
	dir    bool
	mode   fs.FileMode
	mtime  time.Time
	size   int64
	ext    []extent // file data, in order; covers at least size bytes
	inline []byte   // data embedded in a UDF file entry (instead of ext)
	kids   []*node  // sorted by name

	// A symbolic link (mode has fs.ModeSymlink): Rock Ridge targets are decoded with the tree
	// (linkSet, or linkErr when the SL entries are bad); UDF ones are read from the link's
	// data when followed (links.go).
	link    string
	linkSet bool
	linkErr error
}

// extent is a run of file data: n bytes at image offset off, or a hole of zeros when off < 0.
type extent struct {
	off, n int64
}

// budget counts what the tree readers have used so far.
type budget struct {
	entries  int
	extents  int
	dirBytes int64
	dirLimit int64 // directory bytes allowed in all
}

// newBudget sizes the directory allowance by the image: directories of a sound image are
// disjoint parts of it, so only overlapping (hostile) records could read more, and the
// entries (and memory) they yield stay proportional to the image.
func newBudget(imageSize int64) budget {
	return budget{dirLimit: min(maxAllDirs, 2*imageSize+1<<16)}
}

func (b *budget) addEntry() error {
	if b.entries++; b.entries > maxEntries {
		return fmt.Errorf("more than %d entries", maxEntries)
	}
	return nil
}

func (b *budget) addDir(n int64) error {
	if n > maxDirBytes {
		return fmt.Errorf("directory of %d bytes exceeds the %d-byte limit", n, maxDirBytes)
	}
	if b.dirBytes += n; b.dirBytes > b.dirLimit {
		return fmt.Errorf("directories exceed %d bytes in all (overlapping or looping records?)", b.dirLimit)
	}
	return nil
}

// Open reads the volume descriptors and the directory tree of the image in r (size bytes).
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < 0 {
		return nil, fmt.Errorf("iso: negative image size %d", size)
	}
	fsys := &FS{r: r, size: size}
	found, err := fsys.openUDF()
	if err != nil {
		return nil, fmt.Errorf("iso: udf: %w", err)
	}
	if found {
		fsys.rockRidgeLinksIntoUDF()
		return fsys, nil
	}
	if err := fsys.open9660(); err != nil {
		return nil, fmt.Errorf("iso: %w", err)
	}
	return fsys, nil
}

// Format names the tree that was read: "udf 2.50" (with the UDF revision), "joliet" or
// "iso9660".
func (fsys *FS) Format() string { return fsys.format }

// VolumeLabel returns the volume identifier of the chosen tree (UDF logical volume, Joliet or
// primary volume descriptor), with trailing spaces removed.
func (fsys *FS) VolumeLabel() string { return fsys.label }

// readAt reads exactly n bytes at off, refusing ranges outside the image.
func (fsys *FS) readAt(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > fsys.size || n > fsys.size-off {
		return nil, fmt.Errorf("%d bytes at offset %d lie beyond the image end (%d)", n, off, fsys.size)
	}
	buf := make([]byte, n)
	if _, err := fsys.r.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("reading %d bytes at offset %d: %w", n, off, err)
	}
	return buf, nil
}

// checkExtent refuses a data extent that does not lie inside the image.
func (fsys *FS) checkExtent(e extent) error {
	if e.off >= 0 && (e.off > fsys.size || e.n > fsys.size-e.off) {
		return fmt.Errorf("extent of %d bytes at offset %d lies beyond the image end (%d)", e.n, e.off, fsys.size)
	}
	return nil
}

// path returns the node's slash-separated path from the root.
func (n *node) path() string {
	if n.parent == nil {
		return "."
	}
	var parts []string
	for e := n; e.parent != nil; e = e.parent {
		parts = append(parts, e.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// dirName names a directory in errors.
func dirName(n *node) string {
	if n.parent == nil {
		return "root directory"
	}
	return "directory " + n.path()
}

// validName reports whether s can be one element of an fs path.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// addChild links c under n, skipping names that cannot be path elements.
func (n *node) addChild(c *node) {
	if !validName(c.name) {
		return
	}
	c.parent = n
	n.kids = append(n.kids, c)
}

// sortKids orders children by name, as fs.ReadDir promises.
func (n *node) sortKids() {
	sort.SliceStable(n.kids, func(i, j int) bool { return n.kids[i].name < n.kids[j].name })
}

// child finds a child by name: exact match first, then case-insensitively.
func (n *node) child(name string) *node {
	i := sort.Search(len(n.kids), func(i int) bool { return n.kids[i].name >= name })
	if i < len(n.kids) && n.kids[i].name == name {
		return n.kids[i]
	}
	for _, c := range n.kids {
		if strings.EqualFold(c.name, name) {
			return c
		}
	}
	return nil
}

// Open opens the named file or directory, following symbolic links inside the image.
// Regular files are *File.
func (fsys *FS) Open(name string) (fs.File, error) {
	n, err := fsys.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return &dirFile{n: n}, nil
	}
	return &File{fsys: fsys, n: n}, nil
}

// OpenFile opens the named regular file, following symbolic links inside the image.
func (fsys *FS) OpenFile(name string) (*File, error) {
	n, err := fsys.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	return &File{fsys: fsys, n: n}, nil
}

// Stat describes the named file, following symbolic links (see Lstat).
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := fsys.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return fileInfo{n}, nil
}

// ReadDir lists the named directory (following links to it), sorted by name; links in it are
// listed as links.
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := fsys.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	out := make([]fs.DirEntry, len(n.kids))
	for i, c := range n.kids {
		out[i] = fileInfo{c}
	}
	return out, nil
}

// fileInfo is a node seen as fs.FileInfo and fs.DirEntry.
type fileInfo struct{ n *node }

func (fi fileInfo) Name() string {
	if fi.n.parent == nil {
		return "."
	}
	return fi.n.name
}
func (fi fileInfo) Size() int64                { return fi.n.size }
func (fi fileInfo) Mode() fs.FileMode          { return fi.n.mode }
func (fi fileInfo) ModTime() time.Time         { return fi.n.mtime }
func (fi fileInfo) IsDir() bool                { return fi.n.dir }
func (fi fileInfo) Sys() any                   { return nil }
func (fi fileInfo) Type() fs.FileMode          { return fi.n.mode.Type() }
func (fi fileInfo) Info() (fs.FileInfo, error) { return fi, nil }
func (fi fileInfo) String() string             { return fs.FormatFileInfo(fi) }

// dirFile is an open directory.
type dirFile struct {
	n   *node
	pos int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return fileInfo{d.n}, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.n.path(), Err: errors.New("is a directory")}
}

// ReadDir returns the next n entries (all remaining when n <= 0), as fs.ReadDirFile specifies.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.n.kids[d.pos:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	d.pos += len(rest)
	out := make([]fs.DirEntry, len(rest))
	for i, c := range rest {
		out[i] = fileInfo{c}
	}
	return out, nil
}
