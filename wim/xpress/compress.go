package xpress

import (
	"fmt"
	"github.com/pxewim/pxewim/wim/internal/lz"
	"math/bits"

	"github.com/pxewim/pxewim/wim/internal/huffman"
)

// # Encoder design
//
// The encoder aims at speed (it runs while a client waits for a transcoded WIM), not at the
// last percent of ratio:
//
//   - Match finding: hash chains over 3-byte prefixes, at most maxChain candidates per
//     position, stopping at the first match of niceLen bytes. Each hash head holds an absolute
//     position (base + position in chunk); base grows by the chunk size with every call, so
//     entries from earlier chunks are simply older than base and the 128 KiB head table is
//     cleared only when base would overflow. Output therefore depends on the chunk alone.
//     Of a long match's positions only the first and last maxInsert/2 are inserted.
//   - Parsing: lazy, one step: a match is deferred when the next position has a longer one.
//     Length-3 matches with offsets beyond far3 are dropped: their offset bits cost about as
//     much as three literals. After many searches without a match, positions are skipped
//     (not searched, not hashed) at a growing stride, so incompressible chunks, stored raw
//     in the end anyway, cost little.
//   - One Huffman code per chunk (the format has no blocks), limited to 15 bits by
//     wim/internal/huffman's Builder; the end-of-data symbol (256) is counted and written
//     after the last item, as wimlib does for Microsoft's decoder.
//   - The exact output size follows from the code lengths and the item list before a bit is
//     written, so a chunk that would not shrink is stored raw (the WIM rule) without ever
//     writing its compressed form.
//
// # Bitstream layout
//
// The writer mirrors what the decoders read (see bits.go and the package doc): 16-bit words
// are filled most significant bit first; a word is written out once more than 16 bits are
// pending, into the older of two reserved word slots, and literal bytes (long match lengths)
// go after those two slots. The two slots are written at the end (the second one as a zero
// word the decoder's lookahead may load).
const (
	hashBits  = 15
	maxChain  = 12
	niceLen   = 64
	far3      = 4096 // length-3 matches reaching further back are not worth their offset bits
	maxInsert = 32   // positions inserted into the chains per match, at most
	skipShift = 5    // after 32<<k fruitless searches, k+1 positions pass without one
	maxBase   = 1 << 30
	endSym    = 256 // end-of-data symbol: a match symbol that is never decoded
)

// Encoder compresses XPRESS chunks for WIM resources. It keeps its tables between calls, so
// steady-state compression allocates nothing; it is not safe for concurrent use (use one per
// goroutine, e.g. from a sync.Pool). Output is a pure function of the chunk: compressing the
// same bytes again gives the same bytes.
type Encoder struct {
	chunkSize int
	base      int32 // absolute position of the current chunk's first byte in head
	head      [1 << hashBits]int32
	prev      []uint16 // distance back to the previous position with the same hash (0: none)
	items     []uint32 // literal: byte; match: offset<<16 | (length-3)
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
	e := &Encoder{chunkSize: chunkSize, prev: make([]uint16, chunkSize), items: make([]uint32, 0, chunkSize)}
	e.resetHead()
	return e, nil
}

func (e *Encoder) resetHead() {
	for i := range e.head {
		e.head[i] = -maxChunk - 1 // older than any base
	}
	e.base = 0
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
		e.parse(src)
		if err := e.huff.Lengths(e.lens[:], e.freqs[:], maxLen); err != nil {
			return 0, false, fmt.Errorf("xpress: %w", err)
		}
		if size := e.size(); size < len(src) {
			huffman.Codewords(e.codes[:], e.lens[:])
			if w := e.write(dst[:size]); w != size {
				return 0, false, fmt.Errorf("xpress: internal error: wrote %d bytes, predicted %d", w, size)
			}
			return size, true, nil
		}
	}
	return copy(dst, src), false, nil
}

