package iso

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// File is an open regular file. Read and Seek share a position; ReadAt is independent of it
// and safe for concurrent use. Data may lie in several extents (fragmented UDF files,
// multi-extent ISO 9660 files) and holes of sparse UDF files read as zeros.
type File struct {
	fsys *FS
	n    *node

	mu     sync.Mutex
	pos    int64
	closed bool
}

// Size returns the file's size in bytes.
func (f *File) Size() int64 { return f.n.size }

// Name returns the file's path in the image.
func (f *File) Name() string { return f.n.path() }

// Stat describes the file.
func (f *File) Stat() (fs.FileInfo, error) { return fileInfo{f.n}, nil }

// Close releases the file; other readers are unaffected.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}

// Read reads from the current position.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the position for the next Read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.n.size
	default:
		return 0, fmt.Errorf("iso: %s: seek: invalid whence %d", f.n.path(), whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("iso: %s: seek: negative position %d", f.n.path(), offset)
	}
	f.pos = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off, mapping the range across the file's extents.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("iso: %s: negative offset %d", f.n.path(), off)
	}
	size := f.n.size
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > size-off {
		p, eof = p[:size-off], io.EOF
	}
	if f.n.inline != nil {
		return copy(p, f.n.inline[off:]), eof
	}
	done := 0
	start := int64(0) // logical offset of extent i
	for _, e := range f.n.ext {
		if len(p) == done {
			break
		}
		pos := off + int64(done)
		if pos >= start+e.n {
			start += e.n
			continue
		}
		chunk := p[done:]
		if rem := start + e.n - pos; int64(len(chunk)) > rem {
			chunk = chunk[:rem]
		}
		if err := f.readExtent(chunk, e, pos-start); err != nil {
			return done, err
		}
		done += len(chunk)
		start += e.n
	}
	if done < len(p) {
		// Open checked that the extents cover the size; this guards against a broken invariant.
		return done, fmt.Errorf("iso: %s: extents end at byte %d: %w", f.n.path(), off+int64(done), io.ErrUnexpectedEOF)
	}
	return done, eof
}

// readExtent fills p from extent e at offset within it (zeros for a hole).
func (f *File) readExtent(p []byte, e extent, within int64) error {
	if e.off < 0 {
		clear(p)
		return nil
	}
	n, err := f.fsys.r.ReadAt(p, e.off+within)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("iso: %s: reading image at offset %d: %w", f.n.path(), e.off+within+int64(n), err)
}
