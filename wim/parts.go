package wim

import (
	"bytes"
	"fmt"
	"io"
)

// Split sets: a header alone tells which set a file belongs to (GUID), its part number and the
// part count, so the parts of a set can be found among many files without opening them.

// ReadHeader reads and checks the header of the WIM (or split WIM part) in r, size bytes long,
// without reading its tables: for grouping the parts of split sets by GUID and part number.
// A pipable WIM's final header is read, as Open does.
func ReadHeader(r io.ReaderAt, size int64) (Header, error) {
	if size < HeaderSize {
		return Header{}, fmt.Errorf("wim: file of %d bytes is too short for a WIM header", size)
	}
	b := make([]byte, HeaderSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return Header{}, fmt.Errorf("wim: reading header: %w", noEOF(err))
	}
	if bytes.HasPrefix(b, magicPipable[:]) {
		if _, err := r.ReadAt(b, size-HeaderSize); err != nil {
			return Header{}, fmt.Errorf("wim: reading pipable WIM's final header: %w", noEOF(err))
		}
	}
	h, err := parseHeader(b, size)
	if err != nil {
		return Header{}, fmt.Errorf("wim: %w", err)
	}
	return h, nil
}

// MissingPartNumbers lists the part numbers of the split set that were not given to Open, in
// order, at most max of them (max <= 0: all).
func (a *Archive) MissingPartNumbers(max int) []int {
	if a.missingParts == 0 {
		return nil
	}
	have := make(map[uint16]bool, len(a.parts))
	for _, p := range a.parts {
		have[p.hdr.Part] = true
	}
	var out []int
	for n := 1; n <= int(a.parts[0].hdr.TotalParts); n++ {
		if !have[uint16(n)] {
			out = append(out, n)
			if max > 0 && len(out) == max {
				break
			}
		}
	}
	return out
}

// PartHeaders returns the headers of the parts given to Open, by part number (one header for
// a WIM that is not split).
func (a *Archive) PartHeaders() []Header {
	out := make([]Header, len(a.parts))
	for i, p := range a.parts {
		out[i] = p.hdr
	}
	return out
}
