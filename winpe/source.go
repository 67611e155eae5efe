package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/pxewim/pxewim/bcd"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
)

// Limits on what an entry reads into memory.
const (
	maxBCDBytes    = 16 << 20  // a BCD hive read from an image
	maxInjectBytes = 256 << 20 // one injected file or folder, in total
	maxInjectFiles = 4096
)

// peSource is one version of an entry's WIM opened, with what is served from it. It is built
// once per version of the file (size and mtime) and shared by every client of the entry.
type peSource struct {
	w     *WinPEBoot
	size  int64
	mtime time.Time
	// built is when this source was opened: the Last-Modified of what is synthesised from it
	// (served WIM, BCDs). HTTP's validator is derived from path, size and mtime, and an edit of
	// an injected file or of the config can keep the size; a new build must never share the
	// old one's validator.
	built   time.Time
	stamp   string  // sizes and mtimes of the injected store files when built
	file    fs.File // the WIM in the store (kept open: the archive reads from it)
	index   int     // image in the source WIM
	note    string  // why the served WIM differs from the file ("" = the file as is)
	served  io.ReaderAt
	sSize   int64
	sImage  *wim.Image // the image as served (index 1 of a synthesised WIM)
	wimIdx  int        // wimboot index= argument, 0 when the served WIM's boot index is the image
	boot    map[catalog.Firmware]catalog.BootFiles
	bcdOnce [2]sync.Once
	bcds    [2][]byte
	bcdErrs [2]error

	// The file is closed once the source is retired (a newer version replaced it, or the
	// policy was retired) and the last file opened from it is closed: transfers in progress
	// finish on the bytes they started with, and nothing stays open after them (a retired SFTP
	// connection closes with its last file).
	lifeMu  sync.Mutex
	refs    int  // files opened from the source and not closed yet
	retired bool // no entry hands it out any more
	closed  bool
}

// fileIdentity is a store file's size and modification time as the catalog saw them.
type fileIdentity struct {
	size  int64
	mtime time.Time
}

// errRetired is what a file of a retired, closed source gets: a reload or catalog change
// replaced it between the request's look-up and its open (a client retry gets the new one).
var errRetired = errors.New("the image was replaced by a reload or a store change: try again")

// acquire counts a file opened from the source; false when the source is already closed.
func (s *peSource) acquire() bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return false
	}
	s.refs++
	return true
}

// release is a file's Close.
func (s *peSource) release() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.refs--
	s.maybeClose()
}

// retire: no entry hands the source out any more; it closes with its last file.
func (s *peSource) retire() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.retired = true
	s.maybeClose()
}

func (s *peSource) maybeClose() {
	if s.retired && s.refs == 0 && !s.closed {
		s.closed = true
		s.file.Close()
	}
}

// counted wraps a file opened from the source so that its Close releases the source. A WIM
// file keeps every method of *wim.File (ReaderAt, Seeker, Hash and the rest) by embedding.
func (s *peSource) counted(f fs.File, err error) (fs.File, error) {
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
	s    *peSource
	once sync.Once
}

func (f *countedWIMFile) Close() error {
	err := f.File.Close()
	f.once.Do(f.s.release)
	return err
}

// Retire is called when the policy holding the entry is replaced: its opened image closes
// once the transfers reading it finish, and the entry opens nothing more.
func (w *WinPEBoot) Retire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retired = true
	if w.src != nil {
		w.src.retire()
		w.src = nil
	}
}

// AttachSnapshot tells the entry its image's size and mtime as the catalog last saw them:
// while they hold, a request costs no look-up in the store (on an sftp:// store each stat is a
// network round trip). A catalog change builds a new policy, so the entry never outlives
// them. Entries whose image the snapshot lacks, or that inject store files, still stat.
func (w *WinPEBoot) AttachSnapshot(size int64, mtime time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.known = &fileIdentity{size: size, mtime: mtime}
}

// AttachCaches gives the entry the daemon's decoded-chunk cache (every WIM the entry opens, the
// source and the synthesised one read back, uses it) and its chunk cache for XPRESS transcodes,
// so the compression pass survives reloads and is shared by variants of one image.
func (w *WinPEBoot) AttachCaches(chunks *wim.Cache, transcode *wimsynth.ChunkCache) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.chunks = chunks
	w.cache = transcode
}

