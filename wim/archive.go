// Package wim reads Windows Imaging (WIM) files as wimlib writes them: every compression format
// (XPRESS, LZX, LZMS), solid resources, split (.swm) sets and pipable WIMs.
//
// Open or OpenFile gives an Archive; each of its images is an io/fs.FS whose regular files are
// io.ReaderAt and io.Seeker, so http.ServeContent serves byte ranges of them directly. Reading a
// range decodes only the chunks that cover it; decoded chunks live in a Cache that many archives
// may share, which bounds all the memory of decoding (chunks kept, chunks being read, decodes
// and verification in flight) as one budget. An Archive is safe for concurrent use.
package wim

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
)

// Part is one more file of a split WIM set (or any io.ReaderAt holding a WIM part).
type Part struct {
	R    io.ReaderAt
	Size int64
}

// Options configures Open. The zero value (or nil) is fine.
type Options struct {
	// Parts are the other parts of a split set (like wimlib's --ref); the part passed to Open
	// may be any of them. Parts with another GUID are rejected.
	Parts []Part
	// Cache holds decoded chunks; nil means a private cache of DefaultCacheSize bytes.
	Cache *Cache
	// Name names the WIM in errors (ChecksumError.WIM), e.g. its path in the store. OpenFile
	// sets it to the path.
	Name string

	// newDecoder replaces the codec packages (tests only).
	newDecoder newDecoderFunc
}

// part is one opened WIM file.
type part struct {
	r    io.ReaderAt
	size int64
	hdr  Header
	id   uint64 // cache key namespace
}

// Archive is an opened WIM (or split WIM set).
type Archive struct {
	hdr       Header // of part 1
	parts     []*part
	cache     *Cache
	decoders  decoderPools
	blobs     map[[sha1.Size]byte]*blob
	blobOrder []*blob
	resources map[resKey]*resource
	metadata  []*blob // per image, in blob table order
	xmlText   string
	info      xmlWIM

	missingParts int
	name         string // Options.Name

	imgMu  sync.Mutex
	images map[int]*imageLoad
}

type imageLoad struct {
	once sync.Once
	img  *Image
	err  error
}

// Open reads a WIM from r (size bytes): header, blob table and XML. Images are read on demand.
func Open(r io.ReaderAt, size int64, opts *Options) (*Archive, error) {
	if opts == nil {
		opts = &Options{}
	}
	a := &Archive{cache: opts.Cache, name: opts.Name, blobs: map[[sha1.Size]byte]*blob{}, images: map[int]*imageLoad{}}
	a.decoders.newDecoder = opts.newDecoder
	if a.cache == nil {
		a.cache = NewCache(DefaultCacheSize)
		privateCaches.Add(1)
	}
	first, err := a.openPart(r, size)
	if err != nil {
		return nil, err
	}
	if err := a.collectParts(first, opts.Parts); err != nil {
		return nil, err
	}
	for _, p := range a.parts {
		if err := a.readBlobTable(p); err != nil {
			return nil, err
		}
	}
	if err := a.readXML(); err != nil {
		return nil, err
	}
	// Every part has the XML data (info works on any part), but only part 1 has the images.
	if a.hdr.Part == 1 && len(a.metadata) != int(a.hdr.ImageCount) {
		return nil, fmt.Errorf("wim: header says %d images but the blob table has %d metadata resources",
			a.hdr.ImageCount, len(a.metadata))
	}
	return a, nil
}

func (a *Archive) openPart(r io.ReaderAt, size int64) (*part, error) {
	if size < HeaderSize {
		return nil, fmt.Errorf("wim: file of %d bytes is too short for a WIM header", size)
	}
	b := make([]byte, HeaderSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("wim: reading header: %w", noEOF(err))
	}
	if bytes.HasPrefix(b, magicPipable[:]) {
		// The header at the start of a pipable WIM is written before the tables exist.
		if _, err := r.ReadAt(b, size-HeaderSize); err != nil {
			return nil, fmt.Errorf("wim: reading pipable WIM's final header: %w", noEOF(err))
		}
	}
	h, err := parseHeader(b, size)
	if err != nil {
		return nil, fmt.Errorf("wim: %w", err)
	}
	return &part{r: r, size: size, hdr: h, id: a.cache.newID()}, nil
}

