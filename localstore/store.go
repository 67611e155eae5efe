// Package localstore is pxewim's local store: a folder of WIM images and loose files seen as one
// read-only io/fs.FS, plus the iPXE binaries folder mapped in under "ipxe/".
//
// Names are fs.ValidPath paths, looked up without regard to case (Windows clients ask for
// \Boot\BCD when the file is boot/bcd). A path element "FILE.wim:N" enters image N (from 1) of
// that WIM, so "tools.wim:1/boot/vmlinuz" is a file inside an image; such files carry the
// stream's SHA-1 (Hash) for content-addressed URLs. An ISO is a folder too (iso.go):
// "win.iso/sources/boot.wim:1/Windows/Boot/PXE/bootmgr.exe" reads inside the ISO's WIM in
// place. Opened WIMs and ISO directory trees are kept open (bounded, least recently used
// first) and reopened when the file on disk changes; they are opened outside the store's lock,
// once per file however many requests ask at the same time, and all WIMs share one
// decoded-chunk cache. Nothing outside the two folders can be named: ".." and absolute paths
// are not valid fs paths. Symbolic links the admin put inside the folders are followed.
package localstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pxewim/pxewim/blobcache"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/storepath"
	"github.com/pxewim/pxewim/wim"
)

// IPXEPrefix is the top-level folder under which the iPXE binaries appear.
const IPXEPrefix = "ipxe"

// SyslinuxPrefix is the top-level folder under which syslinux's files (memdisk) appear.
const SyslinuxPrefix = "syslinux"

// Options configures a Store.
type Options struct {
	// IPXEDir is the folder of iPXE binaries shown as "ipxe/"; "" maps nothing.
	IPXEDir string
	// SyslinuxDir is the folder holding memdisk, shown as "syslinux/"; "" maps nothing.
	SyslinuxDir string
	// Cache is the decoded-chunk cache shared by all WIMs; nil makes a 64 MiB one.
	Cache *wim.Cache
	// MaxOpenWIMs bounds the WIM files kept open; 0 means 64.
	MaxOpenWIMs int
	// CheckISOWIM, when set, is called before any byte of a WIM (or ESD) inside an ISO is
	// served or read as a WIM: name is its store path ("win.iso/sources/boot.wim"), version
	// identifies the ISO file it lies in (it changes when the ISO does), r and size are the
	// WIM's bytes. An error refuses the open. A remote store verifies the WIM's blob SHA-1s
	// here, as it does for bare WIMs when they are opened.
	CheckISOWIM func(name, version string, r io.ReaderAt, size int64) error
	// ISOWIMVerdict, when set, gives the verdict on a WIM or ESD file inside an ISO without
	// waiting for it (a local store: verified in the background, as Verifier does bare WIMs):
	// name and version as for CheckISOWIM; open returns the WIM's bytes (pinned to that
	// version of the ISO until done is called) for a verification that outlives the request.
	// The WIM file served whole carries the verdict (httpboot.Verdicter: the last byte waits
	// for it), and so do the files of its images (ranges wait for it).
	ISOWIMVerdict func(name, version string, open func() (r io.ReaderAt, size int64, done func(), err error)) wim.Verdict
	// Verifier, when set, verifies the store's WIM files in the background and guards every
	// WIM file the store opens (verify.go): a WIM written in place is noticed, a damaged one
	// is refused, and files tell servers whether their WIM is verified yet. Local folders only
	// (New); nil serves WIMs as they are.
	Verifier *Verifier
	// Blobs, when set, serves files inside WIMs from decoded copies on disk once they are
	// hot or were read in full (blobcache.go); nil reads them from the WIMs always.
	Blobs *blobcache.Cache
}

