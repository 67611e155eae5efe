package lzms

import (
	"encoding/binary"
	"math/bits"
)

// The LZMS compressor rewrites relative addresses in what looks like x86 code (calls,
// RIP-relative LEA/MOV, ...) into absolute ones, which repeat more and so compress better;
// the decoder must undo exactly the same rewrites afterwards. Whether a spot "looks like
// code" is decided by a heuristic that both sides replay on the original (untranslated)
// bytes: a translation is done only within 1023 bytes (511 for CALL) after an instruction
// whose 16-bit target was referenced by another candidate less than 64 KiB earlier.
const (
	x86IDWindow       = 65535
	x86MaxTranslation = 1023
)

// x86Undo holds the "last position that referenced this 16-bit target" table. Instead of
// clearing 64 Ki entries for every chunk, positions are stored relative to a base that
// advances by more than a chunk plus the window each call, which makes every older entry
// look out of the window.
type x86Undo struct {
	lastUse []uint32 // 65536 entries: base + position of the last reference
	base    uint32
	sink    uint32                // keeps the warm-up loads
	masks   [x86Block / 64]uint64 // candidate flags of a block: bit k of masks[j] is byte 64j+k
}

// x86Block is how many positions undo flags at once.
const x86Block = 4096

// x86WarmUses is how many table uses in a chunk make undo warm the table up.
const x86WarmUses = 32

// warm reads one entry per cache line of the table.
func (x *x86Undo) warm() {
	var sink uint32
	t := x.lastUse[:1<<16]
	for i := 0; i < len(t); i += 16 {
		sink |= t[i]
	}
	x.sink = sink
}

const x86BaseStep = 2 << 16

func newX86Undo() x86Undo {
	return x86Undo{lastUse: make([]uint32, 1<<16), base: x86BaseStep}
}

// undo reverses the x86 translation over a whole decoded chunk.
func (x *x86Undo) undo(data []byte) {
	size := len(data)
	if size <= 17 {
		return
	}
	if uint64(x.base)+uint64(size)+2*x86BaseStep > 1<<32-1 {
		clear(x.lastUse)
		x.base = x86BaseStep
	}
	base := int64(x.base) // int64 arithmetic: exact on 32-bit platforms too
	x.base += uint32(size) + x86BaseStep
	lastUse := x.lastUse[:1<<16]

	// The table is read at random and is mostly out of the cache after a chunk's decode
	// (or another decoder's run); each miss would stall the chain of decisions below. A
	// sequential pass (one load per cache line, which the hardware prefetches) brings it
	// back for a fraction of the cost, once the chunk has shown a few candidates that
	// reach the table (text rarely does; wimlib clears its table per chunk instead).
	uses := x86WarmUses

	lastX86 := int64(-x86MaxTranslation - 1)
	end := size - 16 // opcodes start before this; the first byte is never looked at
	masks := &x.masks
	p := 1
	for blk := 0; blk < end; blk += x86Block {
		// Flag the candidate opcodes of the block first (x86Candidates reads up to 15
		// bytes past limit, which are inside data: limit <= end = size-16), then visit
		// the flagged bytes. Translations rewrite only operand bytes, which the scan
		// then skips, so flags computed before them stay right.
		limit := min(blk+x86Block, end)
		x86Candidates(masks, data[blk:], (limit-blk+15)/16)
		for p < limit {
			j := uint(p-blk) >> 6
			w := masks[j&(x86Block/64-1)] >> (uint(p-blk) & 63)
			if w == 0 {
				p = blk + int(j+1)<<6
				continue
			}
			if p += bits.TrailingZeros64(w); p >= limit {
				break
			}
			var n int // opcode bytes before the 32-bit operand
			maxTrans := x86MaxTranslation
			switch data[p] {
			case 0x48, 0x4c:
				// REX.W prefix; LEA or MOV with (roughly) RIP-relative ModR/M.
				op, modrm := data[p+1], data[p+2]
				if modrm&0x07 == 0x05 && (op == 0x8d || (op == 0x8b && data[p]&0x04 == 0 && modrm&0xf0 == 0)) {
					n = 3
				}
			case 0xe8: // CALL rel32: common, so demand more evidence
				n = 1
				maxTrans >>= 1
			case 0xe9: // JMP rel32 is deliberately not translated, but skipped
				p += 5
				continue
			case 0xf0: // LOCK ADD [rip+disp32]
				if data[p+1] == 0x83 && data[p+2] == 0x05 {
					n = 3
				}
			case 0xff: // CALL [rip+disp32]
				if data[p+1] == 0x15 {
					n = 2
				}
			}
			if n == 0 {
				p++
				continue
			}
			if uses--; uses == 0 {
				x.warm()
			}
			// Both decisions below depend on the data and mispredict often as branches;
			// masks make them branch-free.
			i := p
			operand := data[p+n : p+n+4]
			v := binary.LittleEndian.Uint32(operand)
			inRange := uint32(^((int64(maxTrans) - (int64(i) - lastX86)) >> 63)) // all ones when translating
			v -= uint32(i) & inRange
			binary.LittleEndian.PutUint32(operand, v)
			target := uint16(i) + uint16(v)
			i += n + 3
			near := (x86IDWindow - (int64(i) - (int64(lastUse[target]) - base))) >> 63 // 0 when near, -1 when not
			lastX86 = lastX86&near | int64(i)&^near
			lastUse[target] = uint32(base + int64(i))
			p += n + 4
		}
	}
}

// x86Candidates sets the first groups*16 flags of masks (16 per group, in byte order):
// the bytes of data[:groups*16] that may start a translated instruction (0x48, 0x4C,
// 0xE8, 0xE9, 0xF0, 0xFF). It uses SIMD compares where there are some (x86Flags).
func x86Candidates(masks *[x86Block / 64]uint64, data []byte, groups int) {
	if groups < 1 || groups > x86Block/16 || groups*16 > len(data) {
		panic("lzms: x86 candidate scan out of range")
	}
	if haveAsm {
		x86Flags(masks, &data[0], groups)
		return
	}
	x86FlagsGo(masks, data, groups)
}

// x86FlagsGo is x86Candidates in portable Go: exact zero-byte tests on 8 bytes at a time.
func x86FlagsGo(masks *[x86Block / 64]uint64, data []byte, groups int) {
	for g := range groups {
		w := data[16*g : 16*g+16]
		v := packFlags(exactCandidates(binary.LittleEndian.Uint64(w))) |
			packFlags(exactCandidates(binary.LittleEndian.Uint64(w[8:])))<<8
		sh := uint(g&3) * 16
		m := &masks[(g>>2)&(x86Block/64-1)]
		*m = *m&^(0xffff<<sh) | v<<sh
	}
}

// exactCandidates sets bit 7 of each byte of w that is a candidate opcode, and only those.
func exactCandidates(w uint64) uint64 {
	const lo7, hi = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	zero := func(v uint64) uint64 { return ^((v&lo7 + lo7) | v) & hi } // bit 7 set iff byte is 0
	return zero(w&0xfbfbfbfbfbfbfbfb^0x4848484848484848) |             // 0x48, 0x4C
		zero(w&0xfefefefefefefefe^0xe8e8e8e8e8e8e8e8) | // 0xE8, 0xE9
		zero(w^0xf0f0f0f0f0f0f0f0) | zero(^w)
}

// packFlags gathers bit 7 of each byte of m into the low 8 bits (byte k -> bit k).
func packFlags(m uint64) uint64 {
	return (m >> 7) * 0x0102040810204080 >> 56
}
