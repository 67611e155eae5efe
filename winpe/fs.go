package winpe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/firmware"
)

// raFile is a read-only fs.File over an io.ReaderAt (a synthesised WIM, a generated BCD).
type raFile struct {
	name string
	r    *io.SectionReader
	mod  time.Time
	etag string // strong validator known without reading the bytes ("" = none)

	release   func() // called once by Close (source.counted); nil for generated files
	closeOnce sync.Once
}

func newMemFile(name string, b []byte, mod time.Time) *raFile {
	return &raFile{name: name, r: io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))), mod: mod}
}

func (f *raFile) Stat() (fs.FileInfo, error)                { return raInfo{f}, nil }
func (f *raFile) Read(p []byte) (int, error)                { return f.r.Read(p) }
func (f *raFile) ReadAt(p []byte, off int64) (int, error)   { return f.r.ReadAt(p, off) }
func (f *raFile) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }
func (f *raFile) Close() error {
	if f.release != nil {
		f.closeOnce.Do(f.release)
	}
	return nil
}

// ETag is the file's strong validator when one is known (a synthesised WIM's ETag is a digest
// of its inputs), so HTTP caches revalidate on content, not on build time.
func (f *raFile) ETag() string { return f.etag }

type raInfo struct{ f *raFile }

func (i raInfo) Name() string       { return i.f.name }
func (i raInfo) Size() int64        { return i.f.r.Size() }
func (i raInfo) Mode() fs.FileMode  { return 0o444 }
func (i raInfo) ModTime() time.Time { return i.f.mod }
func (i raInfo) IsDir() bool        { return false }
func (i raInfo) Sys() any           { return nil }

// Tree returns the file tree TFTP and HTTP serve to c: the store with every winpe entry's own
// files under boot.WinPEDir/NAME/, and, when a rule sends c to an entry with a tree of its own
// (boot.Policy.TreeEntry: native WinPE), that tree on top.
func (s *Set) Tree(c boot.Client) (fs.FS, error) {
	base := s.withEntryFiles(s.store)
	te := s.pol.TreeEntry(c)
	if te == nil {
		return base, nil
	}
	fw, ok := c.Firmware.Path()
	if !ok {
		return base, nil
	}
	e, err := s.entry(te.Name)
	if err != nil {
		return nil, err
	}
	src, o, err := e.source()
	if err != nil {
		return nil, fmt.Errorf("winpe %s: %w", te.Name, err)
	}
	return newNativeTree(e, src, o, fw, base), nil
}

// withEntryFiles adds the winpe entries' folders to store.
func (s *Set) withEntryFiles(store fs.FS) fs.FS {
	if len(s.entries) == 0 {
		return store
	}
	return entriesFS{store: store, set: s}
}

// nativeTree is a native WinPE client's tree: the paths bootmgr and pxeboot ask for (any
// case; TFTP has already turned backslashes into slashes) resolve to the entry's image, the
// rest to base.
type nativeTree struct {
	files map[string]func() (fs.File, error) // lower-case path -> opener
	base  fs.FS
}

func newNativeTree(e *entry, s *source, o *opened, fw firmware.Path, base fs.FS) fs.FS {
	t := &nativeTree{files: map[string]func() (fs.File, error){}, base: base}
	img := func(p string) func() (fs.File, error) {
		return func() (fs.File, error) { return s.counted(o.sImage.Open(p)) }
	}
	bf := o.boot[fw]
	if fw == firmware.BIOS {
		// pxeboot.n12 and wdsnbp.com fetch bootmgr.exe from the folder they were loaded from.
		for _, n := range []string{"pxeboot.n12", "pxeboot.com", "wdsnbp.com", "bootmgr.exe"} {
			t.files["boot/"+n] = img("Windows/Boot/PXE/" + n)
		}
		if p, ok := bf.Files[catalog.RoleBootmgr]; ok {
			t.files["boot/bootmgr.exe"] = img(p)
			t.files["bootmgr.exe"] = img(p)
		}
	} else {
		if p, ok := bf.Files[catalog.RoleBootmgr]; ok {
			t.files["boot/bootmgfw.efi"] = img(p)
		}
		if p, ok := bf.Files[catalog.RoleBootmgrEX]; ok {
			t.files["boot/bootmgfw_ex.efi"] = img(p)
		}
		if p, ok := bf.Files[catalog.RoleSTL]; ok {
			t.files["boot/boot.stl"] = img(p)
			t.files["efi/microsoft/boot/boot.stl"] = img(p)
		}
	}
	bcdOpen := func() (fs.File, error) { return e.bcdFile(o, fw, "Boot/BCD") }
	// Windows 8 and later read \Boot\BCD; Windows 7's bootmgfw.efi reads \EFI\Microsoft\Boot\BCD.
	t.files["boot/bcd"] = bcdOpen
	t.files["efi/microsoft/boot/bcd"] = bcdOpen
	if p, ok := bf.Files[catalog.RoleSDI]; ok {
		t.files["boot/boot.sdi"] = img(p)
	}
	for _, p := range bf.Fonts {
		t.files["boot/fonts/"+strings.ToLower(path.Base(p))] = img(p)
		t.files["efi/microsoft/boot/fonts/"+strings.ToLower(path.Base(p))] = img(p)
	}
	t.files["sources/boot.wim"] = func() (fs.File, error) { return s.counted(o.servedFile("boot.wim"), nil) }
	return t
}

func (t *nativeTree) Open(name string) (fs.File, error) {
	if open, ok := t.files[strings.ToLower(name)]; ok && fs.ValidPath(name) {
		return open()
	}
	return t.base.Open(name)
}

// entriesFS adds every winpe entry's folder (WinPEDir/NAME/...) to a store.
type entriesFS struct {
	store fs.FS
	set   *Set
}

func (e entriesFS) Open(name string) (fs.File, error) {
	if rest, ok := cutPrefixFold(name, boot.WinPEDir+"/"); ok && fs.ValidPath(name) {
		n, inner, _ := strings.Cut(rest, "/")
		if _, ok := e.set.entries[strings.ToLower(n)]; ok && inner != "" {
			files, err := e.set.Files(n)
			if err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: errors.Join(fs.ErrNotExist, err)}
			}
			return files.Open(inner)
		}
	}
	return e.store.Open(name)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}
