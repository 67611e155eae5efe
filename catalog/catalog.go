// Package catalog lists the boot images in a pxewim store: every WIM image with its name,
// architecture, installation type (WindowsPE), compression, and the boot files it holds per
// firmware (bootmgr, BCD, boot.sdi, fonts, boot.stl), plus the problems that would keep a
// client from booting it, each with what to do. A Watcher rescans the store when files appear,
// change or disappear, so a WIM dropped into the store boots without a restart.
package catalog

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	Kind    string // "wim" (later "iso")
	// Compression, ChunkSize and Solid describe how the WIM stores data.
	Compression string
	ChunkSize   uint32
	Solid       bool
	BootIndex   int // header boot index (bootmgr boots this image of a multi-image WIM)
	// Transcode is why wimboot and bootmgr refuse the file as it is ("" if they read it).
	Transcode string
	Images    []Image
	Problems  []Problem
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

// Scanner reads one kind of image file. The catalog ships a WIM scanner; the seam is for ISO
// files (package iso), which will list the WIMs inside them.
type Scanner func(fsPath string, f *File)

// Options configures scanning.
type Options struct {
	// Scanners maps a lower-case extension (".wim") to its scanner; nil means WIMs only.
	Scanners map[string]Scanner
	// MaxFiles bounds how many image files one scan reads (0: 10000), so a store folder full
	// of junk cannot make a scan unbounded.
	MaxFiles int
}

func (o *Options) scanners() map[string]Scanner {
	if o != nil && o.Scanners != nil {
		return o.Scanners
	}
	return map[string]Scanner{".wim": ScanWIM}
}

// stamp identifies one version of a file on disk.
type stamp struct {
	size  int64
	mtime time.Time
}

// Scan reads every image file under root (recursively, following no symlinked folders).
func Scan(ctx context.Context, root string, opts *Options) (*Snapshot, error) {
	return scanWith(ctx, root, opts, nil)
}

// scanWith scans root, reusing prev's entry for every file whose size and mtime are unchanged.
func scanWith(ctx context.Context, root string, opts *Options, prev map[string]File) (*Snapshot, error) {
	found, err := list(root, opts)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{}
	sc := opts.scanners()
	for _, fe := range found {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if old, ok := prev[fe.Path]; ok && old.Size == fe.Size && old.ModTime.Equal(fe.ModTime) {
			snap.Files = append(snap.Files, old)
			continue
		}
		f := fe
		sc[strings.ToLower(filepath.Ext(f.Path))](filepath.Join(root, filepath.FromSlash(f.Path)), &f)
		snap.Files = append(snap.Files, f)
	}
	return snap, nil
}

// list finds the image files under root with their size and mtime, sorted by path.
func list(root string, opts *Options) ([]File, error) {
	sc := opts.scanners()
	max := 10000
	if opts != nil && opts.MaxFiles > 0 {
		max = opts.MaxFiles
	}
	var out []File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // an unreadable subfolder: skip it, keep the rest
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if _, ok := sc[strings.ToLower(filepath.Ext(p))]; !ok {
			return nil
		}
		fi, err := os.Stat(p) // follows a symlinked file
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		if len(out) >= max {
			return fmt.Errorf("more than %d image files under %s", max, root)
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, File{Path: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: scanning %s: %w", root, err)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// ScanWIM fills f from the WIM file at fsPath: header facts, images, boot files, problems.
func ScanWIM(fsPath string, f *File) {
	f.Kind = "wim"
	rc, err := wim.OpenFile(fsPath, nil)
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: f.Path, What: "unreadable WIM: " + err.Error(),
			Fix: "check the file (pxewim wim verify " + f.Path + "); copy it again if it was cut short"})
		return
	}
	defer rc.Close()
	h := rc.Header()
	f.Compression, f.ChunkSize, f.BootIndex = h.Compression.String(), h.ChunkSize, int(h.BootIndex)
	for bi := range rc.Blobs() {
		if bi.Solid {
			f.Solid = true
			f.Compression = bi.Compression.String()
			break
		}
	}
	if need, why := wimsynth.NeedsTranscode(rc.Archive); need {
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
		f.Images = append(f.Images, scanImage(rc.Archive, info, f))
	}
}

// scanImage records one image and the problems of its boot files.
func scanImage(a *wim.Archive, info wim.ImageInfo, f *File) Image {
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
	for _, fw := range []Firmware{BIOS, UEFI} {
		bf, err := FindBootFiles(img, fw)
		if err != nil {
			f.Problems = append(f.Problems, Problem{File: f.Path, Index: info.Index, What: "reading boot files: " + err.Error(),
				Fix: "check the file with pxewim wim verify"})
			continue
		}
		im.Boot[fw] = bf
	}
	if !im.WindowsPE() {
		return im // images without boot files and without XML type: nothing to complain about
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
