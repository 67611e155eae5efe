// Package catalog lists the boot images in a pxewim store: every WIM image with its name,
// architecture, installation type (WindowsPE), compression, and the boot files it holds per
// firmware (bootmgr, BCD, boot.sdi, fonts, boot.stl), plus the problems that would keep a
// client from booting it, each with what to do. ISOs are opened too (package iso): the WIMs at
// their root and in sources/ (a Windows or WinPE ISO's sources/boot.wim) are listed as files
// of their own, "win.iso/sources/boot.wim", exactly like bare WIMs.
//
// The store is any io/fs.FS whose files are io.ReaderAt: a local folder (os.DirFS) or a remote
// SFTP store. Scanning reads headers, XML, image metadata and ISO directory trees, never the
// file data of a WIM, and is bounded in files, folders and depth. A Watcher rescans the store
// when files appear, change or disappear, so a WIM dropped into the store boots without a
// restart, and follows the store to a new folder or URL (Retarget).
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
)

// MaxWimbootFile is the largest file wimboot's virtual FAT disk can hold.
const MaxWimbootFile = 4<<30 - 1

// File is one image file of the store and what it holds.
type File struct {
	Path    string // store-relative, slash-separated
	Size    int64
	ModTime time.Time
	Kind    string // "wim", "iso" (and the kinds other scanners set)
	// In is the store path of the ISO holding this WIM ("" for a file of the store itself).
	// Path is then "ISO/inner/path.wim", which the store opens in place.
	In string
	// Compression, ChunkSize and Solid describe how the WIM stores data.
	Compression string
	ChunkSize   uint32
	Solid       bool
	BootIndex   int // header boot index (bootmgr boots this image of a multi-image WIM)
	// Transcode is why wimboot and bootmgr refuse the file as it is ("" if they read it).
	Transcode string
	Images    []Image
	Problems  []Problem
	// Parts are the files of a split WIM set (split.go), by part number: Path is then the
	// path of part 1 (or of the lowest part present), Size their total and ModTime the
	// latest. Nil for any other file.
	Parts []PartFile
	// retry marks a scan cut short by a read error (a dropped connection to a remote store,
	// an I/O error), not by what the file holds: the next poll scans it again even if its
	// size and mtime did not change.
	retry bool
	// cache is Options.Cache while a scanner fills f (ScanWIM and ScanISO decode the WIM's
	// metadata through it); scanListed clears it before the file goes into a Snapshot.
	cache *wim.Cache
}

// Image is one image of a WIM.
type Image struct {
	Index            int
	Name             string
	Description      string
	Arch             int    // XML WINDOWS/ARCH: 0 x86, 9 x64, 12 ARM64; -1 unknown
	ArchName         string // "x64", ...
	InstallationType string // "WindowsPE" for boot images
	Boot             map[Firmware]BootFiles
	// Media lists the boot files that the ISO around the WIM supplies because the image lacks
	// them: image path (as in Boot) -> path inside the ISO. Empty for bare WIMs.
	Media map[string]string
}

// WindowsPE reports whether the image is a Windows PE (boot) image: by installation type, or,
// for WIMs without that XML, by holding a boot manager and boot.sdi.
func (im Image) WindowsPE() bool {
	if im.InstallationType != "" {
		return strings.EqualFold(im.InstallationType, "WindowsPE")
	}
	for _, bf := range im.Boot {
		if len(bf.Missing) == 0 {
			return true
		}
	}
	return false
}

// Problem is something that keeps clients from booting an image, and what to do about it.
type Problem struct {
	File  string // store path
	Index int    // 0 for the whole file
	What  string
	Fix   string
	Info  bool // pxewim works around it; worth knowing, but clients boot
}

func (p Problem) String() string {
	loc := p.File
	if p.Index > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Index)
	}
	return loc + ": " + p.What + ": " + p.Fix
}

// Snapshot is the catalog at one moment. It is immutable.
type Snapshot struct {
	Files []File // sorted by path
	// Read is how many store files the scan that made it read; the others were reused from
	// the previous snapshot (or the saved catalog, Options.Persist) as their size and mtime
	// had not changed.
	Read int
}

// WindowsPE lists every Windows PE image of the store (file, image) in path and index order.
func (s *Snapshot) WindowsPE() []Ref {
	var out []Ref
	for i := range s.Files {
		f := &s.Files[i]
		for _, im := range f.Images {
			if im.WindowsPE() {
				out = append(out, Ref{File: f, Image: im})
			}
		}
	}
	return out
}

// Ref is one image of a file.
type Ref struct {
	File  *File
	Image Image
}

// File returns the entry for a store path (matched without regard to case).
func (s *Snapshot) File(p string) (*File, bool) {
	for i := range s.Files {
		if strings.EqualFold(s.Files[i].Path, p) {
			return &s.Files[i], true
		}
	}
	return nil, false
}

