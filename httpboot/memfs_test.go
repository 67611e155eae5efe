package httpboot

import (
	"bytes"
	"crypto/sha1"
	"io"
	"io/fs"
	"math/rand/v2"
	"sync"
	"testing/fstest"
	"time"
)

// memFS is the test double for a store tree: an in-memory fs.FS whose files implement
// io.ReaderAt + io.Seeker like WIM files, and Hash() when marked as hashed (WIM-like), so the
// tests do not depend on the wim package. It can change under a running server, like a folder.
type memFS struct {
	mu    sync.Mutex
	files map[string]memEntry
}

type memEntry struct {
	data   []byte
	mod    time.Time
	hashed bool
}

func newMemFS() *memFS { return &memFS{files: map[string]memEntry{}} }

// put stores a file; hashed files get a Hash() method returning the SHA-1 of data.
func (m *memFS) put(name string, data []byte, hashed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = memEntry{data: data, hashed: hashed, mod: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC).Add(time.Duration(len(m.files)) * time.Hour)}
}

// touch changes a file's content and mtime, as an admin replacing it would.
func (m *memFS) touch(name string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.files[name]
	e.data, e.mod = data, e.mod.Add(time.Minute)
	m.files[name] = e
}

func (m *memFS) Open(name string) (fs.File, error) {
	m.mu.Lock()
	snap := fstest.MapFS{}
	for n, e := range m.files {
		snap[n] = &fstest.MapFile{Data: e.data, ModTime: e.mod, Mode: 0o444}
	}
	e, isFile := m.files[name]
	m.mu.Unlock()
	f, err := snap.Open(name)
	if err != nil || !isFile {
		return f, err // directories and errors come from MapFS unchanged
	}
	pf := &plainFile{File: f, r: bytes.NewReader(e.data)}
	if e.hashed {
		return &hashedFile{plainFile: pf, sum: sha1.Sum(e.data)}, nil
	}
	return pf, nil
}

// plainFile is a store file without a content hash (a local folder's file).
type plainFile struct {
	fs.File // Stat and Close
	r       *bytes.Reader
}

func (f *plainFile) Read(p []byte) (int, error)              { return f.r.Read(p) }
func (f *plainFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f *plainFile) Seek(off int64, whence int) (int64, error) {
	return f.r.Seek(off, whence)
}

// hashedFile is a WIM-like file: it knows its SHA-1 without reading.
type hashedFile struct {
	*plainFile
	sum [20]byte
}

func (f *hashedFile) Hash() [20]byte { return f.sum }

var (
	_ io.ReaderAt   = (*plainFile)(nil)
	_ io.Seeker     = (*plainFile)(nil)
	_ ContentHasher = (*hashedFile)(nil)
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
