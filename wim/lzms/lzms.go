// Package lzms decodes the LZMS chunks of WIM files (Microsoft's LZMS, as written by
// wimlib and by Windows for LZMS and solid WIMs).
//
// # The format in brief
//
// A compressed chunk is a sequence of 16-bit little-endian words read from both ends.
// From the front, a binary range decoder (range starts at 0xFFFFFFFF, code = first two
// words; renormalised 16 bits at a time) yields the decisions that say what comes next:
// literal or match, LZ or delta match, explicit or repeated offset, which repeat slot.
// Each decision class has its own table of adaptive probabilities indexed by the last
// 4, 5 or 6 decisions of that class; a probability is the number of zeros among the
// last 64 bits coded with that entry. From the back, a second bitstream read backwards
// yields Huffman-coded symbols (literals, offset and length slots, delta powers) and
// verbatim extra bits. The five Huffman codes are never transmitted: both sides start
// with all frequencies 1 and rebuild each code every 512 or 1024 symbols from the counts
// seen, then halve the counts. LZ matches copy from earlier output; delta matches add
// the difference of two earlier byte sequences (out[i] = out[i-off] + out[i-span] -
// out[i-off-span], span a power of two) and catch strided data such as samples or
// pixels. Both kinds keep a queue of three recent offsets whose front insertion is
// delayed by one item. After all items, an x86 filter turns the absolute addresses the
// compressor wrote into what looked like x86 instructions back into relative ones.
//
// # Why the code looks the way it does
//
// Throughput is bounded by a serial chain per item: a range-coder decision whose
// probability entry depends on the previous decisions, then a Huffman lookup. On amd64
// the item loop is assembly (decode_amd64.s, itemsLoop): the Go compiler spilled the two
// bitstreams, the position and the main state around every item, which cost 1.3-2x
// wimlib's C. The assembly keeps them all in registers and decodes literals, LZ matches
// and delta matches itself; it returns to Go (state.itemsAsm) only for code rebuilds
// (deferred to the end of the item that made them due: an item uses each code once) and
// for matches that fail a range check or end too close to dst's end for word moves. The
// same loop in Go (state.items) serves other platforms and the purego tag; tests and the
// fuzz target check that both agree on every input. Match copies of up to 24 bytes (LZ)
// or 16 bytes (delta, spans of 4 or more) are fixed word moves without a loop, whose
// exit would be mispredicted per match. The LZ and delta repeat queues insert at once and
// index one further back when the previous item was a match of the same kind (the
// format's delayed insertion, as wimlib decodes it).
//
// The backward bit reader refills with one unaligned 8-byte load: read from the end,
// the next four 16-bit words are already in MSB-first order. Huffman tables are
// two-level (a direct table plus subtables), array-backed with power-of-two sizes so
// masked indexes need no bounds checks; the code construction mirrors wimlib's
// make_canonical_huffman_code exactly, since any difference changes the output. The
// all-frequencies-one code of each chunk start is built once and copied. The x86 filter
// flags candidate opcodes 16 bytes a step (SSE2 compares on amd64, exact SWAR tests
// elsewhere), makes its two data-dependent decisions with masks, avoids clearing its 64
// Ki-entry table per chunk by storing positions relative to a base that advances past
// the window, and reads the table sequentially once a chunk has used it a few times,
// since after a decode it is mostly out of the cache.
//
// Hostile input is handled by the checks the format needs anyway (match offset within
// the output so far, length within the chunk) plus one the format implies: the two
// bitstreams may not overlap. wimlib instead decodes implied zero bits past either end,
// which turns truncated chunks into garbage; wimlib's compressor never writes such
// chunks. Nothing reads outside src or dst, and errors wrap ErrCorrupt.
package lzms

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error about invalid compressed data.
var ErrCorrupt = errors.New("lzms: corrupt chunk")

