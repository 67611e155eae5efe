package wim

import (
	"fmt"
)

// Pipable WIMs (wimlib's "WLPWM" format, written by wimlib-imagex capture --pipable) can be
// written to and read from a pipe: every resource is preceded by a 40-byte blob header (magic,
// uncompressed size, SHA-1, flags), every compressed chunk by a 4-byte size, and the chunk table
// of a compressed resource follows its chunks. The header at the start of the file is written
// before the tables are known; the complete header is the last 208 bytes of the file. Resource
// headers point just past the blob header.

const (
	pipableBlobHeaderSize  = 40
	pipableChunkHeaderSize = 4
	pipableBlobMagic       = 0x2B9B9BA2443DB9D8
)

// loadPipableTable reads a pipable resource's chunk table from its end. Entries are offsets of
// chunks 1..n-1 from the resource start, not counting the chunk size headers; decodeChunk adds
// those back.
func (r *resource) loadPipableTable() error {
	n := r.chunks()
	if n == 0 {
		return fmt.Errorf("%v: compressed resource of size 0", r)
	}
	width := int64(4)
	if r.size > 0xFFFFFFFF {
		width = 8
	}
	tableSize := (n - 1) * width
	if n > maxChunkTableEntries || tableSize+n*pipableChunkHeaderSize > r.hdr.SizeInWIM {
		return fmt.Errorf("%v: pipable chunk table for %d chunks does not fit in %d stored bytes", r, n, r.hdr.SizeInWIM)
	}
	table := make([]byte, tableSize)
	if _, err := r.part.r.ReadAt(table, r.hdr.Offset+r.hdr.SizeInWIM-tableSize); err != nil {
		return fmt.Errorf("%v: reading chunk table: %w", r, noEOF(err))
	}
	dataSize := r.hdr.SizeInWIM - tableSize - n*pipableChunkHeaderSize
	offs, err := parseChunkTable(table, n, width, dataSize)
	if err != nil {
		return fmt.Errorf("%v: %w", r, err)
	}
	for i := range offs {
		offs[i] += r.hdr.Offset
	}
	r.offs = offs
	return r.checkOffsets()
}
