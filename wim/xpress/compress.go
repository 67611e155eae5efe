package xpress

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/pxewim/pxewim/wim/internal/lz"

	"github.com/pxewim/pxewim/wim/internal/huffman"
)

// # Encoder design
//
// The encoder follows the shape of wimlib's XPRESS compressor at the level wimlib uses for WIMs
// (its default, 50: hash chains and lazy parsing; its near-optimal parser only runs at 60 and
// above), written for Go and tuned to be at least as fast at an output no larger:
//
//   - Match finding: hash chains over 4-byte prefixes (a 64 Ki-entry head table of 16-bit
//     positions plus a 16-bit "previous" link per position), and a one-entry-per-bucket table
//     over 3-byte prefixes that supplies the nearest length-3 candidate. A chunk is at most
//     64 KiB, so positions fit 16 bits; position 0 doubles as "no entry", and the two head
//     tables are cleared per chunk (192 KiB of memclr), so output depends on the chunk alone.
//     At most searchDepth candidates are examined per position; a candidate is extended only
//     when its first 4 bytes and the 4 bytes ending one past the best length so far agree.
//     Of a long match's positions only the first and last maxInsert/2 are inserted.
//   - Parsing: lazy, one step: a match is deferred when the next position has a longer one
//     (that second search stops at half the depth). Length-3 matches with offsets of far3 or
//     more are dropped: their offset bits cost about as much as three literals. After many
//     searches without a match, positions are skipped (not searched, not hashed) at a growing
//     stride, so incompressible chunks, stored raw in the end anyway, cost little.
//   - One Huffman code per chunk (the format has no blocks), limited to 15 bits by
//     wim/internal/huffman's Builder; the end-of-data symbol (256) is counted and written
//     after the last item, as wimlib does for Microsoft's decoder.
//   - The exact output size follows from the symbol counts and code lengths alone (a match
//     symbol fixes its number of offset bits; long-length bytes are counted while parsing), so
//     a chunk that would not shrink is stored raw (the WIM rule) without ever writing its
//     compressed form.
//
// # Bitstream layout
//
// The writer mirrors what the decoders read (see bits.go and the package doc): 16-bit words
// are filled most significant bit first; a word is written out once more than 16 bits are
// pending, into the older of two reserved word slots, and literal bytes (long match lengths)
// go after those two slots. The two slots are written at the end (the second one as a zero
// word the decoder's lookahead may load).
const (
	hash3Bits   = 15
	hash4Bits   = 16
	searchDepth = 46 // candidates examined per position (wimlib level 50: 50*30/32)
	lazyDepth   = searchDepth / 2
	niceLen     = 93   // a match this long is taken at once (wimlib level 50: 50*60/32)
	far3        = 4096 // length-3 matches reaching this far back are not worth their offset bits
	far3Small   = 2048 // the same for chunks of at most 8 KiB
	skipShift   = 7    // after 128<<k fruitless searches, k+1 positions pass without one
	endSym      = 256  // end-of-data symbol: a match symbol that is never decoded
	hashMul     = 0x9E3779B1
)

// Items, the parse's output, are uint32s ready for the bit writer: bits 0-8 the symbol, 9-12
// the number of offset bits, 13-27 those bits. A match's length beyond the header's 15 is in
// Encoder.long, in item order.
const (
	itemSymMask  = 1<<9 - 1
	itemBitsShft = 9
	itemOffShift = 13
)

// Encoder compresses XPRESS chunks for WIM resources. It keeps its tables between calls, so
// steady-state compression allocates nothing; it is not safe for concurrent use (use one per
// goroutine, e.g. from a sync.Pool). Output is a pure function of the chunk: compressing the
// same bytes again gives the same bytes.
type Encoder struct {
	chunkSize int
	hash3     [1 << hash3Bits]uint16 // latest position with this 3-byte hash
	hash4     [1 << hash4Bits]uint16 // latest position with this 4-byte hash: chain head
	prev      [maxChunk]uint16       // previous position in p's 4-byte hash chain
	items     []uint32               // see itemSymMask
	long      []uint16               // length-3 of matches of 18 bytes or more, in order
	extra     int                    // literal bytes that long match lengths add
	sink      uint16                 // target of the loads that warm the next hash buckets
	freqs     [numSyms]uint32
	lens      [numSyms]uint8
	codes     [numSyms]uint16
	huff      huffman.Builder
}

