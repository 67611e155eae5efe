package localstore

import (
	"crypto/sha1"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"

	"github.com/pxewim/pxewim/blobcache"
)

// openBlob opens a file inside a WIM image through the decoded-blob cache (Options.Blobs):
// when the cache holds the file's blob, the file is served from the cached copy (a plain
// file: sendfile for HTTP, preads for TFTP), with the WIM entry's name, times and SHA-1;
// otherwise it is read from the WIM, and the cache is told when it is read (it fills hot
// blobs and blobs read in full in the background). The WIM itself is still opened first: a WIM the store
// refuses (damaged, being replaced) is refused here too.
func (s *Store) openBlob(name, wimPath string, idx int, inner string) (fs.File, error) {
	f, err := s.openInWIM(name, wimPath, idx, inner)
	if err != nil || s.blobs == nil {
		return f, err
	}
	wf, ok := f.(*wimFile)
	if !ok || wf.Size() <= 0 || wf.Hash() == ([sha1.Size]byte{}) {
		return f, nil
	}
	key, size := blobcache.Key(wf.Hash()), wf.Size()
	src := func() (io.ReadCloser, error) {
		g, err := s.openInWIM(name, wimPath, idx, inner)
		if err != nil {
			return nil, err
		}
		return g, nil
	}
	if osf := s.blobs.Open(key, size, src); osf != nil {
		info, _ := wf.Stat()
		wf.Close()
		return &cachedBlob{f: osf, info: info, hash: key, size: size}, nil
	}
	return &noticedFile{wimFile: wf, used: func() { s.blobs.Used(key, size, src) }, full: func() { s.blobs.ReadInFull(key, size, src) }}, nil
}

// cachedBlob is a file inside a WIM served from the blob cache's copy. It is an io.ReaderAt
// (preads) and an io.ReadSeeker with the file's own offset, and a syscall.Conn, so that an
// HTTP body copy of it is done by the kernel (sendfile). Each open has its own descriptor.
type cachedBlob struct {
	f    *os.File
	info fs.FileInfo
	hash [sha1.Size]byte
	size int64
}

func (c *cachedBlob) Stat() (fs.FileInfo, error)                { return c.info, nil }
func (c *cachedBlob) Read(p []byte) (int, error)                { return c.f.Read(p) }
func (c *cachedBlob) ReadAt(p []byte, off int64) (int, error)   { return c.f.ReadAt(p, off) }
func (c *cachedBlob) Seek(off int64, whence int) (int64, error) { return c.f.Seek(off, whence) }
func (c *cachedBlob) Close() error                              { return c.f.Close() }
func (c *cachedBlob) SyscallConn() (syscall.RawConn, error)     { return c.f.SyscallConn() }
func (c *cachedBlob) Hash() [sha1.Size]byte                     { return c.hash }
func (c *cachedBlob) Size() int64                               { return c.size }
func (c *cachedBlob) WriteTo(w io.Writer) (int64, error)        { return c.f.WriteTo(w) }

// noticedFile is a file inside a WIM read from the WIM, which tells the blob cache when it is
// first read (used) and when its bytes have been read from the first to the last (full: in
// order, re-reads allowed), as a TFTP transfer or a full HTTP GET does.
type noticedFile struct {
	*wimFile
	used, full func()

	mu   sync.Mutex
	done int64 // bytes read in order from 0
	read bool
	told bool
}

func (n *noticedFile) Read(p []byte) (int, error) {
	pos, _ := n.wimFile.Seek(0, io.SeekCurrent)
	k, err := n.wimFile.Read(p)
	n.saw(pos, k)
	return k, err
}

func (n *noticedFile) ReadAt(p []byte, off int64) (int, error) {
	k, err := n.wimFile.ReadAt(p, off)
	n.saw(off, k)
	return k, err
}

func (n *noticedFile) saw(off int64, k int) {
	if k <= 0 {
		return
	}
	n.mu.Lock()
	first := !n.read
	n.read = true
	if off <= n.done {
		n.done = max(n.done, off+int64(k))
	}
	tell := !n.told && n.done >= n.wimFile.Size()
	n.told = n.told || tell
	n.mu.Unlock()
	if tell {
		n.full()
	} else if first {
		n.used()
	}
}
