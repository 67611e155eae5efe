package lzx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// wimlib's compressor never writes uncompressed blocks, and rarely odd shapes, so these tests
// build chunks by hand with a tiny encoder and check our decoder against wimlib's decoder on
// the same bytes.

// bitWriter writes the LZX bitstream: bits from the top of 16-bit little-endian words.
type bitWriter struct {
	out  []byte
	acc  uint32
	nacc uint
}

func (w *bitWriter) bits(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | v>>uint(i)&1
		w.nacc++
		if w.nacc == 16 {
			w.out = binary.LittleEndian.AppendUint16(w.out, uint16(w.acc))
			w.acc, w.nacc = 0, 0
		}
	}
}

// alignForUncompressed pads to the next word boundary, or writes a whole zero word if
// already on one (1 to 16 bits).
func (w *bitWriter) alignForUncompressed() {
	w.bits(0, 16-w.nacc)
}

// flush pads the last word.
func (w *bitWriter) flush() []byte {
	if w.nacc > 0 {
		w.bits(0, 16-w.nacc)
	}
	return w.out
}

func (w *bitWriter) header(typ int, size int, order uint) {
	w.bits(uint32(typ), 3)
	if size == defaultBlock {
		w.bits(1, 1)
		return
	}
	w.bits(0, 1)
	if order >= 16 {
		w.bits(uint32(size>>8), 16)
		w.bits(uint32(size&255), 8)
	} else {
		w.bits(uint32(size), 16)
	}
}

// literalBlock writes a verbatim block of literals only: every literal has an 8-bit code
// (the literal itself), match and length symbols none. prevLit8 says whether the previous
// block already gave the literals length 8 (the lengths are deltas against it).
func (w *bitWriter) literalBlock(data []byte, order uint, numMain int, prevLit8 bool) {
	w.header(blockVerbatim, len(data), order)
	// Pretree: symbols 0 ("same as before") and 9 ("0 -> 8") get 1-bit codes 0 and 1.
	pre := func() {
		for s := 0; s < numPreSyms; s++ {
			l := uint32(0)
			if s == 0 || s == 9 {
				l = 1
			}
			w.bits(l, 4)
		}
	}
	pre()
	for range numChars {
		if prevLit8 {
			w.bits(0, 1)
		} else {
			w.bits(1, 1)
		}
	}
	pre()
	for range numMain - numChars {
		w.bits(0, 1)
	}
	pre()
	for range numLenSyms {
		w.bits(0, 1)
	}
	for _, b := range data {
		w.bits(uint32(b), 8)
	}
}

// matchBlock writes a verbatim block whose main code gives match symbols 256-287 (offset
// slots 0-3, every length header) 6-bit codes and literals 9-bit codes; canonically the
// match codes are 0-31 and the literal codes 256+literal. The length code is empty. items are literals (0-255) or
// 256+symbol for matches; the caller keeps the sizes consistent (or not, on purpose).
func (w *bitWriter) matchBlock(size int, items []int, order uint, numMain int) {
	w.header(blockVerbatim, size, order)
	pre := func() { // pretree: symbol 0 "0", 8 "10", 11 "11"
		for s := 0; s < numPreSyms; s++ {
			l := map[int]uint32{0: 1, 8: 2, 11: 2}[s]
			w.bits(l, 4)
		}
	}
	pre()
	for range numChars {
		w.bits(0b10, 2) // 0 -> 9
	}
	pre()
	for i := range numMain - numChars {
		if i < 32 {
			w.bits(0b11, 2) // 0 -> 6
		} else {
			w.bits(0, 1)
		}
	}
	pre()
	for range numLenSyms {
		w.bits(0, 1)
	}
	for _, it := range items {
		if it < numChars {
			w.bits(uint32(256+it), 9)
		} else {
			w.bits(uint32(it-numChars), 6)
		}
	}
}

func (w *bitWriter) uncompressedBlock(data []byte, order uint, r [3]uint32) {
	w.header(blockUncompress, len(data), order)
	w.alignForUncompressed()
	for _, v := range r {
		w.out = binary.LittleEndian.AppendUint32(w.out, v)
	}
	w.out = append(w.out, data...)
	if len(data)%2 == 1 {
		w.out = append(w.out, 0)
	}
}

type handmade struct {
	name    string
	chunk   int
	build   func(order uint, numMain int) []byte
	size    int
	want    []byte // nil: compare with wimlib only
	wantErr string
}

