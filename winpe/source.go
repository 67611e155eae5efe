package winpe

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/firmware"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
)

// Limits on what an entry reads into memory.
const (
	maxBCDBytes    = 16 << 20  // a BCD hive read from an image
	maxInjectBytes = 256 << 20 // one injected file or folder, in total
	maxInjectFiles = 4096
)

// source is one version of a WinPE image, with what is served from it (see Library). It is
// opened once, on first use, and shared by every entry and state whose key matches.
type source struct {
	lib       *Library
	key       key
	image     string // store path
	index     int    // configured index (0: the default WindowsPE image)
	inject    []boot.Injection
	transcode string

	openMu sync.Mutex // one open at a time
	// Guarded by lib.mu:
	o      *opened // nil until opened
	holds  int     // Sets binding the source
	files  int     // files opened from it and not closed yet
	closed bool
}

// opened is a source's WIM opened, and what is served from it.
type opened struct {
	size  int64
	mtime time.Time
	// built is when this source was opened: the Last-Modified of what is synthesised from it
	// (served WIM, BCDs). HTTP's validator is derived from path, size and mtime, and an edit of
	// an injected file or of the config can keep the size; a new build must never share the
	// old one's validator.
	built  time.Time
	base   *base  // the store's WIM opened (kept open: the archive reads from it)
	index  int    // image in the source WIM
	note   string // why the served WIM differs from the file ("" = the file as is)
	served io.ReaderAt
	sSize  int64
	sImage fs.FS // the image as served (index 1 of a synthesised WIM, or a variantImage)
	wimIdx int   // wimboot index= argument, 0 when the served WIM's boot index is the image
	boot   map[firmware.Path]catalog.BootFiles
	// ex2023: the image's bootmgfw_EX.efi carries a good signature chaining to Windows UEFI CA
	// 2023 (read once, when the source opens): uefi_bootmgr: auto hands it out only then.
	ex2023 bool
}

// counted wraps a file opened from the source so that its Close releases the source. A WIM
// file keeps every method of *wim.File (ReaderAt, Seeker, Hash and the rest) by embedding.
func (s *source) counted(f fs.File, err error) (fs.File, error) {
	if err != nil {
		return nil, err
	}
	switch v := f.(type) {
	case *wim.File:
		if !s.acquire() {
			v.Close()
			return nil, errRetired
		}
		return &countedWIMFile{File: v, s: s}, nil
	case *raFile:
		if !s.acquire() {
			return nil, errRetired
		}
		v.release = s.release
		return v, nil
	}
	return f, nil // directories and generated files (BCD) read nothing from the store file
}

type countedWIMFile struct {
	*wim.File
	s    *source
	once sync.Once
}

func (f *countedWIMFile) Close() error {
	err := f.File.Close()
	f.once.Do(f.s.release)
	return err
}

// base is one version of a store image opened as a WIM archive, shared by every source built
// from it: the variants of an image that differ only in injected files (per-client Setup
// credentials) share its blob table and decoded image tree, and only their own metadata and
// layout cost memory each. Counted by the sources that opened it; the store file closes with
// its last one.
type base struct {
	key  baseKey
	mu   sync.Mutex // one open at a time
	refs int        // guarded by Library.mu

	// Set once under mu, while the opener holds a reference:
	a     *wim.Archive
	file  fs.File // the WIM in the store (kept open: the archive reads from it)
	ra    io.ReaderAt
	size  int64
	mtime time.Time
}

// baseKey is what a base is opened from: a source key without its injected inputs and
// transcode target.
type baseKey struct{ store, image, ident string }

// openBase returns the opened base of k, opening it on first use, with one reference more for
// the caller (dropBase releases it). A failed open is not remembered.
func (l *Library) openBase(store fs.FS, k baseKey, image string) (*base, error) {
	l.mu.Lock()
	b := l.bases[k]
	if b == nil {
		b = &base{key: k}
		l.bases[k] = b
	}
	b.refs++
	l.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.a == nil {
		if err := b.open(store, image, l.opts.Chunks); err != nil {
			l.mu.Lock()
			l.dropBase(b)
			l.mu.Unlock()
			return nil, err
		}
		l.baseOpens.Add(1)
	}
	return b, nil
}

// dropBase releases one reference to b; the last closes its file. Called with l.mu held.
func (l *Library) dropBase(b *base) {
	b.refs--
	if b.refs > 0 {
		return
	}
	if l.bases[b.key] == b {
		delete(l.bases, b.key)
	}
	if b.file != nil {
		b.file.Close()
	}
}

