// Package xpress decodes and encodes the XPRESS chunks of WIM resources ("LZ77+Huffman" in
// Microsoft's MS-XCA). The Encoder (compress.go, design notes there) is a fast hash-chain,
// lazy-parsing compressor that pxewim uses to transcode WIMs for boot loaders.
//
// # Format
//
// Each chunk (at most 64 KiB) is independent. It starts with 256 bytes holding 512 4-bit
// codeword lengths (byte i: symbol 2i in the low nibble, 2i+1 in the high one) of one
// canonical Huffman code, followed by a bitstream of 16-bit little-endian words read from the
// most significant bit. Symbols 0-255 are literals. Symbol 256+s is a match: s&15 is a length
// header, s>>4 the number of offset bits; offset = 1<<(s>>4) | those bits. A length header of
// 15 continues with a byte embedded in the stream (and, if that byte is 255, a 16-bit length),
// then 3 is added.
//
// The embedded bytes are read at "the byte after the last 16-bit word loaded", and what has
// been loaded is defined by the reference decoder: it keeps 16 to 31 bits buffered once it has
// made sure of 16 bits for the offset. A decoder that buffers more must give the surplus words
// back before reading those bytes; Decompress does, at that (rare) point only.
//
// # Design
//
// Table-driven Huffman decoding: an 11-bit first-level table whose entries hold symbol and
// codeword length, with subtables for the rare longer codewords (see huffman.go). A 64-bit bit
// buffer gets two words (one 32-bit load and a rotate) whenever it holds fewer than 31 bits,
// enough for a symbol and its offset bits, and the inner loop never checks for the end of
// input: past the end it reads zeros, and the decoder reports truncation afterwards if any of
// those were consumed. Matches are validated before the copy, which moves 8 bytes at a time
// when the source is at least 8 bytes back (offset 1 is a byte fill).
// The Decoder keeps its tables, so steady-state decoding allocates nothing.
//
// # Hostile input
//
// Matches are checked before copying (offset within the output so far, length within the
// chunk) and codes must be complete, except the all-zero code, which wimlib accepts (it
// decodes symbol 0 without consuming bits) and so does this decoder. Unlike wimlib, which
// reads zeros past the end of the input, the decoder reports "truncated" when it needed them.
package xpress

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/pxewim/pxewim/wim/internal/lz"
)

const (
	numSyms   = 512
	tableBits = 11
	maxLen    = 15
	minMatch  = 3
	maxChunk  = 65536
	tableSz   = 2048 + (numSyms/5+1)<<4 // tableSize(numSyms, tableBits, maxLen)
)

// Decoder decodes XPRESS chunks; it keeps scratch tables between calls and is not safe for
// concurrent use (use one per goroutine, e.g. from a sync.Pool).
type Decoder struct {
	chunkSize int
	dst       []byte // output being decoded (decode)
	lens      [numSyms]uint8
	sorted    [numSyms]uint16
	table     [tableSz]uint32
}

// NewDecoder returns a decoder for chunks of at most chunkSize uncompressed bytes (XPRESS
// offsets reach back at most 65535 bytes, so at most 64 KiB).
func NewDecoder(chunkSize int) (*Decoder, error) {
	if chunkSize <= 0 || chunkSize > maxChunk {
		return nil, fmt.Errorf("xpress: unsupported chunk size %d (want 1 to %d)", chunkSize, maxChunk)
	}
	return &Decoder{chunkSize: chunkSize}, nil
}

// Decompress decodes src into dst; len(dst) is the chunk's exact uncompressed size.
func (d *Decoder) Decompress(dst, src []byte) error {
	if len(dst) > d.chunkSize {
		return fmt.Errorf("xpress: output size %d exceeds the chunk size %d", len(dst), d.chunkSize)
	}
	if len(dst) == 0 {
		return nil
	}
	if len(src) < numSyms/2 {
		return fmt.Errorf("xpress: %d bytes of input, shorter than the %d-byte code length table", len(src), numSyms/2)
	}
	for i, b := range src[:numSyms/2] {
		d.lens[2*i] = b & 15
		d.lens[2*i+1] = b >> 4
	}
	if err := buildTable(d.table[:], d.lens[:], tableBits, maxLen, d.sorted[:]); err != nil {
		return fmt.Errorf("xpress: %w", err)
	}
	br := bitReader{src: src, pos: numSyms / 2, seg: numSyms / 2}
	out, err := d.decode(&br, dst)
	if err != nil {
		return err
	}
	if br.overrun() {
		return fmt.Errorf("xpress: compressed data truncated (%d bytes) before position %d", len(src), out)
	}
	return nil
}