// AttachStore gives the entry the store it opens its image from (Policy.AttachStore calls it).
func (w *WinPEBoot) AttachStore(store fs.FS) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.store = store
}

// source returns the opened image, opening it again when the file changed.
func (w *WinPEBoot) source(store fs.FS) (*peSource, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// The image is always opened from the attached store, never from the tree a caller
	// passes: a client's tree maps sources/boot.wim (and other image paths) to this entry's
	// own served output, and opening that would synthesise the source from its own output.
	if w.store != nil {
		store = w.store
	}
	if store == nil {
		return nil, fmt.Errorf("winpe %s: no store attached", w.name)
	}
	if w.retired {
		return nil, fmt.Errorf("winpe %s: %w", w.name, errRetired)
	}
	var size int64
	var mtime time.Time
	if w.known != nil && !w.injectsStoreFiles() {
		size, mtime = w.known.size, w.known.mtime
	} else {
		fi, err := fs.Stat(store, w.Image)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", w.Image, err)
		}
		size, mtime = fi.Size(), fi.ModTime()
	}
	stamp := w.injectStamp(store) + splitStamp(store, w.Image)
	if s := w.src; s != nil && s.size == size && s.mtime.Equal(mtime) && s.stamp == stamp {
		return s, nil
	}
	s, err := w.open(store)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", w.Image, err)
	}
	s.stamp = stamp
	if w.known != nil && (s.size != w.known.size || !s.mtime.Equal(w.known.mtime)) {
		// The file changed since the catalog saw it: stat from now on, until the catalog's
		// next snapshot (a new policy) catches up.
		w.known = nil
	}
	// The previous version closes once the transfers still reading it finish.
	if w.src != nil {
		w.src.retire()
	}
	w.src = s
	return s, nil
}

func (w *WinPEBoot) open(store fs.FS) (*peSource, error) {
	f, err := store.Open(w.Image)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("the store cannot read it at random offsets")
	}
	var a *wim.Archive
	var parts io.Closer
	if catalog.IsSplitPart(w.Image) {
		// Every part of the set (catalog/split.go); build joins them into one WIM.
		a, parts, err = catalog.OpenSplit(store, w.Image, w.chunks)
	} else {
		a, err = wim.Open(ra, fi.Size(), &wim.Options{Cache: w.chunks})
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if parts != nil {
		f = splitFile{f, parts} // the other parts stay open with the file, and close with it
	}
	s := &peSource{w: w, size: fi.Size(), mtime: fi.ModTime(), built: time.Now(), file: f, served: ra, sSize: fi.Size()}
	if err := s.chooseIndex(a); err != nil {
		f.Close()
		return nil, err
	}
	if err := s.build(store, a); err != nil {
		f.Close()
		return nil, err
	}
	s.boot = map[catalog.Firmware]catalog.BootFiles{}
	for _, fw := range []catalog.Firmware{catalog.BIOS, catalog.UEFI} {
		bf, err := catalog.FindBootFiles(s.sImage, fw)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("image %d: %w", s.index, err)
		}
		s.boot[fw] = bf
	}
	return s, nil
}

// injectStamp identifies the versions of the injected store files, so that editing one
// rebuilds the served WIM. A folder counts by its own mtime (files added or removed), not by
// its contents: after editing a file inside a driver folder, touch the folder.
// injectsStoreFiles reports whether the entry injects files from the store (their sizes and
// mtimes are part of what is built, so each request looks them up).
func (w *WinPEBoot) injectsStoreFiles() bool {
	for _, in := range w.Inject {
		if !in.Inline {
			return true
		}
	}
	return false
}

func (w *WinPEBoot) injectStamp(store fs.FS) string {
	var b strings.Builder
	for _, in := range w.Inject {
		if in.Inline {
			continue
		}
		if fi, err := fs.Stat(store, in.File.String()); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("missing;")
		}
	}
	return b.String()
}

