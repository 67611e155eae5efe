package lzx

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

func indexE8(b []byte) int { return bytes.IndexByte(b, 0xE8) }

// decodeBlock decodes the verbatim or aligned block dst[out:end]. It is the hot loop: the bit
// buffer lives in locals, one refill covers a main symbol, a length symbol and up to 17 offset
// bits (16+16+17 <= 49), and only aligned offsets with 14 verbatim bits + an aligned symbol
// may need a second refill.
func (d *Decoder) decodeBlock(br *bitReader, dst []byte, out, end int, aligned bool, r *[3]uint32) (int, error) {
	buf, nbits := br.buf, br.nbits
	mainT, lenT, alignT := &d.mainTable, &d.lenTable, &d.alignedTable
	r0, r1, r2 := r[0], r[1], r[2]
	minAligned := uint32(3)
	if !aligned {
		minAligned = 99
	}
	for out < end {
		if nbits < 49 {
			br.buf, br.nbits = buf, nbits
			br.refill()
			buf, nbits = br.buf, br.nbits
		}
		e := mainT[buf>>(64-mainTableBits)]
		if e&entryPtr != 0 {
			e = mainT[(e>>16)+uint32((buf<<mainTableBits)>>((64-(e>>8)&31)&63))]
		}
		buf <<= e & entryLenMsk
		nbits -= uint(e & entryLenMsk)
		sym := e >> 16
		if sym < numChars {
			dst[out] = byte(sym)
			out++
			continue
		}
		sym -= numChars
		length := sym & 7
		if length == 7 {
			e := lenT[buf>>(64-lenTableBits)]
			if e&entryPtr != 0 {
				e = lenT[(e>>16)+uint32((buf<<lenTableBits)>>((64-(e>>8)&31)&63))]
			}
			buf <<= e & entryLenMsk
			nbits -= uint(e & entryLenMsk)
			length += e >> 16
		}
		length += 2
		slot := sym >> 3
		var off uint32
		switch slot {
		case 0:
			off = r0
		case 1:
			off, r1 = r1, r0
			r0 = off
		case 2:
			off, r2 = r2, r0
			r0 = off
		default:
			extra := slotExtra[slot&63]
			if extra >= minAligned {
				if nbits < 21 {
					br.buf, br.nbits = buf, nbits
					br.refill()
					buf, nbits = br.buf, br.nbits
				}
				v := uint32((buf >> 1) >> ((63 - (extra - 3)) & 63))
				buf <<= (extra - 3) & 63
				nbits -= uint(extra - 3)
				ae := alignT[buf>>(64-alignedBits)]
				buf <<= ae & entryLenMsk
				nbits -= uint(ae & entryLenMsk)
				off = slotBase[slot&63] + v<<3 + ae>>16 - 2
			} else {
				v := uint32((buf >> 1) >> ((63 - extra) & 63))
				buf <<= extra & 63
				nbits -= uint(extra)
				off = slotBase[slot&63] + v - 2
			}
			r0, r1, r2 = off, r0, r1
		}
		if int(length) > end-out {
			return out, fmt.Errorf("lzx: match of length %d at position %d runs past the block end %d", length, out, end)
		}
		if int(off) > out {
			return out, fmt.Errorf("lzx: match offset %d before chunk start at position %d", off, out)
		}
		copyMatch(dst, out, int(off), int(length))
		out += int(length)
	}
	br.buf, br.nbits = buf, nbits
	r[0], r[1], r[2] = r0, r1, r2
	return out, nil
}

// copyMatch copies length bytes from dst[out-off:] to dst[out:], byte-serially in effect
// (later bytes may repeat earlier output). off >= 1 and the match lies within dst.
func copyMatch(dst []byte, out, off, length int) {
	src := out - off
	if out+length+8 <= len(dst) {
		if off >= 8 {
			for n := 0; n < length; n += 8 {
				binary.LittleEndian.PutUint64(dst[out+n:], binary.LittleEndian.Uint64(dst[src+n:]))
			}
			return
		}
		if off == 1 {
			v := uint64(dst[src]) * 0x0101010101010101
			for n := 0; n < length; n += 8 {
				binary.LittleEndian.PutUint64(dst[out+n:], v)
			}
			return
		}
	}
	m := dst[out : out+length]
	s := dst[src : src+length]
	for i := range m {
		m[i] = s[i]
	}
}