// NewEncoder returns an encoder for chunks of at most chunkSize bytes (1 to 64 KiB).
func NewEncoder(chunkSize int) (*Encoder, error) {
	if chunkSize <= 0 || chunkSize > maxChunk {
		return nil, fmt.Errorf("xpress: unsupported chunk size %d (want 1 to %d)", chunkSize, maxChunk)
	}
	return &Encoder{chunkSize: chunkSize, items: make([]uint32, chunkSize), long: make([]uint16, 0, chunkSize/18+1)}, nil
}

// Compress writes src, one chunk, to dst as a WIM resource stores it: XPRESS-compressed when
// that is smaller than src, else src itself (raw), which readers recognise by the size being
// equal to the chunk's uncompressed size. It returns the number of bytes written and whether
// they are compressed. dst must hold at least len(src) bytes; an empty src writes nothing.
func (e *Encoder) Compress(dst, src []byte) (n int, compressed bool, err error) {
	if len(src) > e.chunkSize {
		return 0, false, fmt.Errorf("xpress: %d bytes of input exceed the chunk size %d", len(src), e.chunkSize)
	}
	if len(dst) < len(src) {
		return 0, false, fmt.Errorf("xpress: output buffer of %d bytes is smaller than the %d-byte chunk", len(dst), len(src))
	}
	if len(src) == 0 {
		return 0, false, nil
	}
	// Below 260 bytes the code length table and the first two words alone are as large.
	if len(src) > numSyms/2+4 {
		nitems := e.parse(src)
		if err := e.huff.Lengths(e.lens[:], e.freqs[:], maxLen); err != nil {
			return 0, false, fmt.Errorf("xpress: %w", err)
		}
		if size := e.size(); size < len(src) {
			huffman.Codewords(e.codes[:], e.lens[:])
			if w := e.write(dst[:size], e.items[:nitems]); w != size {
				return 0, false, fmt.Errorf("xpress: internal error: wrote %d bytes, predicted %d", w, size)
			}
			return size, true, nil
		}
	}
	return copy(dst, src), false, nil
}

func hash3(seq uint32) uint32 { return (seq << 8) * hashMul >> (32 - hash3Bits) } // low 3 bytes
func hash4(seq uint32) uint32 { return seq * hashMul >> (32 - hash4Bits) }

// parse chooses literals and matches for src, filling items (it returns their number), long,
// freqs and extra. The search at each position is written out here rather than called:
// most positions end there (a literal), and a call would spill the loop's state.
func (e *Encoder) parse(src []byte) int {
	clear(e.hash3[:])
	clear(e.hash4[:])
	e.freqs = [numSyms]uint32{}
	e.long = e.long[:0]
	e.extra = 0
	n := len(src)
	items := e.items[:n] // at most one item per byte
	freqs, hash3t, hash4t, prev := &e.freqs, &e.hash3, &e.hash4, &e.prev
	k := 0
	// Searches read 4 bytes at i+1, so they stop 5 bytes before the end.
	last := n - 5
	tooFar3 := far3
	if n <= 8192 {
		tooFar3 = far3Small
	}
	i := 0
	misses := 0 // searches without a match in a row
	for i <= last {
		seq := lz.Load32LE(src, i)
		h3, h4 := hash3(seq), hash4(seq)
		c3 := int(hash3t[h3])
		c4 := hash4t[h4]
		hash3t[h3] = uint16(i)
		hash4t[h4] = uint16(i)
		prev[uint16(i)] = c4
		// Load the next position's buckets now, so that their cache misses overlap this
		// search (the sum goes to a field only to keep the loads).
		nseq := lz.Load32LE(src, i+1)
		e.sink += hash4t[hash4(nseq)] + hash3t[hash3(nseq)]
		curLen, curPos := 0, 0
		if c3 != 0 { // else no earlier position shares even the 3-byte hash
			if lz.Load32LE(src, c3)&0xFFFFFF == seq&0xFFFFFF {
				curLen, curPos = 3, c3
			}
			for depth := searchDepth; c4 != 0; {
				if lz.Load32LE(src, int(c4)) == seq {
					curPos = int(c4)
					curLen = 4 + matchLen(src, curPos+4, i+4, n-i-4)
					if depth > 1 && curLen < min(niceLen, n-i) {
						curLen, curPos = e.longer(src, i, curLen, curPos, prev[c4], depth-1)
					}
					break
				}
				c4 = prev[c4]
				if depth--; depth == 0 {
					break
				}
			}
		}
		i++
		if curLen == 0 || curLen == minMatch && i-1-curPos >= tooFar3 {
			b := src[i-1]
			items[k] = uint32(b)
			k++
			freqs[b]++
			misses++
			if skip := misses >> skipShift; skip > 0 {
				// Past a long run of literals, search less often (the LZ4 heuristic):
				// incompressible data costs a fraction of a search per byte.
				for stop := min(last+1, i+skip); i < stop; i++ {
					b := src[i]
					items[k] = uint32(b)
					k++
					freqs[b]++
				}
			}
			continue
		}
		misses = 0
		curOff := i - 1 - curPos
		for {
			// A match of curLen at i-1 waits for the lazy check at i.
			if curLen >= niceLen || i > last {
				items[k] = e.match(curLen, curOff)
				k++
				e.skip(src, i, i-1+curLen)
				i += curLen - 1
				break
			}
			nextLen, nextOff := e.find(src, i, curLen)
			i++
			// The longer match wins unless its offset costs more extra bits than twice
			// the bytes it adds (the literal given up is roughly paid by one of them).
			if nextLen > curLen && 2*(nextLen-curLen) > bits.Len32(uint32(nextOff))-bits.Len32(uint32(curOff)) {
				b := src[i-2]
				items[k] = uint32(b)
				k++
				freqs[b]++
				curLen, curOff = nextLen, nextOff
				continue
			}
			items[k] = e.match(curLen, curOff)
			k++
			e.skip(src, i, i-2+curLen)
			i += curLen - 2
			break
		}
	}
	for ; i < n; i++ {
		b := src[i]
		items[k] = uint32(b)
		k++
		freqs[b]++
	}
	e.freqs[endSym]++
	return k
}

