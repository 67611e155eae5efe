package lzx

import (
	"encoding/binary"
)

// bitReader reads the LZX bitstream: 16-bit little-endian words whose bits are consumed from
// the most significant end. buf holds the next nbits bits left-aligned (bits below them are 0).
//
// Refills load whole words: refill (header parsing) up to four at once, the hot loop two at a
// time (fill32). Past the end
// of src, refills load zero words, as wimlib does, so that lookahead near the end is harmless;
// overrun reports whether any of those padding bits were actually consumed, which means the
// input was truncated.
//
// seg is where the current run of words started: the stream restarts word-aligned after an
// uncompressed block, and alignment is relative to that point.
type bitReader struct {
	src   []byte
	buf   uint64
	nbits uint
	pos   int
	seg   int
}

// swapWords turns 4 little-endian bytes pairs, loaded as one little-endian uint64, into
// stream order: first word in the top 16 bits.
func swapWords(v uint64) uint64 {
	v = v<<32 | v>>32
	return (v&0x0000ffff0000ffff)<<16 | (v>>16)&0x0000ffff0000ffff
}

// refill tops buf up to at least 49 bits.
func (br *bitReader) refill() {
	if br.pos+8 <= len(br.src) {
		v := swapWords(binary.LittleEndian.Uint64(br.src[br.pos:]))
		n := (64 - br.nbits) >> 4
		br.buf |= (v &^ (^uint64(0) >> (16 * n))) >> br.nbits
		br.pos += int(2 * n)
		br.nbits += 16 * n
		return
	}
	br.refillSlow()
}

// fillSlow is refillSlow for a bit buffer held in the caller's locals.
//
//go:noinline
func (br *bitReader) fillSlow(buf uint64, nbits uint) (uint64, uint) {
	br.buf, br.nbits = buf, nbits
	br.refillSlow()
	return br.buf, br.nbits
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

// bits reads n <= 32 bits.
func (br *bitReader) bits(n uint) uint32 {
	if br.nbits < n {
		br.refill()
	}
	v := uint32((br.buf >> 1) >> (63 - n))
	br.buf <<= n
	br.nbits -= n
	return v
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

// decode reads one Huffman symbol with a table built by buildTable.
func (br *bitReader) decode(table []uint32, tableBits uint) uint32 {
	if br.nbits < maxCodeLen {
		br.refill()
	}
	e := table[br.buf>>(64-tableBits)]
	if e&entryPtr != 0 {
		e = table[(e>>16)+uint32((br.buf<<tableBits)>>((64-(e>>8)&31)&63))]
	}
	n := uint(e & entryLenMsk)
	br.buf <<= n
	br.nbits -= n
	return e >> 16
}
