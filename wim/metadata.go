package wim

import (
	"crypto/sha1"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxMetadataSize bounds a metadata resource (Windows 11 install.wim images: ~100 MiB).
const maxMetadataSize = 1 << 30

// Image is one image of a WIM: its directory tree and security descriptors. It implements
// fs.FS, fs.ReadDirFS, fs.ReadFileFS and fs.StatFS. Safe for concurrent use.
type Image struct {
	a        *Archive
	index    int
	root     *Entry
	security [][]byte
	entries  int
	skipped  []string // why entries were ignored while parsing, in wimlib's words
}

// Info returns the image's information from the XML data.
func (img *Image) Info() ImageInfo {
	if img.index-1 < len(img.a.info.Images) {
		return img.a.info.Images[img.index-1].info()
	}
	return ImageInfo{Index: img.index, Arch: -1}
}

// Index returns the image's 1-based index.
func (img *Image) Index() int { return img.index }

// Root returns the root directory entry.
func (img *Image) Root() *Entry { return img.root }

// Skipped lists the entries the parser ignored, one warning each in wimlib-imagex's words
// (e.g. `Ignoring file named "." or ".." in directory "/"`): unnamed entries, "." and "..",
// names with NUL or '/', and the later of two entries with the same name in one directory.
// Their subtrees are ignored with them. The pxewim wim command prints these as wimlib-imagex
// prints its warnings.
func (img *Image) Skipped() []string { return img.skipped }

// wimlibPath is an entry's path as wimlib-imagex prints it: "/" for the root, else "/a/b".
func wimlibPath(e *Entry) string {
	if e.parent == nil {
		return "/"
	}
	return "/" + e.Path()
}

// loadImage reads and parses image index's metadata resource.
func (a *Archive) loadImage(index int) (*Image, error) {
	mb := a.metadata[index-1]
	if mb.size > maxMetadataSize {
		return nil, fmt.Errorf("wim: image %d: metadata resource of %d bytes exceeds the %d-byte limit", index, mb.size, maxMetadataSize)
	}
	buf, err := mb.readAll()
	if err != nil {
		return nil, fmt.Errorf("wim: image %d: reading metadata: %w", index, err)
	}
	if sha1.Sum(buf) != mb.hash && mb.hash != ([sha1.Size]byte{}) {
		return nil, fmt.Errorf("wim: image %d: metadata resource is corrupt (SHA-1 mismatch)", index)
	}
	img, err := parseMetadata(buf)
	if err != nil {
		return nil, fmt.Errorf("wim: image %d: %w", index, err)
	}
	img.a, img.index = a, index
	img.resolveSizes()
	return img, nil
}

// parseMetadata builds an image's tree from a decoded metadata resource.
func parseMetadata(buf []byte) (*Image, error) {
	sec, rootOff, err := parseSecurity(buf)
	if err != nil {
		return nil, err
	}
	img := &Image{security: sec}
	rd, err := parseDentry(buf, rootOff)
	if err != nil {
		return nil, fmt.Errorf("root %w", err)
	}
	if rd == nil {
		return nil, fmt.Errorf("no root dentry at offset %#x", rootOff)
	}
	rd.assignStreams()
	img.root = rd.e
	img.root.img = img
	img.root.Name, img.root.ShortName = "", ""
	if !img.root.IsDir() {
		return nil, fmt.Errorf("root dentry at offset %#x is not a directory (attributes %#x)", rootOff, img.root.Attributes)
	}
	type pending struct {
		dir   *Entry
		list  int64
		depth int
	}
	stack := []pending{{img.root, rd.subdirOffset, 0}}
	visited := map[int64]bool{}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p.list == 0 {
			continue
		}
		if p.depth >= maxTreeDepth {
			return nil, fmt.Errorf("directory %q: tree deeper than %d levels", p.dir.Path(), maxTreeDepth)
		}
		if visited[p.list] || p.list <= rootOff {
			return nil, fmt.Errorf("directory %q: children list at offset %#x is reached twice (cyclic directory tree)", p.dir.Path(), p.list)
		}
		visited[p.list] = true
		off := p.list
		for {
			d, err := parseDentry(buf, off)
			if err != nil {
				return nil, fmt.Errorf("in directory %q: %w", p.dir.Path(), err)
			}
			if d == nil {
				break
			}
			off += d.length
			d.assignStreams()
			c := d.e
			if !img.addChild(p.dir, c) {
				continue
			}
			if c.Attributes&AttrDirectory != 0 && d.subdirOffset != 0 {
				stack = append(stack, pending{c, d.subdirOffset, p.depth + 1})
			}
		}
	}
	img.sortChildren()
	return img, nil
}

