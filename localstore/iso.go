package localstore

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/pxewim/pxewim/iso"
	"github.com/pxewim/pxewim/storepath"
	"github.com/pxewim/pxewim/wim"
)

// ISO images are folders too: "win.iso/sources/boot.wim" is a file inside the ISO (UDF, Joliet
// or ISO 9660, read in place by package iso), and "win.iso/sources/boot.wim:1/Windows/x" a
// file inside image 1 of that WIM, so a Windows ISO boots without extracting anything. The
// ISO itself ("win.iso") is still served as a plain file (for iPXE sanboot).

// splitISO finds the first path element naming an .iso with more elements after it, and
// returns the ISO's store path and the path inside it.
func splitISO(name string) (isoPath, inner string, ok bool) {
	elems := strings.Split(name, "/")
	for i, e := range elems[:len(elems)-1] {
		if storepath.IsImageElem(e) {
			return "", "", false // inside a WIM first: WIMs hold no ISOs we enter
		}
		if strings.HasSuffix(strings.ToLower(e), ".iso") {
			return strings.Join(elems[:i+1], "/"), strings.Join(elems[i+1:], "/"), true
		}
	}
	return "", "", false
}

func hasWIMElem(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if storepath.IsImageElem(e) {
			return true
		}
	}
	return false
}

// maxOpenISOs bounds the ISO trees kept open. A tree is read whole by iso.Open (about 10 ms
// and a few MB of garbage for a Windows ISO's 1000 files), and every request for a file in
// the ISO or for a winpe entry booting its WIM looks the ISO up: without the cache each of
// them would read the tree again.
const maxOpenISOs = 16

// openISO is one ISO file with its directory tree, shared by the files opened inside it.
type openISO struct {
	fs      *iso.FS
	file    fs.File // the ISO file in the store (iso.FS reads from it)
	real    string
	size    int64
	mtime   time.Time
	used    uint64 // Store.tick at last use
	refs    int
	evicted bool
}

// isoAcquire returns the ISO file at isoPath (store-relative, any case) with its tree, from
// the cache when the file's size and mtime are unchanged, and counts one more user; release
// it with isoRelease.
func (s *Store) isoAcquire(isoPath string) (*openISO, error) {
	real, err := resolveFold(s.rootFS, isoPath)
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
	if o := s.cachedISO(real, st); o != nil {
		return o, nil
	}
	// Read the tree without the lock (on a remote store that takes round trips): other
	// requests are served meanwhile, and those for this ISO wait in cachedISO.
	s.mu.Unlock()
	o, err := s.readISO(real, st)
	s.mu.Lock()
	s.unclaim(isoKey(real))
	if err != nil {
		return nil, err
	}
	s.tick++
	o.used, o.refs = s.tick, 1
	if s.closed {
		o.evicted = true // after Close: serve this request, keep nothing
		return o, nil
	}
	s.isos[real] = o
	for len(s.isos) > maxOpenISOs {
		var lru string
		var min uint64
		for k, c := range s.isos {
			if lru == "" || c.used < min {
				lru, min = k, c.used
			}
		}
		s.evictISO(lru)
	}
	return o, nil
}

// isoKey is an ISO's key in Store.opening (WIMs use their path).
func isoKey(real string) string { return "iso:" + real }

// cachedISO returns the cached tree of real when it is of the file's current version,
// counting one more user. Otherwise it claims the ISO for the caller, who reads it and calls
// unclaim (returning nil). Called locked; while another request reads the ISO it waits
// unlocked.
func (s *Store) cachedISO(real string, st fs.FileInfo) *openISO {
	for {
		s.tick++
		if o, ok := s.isos[real]; ok {
			if o.size == st.Size() && o.mtime.Equal(st.ModTime()) {
				o.refs++
				o.used = s.tick
				return o
			}
			s.evictISO(real) // replaced on disk: users of the old one keep it until they release it
		}
		ch, busy := s.opening[isoKey(real)]
		if !busy {
			s.opening[isoKey(real)] = make(chan struct{})
			return nil
		}
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
}

// readISO opens the ISO file real and reads its tree.
func (s *Store) readISO(real string, st fs.FileInfo) (*openISO, error) {
	f, err := s.rootFS.Open(real)
	if err != nil {
		return nil, err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("%s: the store's files do not support ReadAt: %w", real, fs.ErrNotExist)
	}
	ifs, err := iso.Open(ra, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a readable ISO image: %w", fs.ErrNotExist, real, err)
	}
	return &openISO{fs: ifs, file: f, real: real, size: st.Size(), mtime: st.ModTime()}, nil
}

// evictISO drops an ISO from the cache; its file closes now or with its last user. Locked.
func (s *Store) evictISO(key string) {
	o := s.isos[key]
	delete(s.isos, key)
	o.evicted = true
	if o.refs == 0 {
		o.file.Close()
	}
}

func (s *Store) isoRelease(o *openISO) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isoReleaseLocked(o)
}

func (s *Store) isoReleaseLocked(o *openISO) {
	o.refs--
	if o.refs == 0 && o.evicted {
		o.file.Close()
	}
}

// OpenISOs reports how many ISO trees are cached (for tests and metrics).
func (s *Store) OpenISOs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.isos)
}