// chooseIndex picks the configured image, or the WIM's WindowsPE image (see
// catalog.File.DefaultPEIndex: the header's boot index when it is WindowsPE, else the last one).
func (s *peSource) chooseIndex(a *wim.Archive) error {
	imgs := a.Images()
	if s.w.Index > 0 {
		if s.w.Index > len(imgs) {
			return fmt.Errorf("no image %d (the WIM has %d)", s.w.Index, len(imgs))
		}
		s.index = s.w.Index
		return nil
	}
	cf := catalog.File{BootIndex: int(a.Header().BootIndex)}
	for _, im := range imgs {
		cf.Images = append(cf.Images, catalog.Image{Index: im.Index, InstallationType: im.InstallationType})
	}
	if i, ok := cf.DefaultPEIndex(); ok {
		s.index = i
		return nil
	}
	if bi := int(a.Header().BootIndex); bi > 0 {
		s.index = bi
		return nil
	}
	if len(imgs) == 1 {
		s.index = 1
		return nil
	}
	return fmt.Errorf("none of its %d images is marked WindowsPE and it has no boot index: set winpe.index", len(imgs))
}

// build decides what is served. The file goes out as it is when boot loaders can read it and
// bootmgr would boot the chosen image (the header's boot index) and nothing is injected;
// otherwise a WIM holding only that image is synthesised (exported, with the injected files,
// transcoded to uncompressed when the source uses a codec boot loaders refuse).
func (s *peSource) build(store fs.FS, a *wim.Archive) error {
	transcode, why := wimsynth.NeedsReencode(a) // a split set is joined without re-encoding
	ov, err := s.w.overlay(store)
	if err != nil {
		return err
	}
	multi := len(a.Images()) > 1
	split := a.Header().TotalParts > 1
	if !transcode && !split && ov.Len() == 0 && (!multi || s.index == int(a.Header().BootIndex)) {
		img, err := a.Image(s.index)
		if err != nil {
			return err
		}
		s.sImage = img
		// wimboot boots index=N, else the header's boot index; a boot index of 0 (or another
		// image) would leave it without this image's tree and fonts.
		if int(a.Header().BootIndex) != s.index {
			s.wimIdx = s.index
		}
		return nil
	}
	var notes []string
	if split {
		notes = append(notes, fmt.Sprintf("%d split parts joined", a.Header().TotalParts))
	}
	if multi {
		notes = append(notes, fmt.Sprintf("image %d exported", s.index))
	}
	if ov.Len() > 0 {
		notes = append(notes, fmt.Sprintf("%d files injected", ov.Len()))
	}
	opts := wimsynth.Options{Index: s.index, Overlay: ov, Name: "boot.wim", Cache: s.w.cache,
		SourceTag: fmt.Sprintf("%d-%d", s.size, s.mtime.UnixNano()) + splitStamp(store, s.w.Image)}
	if transcode {
		target := wimsynth.TranscodeUncompressed
		if s.w.Transcode == TranscodeXPRESS {
			target = wimsynth.TranscodeXPRESS
		}
		opts.Transcode = target
		notes = append(notes, "transcoded to "+target.String()+": "+why)
	}
	s.note = strings.Join(notes, "; ")
	sf, err := wimsynth.Build(a, opts)
	if err != nil {
		return err
	}
	sa, err := wim.Open(sf, sf.Size(), &wim.Options{Cache: s.w.chunks})
	if err != nil {
		return fmt.Errorf("reading back the synthesised WIM: %w", err)
	}
	if s.sImage, err = sa.Image(1); err != nil {
		return fmt.Errorf("reading back the synthesised WIM: %w", err)
	}
	s.served, s.sSize = sf, sf.Size()
	return nil
}