// addChild links c under dir unless its name is unusable; duplicates are resolved later.
func (img *Image) addChild(dir, c *Entry) bool {
	var why string
	switch {
	case c.Name == "":
		why = "Ignoring unnamed file in directory %q"
	case c.Name == "." || c.Name == "..":
		why = `Ignoring file named "." or ".." in directory %q`
	case strings.Contains(c.Name, "\x00"):
		why = "Ignoring filename with embedded null character in directory %q"
	case strings.Contains(c.Name, "/"):
		// wimlib keeps such a name in its tree and refuses it only when extracting ("has an
		// invalid filename"); here it cannot be an fs path element at all.
		why = "Ignoring filename containing embedded path separator in directory %q"
	}
	if why != "" {
		img.skipped = append(img.skipped, fmt.Sprintf(why, wimlibPath(dir)))
		slog.Debug("wim: entry ignored", "dir", dir.Path(), "name", c.Name)
		return false
	}
	c.img, c.parent = img, dir
	dir.children = append(dir.children, c)
	img.entries++
	return true
}

// sortChildren orders every directory's children for case-insensitive binary search and drops
// exact duplicate names, keeping the first (as wimlib does).
func (img *Image) sortChildren() {
	stack := []*Entry{img.root}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		sort.SliceStable(d.children, func(i, j int) bool { return lessFold(d.children[i].Name, d.children[j].Name) })
		kept := d.children[:0]
		for i, c := range d.children {
			if i > 0 && kept[len(kept)-1].Name == c.Name {
				img.skipped = append(img.skipped, fmt.Sprintf("Ignoring duplicate file %q (the WIM image already contains a file at that path with the exact same name)", wimlibPath(c)))
				slog.Debug("wim: duplicate name ignored", "path", c.Path())
				img.entries--
				continue
			}
			kept = append(kept, c)
			stack = append(stack, c)
		}
		d.children = kept
	}
}

// lessFold orders names case-insensitively, then exactly, so that equal folded names are
// adjacent (and exact duplicates adjacent in stable, original order).
func lessFold(a, b string) bool {
	if c := compareFold(a, b); c != 0 {
		return c < 0
	}
	return a < b
}

// compareFold compares two names as Windows does, by upper-casing each rune.
func compareFold(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		ua, ub := unicode.ToUpper(ra), unicode.ToUpper(rb)
		if ua != ub {
			if ua < ub {
				return -1
			}
			return 1
		}
		a, b = a[na:], b[nb:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

// lookupChild finds name in dir: an exact match if there is one, else a case-insensitive one.
func lookupChild(dir *Entry, name string) *Entry {
	cs := dir.children
	i := sort.Search(len(cs), func(i int) bool { return compareFold(cs[i].Name, name) >= 0 })
	var first *Entry
	for ; i < len(cs) && compareFold(cs[i].Name, name) == 0; i++ {
		if cs[i].Name == name {
			return cs[i]
		}
		if first == nil {
			first = cs[i]
		}
	}
	return first
}

// resolveSizes fills in stream sizes from the blob table.
func (img *Image) resolveSizes() {
	img.Walk(func(_ string, e *Entry) error {
		if b, ok := img.a.blobs[e.Hash]; ok {
			e.Size = b.size
		}
		for i := range e.Streams {
			if b, ok := img.a.blobs[e.Streams[i].Hash]; ok {
				e.Streams[i].Size = b.size
			}
		}
		return nil
	})
}

// Walk calls fn for every entry of the image in depth-first, name order, with its path ("."
// for the root). Returning fs.SkipDir from fn skips a directory's contents; any other error
// stops the walk and is returned.
func (img *Image) Walk(fn func(path string, e *Entry) error) error {
	type item struct {
		path string
		e    *Entry
	}
	stack := []item{{".", img.root}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		err := fn(it.path, it.e)
		if err == fs.SkipDir {
			continue
		}
		if err != nil {
			return err
		}
		kids := it.e.Children()
		for i := len(kids) - 1; i >= 0; i-- {
			p := kids[i].Name
			if it.path != "." {
				p = it.path + "/" + p
			}
			stack = append(stack, item{p, kids[i]})
		}
	}
	return nil
}

// Entries returns how many entries (excluding the root) the image has.
func (img *Image) Entries() int { return img.entries }
