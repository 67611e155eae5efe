package wimsynth

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// Overlay is a set of files to add to or replace in an image, keyed by path. The zero value is
// an empty overlay. Paths use '/' or '\' separators and are relative to the image root (one
// leading separator is allowed); names match existing entries as Windows does (exact, else
// case-insensitive). Missing directories are created. An Overlay must not be changed while a
// Build using it runs; the readers given to Add must allow concurrent ReadAt.
type Overlay struct {
	// ModTime is the creation, access and write time of new files and directories, and the
	// write time of replaced files. Zero means: new entries take their parent directory's
	// times and replaced files keep theirs (so the output depends only on source and content).
	ModTime time.Time

	files []*overlayFile
}

type overlayFile struct {
	path  string   // as given
	elems []string // cleaned path elements
	r     io.ReaderAt
	size  int64
	hash  [sha1.Size]byte // zero for empty content
}

// ErrBadPath is returned (wrapped) for overlay paths that cannot name a file in an image.
var ErrBadPath = errors.New("invalid overlay path")

// maxNameUnits is the longest name a dentry can hold (its length field is 16 bits of bytes).
const maxNameUnits = 32767

// splitPath checks and splits an overlay path.
func splitPath(p string) ([]string, error) {
	s := strings.ReplaceAll(p, `\`, "/")
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return nil, fmt.Errorf("%w %q: empty path", ErrBadPath, p)
	}
	elems := strings.Split(s, "/")
	for _, e := range elems {
		switch {
		case e == "":
			return nil, fmt.Errorf("%w %q: empty name between separators", ErrBadPath, p)
		case e == "." || e == "..":
			return nil, fmt.Errorf("%w %q: %q is not allowed", ErrBadPath, p, e)
		case strings.ContainsAny(e, "\x00:"):
			return nil, fmt.Errorf("%w %q: name %q holds NUL or ':' (named streams are not supported)", ErrBadPath, p, e)
		case len(utf16.Encode([]rune(e))) > maxNameUnits:
			return nil, fmt.Errorf("%w %q: name longer than %d UTF-16 units", ErrBadPath, p, maxNameUnits)
		}
	}
	return elems, nil
}

// AddBytes adds (or replaces) the file at path with content b. b must not be modified afterwards.
func (o *Overlay) AddBytes(path string, b []byte) error {
	return o.Add(path, bytes.NewReader(b), int64(len(b)))
}

// Add adds (or replaces) the file at path with the size bytes of r. Its SHA-1 is computed now,
// reading r once; r is read again whenever the synthesised WIM's bytes are read, so it must keep
// the same content.
func (o *Overlay) Add(path string, r io.ReaderAt, size int64) error {
	elems, err := splitPath(path)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("wimsynth: overlay %q: negative size %d", path, size)
	}
	for _, f := range o.files {
		if err := conflict(f, elems, path); err != nil {
			return err
		}
	}
	h := sha1.New()
	if n, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil || n != size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("wimsynth: overlay %q: reading %d bytes: %w", path, size, err)
	}
	f := &overlayFile{path: path, elems: elems, r: r, size: size}
	if size > 0 {
		copy(f.hash[:], h.Sum(nil))
	}
	o.files = append(o.files, f)
	return nil
}

// conflict rejects a path equal to an earlier one, or one that would need a file to be a
// directory (a/b given as a file and a/b/c, in either order).
func conflict(f *overlayFile, elems []string, path string) error {
	n := min(len(f.elems), len(elems))
	for i := 0; i < n; i++ {
		if !strings.EqualFold(f.elems[i], elems[i]) {
			return nil
		}
	}
	if len(f.elems) == len(elems) {
		return fmt.Errorf("wimsynth: overlay %q: %w: same file as %q", path, ErrBadPath, f.path)
	}
	return fmt.Errorf("wimsynth: overlay %q and %q: %w: one would have to be both a file and a directory",
		path, f.path, ErrBadPath)
}

// Len returns the number of files in the overlay.
func (o *Overlay) Len() int {
	if o == nil {
		return 0
	}
	return len(o.files)
}

// sorted returns the files in a deterministic order (by path elements, then as given).
func (o *Overlay) sorted() []*overlayFile {
	out := append([]*overlayFile(nil), o.files...)
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Join(out[i].elems, "/") < strings.Join(out[j].elems, "/")
	})
	return out
}

// Paths returns the path elements of every file in the overlay, as Add cleaned them, in the
// order added (for callers that must know which paths of the image the overlay touches).
func (o *Overlay) Paths() [][]string {
	if o == nil {
		return nil
	}
	out := make([][]string, 0, len(o.files))
	for _, f := range o.files {
		out = append(out, append([]string(nil), f.elems...))
	}
	return out
}