// overlay reads the injected files: inline content, a store file, or every file of a store
// folder (a driver folder), placed under the injection's path.
func (w *WinPEBoot) overlay(store fs.FS) (*wimsynth.Overlay, error) {
	ov := &wimsynth.Overlay{}
	var total int64
	add := func(dst string, b []byte) error {
		total += int64(len(b))
		if total > maxInjectBytes || ov.Len() >= maxInjectFiles {
			return fmt.Errorf("inject: more than %d MiB or %d files", maxInjectBytes>>20, maxInjectFiles)
		}
		return ov.AddBytes(dst, b)
	}
	for _, in := range w.Inject {
		if in.Inline {
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

// imagePath is where a file of the served image appears in every client's tree.
func (s *peSource) imagePath(p string) string { return s.w.dir() + "/image/" + p }

// bcdPath is where the BCD for fw appears in every client's tree (after checking it exists).
func (s *peSource) bcdPath(fw catalog.Firmware) (string, error) {
	if _, err := s.bcd(fw); err != nil {
		return "", err
	}
	return s.w.dir() + "/" + strings.ToLower(fw.String()) + "/BCD", nil
}

// bcd returns the BCD served to fw clients: the image's media BCD (it points at
// [boot]\sources\boot.wim and \boot\boot.sdi, exactly the paths this tree serves) when the
// entry allows and the image has one, else a generated ramdisk BCD with the entry's TFTP
// block and window sizes.
func (s *peSource) bcd(fw catalog.Firmware) ([]byte, error) {
	i := int(fw)
	s.bcdOnce[i].Do(func() { s.bcds[i], s.bcdErrs[i] = s.makeBCD(fw) })
	return s.bcds[i], s.bcdErrs[i]
}

func (s *peSource) makeBCD(fw catalog.Firmware) ([]byte, error) {
	p, has := s.boot[fw].Files[catalog.RoleBCD]
	mode := s.w.BCD
	tuned := s.w.BlockSize != 0 || s.w.WindowSize != 0
	if mode == BCDImage || (mode == BCDAuto && has && !tuned) {
		if !has {
			return nil, fmt.Errorf("bcd: image: the image has no %s BCD (%s); use bcd: generate", fw, strings.Join(catalog.Candidates(fw, catalog.RoleBCD), ", "))
		}
		return readBounded(s.sImage, p, maxBCDBytes)
	}
	cfg := bcd.RamdiskBoot{Firmware: bcd.BIOS, WIMPath: `\sources\boot.wim`, SDIPath: `\Boot\boot.sdi`,
		TFTPBlockSize: s.w.BlockSize, TFTPWindowSize: s.w.WindowSize, Description: "Windows PE (pxewim " + s.w.name + ")"}
	if fw == catalog.UEFI {
		cfg.Firmware = bcd.UEFI
	}
	var b bytes.Buffer
	if err := bcd.WriteRamdiskBCD(&b, cfg); err != nil {
		return nil, fmt.Errorf("generating the %s BCD: %w", fw, err)
	}
	return b.Bytes(), nil
}

// entryFS serves the entry's folder: boot.wim, bios/BCD, uefi/BCD, image/...
func (s *peSource) entryFS() fs.FS { return entryFS{s} }

type entryFS struct{ s *peSource }

func (e entryFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	lower := strings.ToLower(name)
	switch {
	case lower == "boot.wim":
		return e.s.counted(e.s.servedFile("boot.wim"), nil)
	case lower == "bios/bcd" || lower == "uefi/bcd":
		fw := catalog.BIOS
		if lower[0] == 'u' {
			fw = catalog.UEFI
		}
		b, err := e.s.bcd(fw)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: errors.Join(fs.ErrNotExist, err)}
		}
		return newMemFile("BCD", b, e.s.built), nil
	case strings.HasPrefix(lower, "image/"):
		return e.s.counted(e.s.sImage.Open(name[len("image/"):]))
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// servedFile opens the WIM as served.
func (s *peSource) servedFile(name string) fs.File {
	mod := s.built
	if s.note == "" {
		mod = s.mtime // the store file itself
	}
	r := io.NewSectionReader(s.served, 0, s.sSize)
	if sf, ok := s.served.(*wimsynth.File); ok {
		// A full read is checked against the source's SHA-1s (wimsynth.Reader).
		r = io.NewSectionReader(sf.NewReader(), 0, s.sSize)
	}
	f := &raFile{name: name, r: r, mod: mod}
	if t, ok := s.served.(interface{ ETag() string }); ok {
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
	return catalog.SplitStamp(sibs)
}

// splitFile is part 1 of a split image, closing every part with it.
type splitFile struct {
	fs.File
	parts io.Closer
}

func (f splitFile) Close() error { return errors.Join(f.File.Close(), f.parts.Close()) }
