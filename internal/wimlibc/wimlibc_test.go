package wimlibc

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	if !Available() {
		t.Skip("wimlib binding not built: run with -tags libwim and libwim-dev installed (./test.sh does)")
	}
	data := bytes.Repeat([]byte("pxewim boots lab machines "), 2000)
	for _, c := range []struct {
		codec Codec
		chunk int
	}{{XPRESS, 32768}, {LZX, 32768}, {LZMS, 1 << 20}} {
		in := data
		if len(in) > c.chunk {
			in = in[:c.chunk]
		}
		comp, ok, err := Compress(c.codec, c.chunk, in)
		if err != nil || !ok {
			t.Fatalf("%v: compress ok=%v err=%v", c.codec, ok, err)
		}
		d, err := NewDecompressor(c.codec, c.chunk)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, len(in))
		if err := d.Decompress(out, comp); err != nil {
			t.Fatalf("%v: %v", c.codec, err)
		}
		d.Close()
		if !bytes.Equal(out, in) {
			t.Fatalf("%v: round trip differs", c.codec)
		}
	}
}
