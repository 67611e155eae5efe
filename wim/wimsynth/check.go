package wimsynth

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"sync"

	"github.com/pxewim/pxewim/wim"
)

// Reader reads a synthesised WIM for one client and makes sure that a full read never
// completes with wrong bytes from the source. As its reads go through the file in order from
// offset 0 (re-reads allowed, as with wim.File), each segment copied from the source is
// checked before its last byte is returned:
//
//   - segments holding a source blob's decoded bytes (transcoded blobs, the metadata resource
//     when decoded) and resources the source stores uncompressed (copied raw) are hashed as
//     they pass, with the wim package's Check (SHA-1 on the first full read of a blob, then
//     the CRC-32C of the blocks that read verified);
//   - resources copied compressed (and solid resources, and blobs compressed here to XPRESS)
//     cannot be hashed as they pass: their source blobs are decoded and checked by
//     wim.Archive.VerifyBlob, one after the other in the background from the first in-order
//     read of the file (so the decoding runs while the client downloads), and the read that
//     would return the file's last bytes waits for all of them. The source Archive remembers
//     a good verdict, so this costs one decode per blob per opened source WIM (not per client
//     or variant); the File keeps a bad one. The decoded chunks go through the source's
//     chunk cache.
//
// On a mismatch the read that would return the damaged segment's last byte (for hashed
// segments) or the file's last bytes fails with the wrapped *wim.ChecksumError (Corrupt()
// reports true) instead, and so does every later read reaching past that point. Generated
// bytes (header, tables, XML, new metadata) and injected files come from memory and are not
// checked. Reads that do not continue the checked prefix (ranges) are served unchecked. A
// Reader is safe for concurrent use; create one per client request.
type Reader struct {
	f *File

	mu      sync.Mutex
	hashed  int64      // [0, hashed) was read in order and checked
	seg     int        // the segment holding offset hashed
	chk     *wim.Check // the feed segment in progress
	bad     error
	badFrom int64 // reads reaching past this offset fail with bad
}

var _ io.ReaderAt = (*Reader)(nil)

// NewReader returns a checking reader of f (see Reader).
func (f *File) NewReader() *Reader { return &Reader{f: f} }

// Size returns the file's size.
func (r *Reader) Size() int64 { return r.f.size }

// ETag returns the file's ETag.
func (r *Reader) ETag() string { return r.f.etag }

// Verified reports whether the source WIM is known good by its store (wim.Archive.Verified;
// true when the store gives no verdict). With WaitVerified and FullReadChecked it tells
// servers (httpboot.Verdicter) what is known about the bytes: ranges and immutable headers
// wait for the source's verdict, full reads need not (the Reader checks them).
func (r *Reader) Verified() bool { return r.f.src == nil || r.f.src.Verified() }

// WaitVerified waits for the source WIM's verdict (wim.Archive.WaitVerified).
func (r *Reader) WaitVerified(ctx context.Context) error {
	if r.f.src == nil {
		return nil
	}
	return r.f.src.WaitVerified(ctx)
}

// FullReadChecked is true: a full in-order read fails before its last bytes if a source blob
// it carries is damaged.
func (r *Reader) FullReadChecked() bool { return r.f.src != nil }

// ReadAt reads like File.ReadAt, checking what passes.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	if n > 0 || len(p) == 0 {
		r.mu.Lock()
		cerr := r.account(p[:n], off)
		r.mu.Unlock()
		if cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

// account checks data (read at off) when it continues the checked prefix, and returns the
// error that must replace it. Called with r.mu held.
func (r *Reader) account(data []byte, off int64) error {
	end := off + int64(len(data))
	if r.bad == nil && r.f.src != nil && off <= r.hashed && end > r.hashed {
		r.check(data, off, end)
	}
	if r.bad != nil && end > r.badFrom {
		return r.bad
	}
	return nil
}

// check walks the segments from the end of the checked prefix to end.
func (r *Reader) check(data []byte, off, end int64) {
	for pos := r.hashed; pos < end && r.seg < len(r.f.segs); {
		s := &r.f.segs[r.seg]
		segEnd := s.off + s.size
		upto := min(end, segEnd)
		switch {
		case s.feed != [sha1.Size]byte{}:
			if pos == s.off {
				r.chk, _ = r.f.src.NewCheck(s.feed) // nil (no check) cannot happen: Build found the blob
			}
			if r.chk != nil {
				if err := r.chk.Feed(data[pos-off:upto-off], pos-s.off); err != nil {
					r.fail(s, err)
					return
				}
			}
		case s.verify != nil:
			if upto == segEnd {
				if err := s.verify.peek(); err != nil { // known bad already: stop here
					r.fail(s, err)
					return
				}
			}
		}
		if pos == 0 {
			r.f.startVerify()
		}
		if upto == r.f.size {
			// The file's last bytes: every encoded source blob must have been verified.
			for i := range r.f.segs {
				if v := r.f.segs[i].verify; v != nil {
					if err := v.wait(); err != nil {
						r.fail(&r.f.segs[i], err)
						return
					}
				}
			}
		}
		pos, r.hashed = upto, upto
		if pos == segEnd {
			r.seg++
			r.chk = nil
		}
	}
}

// startVerify verifies, once per File and in the background, the source blobs of every
// segment that encodes them, in file order (one decode at a time, so that serving keeps a
// core).
func (f *File) startVerify() {
	f.verifyOnce.Do(func() {
		go func() {
			for i := range f.segs {
				if v := f.segs[i].verify; v != nil {
					v.run(f.src)
				}
			}
		}()
	})
}

func (r *Reader) fail(s *segment, err error) {
	r.bad = fmt.Errorf("wimsynth: %s: %s (bytes %d-%d): %w", r.f.name, s.name(), s.off, s.off+s.size-1, err)
	r.badFrom = s.off + s.size - 1
}

// verdict is the outcome of verifying the source blobs a segment encodes, computed once per
// File (a good outcome is also remembered by the source Archive, for every File built from
// it).
type verdict struct {
	hashes [][sha1.Size]byte
	done   chan struct{} // closed when err is final
	err    error
}

func newVerdict(hashes ...[sha1.Size]byte) *verdict {
	return &verdict{hashes: hashes, done: make(chan struct{})}
}

// run verifies the blobs (called once, by File.startVerify).
func (v *verdict) run(src *wim.Archive) {
	defer close(v.done)
	for _, h := range v.hashes {
		if err := src.VerifyBlob(h); err != nil {
			v.err = err
			return
		}
	}
}

// wait returns the verdict once known.
func (v *verdict) wait() error {
	<-v.done
	return v.err
}

// peek returns the verdict's error if it is known already, else nil.
func (v *verdict) peek() error {
	select {
	case <-v.done:
		return v.err
	default:
		return nil
	}
}

// rawSegment is a resource copied byte for byte from the source: an uncompressed one holds
// the blob's data (checked as it passes), a compressed one is verified by decoding the
// source's blob.
func rawSegment(raw *io.SectionReader, bi wim.BlobInfo, what string) segment {
	seg := segment{r: raw, size: raw.Size(), what: what}
	if bi.Compression == wim.CompressionNone && !bi.Solid && raw.Size() == bi.Size {
		seg.feed = bi.Hash
	} else {
		seg.verify = newVerdict(bi.Hash)
	}
	return seg
}