// collectParts checks that the parts form one complete set and orders them by part number.
func (a *Archive) collectParts(first *part, more []Part) error {
	byNum := map[uint16]*part{first.hdr.Part: first}
	for i, m := range more {
		p, err := a.openPart(m.R, m.Size)
		if err != nil {
			return fmt.Errorf("wim: part %d of the set: %w", i+1, err)
		}
		if p.hdr.GUID != first.hdr.GUID {
			continue // wimlib ignores --ref files of other WIMs
		}
		if p.hdr.TotalParts != first.hdr.TotalParts {
			return fmt.Errorf("wim: part %d says %d parts, part %d says %d",
				p.hdr.Part, p.hdr.TotalParts, first.hdr.Part, first.hdr.TotalParts)
		}
		byNum[p.hdr.Part] = p
	}
	// Like wimlib, accept an incomplete set: info and dir need only part 1; reading a blob
	// stored in a missing part fails then, naming the part.
	for n := 1; n <= int(first.hdr.TotalParts); n++ { // int: a uint16 loop never ends at 65535
		if p, ok := byNum[uint16(n)]; ok {
			a.parts = append(a.parts, p)
		}
	}
	a.hdr = a.parts[0].hdr
	if len(a.parts) < int(first.hdr.TotalParts) {
		a.missingParts = int(first.hdr.TotalParts) - len(a.parts)
	}
	return nil
}

// MissingParts returns how many parts of a split set were not given.
func (a *Archive) MissingParts() int { return a.missingParts }

func (a *Archive) readBlobTable(p *part) error {
	h := p.hdr.BlobTable
	if h.Size > h.SizeInWIM || h.Flags&ResFlagCompressed != 0 {
		return fmt.Errorf("wim: part %d: blob table at %#x: unsupported size %d/%d or flags %#x",
			p.hdr.Part, h.Offset, h.SizeInWIM, h.Size, h.Flags)
	}
	buf := make([]byte, h.Size)
	if _, err := p.r.ReadAt(buf, h.Offset); err != nil {
		return fmt.Errorf("wim: part %d: reading blob table: %w", p.hdr.Part, noEOF(err))
	}
	entries, err := parseBlobTable(buf)
	if err != nil {
		return fmt.Errorf("wim: part %d: %w", p.hdr.Part, err)
	}
	if err := a.addBlobTable(p, entries); err != nil {
		return fmt.Errorf("wim: part %d: %w", p.hdr.Part, err)
	}
	return nil
}

// Header returns the header of the WIM (of part 1 for a split set).
func (a *Archive) Header() Header { return a.hdr }

// XML returns the WIM's XML data, decoded from UTF-16.
func (a *Archive) XML() string { return a.xmlText }

// TotalBytes is the WIM's TOTALBYTES from the XML data.
func (a *Archive) TotalBytes() int64 { return a.info.TotalBytes }

// Images returns the per-image information from the XML data, in index order.
func (a *Archive) Images() []ImageInfo {
	out := make([]ImageInfo, 0, len(a.info.Images))
	for _, x := range a.info.Images {
		out = append(out, x.info())
	}
	return out
}

// ErrNoImage is returned (wrapped) when an image index or name does not exist.
var ErrNoImage = errors.New("no such image")