// Store is a read-only fs.FS over a folder; see the package doc. Safe for concurrent use.
type Store struct {
	root       string
	rootFS     fs.FS
	ipxeFS     fs.FS // nil when no iPXE folder
	sysFS      fs.FS // nil when no syslinux folder
	cache      *wim.Cache
	maxOpen    int
	check      func(name, version string, r io.ReaderAt, size int64) error                             // Options.CheckISOWIM
	isoVerdict func(name, version string, open func() (io.ReaderAt, int64, func(), error)) wim.Verdict // Options.ISOWIMVerdict
	verifier   *Verifier                                                                               // Options.Verifier (New only)
	blobs      *blobcache.Cache                                                                        // Options.Blobs

	mu   sync.Mutex
	wims map[string]*openWIM // by store-relative real path
	isos map[string]*openISO // ISO trees, by store-relative real path (iso.go)
	// opening holds a channel per WIM or ISO being opened, closed when done (cachedWIM).
	opening map[string]chan struct{}
	tick    uint64
	closed  bool // after Close, WIMs opened for late requests close with their last file
}

// openWIM is one opened WIM file with the identity of the file it was opened from.
type openWIM struct {
	arch    *wim.Archive
	closer  io.Closer // the file(s) under arch
	size    int64
	mtime   time.Time
	id      fileID      // the file version it was opened from (size and mtime, and more on Linux)
	guard   *guardedWIM // its file, when the store verifies WIMs
	used    uint64      // Store.tick at last use, for LRU eviction
	refs    int         // open files reading from it
	evicted bool        // dropped from the map; close when refs reaches 0
}

// New returns the store rooted at folder root. The folder must exist.
func New(root string, opts Options) (*Store, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("localstore: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("localstore: %s is not a folder", root)
	}
	// os.Root, not os.DirFS: a symlink in the store that leads out of it (store/x -> /etc)
	// must not serve what it points at. Links inside the store still work. The Root's
	// descriptor stays open while anything refers to it (late requests of a closed Store
	// may still open files), and the runtime closes it after that.
	confined, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("localstore: %w", err)
	}
	s := &Store{root: root, rootFS: confined.FS(), cache: opts.Cache, maxOpen: opts.MaxOpenWIMs,
		check: opts.CheckISOWIM, isoVerdict: opts.ISOWIMVerdict, verifier: opts.Verifier, blobs: opts.Blobs, wims: map[string]*openWIM{}, isos: map[string]*openISO{}, opening: map[string]chan struct{}{}}
	if s.cache == nil {
		s.cache = wim.NewCache(64 << 20)
	}
	if s.maxOpen <= 0 {
		s.maxOpen = 64
	}
	if opts.IPXEDir != "" {
		s.ipxeFS = os.DirFS(opts.IPXEDir)
	}
	if opts.SyslinuxDir != "" {
		s.sysFS = os.DirFS(opts.SyslinuxDir)
	}
	return s, nil
}

// NewFS returns a store over any file system whose files are io.ReaderAt (a remote SFTP
// folder, for instance): the same names, WIM and ISO paths and caching as a local folder.
// root only labels it (Root).
func NewFS(fsys fs.FS, root string, opts Options) *Store {
	s := &Store{root: root, rootFS: fsys, cache: opts.Cache, maxOpen: opts.MaxOpenWIMs,
		check: opts.CheckISOWIM, isoVerdict: opts.ISOWIMVerdict, blobs: opts.Blobs, wims: map[string]*openWIM{}, isos: map[string]*openISO{}, opening: map[string]chan struct{}{}}
	if s.cache == nil {
		s.cache = wim.NewCache(64 << 20)
	}
	if s.maxOpen <= 0 {
		s.maxOpen = 64
	}
	if opts.IPXEDir != "" {
		s.ipxeFS = os.DirFS(opts.IPXEDir)
	}
	if opts.SyslinuxDir != "" {
		s.sysFS = os.DirFS(opts.SyslinuxDir)
	}
	return s
}

// Root returns the store folder.
func (s *Store) Root() string { return s.root }

