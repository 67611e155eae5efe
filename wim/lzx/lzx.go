// Package lzx decodes the LZX chunks of WIM resources.
//
// # Format
//
// WIM's LZX is Microsoft's LZX (as in CAB files) restricted to independent chunks: each chunk
// is a fresh stream with no header, a window of 1<<order bytes (order = max(15, ceil(log2
// chunk size))), repeat offsets R0=R1=R2=1 and all-zero "previous" code lengths at its start,
// and an unconditional x86 E8 call translation with a fixed file size of 12000000 undone after
// decoding. The input is a sequence of 16-bit little-endian words read from the most
// significant bit. A chunk is one or more blocks, each with a 3-bit type (1 verbatim, 2
// aligned offset, 3 uncompressed) and a size (one bit "32768", else 16 or 24 bits):
//
//   - verbatim and aligned blocks carry Huffman codes, each transmitted as code lengths that
//     are themselves coded (delta against the previous block's lengths, with run-length
//     symbols) with a 20-symbol "pretree": the main code (256 literals + 8 length headers per
//     offset slot), the length code (249 symbols) and, in aligned blocks, an 8-symbol code for
//     the low 3 bits of large offsets;
//   - uncompressed blocks realign to a 16-bit boundary, store R0..R2 and then the raw bytes.
//
// A match symbol holds a length header (0-6, or 7 meaning "add a length-code symbol") and an
// offset slot: slots 0-2 reuse R0..R2, other slots have a base and extra bits.
//
// # Design
//
// The decoder is table-driven: each Huffman code gets a first-level table indexed by the next
// 11 (main), 10 (length), 7 (aligned) or 6 (pretree) bits, whose entries give the symbol and
// codeword length directly, or point to a subtable for longer codewords (see huffman.go). The
// bit buffer is 64 bits wide and gets two words (one 32-bit load and a rotate) whenever it
// holds fewer than 32 bits; the inner loop never checks for the end of input: past the end it
// reads zeros, and the decoder reports truncation afterwards if any of those were consumed.
// Go's register allocator decides much of the speed: the loop keeps only the bit buffer and
// the output position in locals and reads everything else through the Decoder.
// Matches are validated (offset within the chunk, length within the block) before copying;
// copies move 8 bytes at a time when the source is at least 8 bytes back. Tables live in the
// Decoder and are rebuilt per block, so steady-state decoding allocates nothing.
//
// # Hostile input
//
// Every match is checked before it is copied (offset within the output so far, length within
// the block), block sizes within the chunk, recent offsets from uncompressed blocks nonzero,
// codes neither over-subscribed nor incomplete; errors name the problem and the output
// position. Where the format leaves room, the decoder does what wimlib's decoder does, so the
// two agree on every input (the fuzz target checks this): an all-zero code is legal (it
// decodes symbol 0 without consuming bits), a code length run may spill past the last length,
// empty blocks are allowed. The one deliberate difference: wimlib treats input past the end as
// zeros, this decoder reports "truncated" when it needed such bits.
//
// Facts come from wimlib's documentation and behaviour (the reference used by the tests); the
// code is written here.
package lzx

import (
	"encoding/binary"
	"fmt"
)

const (
	numChars        = 256
	numLenSyms      = 249
	maxMainSyms     = numChars + 50*8
	lensSlack       = 50 // a run may overshoot the last length by up to 50 entries
	mainTableBits   = 11
	lenTableBits    = 10
	preTableBits    = 6
	alignedBits     = 7
	numPreSyms      = 20
	maxPreLen       = 15
	e8FileSize      = 12000000
	defaultBlock    = 32768
	maxWindowOrder  = 21
	blockVerbatim   = 1
	blockAligned    = 2
	blockUncompress = 3
)

// Table sizes from tableSize (checked by a test).
const (
	mainTableSize = 5568
	lenTableSize  = 3328
	preTableSize  = 1600
)

// slotBase and slotExtra give, per offset slot, the first formatted offset and the number of
// extra bits (0,0,0,0,1,1,2,2,... up to 16, then 17 from slot 36 on).
var slotBase, slotExtra = func() (b [64]uint32, e [64]uint32) {
	for s := 1; s < 51; s++ {
		x := uint32(17)
		if s-1 < 4 {
			x = 0
		} else if s-1 < 36 {
			x = uint32(s-1-2) / 2
		}
		e[s-1] = x
		b[s] = b[s-1] + 1<<x
	}
	return
}()