// Image returns image index (1-based), reading its metadata on first use.
func (a *Archive) Image(index int) (*Image, error) {
	if a.hdr.Part != 1 {
		return nil, fmt.Errorf("wim: image %d: the images are in part 1 of the split set, which was not given (use --ref)", index)
	}
	if index < 1 || index > len(a.metadata) {
		return nil, fmt.Errorf("wim: image %d: %w (the WIM has %d)", index, ErrNoImage, len(a.metadata))
	}
	a.imgMu.Lock()
	l, ok := a.images[index]
	if !ok {
		l = &imageLoad{}
		a.images[index] = l
	}
	a.imgMu.Unlock()
	l.once.Do(func() { l.img, l.err = a.loadImage(index) })
	return l.img, l.err
}

// ImageByName returns the image with the given NAME (exact match, as wimlib does).
func (a *Archive) ImageByName(name string) (*Image, error) {
	for i, x := range a.info.Images {
		if x.Name == name && name != "" {
			return a.Image(i + 1)
		}
	}
	return nil, fmt.Errorf("wim: image %q: %w", name, ErrNoImage)
}

// ResolveImage turns wimlib-imagex's IMAGE argument (a 1-based index or an image name) into an
// index.
func (a *Archive) ResolveImage(arg string) (int, error) {
	if n, err := strconv.Atoi(arg); err == nil {
		if n < 1 || n > len(a.info.Images) {
			return 0, fmt.Errorf("wim: image %d: %w (the WIM has %d)", n, ErrNoImage, len(a.info.Images))
		}
		return n, nil
	}
	for i, x := range a.info.Images {
		if x.Name == arg && arg != "" {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("wim: image %q: %w", arg, ErrNoImage)
}

// OpenFileOptions configures OpenFile.
type OpenFileOptions struct {
	// Ref is a glob naming the other parts of a split set, like wimlib-imagex --ref.
	Ref string
	// Cache holds decoded chunks; nil means a private cache.
	Cache *Cache
}

// ReadCloser is an Archive opened from files; Close closes them.
type ReadCloser struct {
	*Archive
	files []*os.File
}

// OpenFile opens the WIM file at path (and, for split sets, the parts matched by opts.Ref).
func OpenFile(path string, opts *OpenFileOptions) (*ReadCloser, error) {
	if opts == nil {
		opts = &OpenFileOptions{}
	}
	rc := &ReadCloser{}
	open := func(name string) (*os.File, int64, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, fmt.Errorf("wim: %w", err)
		}
		rc.files = append(rc.files, f)
		st, err := f.Stat()
		if err != nil {
			return nil, 0, fmt.Errorf("wim: %w", err)
		}
		if !st.Mode().IsRegular() {
			return nil, 0, fmt.Errorf("wim: %s is not a regular file", name)
		}
		return f, st.Size(), nil
	}
	f, size, err := open(path)
	if err != nil {
		rc.Close()
		return nil, err
	}
	var parts []Part
	if opts.Ref != "" {
		names, err := filepath.Glob(opts.Ref)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("wim: --ref %q: %w", opts.Ref, err)
		}
		if len(names) == 0 {
			rc.Close()
			return nil, fmt.Errorf("wim: --ref %q matches no files", opts.Ref)
		}
		sort.Strings(names)
		abs, _ := filepath.Abs(path)
		for _, n := range names {
			if na, _ := filepath.Abs(n); na == abs {
				continue
			}
			pf, psize, err := open(n)
			if err != nil {
				rc.Close()
				return nil, err
			}
			parts = append(parts, Part{R: pf, Size: psize})
		}
	}
	a, err := Open(f, size, &Options{Parts: parts, Cache: opts.Cache, Name: path})
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rc.Archive = a
	return rc, nil
}

// Close closes the WIM's files.
func (rc *ReadCloser) Close() error {
	var errs []error
	for _, f := range rc.files {
		errs = append(errs, f.Close())
	}
	rc.files = nil
	return errors.Join(errs...)
}

// FileSize returns the size of the WIM file (of part 1 for a split set).
func (a *Archive) FileSize() int64 { return a.parts[0].size }