// FS returns the file system the store reads its folder from (os.DirFS of the folder, or the
// one given to NewFS), without the WIM, ISO and iPXE paths the Store adds: what the catalog
// walks.
func (s *Store) FS() fs.FS { return s.rootFS }

// Open opens name for reading.
func (s *Store) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if s.ipxeFS != nil {
		if rest, ok := cutPrefixFold(name, IPXEPrefix); ok && rest != "." {
			f, err := openFold(s.ipxeFS, rest)
			if err == nil || !errors.Is(err, fs.ErrNotExist) {
				return f, err
			}
		}
	}
	if s.sysFS != nil {
		if rest, ok := cutPrefixFold(name, SyslinuxPrefix); ok && rest != "." {
			f, err := openFold(s.sysFS, rest)
			if err == nil || !errors.Is(err, fs.ErrNotExist) {
				return f, err
			}
		}
	}
	if isoPath, inner, ok := splitISO(name); ok && !hasWIMElem(inner) {
		return s.openInISO(name, isoPath, inner)
	}
	if wimPath, idx, inner, ok := storepath.Split(name); ok { // .swm too: split.go
		return s.openBlob(name, wimPath, idx, inner) // blobcache.go
	}
	f, err := openFold(s.rootFS, name)
	if err != nil || s.verifier == nil || !isWIMName(name) {
		return f, err
	}
	g, err := s.guard(name, f, true)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return g, nil
}

// cutPrefixFold reports whether name is dir or lies under it (any case), and the rest.
func cutPrefixFold(name, dir string) (string, bool) {
	first, rest, found := strings.Cut(name, "/")
	if !strings.EqualFold(first, dir) {
		return "", false
	}
	if !found {
		return ".", true
	}
	return rest, true
}

