// Package wimsynth synthesises WIM files on the fly from an existing WIM: one image exported
// as a standalone WIM, files injected into it, or the image re-encoded (transcoded) as an
// uncompressed or XPRESS WIM that wimboot and bootmgr accept. Nothing is written to disk and,
// except for the XPRESS sizing pass below, nothing is decompressed up front.
//
// # The segment model
//
// A synthesised WIM is a virtual file: an ordered list of segments, each a byte range of the
// output backed by one source. There are four kinds of source: bytes generated at Build time
// (header, new metadata resource, blob table, XML); a raw range of the source WIM file (a
// compressed resource copied byte for byte, only its offset in the new blob table differs); a
// decoded blob, read through the wim package's chunk cache (transcoding: the output stores the
// blob uncompressed, so an output range maps to the same range of the blob and only the chunks
// covering it are decoded); and an injected file's io.ReaderAt. Every size is known from the
// source's blob table before any data is read, so Build computes the whole layout (and the
// tables that point into it) without decoding anything but the image's metadata.
//
// ReadAt finds the first segment by binary search and copies from consecutive segments, so a
// range costs what its bytes cost in the sources and nothing more: http.ServeContent can serve
// ranges of a File directly. Because the layout is a pure function of the source's tables and
// the options, two Builds with the same inputs produce identical bytes, and ETag (a hash of
// those inputs, not of the bytes) is a strong validator available before any byte is read.
//
// # What a synthesised WIM holds
//
// In wimlib's order: the header (one image, boot index 1, the source's compression and chunk
// size, or none or XPRESS with 32 KiB chunks when transcoding, no integrity table, a GUID
// derived from the ETag); the blobs the image refers to, in the source's blob table order;
// the metadata resource; the blob table
// (reference counts per dentry and stream, as wimlib counts them); the XML data with the one
// IMAGE renumbered 1 and the WIM's TOTALBYTES set to the XML offset, as wimlib writes it.
// Compressed non-solid resources are copied raw. Solid resources are copied whole (they may
// hold blobs of other images, which then have no blob table entry) unless transcoding; pipable
// sources' compressed resources, whose chunk layout differs, are stored decoded.
//
// Injected files and the rewritten metadata are stored uncompressed (injected files are
// XPRESS-compressed when transcoding to XPRESS), which compressed WIMs
// allow per resource: wimlib verifies and applies such WIMs, and wimboot reads uncompressed
// resources directly. The metadata is re-serialised from the source's raw dentries (only
// children offsets and, for replaced files, the data hash and hard-link group change), so
// short names, security ids, tagged items (wimlib UNIX data, object ids, extended attributes)
// and named streams survive; an unchanged tree re-serialises to wimlib's exact bytes.
//
// # XPRESS transcoding: the trade-off
//
// An XPRESS resource starts with a chunk table holding every compressed chunk's offset, and
// the blob table at the end of the file holds every resource's offset, so no byte of the file
// (not even the header, which points at the blob table) can be served before every chunk's
// compressed size is known. Build therefore runs a sizing pass: it decodes each blob once and
// compresses every 32 KiB chunk (spread over the CPUs; seconds for a few hundred MiB, see
// BenchmarkServeXPRESS), keeping only the sizes (4 bytes per chunk in the cache's memo, 12
// in each File's tables) and whatever compressed chunks fit in the ChunkCache. Reads then compress the chunks they cover on demand, through
// the cache: the encoder is deterministic, so a chunk compressed again has the size the table
// promised (a difference means the source changed, and the read fails rather than serve
// wrong bytes). The alternatives were worse: keeping the whole compressed image in memory per
// variant (half the image size each), or serving before sizing (impossible, see above).
//
// Costs: the pass delays the first byte of the first Build (so callers should Build when an
// image appears, not when a client asks); memory is the cache budget plus the tables; a read
// costs decoding and compressing its chunks unless they are cached.
// The cache is keyed by blob SHA-1, so injected variants of one image, built with a shared
// Options.Cache, share the sizing pass (their Build takes milliseconds) and the cached chunks.
// The pass fills the cache but never evicts from it, so the file's first bytes are cached for
// the first reader and readers' working chunks are not pushed out by another Build. Blobs that
// do not shrink are stored uncompressed, and so is the metadata resource, which wimboot
// reads with a decoder that knows only LZX (see builder.store); resources already XPRESS
// with 32 KiB chunks are copied raw. LZX output is not offered (XPRESS is what fast
// on-demand encoding allows).
package wimsynth

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/pxewim/pxewim/wim"
)

// segment is one byte range of the synthesised file.
type segment struct {
	off  int64 // in the synthesised file
	size int64
	data []byte      // generated bytes, or nil
	r    io.ReaderAt // else read from r at roff
	roff int64
	what string // for error messages ("": the source blob it feeds or verifies, see name)

	// What a Reader checks as it passes (see Reader): feed names the source blob whose
	// decoded bytes the segment holds (hashed as they pass); verify the source blobs it
	// encodes (copied compressed, or compressed here), decoded and checked once.
	feed   [sha1.Size]byte
	verify *verdict
}

// name is what error messages call the segment. A source blob's segment has no what of its
// own (a string per blob and variant was ~0.7 MiB per 15,000 blobs): it is named by its hash.
func (s *segment) name() string {
	if s.what != "" {
		return s.what
	}
	h := s.feed
	if h == ([sha1.Size]byte{}) && s.verify != nil && len(s.verify.hashes) > 0 {
		h = s.verify.hashes[0]
	}
	return fmt.Sprintf("blob %x", h)
}

// File is a synthesised WIM. It is immutable and safe for concurrent use.
type File struct {
	segs []segment
	size int64
	etag string
	name string
	src  *wim.Archive // for Reader's checks; nil in tests that build Files by hand

	verifyOnce sync.Once // File.startVerify
}

var _ io.ReaderAt = (*File)(nil)

// Size returns the size of the synthesised WIM in bytes.
func (f *File) Size() int64 { return f.size }

// ETag returns a strong HTTP entity tag (quoted) for the file's bytes. It is a hash of the
// inputs that determine them (source WIM identity, image, options, overlay contents), so it is
// known without reading any data.
func (f *File) ETag() string { return f.etag }

// Name returns the file's name (Options.Name, or a default derived from the image index).
func (f *File) Name() string { return f.name }

// ReadAt reads len(p) bytes at off from the segments covering them. It checks nothing: serve
// clients through NewReader.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("wimsynth: %s: negative offset %d", f.name, off)
	}
	if off >= f.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if rem := f.size - off; int64(len(p)) > rem {
		p = p[:rem]
	}
	i := sort.Search(len(f.segs), func(i int) bool { return f.segs[i].off+f.segs[i].size > off })
	n := 0
	for n < len(p) {
		s := &f.segs[i]
		at := off + int64(n) - s.off
		part := p[n:min(int64(len(p)), int64(n)+s.size-at)]
		if s.data != nil {
			copy(part, s.data[at:])
		} else if m, err := s.r.ReadAt(part, s.roff+at); m < len(part) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n + m, fmt.Errorf("wimsynth: %s: reading %s at %d: %w", f.name, s.name(), at, err)
		}
		n += len(part)
		i++
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// layout accumulates segments.
type layout struct {
	segs []segment
	pos  int64
}

// add appends a segment and returns its offset in the file; empty segments take no entry.
func (l *layout) add(s segment) int64 {
	off := l.pos
	if s.data != nil {
		s.size = int64(len(s.data))
	}
	if s.size == 0 {
		return off
	}
	s.off = off
	l.segs = append(l.segs, s)
	l.pos += s.size
	return off
}
