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

	lastX86 := int64(-x86MaxTranslation - 1)
	end := size - 16 // opcodes start before this; the first byte is never looked at
	sparse := false  // no candidate in the last 16 bytes looked at
	for p := 1; p < end; {
		// Skip eight bytes at a time while none is a candidate opcode (data[p:p+16] is
		// in bounds: p < size-16).
		if sparse && p+32 <= size { // in sparse data, test 32 bytes at once
			w := data[p : p+32]
			if candidateBytes(binary.LittleEndian.Uint64(w))|
				candidateBytes(binary.LittleEndian.Uint64(w[8:]))|
				candidateBytes(binary.LittleEndian.Uint64(w[16:]))|
				candidateBytes(binary.LittleEndian.Uint64(w[24:])) == 0 {
				p += 32
				continue
			}
		}
		m := candidateBytes(binary.LittleEndian.Uint64(data[p:]))
		if m == 0 { // also look at the next eight (in bounds too): fewer loop trips
			if m = candidateBytes(binary.LittleEndian.Uint64(data[p+8:])); m == 0 {
				p += 16
				sparse = true
				continue
			}
			p += 8
		}
		sparse = false
		if p += bits.TrailingZeros64(m) >> 3; p >= end {
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

// candidateBytes flags (bit 7 of each byte) the bytes of w that may start a translated
// instruction: 0x48, 0x4C, 0xE8, 0xE9, 0xF0, 0xFF. The lowest flag is always exact (the
// zero-byte trick can only misflag bytes above a real hit), which is all the scan uses.
func candidateBytes(w uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	v1 := w&0xfbfbfbfbfbfbfbfb ^ 0x4848484848484848 // 0x48, 0x4C
	v2 := w&0xfefefefefefefefe ^ 0xe8e8e8e8e8e8e8e8 // 0xE8, 0xE9
	v3 := w ^ 0xf0f0f0f0f0f0f0f0
	v4 := ^w // 0xFF
	return ((v1-lo)&^v1 | (v2-lo)&^v2 | (v3-lo)&^v3 | (v4-lo)&^v4) & hi
}
