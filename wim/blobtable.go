package wim

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// blobEntrySize is the size of one blob table entry.
const blobEntrySize = 50

// BlobTableEntry is one raw entry of a part's blob table.
type BlobTableEntry struct {
	Resource ResourceHeader // for blobs in solid resources: Offset/Size within the run's data
	Part     uint16
	RefCount uint32
	Hash     [sha1.Size]byte
}

func parseBlobTable(b []byte) ([]BlobTableEntry, error) {
	if len(b)%blobEntrySize != 0 {
		return nil, fmt.Errorf("blob table: size %d is not a multiple of %d", len(b), blobEntrySize)
	}
	out := make([]BlobTableEntry, 0, len(b)/blobEntrySize)
	for off := 0; off < len(b); off += blobEntrySize {
		e := b[off : off+blobEntrySize]
		var ent BlobTableEntry
		ent.Resource = parseResourceHeader(e)
		ent.Part = binary.LittleEndian.Uint16(e[24:])
		ent.RefCount = binary.LittleEndian.Uint32(e[26:])
		copy(ent.Hash[:], e[30:50])
		out = append(out, ent)
	}
	return out, nil
}

// blob is one stored stream, found by SHA-1: a range of a resource's uncompressed data.
type blob struct {
	entry BlobTableEntry
	hash  [sha1.Size]byte
	size  int64
	res   *resource
	off   int64 // offset in res's uncompressed data (nonzero only in solid resources)

	// verified holds the CRC-32C of each checkBlock of the data once a full read has matched
	// the SHA-1: later full reads compare those (about 15x cheaper than SHA-1). See File.
	verified atomic.Pointer[[]uint32]
	verifyMu sync.Mutex // Archive.VerifyBlob decodes a blob once at a time
}

func (b *blob) String() string {
	return fmt.Sprintf("blob %s (%d bytes, %v)", hex.EncodeToString(b.hash[:]), b.size, b.res)
}

// readAt reads the blob's bytes [off, off+len(p)).
func (b *blob) readAt(p []byte, off int64, pin *chunkPin) (int, error) {
	if off >= b.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	short := false
	if int64(len(p)) > b.size-off {
		p = p[:b.size-off]
		short = true
	}
	n, err := b.res.readAt(p, b.off+off, pin)
	if err == nil && short {
		err = io.EOF
	}
	if err == io.EOF && n < len(p) {
		err = fmt.Errorf("%v: %w", b, io.ErrUnexpectedEOF)
	}
	return n, err
}

// addBlobTable adds the entries of one part's blob table to the archive: blobs by hash,
// metadata resources in order, solid runs resolved to their resources.
func (a *Archive) addBlobTable(p *part, entries []BlobTableEntry) error {
	var run solidRun
	for i, e := range entries {
		where := func() string { return fmt.Sprintf("blob table entry %d (part %d)", i, p.hdr.Part) }
		h := e.Resource
		if h.Flags&ResFlagFree != 0 {
			continue
		}
		if h.Flags&ResFlagSolid != 0 {
			if p.hdr.Version != VersionSolid {
				return fmt.Errorf("%s: solid resource in a version %#x WIM", where(), p.hdr.Version)
			}
			if h.Size == solidResourceMagic {
				if len(run.blobs) > 0 {
					if err := a.finishSolidRun(&run); err != nil {
						return err
					}
				}
				r, err := a.resourceAt(p, h, newSolidResource)
				if err != nil {
					return fmt.Errorf("%s: %w", where(), err)
				}
				run.resources = append(run.resources, r)
				continue
			}
			if len(run.resources) == 0 {
				return fmt.Errorf("%s: blob in a solid resource, but no solid resource before it", where())
			}
			// A blob in a solid resource keeps its size in the size-in-WIM field.
			if e.Part != p.hdr.Part || h.SizeInWIM == 0 {
				continue
			}
			run.blobs = append(run.blobs, e)
			continue
		}
		if len(run.blobs) > 0 || len(run.resources) > 0 {
			if err := a.finishSolidRun(&run); err != nil {
				return err
			}
		}
		if e.Part != p.hdr.Part {
			continue
		}
		if h.Flags&ResFlagMetadata != 0 {
			if e.RefCount == 0 {
				continue // WAIK WinPE images carry unreferenced metadata entries
			}
			r, err := a.resourceAt(p, h, newResource)
			if err != nil {
				return fmt.Errorf("%s: metadata %w", where(), err)
			}
			a.metadata = append(a.metadata, &blob{entry: e, hash: e.Hash, size: h.Size, res: r})
			continue
		}
		if h.Size == 0 || e.Hash == ([sha1.Size]byte{}) {
			continue
		}
		r, err := a.resourceAt(p, h, newResource)
		if err != nil {
			return fmt.Errorf("%s: %w", where(), err)
		}
		a.addBlob(&blob{entry: e, hash: e.Hash, size: h.Size, res: r})
	}
	return a.finishSolidRun(&run)
}

