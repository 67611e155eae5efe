package localstore

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/pxewim/pxewim/iso"
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
		if wimElem.MatchString(e) {
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
		if wimElem.MatchString(e) {
			return true
		}
	}
	return false
}

// isoOpen opens the ISO file at isoPath (store-relative, any case) and reads its tree.
func (s *Store) isoOpen(isoPath string) (*iso.FS, fs.File, fs.FileInfo, string, error) {
	real, err := resolveFold(s.rootFS, isoPath)
	if err != nil {
		return nil, nil, nil, "", err
	}
	f, err := s.rootFS.Open(real)
	if err != nil {
		return nil, nil, nil, "", err
	}
	st, err := f.Stat()
	ra, isRA := f.(io.ReaderAt)
	if err == nil && (!st.Mode().IsRegular() || !isRA) {
		err = fmt.Errorf("%s is not a regular file: %w", real, fs.ErrNotExist)
	}
	if err != nil {
		f.Close()
		return nil, nil, nil, "", err
	}
	ifs, err := iso.Open(ra, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, nil, "", fmt.Errorf("%w: %s is not a readable ISO image: %w", fs.ErrNotExist, real, err)
	}
	return ifs, f, st, real, nil
}

// openInISO opens a file or folder inside an ISO. The ISO's tree is read for this file and
// dropped when it closes: boot files are few and small; WIMs inside ISOs, which get many
// range requests, are kept open by acquireInISO.
func (s *Store) openInISO(name, isoPath, inner string) (fs.File, error) {
	ifs, f, _, _, err := s.isoOpen(isoPath)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	in, err := ifs.Open(inner)
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	release := sync.OnceFunc(func() { f.Close() })
	if isoF, ok := in.(*iso.File); ok {
		return &isoFile{File: isoF, release: release}, nil // ReadAt and Seek for ranges
	}
	return &refFile{File: in, release: release}, nil
}

// isoFile is a regular file inside an ISO: all of *iso.File, and a Close that also closes
// the ISO file under it.
type isoFile struct {
	*iso.File
	release func()
}

func (f *isoFile) Close() error {
	err := f.File.Close()
	f.release()
	return err
}

// acquireInISO is acquire for a WIM inside an ISO: kept open under the key "ISO/inner" and
// reopened when the ISO file changes.
func (s *Store) acquireInISO(isoPath, inner string) (*openWIM, error) {
	ifs, f, st, real, err := s.isoOpen(isoPath)
	if err != nil {
		return nil, err
	}
	key := real + "/" + strings.ToLower(inner)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick++
	if ow, ok := s.wims[key]; ok {
		if ow.size == st.Size() && ow.mtime.Equal(st.ModTime()) {
			f.Close()
			ow.refs++
			ow.used = s.tick
			return ow, nil
		}
		s.evict(key)
	}
	wf, err := ifs.OpenFile(inner)
	if err != nil {
		f.Close()
		return nil, err
	}
	a, err := wim.Open(wf, wf.Size(), &wim.Options{Cache: s.cache})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening WIM %s inside %s: %w", inner, real, err)
	}
	ow := &openWIM{arch: a, closer: f, size: st.Size(), mtime: st.ModTime(), used: s.tick, refs: 1}
	if s.closed {
		ow.evicted = true
		return ow, nil
	}
	s.wims[key] = ow
	s.trim()
	return ow, nil
}