// match counts a match's symbol and returns its item.
func (e *Encoder) match(length, off int) uint32 {
	adj := length - minMatch
	log2 := uint32(bits.Len32(uint32(off)) - 1)
	sym := 256 + log2<<4 + uint32(min(adj, 15))
	e.freqs[sym&itemSymMask]++
	if adj >= 15 {
		e.long = append(e.long, uint16(adj))
		e.extra++
		if adj-15 >= 255 {
			e.extra += 2
		}
	}
	return sym | log2<<itemBitsShft | (uint32(off)^1<<log2)<<itemOffShift
}

// skip inserts positions from..to-1, those a match covers, into the hash tables, unless no
// search follows (the match reaches the last searched position).
func (e *Encoder) skip(src []byte, from, to int) {
	if to > len(src)-5 {
		return
	}
	hash3t, hash4t, prev := &e.hash3, &e.hash4, &e.prev
	for p := from; p < to; p++ {
		seq := lz.Load32LE(src, p) // p+4 <= len(src)
		h3, h4 := hash3(seq), hash4(seq)
		hash3t[h3] = uint16(p)
		prev[uint16(p)] = hash4t[h4]
		hash4t[h4] = uint16(p)
	}
}

// find inserts position i (i+5 <= len(src)) and returns the longest match there that is
// longer than best (best >= 3), examining at most lazyDepth chain candidates, or best and
// offset 0 when there is none.
func (e *Encoder) find(src []byte, i, best int) (length, off int) {
	seq := lz.Load32LE(src, i)
	h3, h4 := hash3(seq), hash4(seq)
	c4 := e.hash4[h4]
	e.hash3[h3] = uint16(i)
	e.hash4[h4] = uint16(i)
	e.prev[uint16(i)] = c4
	nseq := lz.Load32LE(src, i+1)
	e.sink += e.hash4[hash4(nseq)] + e.hash3[hash3(nseq)]
	pos := i
	depth := lazyDepth
	if best < 4 {
		for {
			if c4 == 0 {
				return best, 0
			}
			if lz.Load32LE(src, int(c4)) == seq {
				break
			}
			c4 = e.prev[c4]
			if depth--; depth == 0 {
				return best, 0
			}
		}
		pos = int(c4)
		best = 4 + matchLen(src, pos+4, i+4, len(src)-i-4)
		c4 = e.prev[c4]
		if depth--; depth == 0 {
			return best, i - pos
		}
	}
	if best < min(niceLen, len(src)-i) {
		best, pos = e.longer(src, i, best, pos, c4, depth)
	}
	return best, i - pos
}

// longer walks the chain from candidate c for a match at i longer than best (found at pos),
// examining at most depth candidates; best < min(niceLen, len(src)-i). A candidate is extended
// only when it agrees on its first 4 bytes and on the 4 bytes ending one past best.
func (e *Encoder) longer(src []byte, i, best, pos int, c uint16, depth int) (int, int) {
	maxLen := len(src) - i
	nice := min(maxLen, niceLen)
	seq := lz.Load32LE(src, i)
	tail := lz.Load32LE(src, i+best-3)
	for ; c != 0; c = e.prev[c] {
		j := int(c)
		if lz.Load32LE(src, j+best-3) == tail && lz.Load32LE(src, j) == seq {
			if l := 4 + matchLen(src, j+4, i+4, maxLen-4); l > best {
				best, pos = l, j
				if l >= nice {
					break
				}
				tail = lz.Load32LE(src, i+best-3)
			}
		}
		if depth--; depth == 0 {
			break
		}
	}
	return best, pos
}

