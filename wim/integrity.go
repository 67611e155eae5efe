package wim

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
)

// checkIntegrity checks the integrity table of every part that has one: SHA-1s of the file
// from the end of the header to the end of the blob table, in fixed-size chunks.
func (a *Archive) checkIntegrity(ctx context.Context) error {
	for _, p := range a.parts {
		if err := p.checkIntegrity(ctx); err != nil {
			return fmt.Errorf("wim: part %d: integrity table: %w", p.hdr.Part, err)
		}
	}
	return nil
}

// HasIntegrity reports whether the WIM (part 1) has an integrity table.
func (a *Archive) HasIntegrity() bool {
	return a.hdr.Integrity.Offset != 0 && a.hdr.Integrity.Size != 0
}

func (p *part) checkIntegrity(ctx context.Context) error {
	ih := p.hdr.Integrity
	if ih.Offset == 0 || ih.Size == 0 {
		return nil
	}
	if ih.Size < 12 || ih.Size > ih.SizeInWIM {
		return fmt.Errorf("size %d is invalid", ih.Size)
	}
	tbl := make([]byte, ih.Size)
	if _, err := p.r.ReadAt(tbl, ih.Offset); err != nil {
		return fmt.Errorf("reading: %w", noEOF(err))
	}
	le := binary.LittleEndian
	size, n, chunk := int64(le.Uint32(tbl)), int64(le.Uint32(tbl[4:])), int64(le.Uint32(tbl[8:]))
	if size != ih.Size || n != (size-12)/sha1.Size || 12+n*sha1.Size != size {
		return fmt.Errorf("header (size %d, %d entries) does not match its %d bytes", size, n, ih.Size)
	}
	end := p.hdr.BlobTable.Offset + p.hdr.BlobTable.SizeInWIM
	if end < HeaderSize || end > p.size {
		return fmt.Errorf("blob table end %#x is outside the file", end)
	}
	if chunk == 0 || (end-HeaderSize+chunk-1)/chunk != n {
		return fmt.Errorf("%d entries of %d bytes do not cover the %d checked bytes", n, chunk, end-HeaderSize)
	}
	buf := make([]byte, min(chunk, 16<<20))
	for i := int64(0); i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := HeaderSize + i*chunk
		stop := min(start+chunk, end)
		h := sha1.New()
		for pos := start; pos < stop; {
			m := min(int64(len(buf)), stop-pos)
			if _, err := p.r.ReadAt(buf[:m], pos); err != nil {
				return fmt.Errorf("reading chunk %d: %w", i, noEOF(err))
			}
			h.Write(buf[:m])
			pos += m
		}
		if !bytes.Equal(h.Sum(nil), tbl[12+i*sha1.Size:12+(i+1)*sha1.Size]) {
			return fmt.Errorf("chunk %d (bytes %#x-%#x) does not match: %w", i, start, stop, ErrChecksum)
		}
	}
	return nil
}