// prefix3 is the 3 bytes at p as a little-endian integer.
func prefix3(b []byte, p int) uint32 {
	return uint32(b[p]) | uint32(b[p+1])<<8 | uint32(b[p+2])<<16
}

// hash3 hashes a 3-byte prefix (multiplicative hashing).
func hash3(v uint32) uint32 { return (v * 0x9E3779B1) >> (32 - hashBits) }

// parse chooses literals and matches for src, filling items and freqs.
func (e *Encoder) parse(src []byte) {
	if e.base > maxBase {
		e.resetHead()
	}
	e.freqs = [numSyms]uint32{}
	e.items = e.items[:0]
	n := len(src)
	last := n - minMatch // last position where a match can start
	i := 0
	pendLen, pendOff := 0, 0 // a match found at i-1 that waits for the lazy check
	misses := 0              // searches without a match in a row
	for i < n {
		length, off := 0, 0
		if i <= last {
			length, off = e.findMatch(src, i)
		}
		if pendLen > 0 {
			if length > pendLen {
				// The match here is longer: the previous position becomes a literal.
				e.literal(src[i-1])
			} else {
				e.match(pendLen, pendOff)
				e.skip(src, i+1, i-1+pendLen)
				i += pendLen - 1
				pendLen = 0
				continue
			}
		}
		switch {
		case length >= niceLen:
			e.match(length, off)
			e.skip(src, i+1, i+length)
			i += length
			pendLen = 0
		case length > 0:
			pendLen, pendOff = length, off
			i++
		default:
			// Past a run of literals, search less often (the LZ4 heuristic): incompressible
			// data costs a fraction of a full search per byte, compressible data resets it.
			for stop := min(n, i+1+misses>>skipShift); i < stop; i++ {
				e.literal(src[i])
			}
			misses++
			pendLen = 0
			continue
		}
		misses = 0
	}
	if pendLen > 0 { // cannot happen: a match found at n-3 or earlier is resolved above
		e.match(pendLen, pendOff)
	}
	e.freqs[endSym]++
	e.base += int32(e.chunkSize)
}

func (e *Encoder) literal(b byte) {
	e.items = append(e.items, uint32(b))
	e.freqs[b]++
}

func (e *Encoder) match(length, off int) {
	adj := length - minMatch
	e.items = append(e.items, uint32(off)<<16|uint32(adj))
	e.freqs[matchSym(adj, off)]++
}

func matchSym(adj, off int) int {
	return 256 + bits.Len32(uint32(off))<<4 - 16 + min(adj, 15)
}

// insert adds position p to the hash chains.
func (e *Encoder) insert(src []byte, p int) {
	h := hash3(prefix3(src, p))
	abs := e.base + int32(p)
	d := abs - e.head[h]
	if e.head[h] < e.base { // from an earlier chunk
		d = 0
	}
	e.prev[p] = uint16(d)
	e.head[h] = abs
}

// skip inserts positions from..to-1 (those a match covers) into the hash chains.
func (e *Encoder) skip(src []byte, from, to int) {
	to = min(to, len(src)-minMatch+1)
	if to-from > maxInsert {
		// Inside a long match (a run, a repeated block) the positions mostly repeat what
		// the chains already hold: insert the start and the end only.
		for p := from; p < from+maxInsert/2; p++ {
			e.insert(src, p)
		}
		from = to - maxInsert/2
	}
	for p := from; p < to; p++ {
		e.insert(src, p)
	}
}

