package huffman

import (
	"fmt"
	"slices"
)

// Builder computes length-limited canonical Huffman codes for the encoders. It keeps its
// scratch space between calls (it is not safe for concurrent use), so steady-state code
// building allocates nothing.
//
// Lengths come from an ordinary Huffman tree (two-queue merge over the symbols sorted by
// frequency), then, when the tree is deeper than the limit, the counts of codewords per length
// are squeezed under it as zlib and miniz do: every overlong codeword moves to the limit, and
// while the code is over-full a codeword at the limit goes away while one shorter codeword
// moves a level down (splitting its slot in two). The least frequent symbols take the longest
// lengths. The result is close to optimal (package-merge would be exact) and always complete.
type Builder struct {
	leaves []uint64 // freq<<16 | symbol, sorted
	weight []uint64 // internal nodes
	parent []int32  // parents of leaves (first n) and internal nodes (next n-1)
	depth  []uint8
}

// maxSymbols bounds the alphabets Builder handles (symbols are packed in 16 bits).
const maxSymbols = 1 << 16

// Lengths fills lens[s] with the codeword length of symbol s for the frequencies freqs
// (len(lens) == len(freqs)), every length at most maxLen. Symbols of frequency 0 get length 0.
// The code is complete, which the WIM decoders require: a lone used symbol gets length 1 and
// so does one unused neighbour (symbol 0, or 1 when the used one is 0). With no used symbol
// every length is 0 (the all-zero code).
func (b *Builder) Lengths(lens []uint8, freqs []uint32, maxLen uint) error {
	if len(lens) != len(freqs) || len(freqs) > maxSymbols || len(freqs) < 2 {
		return fmt.Errorf("huffman: %d lengths for %d frequencies (want equal counts, 2 to %d)", len(lens), len(freqs), maxSymbols)
	}
	if maxLen == 0 || maxLen > MaxCodeLen || 1<<maxLen < len(freqs) && !fitsUsed(freqs, maxLen) {
		return fmt.Errorf("huffman: %d symbols cannot have codewords of at most %d bits", len(freqs), maxLen)
	}
	clear(lens)
	b.leaves = b.leaves[:0]
	for s, f := range freqs {
		if f != 0 {
			b.leaves = append(b.leaves, uint64(f)<<16|uint64(s))
		}
	}
	switch len(b.leaves) {
	case 0:
		return nil
	case 1:
		s := int(b.leaves[0] & 0xFFFF)
		lens[s] = 1
		if s == 0 {
			lens[1] = 1
		} else {
			lens[0] = 1
		}
		return nil
	}
	slices.Sort(b.leaves)
	var count [64]int
	b.treeDepths(count[:])
	limit(count[:], maxLen)
	// Longest codewords to the least frequent symbols (the front of leaves).
	i := 0
	for l := int(maxLen); l >= 1; l-- {
		for c := count[l]; c > 0; c-- {
			lens[b.leaves[i]&0xFFFF] = uint8(l)
			i++
		}
	}
	return nil
}

// fitsUsed reports whether the symbols actually used fit codewords of maxLen bits.
func fitsUsed(freqs []uint32, maxLen uint) bool {
	n := 0
	for _, f := range freqs {
		if f != 0 {
			n++
		}
	}
	return n <= 1<<maxLen
}

// treeDepths builds the Huffman tree over the sorted leaves and counts leaves per depth.
// Leaves and internal nodes are each produced in nondecreasing weight order, so the two
// smallest available nodes are always at the front of one of the two queues.
func (b *Builder) treeDepths(count []int) {
	n := len(b.leaves)
	b.weight = slices.Grow(b.weight[:0], n-1)[:n-1]
	b.parent = slices.Grow(b.parent[:0], 2*n-1)[:2*n-1]
	b.depth = slices.Grow(b.depth[:0], n-1)[:n-1]
	li, ii := 0, 0
	pick := func(j int) (node int, w uint64) {
		if li < n && (ii >= j || b.leaves[li]>>16 <= b.weight[ii]) {
			li++
			return li - 1, b.leaves[li-1] >> 16
		}
		ii++
		return n + ii - 1, b.weight[ii-1]
	}
	for j := 0; j < n-1; j++ {
		a, wa := pick(j)
		c, wc := pick(j)
		b.weight[j] = wa + wc
		b.parent[a], b.parent[c] = int32(j), int32(j)
	}
	// The root is the last internal node; parents come after their children.
	b.depth[n-2] = 0
	for j := n - 3; j >= 0; j-- {
		b.depth[j] = min(b.depth[b.parent[n+j]]+1, 62)
	}
	for i := 0; i < n; i++ {
		count[b.depth[b.parent[i]]+1]++
	}
}

// limit rewrites count (codewords per length) so that no codeword is longer than maxLen and
// the code stays complete.
func limit(count []int, maxLen uint) {
	for l := int(maxLen) + 1; l < len(count); l++ {
		count[maxLen] += count[l]
		count[l] = 0
	}
	// Kraft sum in units of 2^-maxLen.
	total := 0
	for l := 1; l <= int(maxLen); l++ {
		total += count[l] << (int(maxLen) - l)
	}
	for total > 1<<maxLen {
		count[maxLen]--
		for l := int(maxLen) - 1; l > 0; l-- {
			if count[l] > 0 {
				count[l]--
				count[l+1] += 2
				break
			}
		}
		total--
	}
}

// Codewords assigns canonical codewords (ordered by length, then symbol, as the decode tables
// of BuildTable expect) to the lengths lens, most significant bit first.
func Codewords(codes []uint16, lens []uint8) {
	var count [MaxCodeLen + 2]uint32
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [MaxCodeLen + 2]uint32
	code := uint32(0)
	for l := 1; l <= MaxCodeLen; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for s, l := range lens {
		if l != 0 {
			codes[s] = uint16(next[l])
			next[l]++
		}
	}
}