// Decoder decodes LZX chunks; it keeps scratch tables between calls and is not safe for
// concurrent use (use one per goroutine, e.g. from a sync.Pool).
type Decoder struct {
	chunkSize int
	order     uint
	numMain   int

	dst []byte // output of the block being decoded (decodeBlock)
	end int    // its end

	mainLens    [maxMainSyms + lensSlack]uint8
	lenLens     [numLenSyms + lensSlack]uint8
	alignedLens [8]uint8
	preLens     [numPreSyms]uint8
	sorted      [maxMainSyms]uint16

	mainTable    [mainTableSize]uint32
	lenTable     [lenTableSize]uint32
	preTable     [preTableSize]uint32
	alignedTable [1 << alignedBits]uint32
}

// NewDecoder returns a decoder for chunks of at most chunkSize uncompressed bytes (at most
// 2 MiB, LZX's largest window).
func NewDecoder(chunkSize int) (*Decoder, error) {
	if chunkSize <= 0 || chunkSize > 1<<maxWindowOrder {
		return nil, fmt.Errorf("lzx: unsupported chunk size %d (want 1 to %d)", chunkSize, 1<<maxWindowOrder)
	}
	order := uint(15)
	for 1<<order < chunkSize {
		order++
	}
	// The largest offset is window size - 3; the main code has 8 symbols per slot needed.
	slots := 30
	for uint32(1<<order-3+2) >= slotBase[slots] {
		slots++
	}
	return &Decoder{chunkSize: chunkSize, order: order, numMain: numChars + 8*slots}, nil
}

// Decompress decodes src into dst; len(dst) is the chunk's exact uncompressed size.
func (d *Decoder) Decompress(dst, src []byte) error {
	if len(dst) > d.chunkSize {
		return fmt.Errorf("lzx: output size %d exceeds the chunk size %d", len(dst), d.chunkSize)
	}
	if len(dst) == 0 {
		return nil
	}
	defer func() { d.dst = nil }() // do not keep the caller's buffer alive in a pooled Decoder
	clear(d.mainLens[:d.numMain])
	clear(d.lenLens[:numLenSyms])
	r := [3]uint32{1, 1, 1}
	br := bitReader{src: src}
	for out := 0; out < len(dst); {
		typ, size, err := d.readBlockHeader(&br, &r, out)
		if err != nil {
			return err
		}
		if size > len(dst)-out {
			return fmt.Errorf("lzx: block of %d bytes at position %d overruns the chunk (%d bytes left)", size, out, len(dst)-out)
		}
		if typ == blockUncompress {
			if err := readUncompressed(&br, dst[out:out+size], out); err != nil {
				return err
			}
			out += size
			continue
		}
		if out, err = d.decodeBlock(&br, dst, out, out+size, typ == blockAligned, &r); err != nil {
			return err
		}
		if br.overrun() {
			return fmt.Errorf("lzx: compressed data truncated (%d bytes) in the block ending at position %d", len(src), out)
		}
	}
	undoE8(dst)
	return nil
}

// readBlockHeader reads a block header and, for compressed blocks, its Huffman codes; for
// uncompressed blocks it leaves br at the R0..R2 fields.
func (d *Decoder) readBlockHeader(br *bitReader, r *[3]uint32, out int) (typ, size int, err error) {
	typ = int(br.bits(3))
	if br.bits(1) == 1 {
		size = defaultBlock
	} else {
		size = int(br.bits(16))
		if d.order >= 16 {
			size = size<<8 | int(br.bits(8))
		}
	}
	switch typ {
	case blockAligned:
		for i := range d.alignedLens {
			d.alignedLens[i] = uint8(br.bits(3))
		}
		if err := buildTable(d.alignedTable[:], d.alignedLens[:], alignedBits, alignedBits, d.sorted[:]); err != nil {
			return 0, 0, fmt.Errorf("lzx: aligned offset code of the block at position %d: %w", out, err)
		}
		fallthrough
	case blockVerbatim:
		if err := d.readLens(br, d.mainLens[:numChars+lensSlack], numChars); err != nil {
			return 0, 0, fmt.Errorf("lzx: main code (literals) of the block at position %d: %w", out, err)
		}
		if err := d.readLens(br, d.mainLens[numChars:d.numMain+lensSlack], d.numMain-numChars); err != nil {
			return 0, 0, fmt.Errorf("lzx: main code (matches) of the block at position %d: %w", out, err)
		}
		if err := buildTable(d.mainTable[:], d.mainLens[:d.numMain], mainTableBits, maxCodeLen, d.sorted[:]); err != nil {
			return 0, 0, fmt.Errorf("lzx: main code of the block at position %d: %w", out, err)
		}
		if err := d.readLens(br, d.lenLens[:], numLenSyms); err != nil {
			return 0, 0, fmt.Errorf("lzx: length code of the block at position %d: %w", out, err)
		}
		if err := buildTable(d.lenTable[:], d.lenLens[:numLenSyms], lenTableBits, maxCodeLen, d.sorted[:]); err != nil {
			return 0, 0, fmt.Errorf("lzx: length code of the block at position %d: %w", out, err)
		}
	case blockUncompress:
		if err := readRecentOffsets(br, r, out); err != nil {
			return 0, 0, err
		}
	default:
		return 0, 0, fmt.Errorf("lzx: invalid block type %d at position %d", typ, out)
	}
	return typ, size, nil
}