func (b *base) open(store fs.FS, image string, chunks *wim.Cache) error {
	f, err := store.Open(image)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return fmt.Errorf("the store cannot read it at random offsets")
	}
	var a *wim.Archive
	var parts io.Closer
	if catalog.IsSplitPart(image) {
		// Every part of the set (catalog/split.go); build joins them into one WIM.
		a, parts, err = catalog.OpenSplit(store, image, chunks)
	} else {
		a, err = wim.Open(ra, fi.Size(), &wim.Options{Cache: chunks})
	}
	if err != nil {
		f.Close()
		return err
	}
	if parts != nil {
		f = splitFile{f, parts} // the other parts stay open with the file, and close with it
	}
	b.a, b.file, b.ra, b.size, b.mtime = a, f, ra, fi.Size(), fi.ModTime()
	return nil
}

// build opens the image from store (or finds it opened by another source of the same image)
// and builds what is served from it.
func (s *source) build(store fs.FS) (*opened, error) {
	b, err := s.lib.openBase(store, baseKey{s.key.store, s.key.image, s.key.ident}, s.image)
	if err != nil {
		return nil, err
	}
	o, err := s.buildOn(store, b)
	if err != nil {
		s.lib.mu.Lock()
		s.lib.dropBase(b)
		s.lib.mu.Unlock()
		return nil, err
	}
	return o, nil
}

func (s *source) buildOn(store fs.FS, b *base) (*opened, error) {
	a := b.a
	o := &opened{size: b.size, mtime: b.mtime, built: time.Now(), base: b, served: b.ra, sSize: b.size}
	if err := s.chooseIndex(o, a); err != nil {
		return nil, err
	}
	if err := s.synthesise(o, store, a); err != nil {
		return nil, err
	}
	o.boot = map[firmware.Path]catalog.BootFiles{}
	for _, fw := range []firmware.Path{firmware.BIOS, firmware.UEFI} {
		bf, err := catalog.FindBootFiles(o.sImage, fw)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", o.index, err)
		}
		o.boot[fw] = bf
	}
	if p, ok := o.boot[firmware.UEFI].Files[catalog.RoleBootmgrEX]; ok {
		o.ex2023 = catalog.ReadLoaderSignature(o.sImage, p).Signed2023()
	}
	return o, nil
}

// chooseIndex picks the configured image, or the WIM's WindowsPE image (see
// catalog.File.DefaultPEIndex: the header's boot index when it is WindowsPE, else the last one).
func (s *source) chooseIndex(o *opened, a *wim.Archive) error {
	imgs := a.Images()
	if s.index > 0 {
		if s.index > len(imgs) {
			return fmt.Errorf("no image %d (the WIM has %d)", s.index, len(imgs))
		}
		o.index = s.index
		return nil
	}
	cf := catalog.File{BootIndex: int(a.Header().BootIndex)}
	for _, im := range imgs {
		cf.Images = append(cf.Images, catalog.Image{Index: im.Index, InstallationType: im.InstallationType})
	}
	if i, ok := cf.DefaultPEIndex(); ok {
		o.index = i
		return nil
	}
	if bi := int(a.Header().BootIndex); bi > 0 {
		o.index = bi
		return nil
	}
	if len(imgs) == 1 {
		o.index = 1
		return nil
	}
	return fmt.Errorf("none of its %d images is marked WindowsPE and it has no boot index: set winpe.index", len(imgs))
}

// synthesise decides what is served. The file goes out as it is when boot loaders can read it
// and bootmgr would boot the chosen image (the header's boot index) and nothing is injected;
// otherwise a WIM holding only that image is synthesised (exported, with the injected files,
// transcoded to uncompressed when the source uses a codec boot loaders refuse).
func (s *source) synthesise(o *opened, store fs.FS, a *wim.Archive) error {
	transcode, why := wimsynth.NeedsReencode(a) // a split set is joined without re-encoding
	ov, err := s.overlay(store)
	if err != nil {
		return err
	}
	multi := len(a.Images()) > 1
	split := a.Header().TotalParts > 1
	if !transcode && !split && ov.Len() == 0 && (!multi || o.index == int(a.Header().BootIndex)) {
		img, err := a.Image(o.index)
		if err != nil {
			return err
		}
		o.sImage = img
		// wimboot boots index=N, else the header's boot index; a boot index of 0 (or another
		// image) would leave it without this image's tree and fonts.
		if int(a.Header().BootIndex) != o.index {
			o.wimIdx = o.index
		}
		return nil
	}
	var notes []string
	if split {
		notes = append(notes, fmt.Sprintf("%d split parts joined", a.Header().TotalParts))
	}
	if multi {
		notes = append(notes, fmt.Sprintf("image %d exported", o.index))
	}
	if ov.Len() > 0 {
		notes = append(notes, fmt.Sprintf("%d files injected", ov.Len()))
	}
	// The source tag names the inputs (the image's version and the injected inputs' digest):
	// the synthesised WIM's ETag changes with any of them.
	opts := wimsynth.Options{Index: o.index, Overlay: ov, Name: "boot.wim", Cache: s.lib.opts.Transcode,
		SourceTag: fmt.Sprintf("%d-%d", o.size, o.mtime.UnixNano()) + s.key.ident + s.key.inject}
	if transcode {
		target := wimsynth.TranscodeUncompressed
		if s.transcode == boot.TranscodeXPRESS {
			target = wimsynth.TranscodeXPRESS
		}
		opts.Transcode = target
		notes = append(notes, "transcoded to "+target.String()+": "+why)
	}
	o.note = strings.Join(notes, "; ")
	sf, err := wimsynth.Build(a, opts)
	if err != nil {
		return err
	}
	readBack := func() (*wim.Image, error) {
		sa, err := wim.Open(sf, sf.Size(), &wim.Options{Cache: s.lib.opts.Chunks})
		if err != nil {
			return nil, fmt.Errorf("reading back the synthesised WIM: %w", err)
		}
		img, err := sa.Image(1)
		if err != nil {
			return nil, fmt.Errorf("reading back the synthesised WIM: %w", err)
		}
		return img, nil
	}
	// With injected files, the image served is a view of the source's (shared by its
	// variants) that reads the synthesised one back only for paths they touch.
	var v *variantImage
	if ov.Len() > 0 {
		src, err := a.Image(o.index)
		if err != nil {
			return err
		}
		v = newVariantImage(src, ov.Paths(), readBack)
	}
	if v != nil {
		o.sImage = v
	} else if o.sImage, err = readBack(); err != nil {
		return err
	}
	o.served, o.sSize = sf, sf.Size()
	return nil
}