// matchLen is the length of the common prefix of src[j:] and src[i:] (j < i), at most max.
func matchLen(src []byte, j, i, max int) int {
	n := 0
	for n+8 <= max {
		x := lz.Load64(src, j+n) ^ lz.Load64(src, i+n) // little-endian on every build (see word_*.go)
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < max && src[j+n] == src[i+n] {
		n++
	}
	return n
}

// size is the exact compressed size of the parsed chunk with the current code lengths.
func (e *Encoder) size() int {
	nbits := 0
	for s, f := range e.freqs[:256] {
		nbits += int(f) * int(e.lens[s])
	}
	for s, f := range e.freqs[256:] {
		nbits += int(f) * (int(e.lens[256+s]) + s>>4) // s>>4 offset bits
	}
	// Words are flushed when more than 16 bits are pending: ceil(bits/16)-1 of them during
	// the stream, then the last partial word and the reserved zero word.
	return numSyms/2 + 4 + 2*((nbits+15)/16-1) + e.extra
}

// write writes the code length table and the bitstream of items to out, which has exactly
// the predicted size, and returns the number of bytes written.
func (e *Encoder) write(out []byte, items []uint32) int {
	for i := 0; i < numSyms/2; i++ {
		out[i] = e.lens[2*i] | e.lens[2*i+1]<<4
	}
	w := bitWriter{out: out, slot1: numSyms / 2, slot2: numSyms/2 + 2, next: numSyms/2 + 4}
	codes, lens, long := &e.codes, &e.lens, e.long
	buf, nb := uint64(0), uint(0) // pending bits (low nb bits of buf; at most 61)
	for _, it := range items {
		sym := it & itemSymMask
		l := uint(lens[sym])
		buf = buf<<l | uint64(codes[sym])
		nb += l
		if sym&0x10F == 0x10F { // a match with length header 15: length bytes follow
			w.buf, w.n = buf, nb
			w.words() // the words completed so far go before those bytes
			nb = w.n
			adj := long[0]
			long = long[1:]
			b := min(adj-15, 255)
			w.out[w.next] = byte(b)
			w.next++
			if b == 255 {
				binary.LittleEndian.PutUint16(w.out[w.next:], adj)
				w.next += 2
			}
		}
		ob := uint(it>>itemBitsShft) & 15
		buf = buf<<ob | uint64(it>>itemOffShift)
		nb += ob
		if nb > 32 {
			// Two words are complete and more bits pending, so writing both now gives
			// the layout of writing each as soon as more than 16 bits were pending.
			nb -= 16
			binary.LittleEndian.PutUint16(w.out[w.slot1:], uint16(buf>>nb))
			nb -= 16
			binary.LittleEndian.PutUint16(w.out[w.slot2:], uint16(buf>>nb))
			w.slot1, w.slot2 = w.next, w.next+2
			w.next += 4
		}
	}
	w.buf, w.n = buf, nb
	w.add(uint64(codes[endSym]), uint(lens[endSym]))
	return w.flush()
}

// bitWriter writes the XPRESS bitstream (see "Bitstream layout" above). Bits accumulate in a
// 64-bit buffer and completed words are written out in batches; the result is the same as
// writing each word as soon as it completes, because words are always written out before an
// embedded byte is placed.
type bitWriter struct {
	out          []byte
	buf          uint64 // pending bits in the low n bits (higher bits are stale)
	n            uint   // pending bits
	slot1, slot2 int    // reserved word slots: the next word goes to slot1
	next         int    // where the next literal byte or word slot goes
}

// add appends the low n bits of v (n <= 16; v has no higher bits set).
func (w *bitWriter) add(v uint64, n uint) {
	w.buf = w.buf<<n | v
	w.n += n
}

// words writes out every completed word while more than 16 bits are pending.
func (w *bitWriter) words() {
	for w.n > 16 {
		w.n -= 16
		binary.LittleEndian.PutUint16(w.out[w.slot1:], uint16(w.buf>>w.n))
		w.slot1, w.slot2 = w.slot2, w.next
		w.next += 2
	}
}

// flush writes the pending bits, left-aligned, and a zero word to the two reserved slots.
func (w *bitWriter) flush() int {
	w.words()
	binary.LittleEndian.PutUint16(w.out[w.slot1:], uint16(w.buf<<(16-w.n)))
	binary.LittleEndian.PutUint16(w.out[w.slot2:], 0)
	return w.next
}