// decode is the hot loop. Refilling (32 bits at a time) below 31 bits leaves >= 16 bits after
// any symbol, which readLength relies on, and covers its offset bits (15+15). Only the bit buffer and the output
// position live in registers; src stays in br and dst in d (Go's register allocator otherwise
// spills inside the loop).
func (d *Decoder) decode(br *bitReader, dst []byte) (int, error) {
	d.dst = dst
	defer func() { d.dst = nil }() // do not keep the caller's buffer alive in a pooled Decoder
	buf, nbits := br.buf, br.nbits
	table := &d.table
	src, pos := br.src, br.pos
	out := 0
	for out < len(d.dst) {
		if nbits < 31 {
			// Add two words with one 32-bit load; a rotate puts them in stream order.
			if pos+4 <= len(src) {
				w := bits.RotateLeft32(lz.Load32LE(src, pos), 16) // pos+4 <= len(src)
				pos += 4
				buf |= uint64(w) << ((32 - nbits) & 63)
				nbits += 32
			} else {
				br.buf, br.nbits, br.pos = buf, nbits, pos
				br.refillSlow()
				buf, nbits, pos = br.buf, br.nbits, br.pos
			}
		}
		e := table[buf>>(64-tableBits)]
		if e&entryPtr != 0 {
			e = table[(e>>16)+uint32((buf<<tableBits)>>((64-(e>>8)&31)&63))]
		}
		buf <<= e & 63
		nbits -= uint(e & entryLenMsk)
		sym := e >> 16
		if sym < 256 {
			lz.Store8(d.dst, out, byte(sym)) // out < len(dst)
			out++
			continue
		}
		length := sym & 15
		log2 := (sym >> 4) & 15
		surplus := nbits/16 - 1 // words buffered beyond the reference decoder's 16..31 bits
		off := int(1<<log2 | uint32((buf>>1)>>((63-log2)&63)))
		buf <<= log2
		nbits -= uint(log2)
		if length == 15 {
			br.buf, br.nbits, br.pos = buf, nbits, pos
			n, err := br.readLength(surplus, out)
			if err != nil {
				return out, err
			}
			buf, nbits, pos = br.buf, br.nbits, br.pos
			length = n
		}
		length += minMatch
		if off > out {
			return out, fmt.Errorf("xpress: match offset %d before chunk start at position %d", off, out)
		}
		if int(length) > len(d.dst)-out {
			return out, fmt.Errorf("xpress: match of length %d at position %d runs past the chunk end %d", length, out, len(d.dst))
		}
		if n, from := int(length), out-off; n <= 24 && off >= 8 && out+24 <= len(d.dst) {
			// Short match (most of them): three word copies, no loop (wimlib's fast path).
			lz.Store64(d.dst, out, lz.Load64(d.dst, from))
			lz.Store64(d.dst, out+8, lz.Load64(d.dst, from+8))
			lz.Store64(d.dst, out+16, lz.Load64(d.dst, from+16))
		} else if out+n+8 > len(d.dst) || uint(off-2) < 6 {
			lz.CopyMatch(d.dst, out, off, n) // near the end, or offsets 2-7
		} else if off >= 8 {
			// Word copies: a word never overlaps its source, and the up to 7 extra
			// bytes land inside dst, later overwritten.
			for i := 0; i < n; i += 8 {
				lz.Store64(d.dst, out+i, lz.Load64(d.dst, from+i))
			}
		} else { // offset 1: a run of the previous byte
			v := uint64(d.dst[from]) * 0x0101010101010101
			for i := 0; i < n; i += 8 {
				lz.Store64(d.dst, out+i, v)
			}
		}
		out += int(length)
	}
	br.buf, br.nbits, br.pos = buf, nbits, pos
	return out, nil
}

// readLength gives back the surplus buffered words, then reads the embedded length byte (and
// 16-bit length after a 255) that follow them; it returns the length minus 3.
func (br *bitReader) readLength(surplus uint, out int) (uint32, error) {
	br.pos -= int(2 * surplus)
	br.nbits -= 16 * surplus
	br.buf &^= ^uint64(0) >> br.nbits
	p := br.pos
	if p >= len(br.src) {
		return 0, fmt.Errorf("xpress: compressed data truncated at the length byte of the match at position %d", out)
	}
	n := 15 + uint32(br.src[p])
	p++
	if n == 15+255 {
		if p+2 > len(br.src) {
			return 0, fmt.Errorf("xpress: compressed data truncated in the 16-bit length of the match at position %d", out)
		}
		n = uint32(binary.LittleEndian.Uint16(br.src[p:]))
		p += 2
	}
	br.pos, br.seg = p, p
	return n, nil
}