// Problems lists the problems of every file.
func (s *Snapshot) Problems() []Problem {
	var ps []Problem
	for _, f := range s.Files {
		ps = append(ps, f.Problems...)
	}
	return ps
}

// DefaultPEIndex is the image a winpe entry boots when the config names no index: the last
// WindowsPE image (Windows Setup's boot.wim holds "Microsoft Windows PE" as 1 and "Microsoft
// Windows Setup" as 2, both WindowsPE; the header's boot index says 2), preferring the header's
// boot index when that image is WindowsPE.
func (f *File) DefaultPEIndex() (int, bool) {
	best := 0
	for _, im := range f.Images {
		if !im.WindowsPE() {
			continue
		}
		if im.Index == f.BootIndex {
			return im.Index, true
		}
		best = im.Index
	}
	return best, best > 0
}

// Scanner reads one kind of image file: f.Path names it in fsys, and Path, Size and ModTime
// are set. It fills in the rest of f and returns the files found inside it (the WIMs of an
// ISO: paths under f.Path, In set to f.Path), if any. Problems go into f.Problems.
type Scanner func(fsys fs.FS, f *File) []File

// Options configures scanning.
type Options struct {
	// Scanners maps a lower-case extension (".wim") to its scanner; nil means DefaultScanners.
	Scanners map[string]Scanner
	// MaxFiles bounds how many image files one scan reads (0: 10000), so a store folder full
	// of junk cannot make a scan unbounded.
	MaxFiles int
	// MaxDirs bounds how many folders one scan lists (0: 10000): on a remote store each is a
	// round trip, and symbolic links there may loop.
	MaxDirs int
	// Cache is the chunk cache the WIMs opened by a scan decode their metadata through (the
	// daemon's one shared cache); nil gives each opened WIM a private one.
	Cache *wim.Cache
	// Persist is a file where each scan's snapshot is saved and from which a first scan
	// (nothing scanned yet in this process) takes the entries of unchanged files (persist.go);
	// "" saves nothing.
	Persist string
	// Log receives what went wrong with the saved catalog (it is then ignored or not
	// updated, and the store scanned); nil discards it.
	Log *slog.Logger

	paced bool // a background scan (the watcher's): see background
}

func (o *Options) cache() *wim.Cache {
	if o == nil {
		return nil
	}
	return o.Cache
}

// DefaultScanners reads WIMs and ISOs (the WIMs inside them).
func DefaultScanners() map[string]Scanner {
	return map[string]Scanner{".wim": ScanWIM, ".iso": ScanISO}
}

func (o *Options) scanners() map[string]Scanner {
	if o != nil && o.Scanners != nil {
		return o.Scanners
	}
	return DefaultScanners()
}

// Scan reads every image file under the local folder root (recursively, following symbolic
// links to files but not to folders).
func Scan(ctx context.Context, root string, opts *Options) (*Snapshot, error) {
	if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("catalog: scanning %s: %w", root, err)
	}
	return ScanFS(ctx, os.DirFS(root), root, opts)
}

// ScanFS reads every image file of fsys, a store whose files are io.ReaderAt (a local folder,
// a remote SFTP store). label names the store in errors.
func ScanFS(ctx context.Context, fsys fs.FS, label string, opts *Options) (*Snapshot, error) {
	return scanWith(ctx, fsys, label, opts, nil)
}

// scanWith scans fsys, reusing prev's entries (a file and the files inside it) for every file
// whose size and mtime are unchanged.
func scanWith(ctx context.Context, fsys fs.FS, label string, opts *Options, prev *Snapshot) (*Snapshot, error) {
	found, err := list(ctx, fsys, label, opts)
	if err != nil {
		return nil, err
	}
	if prev == nil {
		prev = opts.loadPersisted(label)
	}
	snap, err := scanListed(ctx, fsys, opts, found, prev)
	if err == nil {
		opts.persist(label, snap)
	}
	return snap, err
}

// loadPersisted is the saved catalog of label, or nil.
func (o *Options) loadPersisted(label string) *Snapshot {
	if o == nil || o.Persist == "" {
		return nil
	}
	snap, err := loadPersisted(o.Persist, label)
	if err != nil && o.Log != nil {
		o.Log.Warn("catalog: the saved catalog is not used; the store is scanned", "error", err)
	}
	return snap
}

// persist saves snap for label when Options.Persist is set.
func (o *Options) persist(label string, snap *Snapshot) {
	if o == nil || o.Persist == "" {
		return
	}
	if err := savePersisted(o.Persist, label, snap); err != nil && o.Log != nil {
		o.Log.Warn("catalog: cannot save the catalog; the next start scans the store again", "error", err)
	}
}