// findMatch inserts position i and returns the longest match found there (length 0: none).
func (e *Encoder) findMatch(src []byte, i int) (bestLen, bestOff int) {
	cur := prefix3(src, i)
	h := hash3(cur)
	abs := e.base + int32(i)
	cand := e.head[h]
	d := abs - cand // <= i < 64 Ki when cand is in this chunk
	if cand < e.base {
		d = 0
	}
	e.prev[i] = uint16(d)
	e.head[h] = abs
	maxLen := len(src) - i
	limit := min(maxLen, niceLen)
	for depth := 0; depth < maxChain && d != 0; depth++ {
		j := i - int(d)
		// Hash collisions fail the prefix test; then the byte at bestLen decides whether
		// this candidate can beat the best so far. (j+4 <= i+3 <= len(src).)
		if lz.Load32LE(src, j)&0xFFFFFF == cur && src[j+bestLen] == src[i+bestLen] {
			l := matchLen(src, j, i, maxLen)
			if l > bestLen {
				bestLen, bestOff = l, i-j
				if l >= limit {
					break
				}
			}
		}
		next := e.prev[j]
		if next == 0 {
			break
		}
		d += int32(next)
		if d > 0xFFFF {
			break
		}
	}
	if bestLen < minMatch || (bestLen == minMatch && bestOff > far3) {
		return 0, 0
	}
	return bestLen, bestOff
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
	nbits, extra := 0, 0
	for s, f := range e.freqs {
		nbits += int(f) * int(e.lens[s])
	}
	for _, it := range e.items {
		if it>>16 == 0 {
			continue
		}
		nbits += bits.Len32(it>>16) - 1
		if adj := it & 0xFFFF; adj >= 15 {
			extra++
			if adj-15 >= 255 {
				extra += 2
			}
		}
	}
	// Words are flushed when more than 16 bits are pending: ceil(bits/16)-1 of them during
	// the stream, then the last partial word and the reserved zero word.
	return numSyms/2 + 4 + 2*((nbits+15)/16-1) + extra
}

// write writes the code length table and the bitstream to out, which has exactly the
// predicted size, and returns the number of bytes written.
func (e *Encoder) write(out []byte) int {
	for i := 0; i < numSyms/2; i++ {
		out[i] = e.lens[2*i] | e.lens[2*i+1]<<4
	}
	w := bitWriter{out: out, slot1: numSyms / 2, slot2: numSyms/2 + 2, next: numSyms/2 + 4}
	for _, it := range e.items {
		off := it >> 16
		if off == 0 {
			w.bits(uint32(e.codes[it]), uint(e.lens[it]))
			continue
		}
		adj := int(it & 0xFFFF)
		sym := matchSym(adj, int(off))
		w.bits(uint32(e.codes[sym]), uint(e.lens[sym]))
		if adj >= 15 {
			b := min(adj-15, 255)
			w.out[w.next] = byte(b)
			w.next++
			if b == 255 {
				w.out[w.next] = byte(adj)
				w.out[w.next+1] = byte(adj >> 8)
				w.next += 2
			}
		}
		log2 := uint(bits.Len32(off) - 1)
		w.bits(off&(1<<log2-1), log2)
	}
	w.bits(uint32(e.codes[endSym]), uint(e.lens[endSym]))
	return w.flush()
}

// bitWriter writes the XPRESS bitstream (see "Bitstream layout" above).
type bitWriter struct {
	out          []byte
	buf          uint32
	n            uint // pending bits in buf (0..16 between calls)
	slot1, slot2 int  // reserved word slots: the next word goes to slot1
	next         int  // where the next literal byte or word slot goes
}

// bits appends the low n bits of v (n <= 16).
func (w *bitWriter) bits(v uint32, n uint) {
	w.buf = w.buf<<n | v
	w.n += n
	if w.n > 16 {
		w.n -= 16
		word := w.buf >> w.n
		w.out[w.slot1] = byte(word)
		w.out[w.slot1+1] = byte(word >> 8)
		w.slot1, w.slot2 = w.slot2, w.next
		w.next += 2
	}
}

// flush writes the pending bits, left-aligned, and a zero word to the two reserved slots.
func (w *bitWriter) flush() int {
	word := w.buf << (16 - w.n)
	w.out[w.slot1] = byte(word)
	w.out[w.slot1+1] = byte(word >> 8)
	w.out[w.slot2] = 0
	w.out[w.slot2+1] = 0
	return w.next
}
