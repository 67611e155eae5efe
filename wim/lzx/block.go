package lzx

import (
	"bytes"
	"fmt"
	"math/bits"

	"github.com/pxewim/pxewim/wim/internal/lz"
)

func indexE8(b []byte) int { return bytes.IndexByte(b, 0xE8) }

// decodeBlock decodes the verbatim or aligned block dst[out:end]. It is the hot loop: the bit
// buffer lives in locals and gets 32 bits whenever it holds fewer than 32, which covers a main
// symbol and a length symbol (16+16); a match checks again before its offset bits (at most
// 17, or 14 + a 7-bit aligned symbol).
func (d *Decoder) decodeBlock(br *bitReader, dst []byte, out, end int, aligned bool, r *[3]uint32) (int, error) {
	// Only the bit buffer and the output position live in registers; the rest is read
	// through d as needed (Go's register allocator otherwise spills inside the loop).
	d.dst, d.end = dst, end // Decompress clears d.dst
	buf, nbits := br.buf, br.nbits
	mainT, lenT, alignT := &d.mainTable, &d.lenTable, &d.alignedTable
	// rq[3] is scratch so that the repeat-offset swap can index with slot&3.
	rq := [4]uint32{r[0], r[1], r[2], 0}
	minAligned := uint32(3)
	if !aligned {
		minAligned = 99
	}
	src, pos := br.src, br.pos // the input position in a register too
	for out < d.end {
		if nbits < 32 {
			// Two words (32 bits) from one 32-bit load; a rotate puts them in stream order.
			if pos+4 <= len(src) {
				w := bits.RotateLeft32(lz.Load32LE(src, pos), 16) // pos+4 <= len(src)
				pos += 4
				buf |= uint64(w) << ((32 - nbits) & 63)
				nbits += 32
			} else {
				br.pos = pos
				buf, nbits = br.fillSlow(buf, nbits)
				pos = br.pos
			}
		}
		e := mainT[buf>>(64-mainTableBits)]
		if e&entryPtr != 0 {
			e = mainT[(e>>16)+uint32((buf<<mainTableBits)>>((64-(e>>8)&31)&63))]
		}
		buf <<= e & 63
		nbits -= uint(e & entryLenMsk)
		sym := e >> 16
		if sym < numChars {
			lz.Store8(d.dst, out, byte(sym)) // out < end <= len(dst)
			out++
			// Literals come in runs: the buffer still holds >= 33 bits, enough to take
			// a second literal here without the refill check (a match goes round).
			if e := mainT[buf>>(64-mainTableBits)]; e>>16 < numChars && e&entryPtr == 0 && out < d.end {
				buf <<= e & 63
				nbits -= uint(e & entryLenMsk)
				lz.Store8(d.dst, out, byte(e>>16))
				out++
			}
			continue
		}
		sym -= numChars
		length := sym & 7
		if length == 7 {
			e := lenT[buf>>(64-lenTableBits)]
			if e&entryPtr != 0 {
				e = lenT[(e>>16)+uint32((buf<<lenTableBits)>>((64-(e>>8)&31)&63))]
			}
			buf <<= e & 63
			nbits -= uint(e & entryLenMsk)
			length += e >> 16
		}
		length += 2
		slot := sym >> 3
		if nbits < 21 { // up to 17 extra bits, or 14 + an aligned symbol (7)
			if pos+4 <= len(src) {
				w := bits.RotateLeft32(lz.Load32LE(src, pos), 16) // pos+4 <= len(src)
				pos += 4
				buf |= uint64(w) << ((32 - nbits) & 63)
				nbits += 32
			} else {
				br.pos = pos
				buf, nbits = br.fillSlow(buf, nbits)
				pos = br.pos
			}
		}
		var off uint32
		if slot < 3 {
			// Repeat offset: swap R[slot] with R0 (not a true LRU, as the format says).
			off = rq[slot&3]
			rq[slot&3] = rq[0]
			rq[0] = off
		} else {
			extra := slotExtra[slot&63]
			if extra >= minAligned {
				v := uint32((buf >> 1) >> ((63 - (extra - 3)) & 63))
				buf <<= (extra - 3) & 63
				nbits -= uint(extra - 3)
				ae := alignT[buf>>(64-alignedBits)]
				buf <<= ae & 63
				nbits -= uint(ae & entryLenMsk)
				off = slotBase[slot&63] + v<<3 + ae>>16 - 2
			} else {
				v := uint32((buf >> 1) >> ((63 - extra) & 63))
				buf <<= extra & 63
				nbits -= uint(extra)
				off = slotBase[slot&63] + v - 2
			}
			rq[2], rq[1], rq[0] = rq[1], rq[0], off
		}
		if int(length) > d.end-out {
			return out, fmt.Errorf("lzx: match of length %d at position %d runs past the block end %d", length, out, end)
		}
		if int(off) > out {
			return out, fmt.Errorf("lzx: match offset %d before chunk start at position %d", off, out)
		}
		if n, from := int(length), out-int(off); n <= 24 && off >= 8 && out+24 <= len(d.dst) {
			// Short match (most of them): three word copies, no loop (wimlib's fast path).
			lz.Store64(d.dst, out, lz.Load64(d.dst, from))
			lz.Store64(d.dst, out+8, lz.Load64(d.dst, from+8))
			lz.Store64(d.dst, out+16, lz.Load64(d.dst, from+16))
		} else if out+n+8 > len(d.dst) || off-2 < 6 {
			lz.CopyMatch(d.dst, out, int(off), n) // near the end, or offsets 2-7
		} else if off >= 8 {
			// Word copies: a word never overlaps its source, and the up to 7 extra
			// bytes land inside dst, later overwritten.
			for i := 0; i < n; i += 8 {
				lz.Store64(d.dst, out+i, lz.Load64(d.dst, from+i))
			}
		} else { // offset 1: a run of the previous byte (zero padding in binaries)
			v := uint64(d.dst[from]) * 0x0101010101010101
			for i := 0; i < n; i += 8 {
				lz.Store64(d.dst, out+i, v)
			}
		}
		out += int(length)
	}
	br.buf, br.nbits, br.pos = buf, nbits, pos
	r[0], r[1], r[2] = rq[0], rq[1], rq[2]
	return out, nil
}