func handmadeCases(data []byte) []handmade {
	ok3 := [3]uint32{1, 2, 3}
	return []handmade{
		{name: "uncompressed", chunk: 32768, size: 1001, want: data[:1001], build: func(o uint, m int) []byte {
			var w bitWriter
			w.uncompressedBlock(data[:1001], o, ok3)
			return w.flush()
		}},
		{name: "literals then uncompressed", chunk: 32768, size: 3000, want: data[:3000], build: func(o uint, m int) []byte {
			var w bitWriter
			w.literalBlock(data[:1000], o, m, false)
			w.uncompressedBlock(data[1000:2001], o, ok3)
			w.literalBlock(data[2001:3000], o, m, true)
			return w.flush()
		}},
		{name: "32K literals then 32K uncompressed (default sizes)", chunk: 65536, size: 65536, want: data[:65536], build: func(o uint, m int) []byte {
			var w bitWriter
			w.literalBlock(data[:32768], o, m, false)
			w.uncompressedBlock(data[32768:65536], o, ok3)
			return w.flush()
		}},
		{name: "E8 in uncompressed block", chunk: 32768, size: 64, build: func(o uint, m int) []byte {
			var w bitWriter
			w.uncompressedBlock([]byte(strings.Repeat("\xE8\x05\x00\x00\x00\xE8\xF0\xFF\xFF\xFF", 7)[:64]), o, ok3)
			return w.flush()
		}},
		{name: "R0 zero", chunk: 32768, size: 10, wantErr: "sets R0 to 0", build: func(o uint, m int) []byte {
			var w bitWriter
			w.uncompressedBlock(data[:10], o, [3]uint32{0, 1, 1})
			return w.flush()
		}},
		{name: "R2 zero", chunk: 32768, size: 10, wantErr: "sets R2 to 0", build: func(o uint, m int) []byte {
			var w bitWriter
			w.uncompressedBlock(data[:10], o, [3]uint32{1, 1, 0})
			return w.flush()
		}},
		{name: "block beyond chunk", chunk: 32768, size: 100, wantErr: "overruns the chunk", build: func(o uint, m int) []byte {
			var w bitWriter
			w.uncompressedBlock(data[:200], o, ok3)
			return w.flush()
		}},
		{name: "uncompressed data cut short", chunk: 32768, size: 500, wantErr: "truncated", build: func(o uint, m int) []byte {
			var w bitWriter
			w.uncompressedBlock(data[:500], o, ok3)
			return w.flush()[:300]
		}},
		{name: "literal block cut short", chunk: 32768, size: 500, wantErr: "truncated", build: func(o uint, m int) []byte {
			var w bitWriter
			w.literalBlock(data[:500], o, m, false)
			return w.flush()[:400]
		}},
		{name: "matches", chunk: 32768, size: 24, want: []byte("abbbbbbbbbcccccccccab\x01\x01\x01"), build: func(o uint, m int) []byte {
			var w bitWriter
			// ab, explicit offset 1 x8 (b), c, repeat R0 (=1) x8 (c), a b \x01, offset 1 x2
			w.matchBlock(24, []int{'a', 'b', 256 + 8*3 + 6, 'c', 256 + 8*0 + 6, 'a', 'b', 1, 256 + 8*3 + 0}, o, m)
			return w.flush()
		}},
		{name: "match offset before chunk start", chunk: 32768, size: 10, wantErr: "match offset 1 before chunk start at position 0", build: func(o uint, m int) []byte {
			var w bitWriter
			w.matchBlock(10, []int{256 + 8*3 + 0}, o, m)
			return w.flush()
		}},
		{name: "repeat offset before chunk start", chunk: 32768, size: 20, wantErr: "match offset 1000 before chunk start at position 10", build: func(o uint, m int) []byte {
			var w bitWriter
			w.uncompressedBlock(data[:10], o, [3]uint32{1000, 1, 1})
			w.matchBlock(10, []int{256 + 8*0 + 0}, o, m)
			return w.flush()
		}},
		{name: "match past block end", chunk: 32768, size: 20, wantErr: "runs past the block end 5", build: func(o uint, m int) []byte {
			var w bitWriter
			w.matchBlock(5, []int{'a', 'b', 256 + 8*3 + 6}, o, m)
			w.matchBlock(15, nil, o, m)
			return w.flush()
		}},
		{name: "block type 0", chunk: 32768, size: 10, wantErr: "invalid block type 0", build: func(o uint, m int) []byte {
			return make([]byte, 16)
		}},
		{name: "block type 5", chunk: 32768, size: 10, wantErr: "invalid block type 5", build: func(o uint, m int) []byte {
			var w bitWriter
			w.header(5, 10, o)
			return w.flush()
		}},
		{name: "oversubscribed pretree", chunk: 32768, size: 10, wantErr: "over-subscribed", build: func(o uint, m int) []byte {
			var w bitWriter
			w.header(blockVerbatim, 10, o)
			for range numPreSyms {
				w.bits(1, 4)
			}
			return w.flush()
		}},
		{name: "incomplete pretree", chunk: 32768, size: 10, wantErr: "incomplete", build: func(o uint, m int) []byte {
			var w bitWriter
			w.header(blockVerbatim, 10, o)
			w.bits(1, 4)
			for range numPreSyms - 1 {
				w.bits(0, 4)
			}
			return w.flush()
		}},
	}
}

func TestHandmadeChunks(t *testing.T) {
	data := bytes.ReplaceAll(corpus(t, "text", 1<<17), []byte{0xE8}, []byte{0xE9}) // no E8 translation to undo
	for _, tc := range handmadeCases(data) {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDecoder(tc.chunk)
			if err != nil {
				t.Fatal(err)
			}
			src := tc.build(d.order, d.numMain)
			got := make([]byte, tc.size)
			err = d.Decompress(got, src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && err == nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("output differs from the input at byte %d", firstDiff(got, tc.want))
			}
			if !wimlibc.Available() {
				return
			}
			ref, err2 := wimlibc.NewDecompressor(wimlibc.LZX, tc.chunk)
			if err2 != nil {
				t.Fatal(err2)
			}
			defer ref.Close()
			want := make([]byte, tc.size)
			errC := ref.Decompress(want, src)
			if (err == nil) != (errC == nil) && !strings.Contains(fmt.Sprint(err), "truncated") {
				t.Fatalf("we say %v, wimlib says %v", err, errC)
			}
			if err == nil && errC == nil && !bytes.Equal(got, want) {
				t.Fatalf("output differs from wimlib's at byte %d", firstDiff(got, want))
			}
		})
	}
}