// readLens reads a pretree, then n code lengths coded with it as deltas against lens (the
// previous block's lengths). lens has lensSlack spare entries: a run may overshoot n, and
// like wimlib we let it spill into them (for the literal half, into the match half).
func (d *Decoder) readLens(br *bitReader, lens []uint8, n int) error {
	for i := range d.preLens {
		d.preLens[i] = uint8(br.bits(4))
	}
	if err := buildTable(d.preTable[:], d.preLens[:], preTableBits, maxPreLen, d.sorted[:]); err != nil {
		return fmt.Errorf("pretree: %w", err)
	}
	for i := 0; i < n; {
		sym := br.decode(d.preTable[:], preTableBits)
		var run int
		var v uint8
		switch {
		case sym < 17:
			lens[i] = uint8((uint32(lens[i]) + 17 - sym) % 17)
			i++
			continue
		case sym == 17:
			run = 4 + int(br.bits(4))
		case sym == 18:
			run = 20 + int(br.bits(5))
		default:
			run = 4 + int(br.bits(1))
			s := br.decode(d.preTable[:], preTableBits)
			if s > 17 {
				return fmt.Errorf("pretree symbol %d after a same-length run at length %d", s, i)
			}
			v = uint8((uint32(lens[i]) + 17 - s) % 17)
		}
		end := min(i+run, len(lens))
		for ; i < end; i++ {
			lens[i] = v
		}
	}
	return nil
}

// readRecentOffsets aligns the stream as an uncompressed block requires (to the next 16-bit
// boundary, or past one whole word if already aligned) and reads R0, R1, R2.
func readRecentOffsets(br *bitReader, r *[3]uint32, out int) error {
	next := br.seg + 2*(br.consumed()/16+1)
	if next+12 > len(br.src) {
		return fmt.Errorf("lzx: compressed data truncated in the uncompressed block header at position %d", out)
	}
	for i := range r {
		r[i] = binary.LittleEndian.Uint32(br.src[next+4*i:])
		if r[i] == 0 {
			return fmt.Errorf("lzx: uncompressed block at position %d sets R%d to 0", out, i)
		}
	}
	br.pos, br.seg, br.buf, br.nbits = next+12, next+12, 0, 0
	return nil
}

// readUncompressed copies an uncompressed block's bytes and restarts the bitstream after
// them (and after a pad byte if their count is odd).
func readUncompressed(br *bitReader, dst []byte, out int) error {
	p := br.pos
	if len(br.src)-p < len(dst) {
		return fmt.Errorf("lzx: compressed data truncated in the uncompressed block at position %d (%d bytes, %d left)", out, len(dst), len(br.src)-p)
	}
	p += copy(dst, br.src[p:])
	if len(dst)&1 != 0 && p < len(br.src) {
		p++
	}
	br.pos, br.seg, br.buf, br.nbits = p, p, 0, 0
	return nil
}

// undoE8 reverts the x86 CALL translation: a 0xE8 byte at position i < len-10 is followed by
// an absolute 32-bit target that becomes relative again if it lies in the translated range.
func undoE8(b []byte) {
	limit := len(b) - 10
	for i := 0; i < limit; {
		j := indexE8(b[i:limit])
		if j < 0 {
			return
		}
		i += j
		v := int32(binary.LittleEndian.Uint32(b[i+1:]))
		if v >= 0 {
			if v < e8FileSize {
				binary.LittleEndian.PutUint32(b[i+1:], uint32(v-int32(i)))
			}
		} else if v >= -int32(i) {
			binary.LittleEndian.PutUint32(b[i+1:], uint32(v+e8FileSize))
		}
		i += 5
	}
}