// Decoder decodes LZMS chunks. It keeps its probability tables, Huffman codes and x86
// filter state between calls, so steady-state decoding allocates nothing. A Decoder is
// not safe for concurrent use; use one per goroutine (e.g. from a sync.Pool).
type Decoder struct {
	chunkSize int
	s         state
}

// NewDecoder returns a decoder for chunks of at most chunkSize uncompressed bytes
// (1 byte up to 1180427429 bytes, the largest buffer LZMS can address). Its memory does
// not depend on chunkSize beyond the number of offset slots (at most 799).
func NewDecoder(chunkSize int) (*Decoder, error) {
	if chunkSize < 1 || chunkSize > maxChunkSize {
		return nil, fmt.Errorf("lzms: chunk size %d out of range 1..%d", chunkSize, maxChunkSize)
	}
	d := &Decoder{chunkSize: chunkSize}
	d.s.init(max(2, numOffsetSlots(chunkSize)))
	return d, nil
}

// Decompress decodes the compressed chunk src into dst; len(dst) must be the chunk's
// exact uncompressed size. It fills dst entirely or returns an error wrapping
// ErrCorrupt that says what is wrong and where.
func (d *Decoder) Decompress(dst, src []byte) error {
	switch {
	case len(dst) == 0:
		return fmt.Errorf("lzms: empty output buffer")
	case len(dst) > d.chunkSize:
		return fmt.Errorf("lzms: chunk of %d bytes exceeds the decoder's chunk size %d", len(dst), d.chunkSize)
	case len(src) < 4:
		return fmt.Errorf("%w: compressed size %d is less than 4 bytes", ErrCorrupt, len(src))
	case len(src)%2 != 0:
		return fmt.Errorf("%w: compressed size %d is odd", ErrCorrupt, len(src))
	}
	if len(src) < 8 {
		// The backward bit reader loads eight bytes at a time; give it a padded copy
		// that reads the same (zeros below the start).
		pad := &d.s.pad
		*pad = [8]byte{}
		copy(pad[8-len(src):], src)
		if err := d.s.decode(dst, pad[:], 8-len(src)); err != nil {
			return err
		}
		d.s.x86.undo(dst)
		return nil
	}
	if err := d.s.decode(dst, src, 0); err != nil {
		return err
	}
	d.s.x86.undo(dst)
	return nil
}

// x86Reach is how far past a position the x86 filter looks: the bytes of a decoded prefix
// are final except its last x86Reach, which depend on bytes after the prefix.
const x86Reach = 16

// DecompressPrefix decodes only the first bytes of a chunk of size uncompressed bytes: the
// items that produce dst's len(dst) <= size bytes, checked as in a full decode, and the x86
// filter over them. It returns how many bytes at the front of dst are final: len(dst) when
// it is the whole chunk, else len(dst)-16 (the filter at a position looks up to 16 bytes
// further). Its cost is proportional to len(dst), so a reader of a chunk's first bytes need
// not wait for a whole 64 MiB solid chunk. A prefix decode does not see the whole
// compressed chunk, so truncation past the prefix goes unnoticed (a full decode reports it).
func (d *Decoder) DecompressPrefix(dst, src []byte, size int) (int, error) {
	switch {
	case size < 1 || size > d.chunkSize:
		return 0, fmt.Errorf("lzms: chunk of %d bytes out of range 1..%d", size, d.chunkSize)
	case len(dst) > size:
		return 0, fmt.Errorf("lzms: prefix of %d bytes is longer than the chunk (%d)", len(dst), size)
	case len(dst) == size:
		return size, d.Decompress(dst, src)
	case len(dst) == 0:
		return 0, nil
	case len(src) < 8 || len(src)%2 != 0:
		// Tiny or odd chunks are never worth a prefix: decode them whole.
		full := make([]byte, size)
		if err := d.Decompress(full, src); err != nil {
			return 0, err
		}
		return copy(dst, full), nil
	}
	if err := d.s.decodePrefix(dst, src, 0, size); err != nil {
		return 0, err
	}
	d.s.x86.undo(dst)
	return max(0, len(dst)-x86Reach), nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
