package winpe

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
)

// Options are the daemon's caches the library's WIMs use.
type Options struct {
	// Chunks is the decoded-chunk cache every WIM the library opens uses, the source and the
	// synthesised one read back (nil: a private cache per WIM).
	Chunks *wim.Cache
	// Transcode is the chunk cache of XPRESS transcodes, so an image is compressed once, not
	// once per variant or per reload (nil: a private one per build).
	Transcode *wimsynth.ChunkCache
}

// Library is the daemon's set of opened WinPE sources. It lives across reloads and catalog
// changes: each serving state binds its winpe entries to it (Bind), and a source whose key is
// bound again by the next state is shared, not opened again. A source is keyed by the store,
// the image's identity (path, and size and mtime as the catalog snapshot saw them), the image
// index, the injected inputs (store files by identity, inline and generated ones by content)
// and the transcode target.
//
// A source counts its users: the states (Sets) that bind it and the files opened from it. It
// closes what it opened once no live state binds it (a newer snapshot or config replaced it)
// and its last file is closed, so transfers in progress finish on the bytes they started with
// and a retired SFTP connection closes with its last WinPE client.
type Library struct {
	opts Options

	mu        sync.Mutex
	sources   map[key]*source // every source a live Set binds
	bases     map[baseKey]*base
	opens     atomic.Int64 // sources opened so far (tests)
	baseOpens atomic.Int64 // store images opened as WIMs so far (tests)
}

// NewLibrary returns an empty library.
func NewLibrary(opts Options) *Library {
	return &Library{opts: opts, sources: map[key]*source{}, bases: map[baseKey]*base{}}
}

// Stats reports how many sources are open now (bound or still read by a transfer) and how many
// were opened since the library was made.
func (l *Library) Stats() (open int, opened int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sources {
		if s.o != nil {
			open++
		}
	}
	return open, l.opens.Load()
}

// key identifies what a source is built from.
type key struct {
	store     string // the store's label (local folder or sftp:// URL)
	image     string // lower-case store path
	ident     string // size and mtime (and split parts) of the image
	index     int    // 0: the WIM's default WindowsPE image
	inject    string // digest of the injected inputs
	transcode string
}

// Set is the library bound to one serving state: the winpe entries of one policy, the store
// they open from and the catalog snapshot that says which version of each image is current.
// It serves their files (Tree), and gives the policy the facts of their images (Served,
// boot.WinPEImages). Retire it when the state is replaced.
type Set struct {
	lib     *Library
	pol     *boot.Policy // with this Set attached (Policy)
	store   fs.FS
	storeID string
	snap    *catalog.Snapshot
	entries map[string]*entry // by lower-case entry name

	mu      sync.Mutex
	retired bool
}

// Bind binds pol's winpe entries to the library: store is where their images are opened from,
// storeID names it (two stores with one name hold the same files), snap is the catalog's
// snapshot of it (nil: unknown; each image is then looked up once, here). Each entry's key is
// computed now (injected store files are looked up once, here) and its source held, so a
// source the previous state opened stays open; nothing new is opened yet: an entry opens its
// source on first use. The returned Set's Policy is pol with the Set as its WinPE library.
func (l *Library) Bind(pol *boot.Policy, store fs.FS, storeID string, snap *catalog.Snapshot) *Set {
	s := &Set{lib: l, store: store, storeID: storeID, snap: snap, entries: map[string]*entry{}}
	for _, w := range pol.WinPEEntries() {
		e := &entry{set: s, spec: w}
		// The key now, so that a source the previous state holds is held by this one before
		// that state retires (a reload opens nothing again). An image the snapshot lacks and
		// the store cannot stat now is bound on first use instead.
		if k, err := e.key(); err == nil {
			e.src = l.hold(k, w)
		}
		s.entries[strings.ToLower(w.Name())] = e
	}
	s.pol = pol.WithWinPE(s)
	return s
}

// Stale reports whether an input of a bound entry changed since the Set was bound in a way the
// catalog snapshot does not see: an injected store file or folder (its size and mtime), or an
// image the snapshot lacks. It costs one look-up per such input (the daemon calls it once per
// catalog poll, never per request); a stale Set is replaced by binding a new one.
func (s *Set) Stale() bool {
	for _, e := range s.entries {
		e.mu.Lock()
		src := e.src
		e.mu.Unlock()
		if src == nil || !e.looksUp() {
			continue
		}
		if k, err := e.key(); err != nil || k != src.key {
			return true
		}
	}
	return false
}

