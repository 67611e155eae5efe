package wim

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"
)

// Interfaces an Image and its files implement.
var (
	_ fs.FS          = (*Image)(nil)
	_ fs.ReadDirFS   = (*Image)(nil)
	_ fs.ReadFileFS  = (*Image)(nil)
	_ fs.StatFS      = (*Image)(nil)
	_ fs.ReadLinkFS  = (*Image)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.Seeker      = (*File)(nil)
	_ fs.ReadDirFile = (*dirFile)(nil)
)

// ErrChecksum is returned (wrapped) when data read in full does not match its SHA-1.
var ErrChecksum = errors.New("SHA-1 mismatch")

// ChecksumError reports a stream whose data, read in full, does not hash to the SHA-1 the WIM
// records for it: the WIM is damaged (or changed under the reader). It matches ErrChecksum
// with errors.Is.
type ChecksumError struct {
	WIM   string // the WIM's name (Options.Name), "" if not given
	Image int    // 1-based image index; 0 for a blob checked by hash (Archive.VerifyBlob)
	Path  string // the entry's path in the image, with ":stream" for a named stream
	Want  [sha1.Size]byte
	Got   [sha1.Size]byte // zero when a block check failed (see Block)

	// Block, when Got is zero, is the byte range [Block[0], Block[1]) that differs from the
	// data an earlier full read verified against Want (the stream changed since).
	Block [2]int64
}

func (e *ChecksumError) Error() string {
	where := "wim: "
	if e.WIM != "" {
		where += e.WIM + ": "
	}
	if e.Image > 0 {
		where += fmt.Sprintf("image %d: ", e.Image)
	}
	if e.Got == ([sha1.Size]byte{}) {
		return fmt.Sprintf("%s%s: %v: bytes %d-%d differ from the data verified earlier against the WIM's SHA-1 %s",
			where, e.Path, ErrChecksum, e.Block[0], e.Block[1]-1, hex.EncodeToString(e.Want[:]))
	}
	return fmt.Sprintf("%s%s: %v: the data hashes to %s, the WIM records %s",
		where, e.Path, ErrChecksum, hex.EncodeToString(e.Got[:]), hex.EncodeToString(e.Want[:]))
}

// Is makes errors.Is(err, ErrChecksum) true.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// Corrupt reports that the stored data is damaged. Servers that must not import this
// package (tftp, httpboot) recognise such read errors by this method.
func (e *ChecksumError) Corrupt() bool { return true }

// lookup resolves an fs.ValidPath name to an entry, case-insensitively (exact matches win).
func (img *Image) lookup(op, name string) (*Entry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	e := img.root
	if name == "." {
		return e, nil
	}
	for name != "" {
		elem, rest, _ := strings.Cut(name, "/")
		name = rest
		if !e.IsDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if e = lookupChild(e, elem); e == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
	}
	return e, nil
}

// Lookup returns the entry at path name (an fs.ValidPath), matching names case-insensitively.
func (img *Image) Lookup(name string) (*Entry, error) {
	e, err := img.lookup("lookup", name)
	if err != nil {
		return nil, fixPathErr(err, name)
	}
	return e, nil
}

// fixPathErr puts the full path back into a PathError made during a walk.
func fixPathErr(err error, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = name
	}
	return err
}

// Open opens the named file or directory. Symbolic links are followed inside the image (see
// links.go); use Lookup, Lstat or ReadLink for a link itself.
func (img *Image) Open(name string) (fs.File, error) {
	e, err := img.resolve("open", name)
	if err != nil {
		return nil, err
	}
	if e.IsDir() {
		return &dirFile{info: fileInfo{e}, entries: e.Children()}, nil
	}
	f, err := img.openStream(e, e.Hash, e.Size)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f, nil
}

// OpenEntry opens an entry's unnamed data stream.
func (img *Image) OpenEntry(e *Entry) (*File, error) { return img.openStream(e, e.Hash, e.Size) }

