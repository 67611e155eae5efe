// Package huffman builds the two-level canonical-Huffman decode tables shared by the XPRESS and
// LZX decoders (both use the same canonical code construction and the same lookup scheme; only
// the bit readers around them differ, and those stay in each codec for speed).
package huffman

import "errors"

// Decode table entries are uint32s:
//
//	bits 0-4   codeword length in bits (leaf) — what the decoder consumes
//	bits 8-12  subtable index bits (pointer entries only)
//	bit  15    pointer flag: the entry points to a subtable
//	bits 16-31 symbol (leaf) or first index of the subtable (pointer)
//
// The first 1<<tableBits entries are indexed by the next tableBits bits of input. A codeword of
// length l <= tableBits fills 1<<(tableBits-l) consecutive entries; since codes are canonical
// (assigned in order of length, then symbol), these ranges simply follow one another from index
// 0. Each remaining first-level entry is the prefix of longer codewords and points to a subtable
// indexed by the following subBits bits; its leaves store the full codeword length so that a
// decode is always "look up, maybe look up again, consume e&31 bits".
const (
	EntryPtr     = 1 << 15
	EntryLenMask = 31
	MaxCodeLen   = 16
)

var (
	ErrOversubscribed = errors.New("over-subscribed Huffman code")
	ErrIncomplete     = errors.New("incomplete Huffman code")
)

// TableSize bounds the entries a decode table needs: a subtable with s index bits holds at least
// s+1 symbols (a complete subtree with a leaf at depth s), so numSyms symbols can fill at most
// numSyms/(S+1)+1 maximal subtables of 1<<S entries, S = maxLen-tableBits.
func TableSize(numSyms int, tableBits, maxLen uint) int {
	if maxLen <= tableBits {
		return 1 << tableBits
	}
	s := maxLen - tableBits
	return 1<<tableBits + (numSyms/int(s+1)+1)<<s
}

// BuildTable fills table from the codeword lengths lens (each <= maxLen <= MaxCodeLen). An
// all-zero code is accepted, as in wimlib: every lookup then yields symbol 0 and consumes no
// bits. sorted is scratch space of len(lens) entries.
func BuildTable(table []uint32, lens []uint8, tableBits, maxLen uint, sorted []uint16) error {
	var count [MaxCodeLen + 1]int
	for _, l := range lens {
		if uint(l) > maxLen {
			return ErrOversubscribed
		}
		count[l]++
	}
	left := 1
	for l := uint(1); l <= maxLen; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return ErrOversubscribed
		}
	}
	if left != 0 {
		if left != 1<<maxLen {
			return ErrIncomplete
		}
		direct := table[:1<<tableBits]
		for i := range direct {
			direct[i] = 0
		}
		return nil
	}
	var offs [MaxCodeLen + 2]int
	for l := uint(1); l <= maxLen; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	i, pos := 0, 0
	l := uint(1)
	for ; l <= tableBits && l <= maxLen; l++ {
		step := 1 << (tableBits - l)
		for c := count[l]; c > 0; c-- {
			fill(table[pos:pos+step], uint32(sorted[i])<<16|uint32(l))
			pos += step
			i++
		}
	}
	if pos == 1<<tableBits {
		return nil
	}
	// Long codewords: each remaining first-level slot, in order, is the prefix of the next
	// codewords in canonical order; its subtable is just big enough for them.
	next, prefix := 1<<tableBits, pos
	var subBits uint
	code, subStart, subSize := 0, 0, 0
	for ; l <= maxLen; l++ {
		for count[l] > 0 {
			if code == subSize {
				subBits = l - tableBits
				space := 1 << subBits
				for {
					space -= count[tableBits+subBits]
					if space <= 0 {
						break
					}
					subBits++
					if tableBits+subBits > maxLen {
						return ErrIncomplete
					}
					space <<= 1
				}
				subStart, subSize, code = next, 1<<subBits, 0
				next += subSize
				if next > len(table) || prefix >= 1<<tableBits {
					return ErrIncomplete
				}
				table[prefix] = uint32(subStart)<<16 | EntryPtr | uint32(subBits)<<8
				prefix++
			}
			step := 1 << (subBits - (l - tableBits))
			fill(table[subStart+code:subStart+code+step], uint32(sorted[i])<<16|uint32(l))
			code += step
			i++
			count[l]--
		}
	}
	return nil
}

// fill sets every entry of t to e; long runs (short codewords) double with copy, which
// moves 16-32 bytes per instruction.
func fill(t []uint32, e uint32) {
	if len(t) < 16 {
		for i := range t {
			t[i] = e
		}
		return
	}
	t[0], t[1], t[2], t[3] = e, e, e, e
	for k := 4; k < len(t); k *= 2 {
		copy(t[k:], t[:k])
	}
}