// scanListed reads the listed store files (sorted, as list returns them).
func scanListed(ctx context.Context, fsys fs.FS, opts *Options, found []File, prev *Snapshot) (*Snapshot, error) {
	old := map[string][]File{} // store path -> the file, then the files inside it
	if prev != nil {
		for _, f := range prev.Files {
			key := f.Path
			if f.In != "" {
				key = f.In
			}
			old[key] = append(old[key], f)
		}
	}
	sc := opts.scanners()
	found, sets, bad := splitFound(fsys, found, sc) // split.go: .swm files grouped into sets
	// Files are read a few at a time: on a remote store each read is a round trip, and
	// overlapping them hides most of the latency.
	results := make([][]File, len(found))
	read := 0
	workers := scanWorkers
	if opts.background() {
		workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, fe := range found {
		if o := old[fe.Path]; len(o) > 0 && o[0].In == "" && !o[0].retry && o[0].Size == fe.Size && o[0].ModTime.Equal(fe.ModTime) {
			results[i] = o
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		read++
		wg.Go(func() {
			defer func() { <-sem }()
			start := time.Now()
			f := fe
			f.cache = opts.cache()
			inner := sc[strings.ToLower(path.Ext(f.Path))](fsys, &f)
			f.cache = nil
			results[i] = append([]File{f}, inner...)
			if opts.background() {
				pause(ctx, time.Since(start)) // keeps the worker's slot: half its time idle
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	results = append(results, scanSets(ctx, fsys, sets, bad, old, opts.cache())...) // split.go
	snap := &Snapshot{Read: read}
	for _, r := range results {
		snap.Files = append(snap.Files, r...)
	}
	slices.SortStableFunc(snap.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return snap, nil
}

// scanWorkers is how many files one scan reads at once.
const scanWorkers = 4

// A background scan (the watcher's polls and rescans, while the daemon serves) leaves the CPU
// to requests: it reads with half as many workers as there are cores (at least one), and each
// worker, after reading a file, rests as long as the read took (at most maxPause), so a scan
// takes at most a quarter of the machine: DHCP, TFTP and HTTP requests during a rescan of a
// 2,000-WIM store keep their latency (bench/bigstore.sh). The first scan, before the daemon
// serves, runs at full speed.
const maxPause = 2 * time.Second

func (o *Options) background() bool { return o != nil && o.paced }

// pause sleeps for d (at most maxPause) or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(min(d, maxPause))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// storeFiles are the files of the store itself (not those inside ISOs), as list returns them:
// a split set stands for the files of its parts.
func (s *Snapshot) storeFiles() []File {
	var out []File
	split := false
	for _, f := range s.Files {
		switch {
		case f.In != "":
		case f.Parts != nil:
			split = true
			for _, p := range f.Parts {
				out = append(out, File{Path: p.Path, Size: p.Size, ModTime: p.ModTime})
			}
		default:
			out = append(out, f)
		}
	}
	if split {
		slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	}
	return out
}

// needsRetry reports whether a file's last scan was cut short by a read error.
func (s *Snapshot) needsRetry() bool {
	for _, f := range s.Files {
		if f.retry {
			return true
		}
	}
	return false
}

// openReaderAt opens f.Path in fsys as an io.ReaderAt that notes read errors (see done).
// A failed open marks f for a retry, unless the file is gone or forbidden (those wait for
// the file to change).
func openReaderAt(fsys fs.FS, f *File) (fs.File, *readNoter, error) {
	file, err := fsys.Open(f.Path)
	if err != nil {
		f.retry = !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission)
		return nil, nil, err
	}
	ra, ok := file.(io.ReaderAt)
	if !ok {
		file.Close()
		return nil, nil, fmt.Errorf("the store cannot read %s at random offsets", f.Path)
	}
	return file, &readNoter{r: ra}, nil
}

// readNoter is an io.ReaderAt that notes reads failing for another reason than the end of
// the file (the wim package may read from several goroutines).
type readNoter struct {
	r      io.ReaderAt
	failed atomic.Bool
}

func (n *readNoter) ReadAt(p []byte, off int64) (int, error) {
	k, err := n.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		n.failed.Store(true)
	}
	return k, err
}

// done marks f for a retry if a read failed.
func (n *readNoter) done(f *File) {
	if n.failed.Load() {
		f.retry = true
	}
}

// ScanWIM fills f from the WIM file f.Path of fsys: header facts, images, boot files,
// problems. It reads the header, blob table, XML and the metadata of WindowsPE images only,
// decoding through the scan's Options.Cache.
func ScanWIM(fsys fs.FS, f *File) []File {
	f.Kind = "wim"
	file, ra, err := openReaderAt(fsys, f)
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: f.Path, What: "unreadable WIM: " + err.Error(),
			Fix: "check the file's permissions; copy it again"})
		return nil
	}
	defer file.Close()
	scanWIMAt(ra, f, nil, f.cache)
	ra.done(f)
	return nil
}

// scanWIMAt fills f from the WIM in ra (f.Size bytes), decoding through cache (nil: a
// private one, dropped with the archive). media, when not nil, is the ISO holding the WIM:
// its boot folders stand in for boot files the images lack (media.go).
func scanWIMAt(ra io.ReaderAt, f *File, media fs.FS, cache *wim.Cache) {
	f.Kind = "wim"
	rc, err := wim.Open(ra, f.Size, &wim.Options{Cache: cache})
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: f.Path, What: "unreadable WIM: " + err.Error(),
			Fix: "check the file (pxewim wim verify " + f.Path + "); copy it again if it was cut short"})
		return
	}
	scanArchive(rc, f, media)
}

