package lzms

import "slices"

// LZMS's Huffman codes are not transmitted: encoder and decoder rebuild them from symbol
// frequencies every few hundred symbols, so the decoder must derive exactly the code
// lengths that wimlib's make_canonical_huffman_code derives: sort symbols by (frequency,
// symbol), build the tree with the two-queue method preferring leaves on frequency ties,
// cap lengths at 15 the way wimlib does, give the longest codes to the rarest symbols, and
// assign canonical codewords. The code is therefore always complete, whatever the input.

// Decode table entries (uint32):
//
//	bits 0-4   bits to consume (codeword length; table bits for a subtable pointer)
//	bit  7     set: this is a pointer to a subtable
//	bits 8-11  subtable index bits (pointers only)
//	bits 16-31 symbol, or the subtable's start index (pointers only)
const (
	entryLenMask = 0x1f
	entrySubFlag = 0x80
)

// adaptiveCode is one of LZMS's five adaptive Huffman codes with its frequencies and its
// two-level decode table (libdeflate style: a direct table indexed by tableBits bits,
// with subtables for the rare longer codewords).
type adaptiveCode struct {
	numSyms     int  // symbols in use for the current chunk
	tableBits   uint // index bits of the direct table
	rebuildFreq int
	freqs       []uint32
	lens        []uint8
	table       []uint32
	until       int // symbols left before the next rebuild

	// The first code of a chunk (all frequencies 1) depends only on the symbol count;
	// it is built once and copied at each chunk start.
	initSyms  int
	initTable []uint32
}

func newAdaptiveCode(maxSyms int, tableBits uint, rebuildFreq int) adaptiveCode {
	// Every subtable holds at least two codewords, so there are at most maxSyms/2 of them,
	// each at most 2^(15-tableBits) entries.
	size := 1<<tableBits + (maxSyms/2+1)<<(maxCodewordLen-tableBits)
	return adaptiveCode{
		tableBits:   tableBits,
		rebuildFreq: rebuildFreq,
		freqs:       make([]uint32, maxSyms),
		lens:        make([]uint8, maxSyms),
		table:       make([]uint32, size),
	}
}

// count records one decoded symbol and rebuilds the code when its period is over.
func (c *adaptiveCode) count(sym uint32, s *huffScratch) {
	c.freqs[sym]++
	if c.until--; c.until == 0 {
		c.rebuild(s)
	}
}

// reset starts the code over for a chunk: every frequency 1, then the first build.
func (c *adaptiveCode) reset(numSyms int, s *huffScratch) {
	c.numSyms = numSyms
	c.until = c.rebuildFreq
	f := c.freqs[:numSyms]
	for i := range f {
		f[i] = 1
	}
	if c.initSyms == numSyms {
		copy(c.table, c.initTable)
		return
	}
	used := c.build(s)
	c.initSyms = numSyms
	c.initTable = append(c.initTable[:0], c.table[:used]...)
}

// rebuild is called every rebuildFreq decoded symbols: build from the counts so far, then
// halve them so the code follows recent data.
func (c *adaptiveCode) rebuild(s *huffScratch) {
	c.until = c.rebuildFreq
	c.build(s)
	f := c.freqs[:c.numSyms]
	for i := range f {
		f[i] = f[i]>>1 + 1
	}
}

// huffScratch is working memory shared by all code builds of a decoder.
type huffScratch struct {
	keys    [maxOffsetSyms]uint32 // freq<<10 | sym, sorted
	nodes   [maxOffsetSyms]uint32 // internal node frequency, later depth
	parent  [maxOffsetSyms]uint16
	sorted  [maxOffsetSyms]uint16 // symbols ordered by (length, symbol)
	buckets [256]uint16
}

const symBits = 10 // symbols fit in 10 bits (at most 799)

// build makes the code for the current frequencies; it returns the table entries used.
func (c *adaptiveCode) build(s *huffScratch) int {
	n := c.numSyms
	var counts [maxCodewordLen + 2]int
	makeLengths(c.freqs[:n], c.lens[:n], s, &counts)
	return c.fillTable(s, &counts)
}

