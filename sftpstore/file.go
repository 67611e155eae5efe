package sftpstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// File is an open remote regular file: fs.File, io.ReaderAt and io.Seeker. ReadAt is safe for
// concurrent use; Read and Seek share an offset.
type File struct {
	s    *Store
	name string // as asked for
	real string // resolved remote path
	info fs.FileInfo

	mu     sync.Mutex
	offset int64
}

// Stat returns the attributes the file had when opened.
func (f *File) Stat() (fs.FileInfo, error) { return f.info, nil }

// Size returns the file's size.
func (f *File) Size() int64 { return f.info.Size() }

// Close releases nothing remote: handles belong to the connection and are shared.
func (f *File) Close() error { return nil }

// ReadAt reads len(p) bytes at off through the block cache.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("negative offset")}
	}
	size := f.info.Size()
	n := 0
	for n < len(p) && off+int64(n) < size {
		pos := off + int64(n)
		idx := pos / f.s.blockSize
		blk, err := f.block(idx)
		if err != nil {
			return n, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		n += copy(p[n:], blk[pos-idx*f.s.blockSize:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// block returns block idx of the file, from the cache or the server.
func (f *File) block(idx int64) ([]byte, error) {
	s := f.s
	k := blockKey{path: f.real, size: f.info.Size(), mtime: f.info.ModTime().UnixNano(), index: idx}
	return s.cache.get(k, func() ([]byte, error) {
		start := idx * s.blockSize
		buf := make([]byte, min(s.blockSize, k.size-start))
		err := s.do(s.ctx, fmt.Sprintf("reading %s at %d", f.name, start), func(se *session) error {
			h, release, err := se.handle(f.real, f.info.Size(), f.info.ModTime())
			if err != nil {
				return err
			}
			defer release()
			n, err := h.ReadAt(buf, start)
			if n == len(buf) {
				return nil // io.EOF with a full buffer just means the block ends the file
			}
			if err == io.EOF {
				// The file shrank under us; say so instead of retrying a short read forever.
				return fmt.Errorf("short read (%d of %d bytes): %w", n, len(buf), ErrChanged)
			}
			return err
		})
		return buf, err
	})
}

// Read reads from the current offset.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.offset >= f.info.Size() {
		return 0, io.EOF
	}
	n, err := f.ReadAt(p, f.offset)
	f.offset += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset for the next Read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.offset
	case io.SeekEnd:
		offset += f.info.Size()
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: errors.New("bad whence")}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: errors.New("negative position")}
	}
	f.offset = offset
	return offset, nil
}