// scanArchive fills f from an opened WIM (or split set).
func scanArchive(rc *wim.Archive, f *File, media fs.FS) {
	h := rc.Header()
	f.Compression, f.ChunkSize, f.BootIndex = h.Compression.String(), h.ChunkSize, int(h.BootIndex)
	for bi := range rc.Blobs() {
		if bi.Solid {
			f.Solid = true
			f.Compression = bi.Compression.String()
			break
		}
	}
	if h.TotalParts > 1 {
		f.Transcode = splitNote(f, h) // split.go
	}
	if need, why := wimsynth.NeedsReencode(rc); need {
		f.Transcode = why
		f.Problems = append(f.Problems, Problem{File: f.Path, What: why, Info: true,
			Fix: "pxewim serves an uncompressed copy synthesised on the fly (more bytes on the wire, CPU to decode); " +
				"to avoid that, re-export it: wimlib-imagex export " + f.Path + " all new.wim --compress=LZX --chunk-size=32K"})
	}
	if f.Size > MaxWimbootFile {
		f.Problems = append(f.Problems, Problem{File: f.Path, What: fmt.Sprintf("%d bytes: over wimboot's 4 GiB file limit", f.Size),
			Fix: "export only the image you boot (wimlib-imagex export SRC INDEX small.wim), or boot it natively over TFTP"})
	}
	for _, info := range rc.Images() {
		f.Images = append(f.Images, scanImage(rc, info, f, media))
	}
}

// scanImage records one image and the problems of its boot files.
func scanImage(a *wim.Archive, info wim.ImageInfo, f *File, media fs.FS) Image {
	im := Image{Index: info.Index, Name: info.Name, Description: info.Description, Arch: info.Arch,
		ArchName: wim.ArchName(info.Arch), InstallationType: info.InstallationType, Boot: map[Firmware]BootFiles{}}
	if im.InstallationType != "" && !im.WindowsPE() {
		// An install image (Client, Server): no boot files to find, and loading its metadata
		// (tens of MB for a full Windows) would slow every scan.
		return im
	}
	img, err := a.Image(info.Index)
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: f.Path, Index: info.Index, What: "unreadable image: " + err.Error(),
			Fix: "check the file with pxewim wim verify; re-export or copy it again"})
		return im
	}
	from := map[string]string{}
	for _, fw := range []Firmware{BIOS, UEFI} {
		bf, err := findWithMedia(img, media, fw, from)
		if err != nil {
			f.Problems = append(f.Problems, Problem{File: f.Path, Index: info.Index, What: "reading boot files: " + err.Error(),
				Fix: "check the file with pxewim wim verify"})
			continue
		}
		im.Boot[fw] = bf
	}
	if len(from) > 0 {
		im.Media = from
	}
	if !im.WindowsPE() {
		return im // images without boot files and without XML type: nothing to complain about
	}
	if len(from) > 0 {
		f.Problems = append(f.Problems, mediaProblem(f.Path, info.Index, from))
	}
	for _, fw := range []Firmware{BIOS, UEFI} {
		for _, r := range im.Boot[fw].Missing {
			f.Problems = append(f.Problems, missingProblem(f.Path, info.Index, fw, r))
		}
	}
	return im
}

func missingProblem(file string, index int, fw Firmware, r Role) Problem {
	p := Problem{File: file, Index: index,
		What: fmt.Sprintf("%s clients cannot boot it: no %s (looked for %s)", fw, r, strings.Join(Candidates(fw, r), ", "))}
	switch r {
	case RoleBootmgr:
		p.Fix = fmt.Sprintf("inject the file from a Windows ADK or install media (winpe inject: {path: %s, file: ...}); or boot these clients with the other firmware", Candidates(fw, r)[0])
	case RoleSDI:
		p.Fix = "inject boot.sdi from the Windows ADK (Media\\Boot\\boot.sdi) at " + Candidates(fw, r)[0]
	default:
		p.Fix = "inject it at " + Candidates(fw, r)[0]
	}
	return p
}
