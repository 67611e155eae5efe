package xpress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// Hostile chunks built by hand, checked against expectations and against wimlib's decoder.

// chunkWriter writes an XPRESS chunk: a code length table, then bits from the top of 16-bit
// little-endian words. It does not place embedded length bytes, so tests use length headers
// below 15.
type chunkWriter struct {
	out  []byte
	acc  uint32
	nacc uint
}

func newChunk(lens func(sym int) uint8) *chunkWriter {
	w := &chunkWriter{out: make([]byte, 256)}
	for i := range w.out {
		w.out[i] = lens(2*i) | lens(2*i+1)<<4
	}
	return w
}

func (w *chunkWriter) bits(v uint32, n uint) *chunkWriter {
	for i := int(n) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | v>>uint(i)&1
		if w.nacc++; w.nacc == 16 {
			w.out = binary.LittleEndian.AppendUint16(w.out, uint16(w.acc))
			w.acc, w.nacc = 0, 0
		}
	}
	return w
}

// sym writes a symbol of the flat code in which all 512 symbols have 9-bit codes.
func (w *chunkWriter) sym(s int) *chunkWriter { return w.bits(uint32(s), 9) }

// match writes a match with length header hdr (< 15) and offset 1<<log2 + low.
func (w *chunkWriter) match(hdr, log2 int, low uint32) *chunkWriter {
	return w.sym(256+log2<<4+hdr).bits(low, uint(log2))
}

func (w *chunkWriter) done() []byte {
	if w.nacc > 0 {
		w.bits(0, 16-w.nacc)
	}
	return append(w.out, 0, 0) // as wimlib does, room for the reference decoder's lookahead
}

func flat(int) uint8 { return 9 }

func TestHandmadeChunks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     []byte
		size    int
		want    string
		wantErr string
	}{
		{"literals and matches", newChunk(flat).sym('x').sym('y').match(3, 1, 0).sym('z').match(0, 2, 0).done(), 12, "xyxyxyxyzyxy", ""},
		{"overlapping offset 1", newChunk(flat).sym('q').match(12, 0, 0).done(), 16, strings.Repeat("q", 16), ""},
		{"all-zero code decodes zeros", newChunk(func(int) uint8 { return 0 }).done(), 40, strings.Repeat("\x00", 40), ""},
		{"offset before chunk start", newChunk(flat).sym('a').match(0, 1, 0).done(), 10, "", "match offset 2 before chunk start at position 1"},
		{"far offset before chunk start", newChunk(flat).sym('a').sym('b').match(0, 15, 0x7fff).done(), 10, "", "match offset 65535 before chunk start at position 2"},
		{"match past the end", newChunk(flat).sym('a').match(10, 0, 0).done(), 8, "", "runs past the chunk end 8"},
		{"over-subscribed code", newChunk(func(int) uint8 { return 1 }).done(), 8, "", "over-subscribed"},
		{"incomplete code", newChunk(func(s int) uint8 { return map[int]uint8{0: 1}[s] }).done(), 8, "", "incomplete"},
		{"no code table", make([]byte, 100), 8, "", "shorter than the 256-byte code length table"},
		{"bitstream cut short", newChunk(flat).sym('a').sym('b').done()[:258], 30, "", "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := NewDecoder(65536)
			got := make([]byte, tc.size)
			err := d.Decompress(got, tc.src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if !wimlibc.Available() {
				return
			}
			ref, _ := wimlibc.NewDecompressor(wimlibc.XPRESS, 65536)
			defer ref.Close()
			want := make([]byte, tc.size)
			errC := ref.Decompress(want, tc.src)
			if (err == nil) != (errC == nil) && !strings.Contains(fmt.Sprint(err), "truncated") {
				t.Fatalf("we say %v, wimlib says %v", err, errC)
			}
			if err == nil && errC == nil && !bytes.Equal(got, want) {
				t.Fatalf("output differs from wimlib's at byte %d", firstDiff(got, want))
			}
		})
	}
}
