package lzms

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// FuzzDecompress feeds arbitrary chunks: the decoder must never panic or read outside its
// buffers, and when wimlib's own decoder is built in, both must agree: same output when
// both accept, no acceptance of what wimlib rejects. The one allowed difference: we
// reject chunks whose two bitstreams overlap (wimlib decodes implied zero bits there),
// which wimlib's compressor never writes.
func FuzzDecompress(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0}, uint16(10))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint16(100))
	f.Add(bytes.Repeat([]byte{0x55, 0xaa}, 64), uint16(4000))
	if wimlibc.Available() {
		for i, kind := range []string{"text", "binary", "int32ramp", "bitmap", "zeros", "mixed"} {
			data := sample(f, kind, 512<<i%6000+200, uint64(i))
			if c, ok, err := wimlibc.Compress(wimlibc.LZMS, 1<<16, data); err == nil && ok {
				f.Add(c, uint16(len(data)))
				// Damaged copies: garbage items from the middle on, which reach the
				// item loops' exits (offsets past the position, matches past the end).
				bad := bytes.Clone(c)
				bad[len(bad)/2] ^= 0xa5
				f.Add(bad, uint16(len(data)))
				f.Add(c, uint16(len(data)/2)) // right chunk, wrong (shorter) size
			}
		}
	}
	d, err := NewDecoder(1 << 16)
	if err != nil {
		f.Fatal(err)
	}
	var ref *wimlibc.Decompressor
	if wimlibc.Available() {
		if ref, err = wimlibc.NewDecompressor(wimlibc.LZMS, 1<<16); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte, size uint16) {
		n := int(size) + 1
		got := make([]byte, n)
		err := d.Decompress(got, src)
		if err != nil && !strings.HasPrefix(err.Error(), "lzms: ") {
			t.Fatalf("error without package prefix: %v", err)
		}
		if haveAsm { // the Go item loop must agree with the assembly one on everything
			useAsm = false
			port := make([]byte, n)
			perr := d.Decompress(port, src)
			useAsm = true
			if fmt.Sprint(perr) != fmt.Sprint(err) || (err == nil && !bytes.Equal(port, got)) {
				t.Fatalf("Go loop (err %v) and assembly loop (err %v) disagree", perr, err)
			}
		}
		// A prefix decode must not panic either, and must agree with an accepted chunk.
		for _, k := range []int{n / 2, n - 1, n*3/4 + 20} {
			if k < 0 || k > n {
				continue
			}
			pre := make([]byte, k)
			exact, perr := d.DecompressPrefix(pre, src, n)
			if perr != nil && !strings.HasPrefix(perr.Error(), "lzms: ") {
				t.Fatalf("prefix error without package prefix: %v", perr)
			}
			if err == nil && perr == nil && !bytes.Equal(pre[:exact], got[:exact]) {
				t.Fatalf("prefix of %d (%d exact) differs from the full decode at byte %d", k, exact, firstDiff(pre[:exact], got[:exact]))
			}
			if err == nil && perr != nil && !strings.Contains(perr.Error(), "overrun") {
				t.Fatalf("prefix of %d of an accepted chunk failed: %v", k, perr)
			}
		}
		// wimlib's behaviour for 1- and 2-byte chunks (0 or 1 offset slots) is undefined.
		if ref == nil || n < 3 {
			return
		}
		want := make([]byte, n)
		werr := ref.Decompress(want, src)
		switch {
		case werr != nil && err == nil:
			t.Fatalf("accepted a %d-byte chunk (-> %d) that wimlib rejects", len(src), n)
		case werr == nil && err != nil && !strings.Contains(err.Error(), "overrun"):
			t.Fatalf("rejected a chunk wimlib accepts: %v", err)
		case werr == nil && err == nil && !bytes.Equal(got, want):
			t.Fatalf("output differs from wimlib's at byte %d of %d", firstDiff(got, want), n)
		}
	})
}