// OpenStream opens an entry's named data stream.
func (img *Image) OpenStream(e *Entry, name string) (*File, error) {
	for _, s := range e.Streams {
		if s.Name == name {
			return img.openNamed(e, name, s.Hash)
		}
	}
	return nil, fmt.Errorf("wim: %s: no stream named %q: %w", e.Path(), name, fs.ErrNotExist)
}

func (img *Image) openStream(e *Entry, h [sha1.Size]byte, size int64) (*File, error) {
	return img.openNamed(e, "", h)
}

// openNamed opens a stream of e: the unnamed one when stream is "".
func (img *Image) openNamed(e *Entry, stream string, h [sha1.Size]byte) (*File, error) {
	f := &File{img: img, e: e, stream: stream, hash: h}
	if h == ([sha1.Size]byte{}) {
		return f, nil
	}
	b, ok := img.a.blobs[h]
	if !ok {
		return nil, img.a.missingBlob(img.index, e, h)
	}
	f.b, f.size = b, b.size
	f.chk = newCheck(b, func(got [sha1.Size]byte, block [2]int64) error {
		e := f.checksumError(got)
		e.Block = block
		return e
	})
	return f, nil
}

// ReadFile reads a whole file and checks its SHA-1.
func (img *Image) ReadFile(name string) ([]byte, error) {
	e, err := img.resolve("readfile", name)
	if err != nil {
		return nil, err
	}
	if e.IsDir() {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	f, err := img.openStream(e, e.Hash, e.Size)
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	if f.b == nil {
		return []byte{}, nil
	}
	data, err := f.b.readAll()
	if err == nil {
		if sum := sha1.Sum(data); sum != f.hash {
			err = f.checksumError(sum)
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return data, nil
}

// Stat describes the named file, following symbolic links (as Open does).
func (img *Image) Stat(name string) (fs.FileInfo, error) {
	e, err := img.resolve("stat", name)
	if err != nil {
		return nil, err
	}
	return fileInfo{e}, nil
}

// Lstat describes the named file; a symbolic link at the end of name is described itself.
func (img *Image) Lstat(name string) (fs.FileInfo, error) {
	e, err := img.lookup("lstat", name)
	if err != nil {
		return nil, fixPathErr(err, name)
	}
	return fileInfo{e}, nil
}

// ReadDir lists the named directory, sorted by name.
func (img *Image) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := img.resolve("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	kids := e.Children()
	out := make([]fs.DirEntry, len(kids))
	for i, c := range kids {
		out[i] = fileInfo{c}
	}
	return out, nil
}

func sortByName(es []*Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
}

// fileInfo is an Entry seen as fs.FileInfo and fs.DirEntry.
type fileInfo struct{ e *Entry }

func (fi fileInfo) Name() string {
	if fi.e.parent == nil {
		return "."
	}
	return fi.e.Name
}
func (fi fileInfo) Size() int64                { return fi.e.Size }
func (fi fileInfo) Mode() fs.FileMode          { return fi.e.Mode() }
func (fi fileInfo) ModTime() time.Time         { return fi.e.LastWriteTime }
func (fi fileInfo) IsDir() bool                { return fi.e.IsDir() }
func (fi fileInfo) Sys() any                   { return fi.e }
func (fi fileInfo) Type() fs.FileMode          { return fi.e.Mode().Type() }
func (fi fileInfo) Info() (fs.FileInfo, error) { return fi, nil }
func (fi fileInfo) String() string             { return fs.FormatFileInfo(fi) }

// File is an open data stream of an image entry. Read and Seek share a position; ReadAt is
// independent of it and safe for concurrent use.
//
// A File checks the stream's SHA-1 whenever it is read in full, in order: it hashes the bytes
// its reads (Read and ReadAt alike) return from offset 0 onwards, as long as each read starts
// at or before the end of what was hashed so far (re-reading, as a TFTP retransmission or a
// second pass does, is fine). The read that would return the stream's last bytes first
// compares the SHA-1, and on a mismatch returns a *ChecksumError (errors.Is ErrChecksum)
// instead of those bytes, so a sequential copy (http.ServeContent over an io.SectionReader,
// a TFTP transfer, io.Copy) never completes with wrong data. Reads that do not cover the
// stream in order from 0 (ranges) are not checked.
//
// SHA-1 costs about 0.6 ns per byte, as much as serving the byte over loopback HTTP. So once
// a full read of a stream has matched its SHA-1, the CRC-32C of each 64 KiB block of what it
// read is kept with the Archive (4 bytes per block), and later full reads of the stream
// compare blocks against those (about 15x cheaper): a block that differs (the file changed
// under the Archive) fails the read that completes it, and always the read of the last bytes.
type File struct {
	img    *Image
	e      *Entry
	stream string // named stream, "" for the unnamed one
	b      *blob  // nil for an empty stream
	size   int64
	hash   [sha1.Size]byte

	mu     sync.Mutex
	pos    int64
	pin    chunkPin
	chk    *Check // nil for an empty stream
	closed bool
}

// Hash returns the SHA-1 of the stream (zero for an empty stream).
func (f *File) Hash() [sha1.Size]byte { return f.hash }

// Size returns the stream's size.
func (f *File) Size() int64 { return f.size }

// Stat describes the file's entry.
func (f *File) Stat() (fs.FileInfo, error) { return fileInfo{f.e}, nil }

// Entry returns the file's directory entry.
func (f *File) Entry() *Entry { return f.e }

// Close releases the file; it does not affect other readers.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	f.closed, f.pin = true, chunkPin{}
	return nil
}

// Read reads from the current position.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if f.pos >= f.size || f.b == nil {
		return 0, io.EOF
	}
	f.pin.end = f.b.off + f.b.size
	n, err := f.b.readAt(p, f.pos, &f.pin)
	if cerr := f.chk.Feed(p[:n], f.pos); cerr != nil {
		return 0, cerr
	}
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt reads len(p) bytes at off, decoding only the chunks that cover them.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("wim: %s: negative offset %d", f.e.Path(), off)
	}
	if f.b == nil {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n, err := f.b.readAt(p, off, nil)
	if n > 0 {
		f.mu.Lock()
		cerr := f.chk.Feed(p[:n], off)
		f.mu.Unlock()
		if cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

// checksumError describes a mismatch of the whole stream's SHA-1.
func (f *File) checksumError(got [sha1.Size]byte) *ChecksumError {
	p := f.e.Path()
	if f.stream != "" {
		p += ":" + f.stream
	}
	e := &ChecksumError{Path: p, Want: f.hash, Got: got}
	if f.img != nil {
		e.WIM, e.Image = f.img.a.name, f.img.index
	}
	return e
}

// Seek sets the position for the next Read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, fmt.Errorf("wim: seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("wim: seek: negative position %d", offset)
	}
	f.pos = offset
	return offset, nil
}

// dirFile is an open directory.
type dirFile struct {
	info    fileInfo
	entries []*Entry
	pos     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.e.Path(), Err: errors.New("is a directory")}
}

// ReadDir returns the next n entries (all remaining when n <= 0), as fs.ReadDirFile specifies.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.pos:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	d.pos += len(rest)
	out := make([]fs.DirEntry, len(rest))
	for i, e := range rest {
		out[i] = fileInfo{e}
	}
	return out, nil
}

// missingBlob explains a stream that the blob table lacks.
func (a *Archive) missingBlob(index int, e *Entry, h [sha1.Size]byte) error {
	if a.missingParts > 0 {
		return fmt.Errorf("wim: image %d: %s: stream %x is not in the given parts (%d of %d split parts missing: use --ref)",
			index, e.Path(), h, a.missingParts, a.hdr.TotalParts)
	}
	return fmt.Errorf("wim: image %d: %s: stream %x is missing from the WIM", index, e.Path(), h)
}
