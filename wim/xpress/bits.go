package xpress

import "encoding/binary"

// bitReader reads the XPRESS bitstream: 16-bit little-endian words whose bits are consumed from
// the most significant end. buf holds the next nbits bits left-aligned (bits below them are 0).
//
// Refills load whole words (the hot loop in xpress.go two at a time). Past the end
// of src, refills load zero words, as wimlib does, so that lookahead near the end is harmless;
// overrun reports whether any of those padding bits were actually consumed, which means the
// input was truncated.
//
// seg is where the current run of words started: literal bytes embedded in the stream (long
// match lengths) move the word sequence, and overrun counts from there.
type bitReader struct {
	src   []byte
	buf   uint64
	nbits uint
	pos   int
	seg   int
}

// refillSlow loads one word at a time near the end of the input, zeros past it.
func (br *bitReader) refillSlow() {
	for br.nbits <= 48 {
		var w uint64
		if br.pos+2 <= len(br.src) {
			w = uint64(binary.LittleEndian.Uint16(br.src[br.pos:]))
		}
		br.buf |= w << (48 - br.nbits)
		br.pos += 2
		br.nbits += 16
	}
}

// consumed is the number of bits consumed since the start of the current word run.
func (br *bitReader) consumed() int {
	return (br.pos-br.seg)*8 - int(br.nbits)
}

// overrun reports whether the bits consumed so far reach past the end of src.
func (br *bitReader) overrun() bool {
	real := len(br.src) - br.seg
	if real < 0 {
		real = 0
	}
	return br.consumed() > real/2*16
}