// looksUp reports whether the entry's key depends on a store look-up the snapshot does not
// answer: an injected store file, or an image the snapshot lacks.
func (e *entry) looksUp() bool {
	for _, in := range e.spec.Inject {
		if in.Stored() {
			return true
		}
	}
	if e.set.snap == nil {
		return true
	}
	_, ok := e.set.snap.File(e.spec.Image)
	return !ok
}

// Policy is the bound policy: its scripts and DHCP decisions read the facts of this Set's
// images.
func (s *Set) Policy() *boot.Policy { return s.pol }

// Retire is called once the state the Set belongs to is replaced (a reload, a catalog change):
// its sources close when no newer state binds them and the transfers reading them finish, and
// the Set opens nothing more.
func (s *Set) Retire() {
	s.mu.Lock()
	if s.retired {
		s.mu.Unlock()
		return
	}
	s.retired = true
	s.mu.Unlock()
	for _, e := range s.entries {
		e.mu.Lock()
		src := e.src
		e.src = nil
		e.mu.Unlock()
		if src != nil {
			src.unhold()
		}
	}
}

// entry is one winpe entry of a Set.
type entry struct {
	set  *Set
	spec *boot.WinPEBoot

	mu     sync.Mutex
	src    *source // bound on first use
	facts  *boot.WinPEServed
	bcdMu  sync.Mutex
	bcds   [2][]byte
	bcdErr [2]error
	bcdOK  [2]bool
}

func (s *Set) entry(name string) (*entry, error) {
	e, ok := s.entries[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("no winpe entry %q", name)
	}
	return e, nil
}

// errRetired is what a file of a retired, closed source gets: a reload or catalog change
// replaced it between the request's look-up and its open (a client retry gets the new one).
var errRetired = errors.New("the image was replaced by a reload or a store change: try again")

// source returns the entry's opened source, binding and opening it on first use.
func (e *entry) source() (*source, *opened, error) {
	e.mu.Lock()
	src := e.src
	e.mu.Unlock()
	if src == nil {
		k, err := e.key()
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", e.spec.Image, err)
		}
		e.set.mu.Lock()
		retired := e.set.retired
		e.set.mu.Unlock()
		if retired {
			return nil, nil, fmt.Errorf("winpe %s: %w", e.spec.Name(), errRetired)
		}
		src = e.set.lib.hold(k, e.spec)
		e.mu.Lock()
		if e.src == nil {
			e.src = src
		} else { // another request bound it meanwhile
			other := e.src
			e.mu.Unlock()
			src.unhold()
			src = other
			e.mu.Lock()
		}
		e.mu.Unlock()
		e.set.mu.Lock()
		if e.set.retired { // retired while binding: let the retire's release happen
			e.set.mu.Unlock()
			e.mu.Lock()
			if e.src == src {
				e.src = nil
				e.mu.Unlock()
				src.unhold()
			} else {
				e.mu.Unlock()
			}
			return nil, nil, fmt.Errorf("winpe %s: %w", e.spec.Name(), errRetired)
		}
		e.set.mu.Unlock()
	}
	o, err := src.open(e.set.store)
	if err != nil {
		if errors.Is(err, errRetired) {
			return nil, nil, fmt.Errorf("winpe %s: %w", e.spec.Name(), err)
		}
		return nil, nil, fmt.Errorf("image %s: %w", e.spec.Image, err)
	}
	return src, o, nil
}

// key is what the entry's source is built from, as this Set's snapshot says (or, for what the
// snapshot does not hold, as the store says now: looked up when the Set is bound).
func (e *entry) key() (key, error) {
	w, s := e.spec, e.set
	k := key{store: s.storeID, image: strings.ToLower(w.Image), index: w.Index, transcode: w.Transcode}
	ident, err := s.identity(w.Image)
	if err != nil {
		return key{}, err
	}
	k.ident = ident
	h := sha256.New()
	for _, in := range w.Inject {
		fmt.Fprintf(h, "%q ", in.Path)
		switch {
		case in.Generated:
			d := sha256.Sum256(in.Data)
			fmt.Fprintf(h, "data %x;", d)
		case in.Inline:
			d := sha256.Sum256([]byte(in.Content))
			fmt.Fprintf(h, "content %x;", d)
		default:
			// A folder counts by its own mtime (files added or removed), not by its
			// contents: after editing a file inside a driver folder, touch the folder.
			if fi, err := fs.Stat(s.store, in.File.String()); err == nil {
				fmt.Fprintf(h, "file %q %d/%d;", in.File.String(), fi.Size(), fi.ModTime().UnixNano())
			} else {
				fmt.Fprintf(h, "file %q missing;", in.File.String())
			}
		}
	}
	k.inject = hex.EncodeToString(h.Sum(nil))
	return k, nil
}