// overlay reads the injected files: inline content, generated bytes, a store file, or every
// file of a store folder (a driver folder), placed under the injection's path.
func (s *source) overlay(store fs.FS) (*wimsynth.Overlay, error) {
	ov := &wimsynth.Overlay{}
	var total int64
	add := func(dst string, b []byte) error {
		total += int64(len(b))
		if total > maxInjectBytes || ov.Len() >= maxInjectFiles {
			return fmt.Errorf("inject: more than %d MiB or %d files", maxInjectBytes>>20, maxInjectFiles)
		}
		return ov.AddBytes(dst, b)
	}
	for _, in := range s.inject {
		switch {
		case in.Generated:
			if err := add(in.Path, in.Data); err != nil {
				return nil, fmt.Errorf("inject %s (generated): %w", in.Path, err)
			}
			continue
		case in.Inline:
			if err := add(in.Path, []byte(in.Content)); err != nil {
				return nil, fmt.Errorf("inject %s: %w", in.Path, err)
			}
			continue
		}
		name := in.File.String()
		fi, err := fs.Stat(store, name)
		if err != nil {
			return nil, fmt.Errorf("inject %s: %w", in.Path, err)
		}
		if !fi.IsDir() {
			b, err := readBounded(store, name, maxInjectBytes)
			if err == nil {
				err = add(in.Path, b)
			}
			if err != nil {
				return nil, fmt.Errorf("inject %s from %s: %w", in.Path, name, err)
			}
			continue
		}
		err = fs.WalkDir(store, name, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := readBounded(store, p, maxInjectBytes)
			if err != nil {
				return err
			}
			return add(in.Path+"/"+strings.TrimPrefix(p, name+"/"), b)
		})
		if err != nil {
			return nil, fmt.Errorf("inject %s from folder %s: %w", in.Path, name, err)
		}
	}
	return ov, nil
}

func readBounded(fsys fs.FS, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, max)
	}
	return b, nil
}

// servedFile opens the WIM as served.
func (o *opened) servedFile(name string) fs.File {
	mod := o.built
	if o.note == "" {
		mod = o.mtime // the store file itself
	}
	r := io.NewSectionReader(o.served, 0, o.sSize)
	if sf, ok := o.served.(*wimsynth.File); ok {
		// A full read is checked against the source's SHA-1s (wimsynth.Reader).
		r = io.NewSectionReader(sf.NewReader(), 0, o.sSize)
	}
	f := &raFile{name: name, r: r, mod: mod}
	if t, ok := o.served.(interface{ ETag() string }); ok {
		f.etag = t.ETag()
	}
	return f
}

// splitStamp identifies the versions of a split image's parts (every .swm file of its
// folder: a part added or replaced opens the set again); "" for other images.
func splitStamp(store fs.FS, name string) string {
	if !catalog.IsSplitPart(name) {
		return ""
	}
	sibs, err := catalog.SplitSiblings(store, name)
	if err != nil {
		return "unlisted;"
	}
	return ";" + catalog.SplitStamp(sibs)
}

// splitFile is part 1 of a split image, closing every part with it.
type splitFile struct {
	fs.File
	parts io.Closer
}

func (f splitFile) Close() error { return errors.Join(f.File.Close(), f.parts.Close()) }