func (a *Archive) addBlob(b *blob) {
	if _, dup := a.blobs[b.hash]; dup {
		return
	}
	a.blobs[b.hash] = b
	a.blobOrder = append(a.blobOrder, b)
}

// solidRun collects consecutive solid resource entries and the blob entries that follow them;
// blob offsets count from the start of the run's resources' concatenated data.
type solidRun struct {
	resources []*resource
	blobs     []BlobTableEntry
}

func (a *Archive) finishSolidRun(run *solidRun) error {
	defer func() { *run = solidRun{} }()
	if len(run.blobs) == 0 {
		return nil
	}
	starts := make([]int64, len(run.resources)+1)
	for i, r := range run.resources {
		starts[i+1] = starts[i] + r.size
	}
	for _, e := range run.blobs {
		off, size := e.Resource.Offset, e.Resource.SizeInWIM
		k := 0
		for k < len(run.resources) && off >= starts[k+1] {
			k++
		}
		if k == len(run.resources) || size > starts[k+1]-off {
			return fmt.Errorf("blob %x: %d bytes at offset %d do not fit inside one solid resource",
				e.Hash, size, off)
		}
		if e.Hash == ([sha1.Size]byte{}) {
			continue
		}
		a.addBlob(&blob{entry: e, hash: e.Hash, size: size, res: run.resources[k], off: off - starts[k]})
	}
	return nil
}

// readAll reads the whole blob, growing the buffer as data is actually decoded so that a
// resource lying about its size costs no more memory than the data behind it.
func (b *blob) readAll() ([]byte, error) {
	const step = 1 << 20
	var buf []byte
	for off := int64(0); off < b.size; {
		n := min(step, b.size-off)
		if int64(cap(buf)-len(buf)) < n {
			nb := make([]byte, len(buf), min(b.size, max(2*int64(cap(buf)), int64(len(buf))+n)))
			copy(nb, buf)
			buf = nb
		}
		got, err := b.readAt(buf[len(buf):len(buf)+int(n)], off, nil)
		if err != nil && !(err == io.EOF && int64(got) == n) {
			return nil, err
		}
		buf = buf[:len(buf)+got]
		off += int64(got)
	}
	return buf, nil
}

// resourceAt returns the resource stored at h.Offset in part p, making it on first use. Blob
// table entries sharing an offset share one resource (and its cached chunks, which are keyed by
// offset); entries that disagree about the resource there are rejected.
func (a *Archive) resourceAt(p *part, h ResourceHeader, mk func(*Archive, *part, ResourceHeader) (*resource, error)) (*resource, error) {
	k := resKey{p.id, h.Offset}
	if r, ok := a.resources[k]; ok {
		const kind = ResFlagCompressed | ResFlagSolid
		if r.hdr.SizeInWIM != h.SizeInWIM || r.hdr.Size != h.Size || r.hdr.Flags&kind != h.Flags&kind {
			return nil, fmt.Errorf("two different resources claim offset %#x", h.Offset)
		}
		return r, nil
	}
	r, err := mk(a, p, h)
	if err != nil {
		return nil, err
	}
	if a.resources == nil {
		a.resources = map[resKey]*resource{}
	}
	a.resources[k] = r
	return r, nil
}

type resKey struct {
	part   uint64
	offset int64
}
