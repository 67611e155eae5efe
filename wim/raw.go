package wim

import (
	"crypto/sha1"
	"fmt"
	"io"
	"iter"
)

// Raw access to stored resources, for tools that write new WIMs from an existing one (export
// of one image, injection of files) by copying compressed resources unchanged: a non-solid
// blob's stored bytes (chunk table + chunks) can be copied into another WIM of the same
// compression and chunk size with a new offset in its ResourceHeader; a blob in a solid
// resource must be copied together with the whole solid resource (and all blob entries of
// it), or decoded with OpenBlob and recompressed.

// BlobInfo describes where and how one blob is stored.
type BlobInfo struct {
	Hash     [sha1.Size]byte
	Size     int64          // uncompressed size of the blob
	Entry    BlobTableEntry // the blob's entry in its part's blob table, as stored
	Part     int            // part number holding it
	Metadata bool           // an image's metadata resource

	// The stored resource holding the blob. For a non-solid blob this is Entry.Resource; for a
	// blob in a solid resource it is the solid resource's own entry, and the blob occupies
	// [OffsetInResource, OffsetInResource+Size) of its uncompressed data.
	Resource         ResourceHeader
	Solid            bool
	OffsetInResource int64
	Compression      Compression // format of the stored chunks (None: stored as is)
	ChunkSize        int64       // 0 when not chunked
}

func (b *blob) info(metadata bool) BlobInfo {
	r := b.res
	bi := BlobInfo{Hash: b.hash, Size: b.size, Entry: b.entry, Part: int(r.part.hdr.Part),
		Metadata: metadata, Resource: r.hdr, Solid: r.solid, OffsetInResource: b.off}
	if r.chunked {
		bi.Compression, bi.ChunkSize = r.codec, r.chunkSize
	}
	return bi
}

// Blob describes the blob with the given SHA-1.
func (a *Archive) Blob(hash [sha1.Size]byte) (BlobInfo, bool) {
	b, ok := a.blobs[hash]
	if !ok {
		return BlobInfo{}, false
	}
	return b.info(false), true
}

// Blobs yields every data blob (not metadata) in blob table order.
func (a *Archive) Blobs() iter.Seq[BlobInfo] {
	return func(yield func(BlobInfo) bool) {
		for _, b := range a.blobOrder {
			if !yield(b.info(false)) {
				return
			}
		}
	}
}

// MetadataBlob describes image index's metadata resource.
func (a *Archive) MetadataBlob(index int) (BlobInfo, error) {
	if index < 1 || index > len(a.metadata) {
		return BlobInfo{}, fmt.Errorf("wim: image %d: %w", index, ErrNoImage)
	}
	return a.metadata[index-1].info(true), nil
}

// RawResource returns the stored bytes of the resource holding a blob, exactly as in the WIM
// file (for chunked resources: chunk table and compressed chunks; for solid resources: the
// solid header, sizes and chunks).
func (a *Archive) RawResource(bi BlobInfo) (*io.SectionReader, error) {
	var p *part
	for _, q := range a.parts {
		if int(q.hdr.Part) == bi.Part {
			p = q
		}
	}
	if p == nil {
		return nil, fmt.Errorf("wim: blob %x: part %d was not opened", bi.Hash, bi.Part)
	}
	h := bi.Resource
	if h.Offset > p.size || h.SizeInWIM > p.size-h.Offset {
		return nil, fmt.Errorf("wim: blob %x: resource extends past the end of part %d", bi.Hash, bi.Part)
	}
	return io.NewSectionReader(p.r, h.Offset, h.SizeInWIM), nil
}

// BlobReader reads a blob's uncompressed data through the chunk cache.
type BlobReader struct{ b *blob }

// OpenBlob returns a reader of the decoded blob (data or metadata) with the given SHA-1.
func (a *Archive) OpenBlob(hash [sha1.Size]byte) (*BlobReader, error) {
	if b, ok := a.blobs[hash]; ok {
		return &BlobReader{b}, nil
	}
	for _, b := range a.metadata {
		if b.hash == hash {
			return &BlobReader{b}, nil
		}
	}
	return nil, fmt.Errorf("wim: blob %x is not in the WIM", hash)
}

// ReadAt reads decoded bytes of the blob.
func (r *BlobReader) ReadAt(p []byte, off int64) (int, error) { return r.b.readAt(p, off, nil) }

// Size is the blob's uncompressed size.
func (r *BlobReader) Size() int64 { return r.b.size }