// openInWIM opens inner (a path in image idx) of the WIM at wimPath.
func (s *Store) openInWIM(name, wimPath string, idx int, inner string) (fs.File, error) {
	ow, err := s.acquire(wimPath)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	img, err := ow.arch.Image(idx)
	if err != nil {
		s.release(ow)
		if errors.Is(err, wim.ErrNoImage) {
			err = fmt.Errorf("%w: %w", fs.ErrNotExist, err)
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f, err := img.Open(inner)
	if err != nil {
		s.release(ow)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if wf, ok := f.(*wim.File); ok {
		return &wimFile{File: wf, release: sync.OnceFunc(func() { s.release(ow) })}, nil
	}
	return &refFile{File: f, release: sync.OnceFunc(func() { s.release(ow) })}, nil
}

// acquire returns the open WIM at wimPath (store-relative, any case), opening it or reopening
// it when the file changed, and counts one more reader.
func (s *Store) acquire(wimPath string) (*openWIM, error) {
	if isoPath, inner, ok := splitISO(wimPath); ok {
		return s.acquireInISO(isoPath, inner)
	}
	if catalog.IsSplitPart(wimPath) {
		return s.acquireSplit(wimPath) // split.go
	}
	real, err := resolveFold(s.rootFS, wimPath)
	if err != nil {
		return nil, err
	}
	st, err := fs.Stat(s.rootFS, real)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", real, fs.ErrNotExist)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := statIdentity(st)
	if ow := s.cachedWIM(real, id); ow != nil {
		return ow, nil
	}
	// This request opens the WIM (header, blob table and XML; on a remote store also its
	// verification, which reads it whole) without the lock: other WIMs are served meanwhile,
	// and requests for this one wait in claim instead of opening it twice.
	s.mu.Unlock()
	arch, closer, err := s.openWIMFile(real, st.Size())
	var ow *openWIM
	if err == nil {
		ow = s.newOpenWIM(real, id, arch, closer, st) // verify.go
	}
	s.mu.Lock()
	s.unclaim(real)
	if err != nil {
		return nil, fmt.Errorf("opening WIM %s: %w", real, err)
	}
	return s.addWIM(real, ow), nil
}

// cachedWIM returns the open WIM under key when it is of the given version, counting one
// more reader. Otherwise it claims key for the caller, who opens the WIM and calls unclaim
// (returning nil). Called locked; while another request opens key it waits unlocked.
func (s *Store) cachedWIM(key string, id fileID) *openWIM {
	for {
		s.tick++
		if ow, ok := s.wims[key]; ok {
			if ow.current(id) {
				ow.refs++
				ow.used = s.tick
				return ow
			}
			s.evict(key) // replaced on disk: readers of the old file keep it until they close
		}
		ch, busy := s.opening[key]
		if !busy {
			s.opening[key] = make(chan struct{})
			return nil
		}
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
}

// unclaim ends the caller's opening of key and wakes the requests waiting for it. Locked.
func (s *Store) unclaim(key string) {
	close(s.opening[key])
	delete(s.opening, key)
}

// addWIM caches a WIM the caller opened, with the caller as its first reader. Locked.
func (s *Store) addWIM(key string, ow *openWIM) *openWIM {
	s.tick++
	ow.used, ow.refs = s.tick, 1
	if s.closed {
		// A request that started before a reload replaced this store: serve it, keep nothing.
		ow.evicted = true
		return ow
	}
	s.wims[key] = ow
	s.trim()
	return ow
}

// openWIMFile opens the WIM at real through the store's file system, whose files must be
// io.ReaderAt (os files, sftpstore files, ISO files).
func (s *Store) openWIMFile(real string, size int64) (*wim.Archive, io.Closer, error) {
	f, err := s.rootFS.Open(real)
	if err != nil {
		return nil, nil, err
	}
	if s.verifier != nil {
		if f, err = s.guard(real, f, false); err != nil {
			return nil, nil, err
		}
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, nil, fmt.Errorf("%s: the store's files do not support ReadAt", real)
	}
	a, err := wim.Open(ra, size, &wim.Options{Cache: s.cache, Name: real})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return a, f, nil
}

// trim evicts least recently used WIMs beyond maxOpen. Called locked.
func (s *Store) trim() {
	for len(s.wims) > s.maxOpen {
		var lru string
		var min uint64
		for k, ow := range s.wims {
			if lru == "" || ow.used < min {
				lru, min = k, ow.used
			}
		}
		s.evict(lru)
	}
}

// evict drops a WIM from the map; it is closed now or when its last reader closes.
func (s *Store) evict(key string) {
	ow := s.wims[key]
	delete(s.wims, key)
	ow.evicted = true
	if ow.refs == 0 {
		ow.closer.Close()
	}
}

func (s *Store) release(ow *openWIM) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ow.refs--
	if ow.refs == 0 && ow.evicted {
		ow.closer.Close()
	}
}

// Close closes every WIM no reader uses; the others close when their last file does. Opening
// files after Close still works (each WIM is opened for that file alone and closed with it), so
// a Store replaced on reload can be closed at once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for k := range s.wims {
		s.evict(k)
	}
	for k := range s.isos {
		s.evictISO(k)
	}
	return nil
}

// OpenWIMs reports how many WIM files are open (for tests and metrics).
func (s *Store) OpenWIMs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wims)
}

// wimFile is a file inside a WIM image: all of *wim.File (ReadAt, Seek, Hash), and a Close
// that also releases the WIM.
type wimFile struct {
	*wim.File
	release func()
}

func (f *wimFile) Close() error {
	err := f.File.Close()
	f.release()
	return err
}

// refFile is any other open entry of a WIM image (a directory).
type refFile struct {
	fs.File
	release func()
}

func (f *refFile) Close() error {
	err := f.File.Close()
	f.release()
	return err
}

func (f *refFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d, ok := f.File.(fs.ReadDirFile); ok {
		return d.ReadDir(n)
	}
	return nil, &fs.PathError{Op: "readdir", Err: errors.New("not a directory")}
}