// openInISO opens a file or folder inside an ISO; the ISO stays in use until it closes.
func (s *Store) openInISO(name, isoPath, inner string) (fs.File, error) {
	o, err := s.isoAcquire(isoPath)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	in, err := o.fs.Open(inner)
	if err != nil {
		s.isoRelease(o)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	release := sync.OnceFunc(func() { s.isoRelease(o) })
	if isoF, ok := in.(*iso.File); ok {
		if err := s.checkISOWIM(o, inner, isoF); err != nil {
			isoF.Close()
			release()
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		f := &isoFile{File: isoF, release: release} // ReadAt and Seek for ranges
		if vd := s.wimVerdict(o, inner); vd != nil {
			return &verdictISOFile{isoFile: f, vd: vd}, nil
		}
		return f, nil
	}
	return &refFile{File: in, release: release}, nil
}

// isoFile is a regular file inside an ISO: all of *iso.File, and a Close that also releases
// the ISO under it.
type isoFile struct {
	*iso.File
	release func()
}

func (f *isoFile) Close() error {
	err := f.File.Close()
	f.release()
	return err
}

// isoCloser releases an ISO when the WIM opened inside it closes (called with Store.mu held,
// as openWIM closers are).
type isoCloser struct {
	s *Store
	o *openISO
}

func (c isoCloser) Close() error {
	c.s.isoReleaseLocked(c.o)
	return nil
}

// acquireInISO is acquire for a WIM inside an ISO: kept open under the key "ISO/inner" and
// reopened when the ISO file changes.
func (s *Store) acquireInISO(isoPath, inner string) (*openWIM, error) {
	o, err := s.isoAcquire(isoPath)
	if err != nil {
		return nil, err
	}
	wf, err := o.fs.OpenFile(inner)
	if err == nil {
		err = s.checkISOWIM(o, inner, wf) // outside the lock: verifying may read the whole WIM
	}
	if err != nil {
		s.isoRelease(o)
		return nil, err
	}
	key := o.real + "/" + strings.ToLower(inner)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fileID{size: o.size, mtime: o.mtime.UnixNano()} // the ISO's version
	if ow := s.cachedWIM(key, id); ow != nil {
		s.isoReleaseLocked(o)
		return ow, nil
	}
	s.mu.Unlock()
	var ra io.ReaderAt = wf
	if vd := s.wimVerdict(o, inner); vd != nil {
		ra = verdictReader{ReaderAt: wf, Verdict: vd} // the files of its images carry the verdict
	}
	a, err := wim.Open(ra, wf.Size(), &wim.Options{Cache: s.cache, Name: o.real + "/" + inner})
	s.mu.Lock()
	s.unclaim(key)
	if err != nil {
		s.isoReleaseLocked(o)
		return nil, fmt.Errorf("opening WIM %s inside %s: %w", inner, o.real, err)
	}
	return s.addWIM(key, &openWIM{arch: a, closer: isoCloser{s, o}, size: o.size, mtime: o.mtime, id: id}), nil
}

// checkISOWIM runs Options.CheckISOWIM on a WIM or ESD file inside an ISO.
func (s *Store) checkISOWIM(o *openISO, inner string, f *iso.File) error {
	if s.check == nil || !isWIMName(inner) {
		return nil
	}
	version := fmt.Sprintf("%d-%d", o.size, o.mtime.UnixNano())
	if err := s.check(o.real+"/"+inner, version, f, f.Size()); err != nil {
		return fmt.Errorf("%s inside %s: %w", inner, o.real, err)
	}
	return nil
}

func isWIMName(p string) bool {
	l := strings.ToLower(p)
	return strings.HasSuffix(l, ".wim") || strings.HasSuffix(l, ".esd")
}

// wimVerdict returns Options.ISOWIMVerdict's verdict on a WIM or ESD file inside the ISO o
// (nil when the store has none or inner is no WIM). The verification opens the file again
// through o, which stays open for it.
func (s *Store) wimVerdict(o *openISO, inner string) wim.Verdict {
	if s.isoVerdict == nil || !isWIMName(inner) {
		return nil
	}
	open := func() (io.ReaderAt, int64, func(), error) {
		s.mu.Lock()
		o.refs++
		s.mu.Unlock()
		f, err := o.fs.OpenFile(inner)
		if err != nil {
			s.isoRelease(o)
			return nil, 0, nil, fmt.Errorf("%s inside %s: %w", inner, o.real, err)
		}
		return f, f.Size(), func() { f.Close(); s.isoRelease(o) }, nil
	}
	return s.isoVerdict(o.real+"/"+inner, fmt.Sprintf("%d-%d", o.size, o.mtime.UnixNano()), open)
}

// verdictISOFile is a WIM or ESD file inside an ISO with its verdict (httpboot.Verdicter):
// nothing checks a whole-file read of it, so servers hold its last bytes until it is verified.
type verdictISOFile struct {
	*isoFile
	vd wim.Verdict
}

func (f *verdictISOFile) Verified() bool                         { return f.vd.Verified() }
func (f *verdictISOFile) WaitVerified(ctx context.Context) error { return f.vd.WaitVerified(ctx) }
func (f *verdictISOFile) FullReadChecked() bool                  { return false }

// verdictReader is a WIM's bytes inside an ISO with the WIM's verdict, for wim.Open: the
// files of its images pass the verdict on (wim.File.Verified, WaitVerified).
type verdictReader struct {
	io.ReaderAt
	wim.Verdict
}