// makeLengths computes wimlib-identical codeword lengths for freqs (all >= 1, n >= 2).
func makeLengths(freqs []uint32, lens []uint8, s *huffScratch, counts *[maxCodewordLen + 2]int) {
	n := len(freqs)
	keys := s.keys[:n]
	sortByFreq(freqs, keys, s)

	// Two-queue Huffman construction over the sorted leaves; only internal nodes are
	// stored. On equal frequency the leaf is taken first.
	nodes, parent := s.nodes[:n], s.parent[:n]
	i, b := 0, 0
	for e := 0; e < n-1; e++ {
		var f uint32
		if i < n && (b == e || keys[i]>>symBits <= nodes[b]) {
			f = keys[i] >> symBits
			i++
		} else {
			f = nodes[b]
			parent[b] = uint16(e)
			b++
		}
		if i < n && (b == e || keys[i]>>symBits <= nodes[b]) {
			f += keys[i] >> symBits
			i++
		} else {
			f += nodes[b]
			parent[b] = uint16(e)
			b++
		}
		nodes[e] = f
	}

	// Depths from the root down; count codewords per length, moving too-deep nodes up
	// to the deepest length that still has a leaf to split (wimlib's length limiting).
	root := n - 2
	for l := range counts {
		counts[l] = 0
	}
	counts[1] = 2
	nodes[root] = 0
	// Nodes come mostly in runs of equal depth: a run's count updates are added up in
	// registers and applied when the depth changes (or before the length limit looks at
	// the counts), instead of a read-modify-write chain on one counter per node.
	runL, run := 1, 0
	for node := root - 1; node >= 0; node-- {
		depth := nodes[parent[node]] + 1
		nodes[node] = depth
		l := int(depth)
		if l == runL {
			run++
			continue
		}
		counts[runL] -= run
		counts[runL+1] += 2 * run
		if l < maxCodewordLen {
			runL, run = l, 1
			continue
		}
		runL, run = 1, 0
		l = maxCodewordLen
		for {
			l--
			if counts[l] != 0 {
				break
			}
		}
		counts[l]--
		counts[l+1] += 2
	}
	counts[runL] -= run
	counts[runL+1] += 2 * run

	// Longest codewords to the least frequent symbols.
	k := 0
	for l := maxCodewordLen; l >= 1; l-- {
		for c := counts[l]; c > 0; c-- {
			lens[keys[k]&(1<<symBits-1)] = uint8(l)
			k++
		}
	}
}

// sortByFreq fills keys with freq<<10|sym in increasing order: a counting sort for the
// common small frequencies, a real sort only for the large ones.
func sortByFreq(freqs []uint32, keys []uint32, s *huffScratch) {
	nb := uint32(len(s.buckets)) // about one bucket per symbol, as wimlib does
	if len(freqs) <= 64 {
		nb = 64
	}
	b := s.buckets[:nb]
	clear(b)
	for _, f := range freqs {
		b[min(f, nb-1)]++
	}
	sum := uint16(0)
	for i, c := range b {
		b[i] = sum
		sum += c
	}
	tail := int(b[nb-1])
	for sym, f := range freqs {
		j := min(f, nb-1)
		keys[b[j]] = f<<symBits | uint32(sym)
		b[j]++
	}
	if len(keys)-tail > 1 {
		slices.Sort(keys[tail:])
	}
}

// fillTable builds the decode table for c.lens (complete canonical code, counts per
// length) and returns the number of entries used.
func (c *adaptiveCode) fillTable(s *huffScratch, counts *[maxCodewordLen + 2]int) int {
	n := c.numSyms
	tb := c.tableBits
	table := c.table

	// Symbols ordered by (length, symbol): canonical codeword order.
	var offs [maxCodewordLen + 2]int
	for l := 2; l <= maxCodewordLen+1; l++ {
		offs[l] = offs[l-1] + counts[l-1]
	}
	sorted := s.sorted[:n]
	for sym, l := range c.lens[:n] {
		sorted[offs[l]] = uint16(sym)
		offs[l]++
	}

	// Codewords of at most tb bits: in canonical order each covers the next 2^(tb-l)
	// direct entries, so the direct table is written front to back, one length at a time
	// (a fixed repeat count per length keeps the loops predictable).
	k, pos := 0, 0
	l := uint(1)
	for ; l <= tb && l <= maxCodewordLen; l++ {
		syms := sorted[k : k+counts[l]]
		k += len(syms)
		switch rep := 1 << (tb - l); rep {
		case 1:
			for _, sym := range syms {
				table[pos] = uint32(sym)<<16 | uint32(l)
				pos++
			}
		case 2:
			for _, sym := range syms {
				e := uint32(sym)<<16 | uint32(l)
				table[pos], table[pos+1] = e, e
				pos += 2
			}
		default:
			for _, sym := range syms {
				fill(table[pos:pos+rep], uint32(sym)<<16|uint32(l))
				pos += rep
			}
		}
	}
	if k == n {
		return pos
	}

	// Longer codewords go to subtables, one per tb-bit prefix, each sized to the
	// codewords that share the prefix.
	code := pos // next codeword, as a tb-bit prefix followed by l-tb more bits
	next := 1 << tb
	prefix, subStart, subBits := -1, 0, uint(0)
	for ; l <= maxCodewordLen; l++ {
		code <<= 1
		for j := 0; j < counts[l]; j++ {
			e := uint32(sorted[k])<<16 | uint32(l)
			k++
			if p := code >> (l - tb); p != prefix {
				// New subtable: grow it until the codewords that follow fill it.
				prefix, subStart = p, next
				subBits = l - tb
				space := 1<<subBits - (counts[l] - j)
				for space > 0 && tb+subBits < maxCodewordLen {
					subBits++
					space = space<<1 - counts[tb+subBits]
				}
				next += 1 << subBits
				table[p] = uint32(subStart)<<16 | uint32(subBits)<<8 | entrySubFlag | uint32(tb)
			}
			sub := code & (1<<(l-tb) - 1)
			start := subStart + sub<<(tb+subBits-l)
			fill(table[start:start+1<<(tb+subBits-l)], e)
			code++
		}
	}
	return next
}

// fill sets every entry of t (a power-of-two length >= 4 on the hot path) to e.
func fill(t []uint32, e uint32) {
	for len(t) >= 4 {
		t[0], t[1], t[2], t[3] = e, e, e, e
		t = t[4:]
	}
	for i := range t {
		t[i] = e
	}
}