// identity is the version of a store image: its size and mtime (and the parts of a split set)
// from the snapshot, else from the store.
func (s *Set) identity(name string) (string, error) {
	if s.snap != nil {
		if f, ok := s.snap.File(name); ok {
			id := fmt.Sprintf("%d/%d", f.Size, f.ModTime.UnixNano())
			if catalog.IsSplitPart(name) {
				id += ";" + catalog.SplitStamp(f.Parts)
			}
			return id, nil
		}
	}
	fi, err := fs.Stat(s.store, name)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano()) + splitStamp(s.store, name), nil
}

// hold finds or makes the source of k and counts one more Set using it.
func (l *Library) hold(k key, spec *boot.WinPEBoot) *source {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.sources[k]; ok {
		s.holds++
		return s
	}
	s := &source{lib: l, key: k, image: spec.Image, index: spec.Index, inject: spec.Inject, transcode: spec.Transcode, holds: 1}
	l.sources[k] = s
	return s
}

// unhold: one Set less uses the source; with none left it leaves the library, and closes
// once its last file is closed.
func (s *source) unhold() {
	l := s.lib
	l.mu.Lock()
	defer l.mu.Unlock()
	s.holds--
	if s.holds == 0 && l.sources[s.key] == s {
		delete(l.sources, s.key)
	}
	s.maybeClose()
}

// acquire counts a file opened from the source; false when the source is already closed.
func (s *source) acquire() bool {
	s.lib.mu.Lock()
	defer s.lib.mu.Unlock()
	if s.closed {
		return false
	}
	s.files++
	return true
}

// release is a file's Close.
func (s *source) release() {
	s.lib.mu.Lock()
	defer s.lib.mu.Unlock()
	s.files--
	s.maybeClose()
}

// maybeClose closes the source when nothing uses it. Called with lib.mu held.
func (s *source) maybeClose() {
	if s.holds == 0 && s.files == 0 && !s.closed {
		s.closed = true
		if s.o != nil {
			s.lib.dropBase(s.o.base)
		}
	}
}

// open returns the opened source, opening it on first use. A failed open is not remembered:
// the next request tries again.
func (s *source) open(store fs.FS) (*opened, error) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.lib.mu.Lock()
	o, closed := s.o, s.closed
	s.lib.mu.Unlock()
	if closed {
		return nil, errRetired
	}
	if o != nil {
		return o, nil
	}
	o, err := s.build(store)
	if err != nil {
		return nil, err
	}
	s.lib.mu.Lock()
	defer s.lib.mu.Unlock()
	if s.closed { // every user left while it was being opened
		s.lib.dropBase(o.base)
		return nil, errRetired
	}
	s.o = o
	s.lib.opens.Add(1)
	return o, nil
}

// Served is the facts of the image entry name serves (boot.WinPEImages), opening it on first
// use.
func (s *Set) Served(name string) (*boot.WinPEServed, error) {
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	return e.served()
}

// Files is entry name's own folder (see boot.WinPEDir): boot.wim, bios/BCD, uefi/BCD, image/...
func (s *Set) Files(name string) (fs.FS, error) {
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	src, o, err := e.source()
	if err != nil {
		return nil, fmt.Errorf("winpe %s: %w", name, err)
	}
	return entryFS{e, src, o}, nil
}

// ImageIndex is the image of the WIM entry name boots (the configured index, or the WIM's
// WindowsPE image).
func (s *Set) ImageIndex(name string) (int, error) {
	e, err := s.entry(name)
	if err != nil {
		return 0, err
	}
	_, o, err := e.source()
	if err != nil {
		return 0, err
	}
	return o.index, nil
}

// PrepareTranscodes opens, one after the other on a background goroutine, every winpe entry
// set to transcode: xpress, so that the compression pass an XPRESS transcode needs runs now
// and not while the first client waits (~30 s per GB); a source the previous state prepared is
// found open. done, if not nil, hears of each entry.
func (s *Set) PrepareTranscodes(done func(entry string, err error, took time.Duration)) {
	var es []*entry
	for _, w := range s.pol.WinPEEntries() {
		if w.Transcode == boot.TranscodeXPRESS {
			es = append(es, s.entries[strings.ToLower(w.Name())])
		}
	}
	if len(es) == 0 {
		return
	}
	go func() {
		for _, e := range es {
			start := time.Now()
			_, _, err := e.source()
			if done != nil {
				done(e.spec.Name(), err, time.Since(start))
			}
		}
	}()
}

// ImagesOpened is how many times a store image was opened as a WIM archive (its blob table
// read, its image tree decoded) since the library was made: sources built from one version of
// an image (variants differing in injected files) share one opening while any of them is open.
func (l *Library) ImagesOpened() int64 { return l.baseOpens.Load() }
