package lzx

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// FuzzDecompress feeds arbitrary chunks to the decoder: it must never panic, and when
// wimlib's decoder is built in, the two must agree. Known, intended differences: we reject
// input whose decoding consumes bits past its end ("truncated"), where wimlib reads zeros.
func FuzzDecompress(f *testing.F) {
	for _, s := range []string{"The quick brown fox jumps over the lazy dog. ", "\xE8\x00\x01\x00\x00abc", "\x00"} {
		data := []byte(strings.Repeat(s, 1000/len(s)+1))
		if comp, ok, err := wimlibc.Compress(wimlibc.LZX, 32768, data); err == nil && ok {
			f.Add(comp, uint32(len(data)), uint8(0))
		}
	}
	f.Add([]byte{0x30, 0x00, 0x00, 0x80}, uint32(7), uint8(1))
	// Hand-built chunks: uncompressed blocks (which wimlib never writes) and hostile matches.
	data := bytes.ReplaceAll(corpus(f, "text", 1<<17), []byte{0xE8}, []byte{0xE9})
	for _, tc := range handmadeCases(data) {
		d, _ := NewDecoder(tc.chunk)
		f.Add(tc.build(d.order, d.numMain), uint32(tc.size-1), uint8(d.order-15))
	}
	decs := map[uint8]*Decoder{}
	var ref map[uint8]*wimlibc.Decompressor
	if wimlibc.Available() {
		ref = map[uint8]*wimlibc.Decompressor{}
	}
	f.Fuzz(func(t *testing.T, src []byte, size uint32, order uint8) {
		order %= 7
		chunk := 1 << (15 + order)
		n := int(size%uint32(min(chunk, 1<<16))) + 1
		d := decs[order]
		if d == nil {
			d, _ = NewDecoder(chunk)
			decs[order] = d
		}
		dst := make([]byte, n)
		err := d.Decompress(dst, src)
		if ref == nil || len(src) == 0 {
			return
		}
		c := ref[order]
		if c == nil {
			var cerr error
			if c, cerr = wimlibc.NewDecompressor(wimlibc.LZX, chunk); cerr != nil {
				t.Fatal(cerr)
			}
			ref[order] = c
		}
		want := make([]byte, n)
		errC := c.Decompress(want, src)
		switch {
		case err == nil && errC == nil:
			if i := firstDiff(dst, want); i >= 0 {
				t.Fatalf("output differs from wimlib's at byte %d of %d", i, n)
			}
		case err == nil && errC != nil:
			t.Fatalf("we accept input that wimlib rejects (%d bytes -> %d)", len(src), n)
		case err != nil && errC == nil:
			if !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("wimlib accepts input that we reject: %v", err)
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "lzx: ") {
			t.Fatalf("error does not name the codec: %v", err)
		}
	})
}
