package xpress

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// encodeChunk compresses src with e and checks the WIM raw-chunk rule: compressed output is
// smaller than src, raw output is src itself.
func encodeChunk(t testing.TB, e *Encoder, src []byte) ([]byte, bool) {
	t.Helper()
	dst := make([]byte, len(src))
	n, compressed, err := e.Compress(dst, src)
	if err != nil {
		t.Fatalf("Compress(%d bytes): %v", len(src), err)
	}
	switch {
	case compressed && n >= len(src):
		t.Fatalf("compressed %d bytes to %d: not smaller, should be raw", len(src), n)
	case !compressed && (n != len(src) || !bytes.Equal(dst, src)):
		t.Fatalf("raw chunk of %d bytes: wrote %d bytes, or not the input", len(src), n)
	}
	return dst[:n], compressed
}

// checkDecoders decodes a compressed chunk with this package's decoder and, when built in,
// wimlib's, and compares both with want.
func checkDecoders(t testing.TB, chunk int, comp, want []byte, ref *wimlibc.Decompressor) {
	t.Helper()
	d, err := NewDecoder(chunk)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if err := d.Decompress(got, comp); err != nil {
		t.Fatalf("our decoder, %d -> %d bytes: %v", len(comp), len(want), err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("our decoder: output differs from the input at byte %d of %d", i, len(want))
	}
	if ref == nil {
		return
	}
	clear(got)
	if err := ref.Decompress(got, comp); err != nil {
		t.Fatalf("wimlib's decoder, %d -> %d bytes: %v", len(comp), len(want), err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("wimlib's decoder: output differs from the input at byte %d of %d", i, len(want))
	}
}

// wimlibDecoder returns wimlib's decompressor for chunk, or nil when the binding is not built.
func wimlibDecoder(t testing.TB, chunk int) *wimlibc.Decompressor {
	t.Helper()
	if !wimlibc.Available() {
		return nil
	}
	ref, err := wimlibc.NewDecompressor(wimlibc.XPRESS, chunk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ref.Close)
	return ref
}

func TestCompressCorpus(t *testing.T) {
	if !wimlibc.Available() {
		t.Log("wimlib binding not built (go test -tags libwim): checking with our decoder only")
	}
	for _, chunk := range []int{4096, 32768, 65536} {
		for _, kind := range []string{"x86", "text", "random", "zeros", "mixed"} {
			t.Run(fmt.Sprintf("%d/%s", chunk, kind), func(t *testing.T) {
				e, err := NewEncoder(chunk)
				if err != nil {
					t.Fatal(err)
				}
				ref := wimlibDecoder(t, chunk)
				data := corpus(t, kind, 1<<20+chunk/3+1) // full chunks, then a short odd one
				in, out, compressed := 0, 0, 0
				for off := 0; off < len(data); off += chunk {
					src := data[off:min(off+chunk, len(data))]
					comp, ok := encodeChunk(t, e, src)
					in, out = in+len(src), out+len(comp)
					if ok {
						compressed++
						checkDecoders(t, chunk, comp, src, ref)
					}
				}
				switch {
				case kind == "random" && compressed != 0:
					t.Fatalf("%d random chunks 'compressed'", compressed)
				case kind != "random" && compressed == 0:
					t.Fatalf("no %s chunk compressed: test covers nothing", kind)
				}
				t.Logf("%d -> %d bytes (%.1f%%)", in, out, 100*float64(out)/float64(in))
			})
		}
	}
}

func TestCompressEdges(t *testing.T) {
	x86 := corpus(t, "x86", 70000)
	rng := rand.New(rand.NewPCG(11, 12))
	incompressible := make([]byte, 65536)
	for i := range incompressible {
		incompressible[i] = byte(rng.Uint32())
	}
	periodic := func(period, n int) []byte { return bytes.Repeat(x86[5000:5000+period], n/period+1)[:n] }
	long := append(append(append([]byte{}, x86[:30000]...), x86[:30000]...), x86[:5536]...) // 64 KiB
	cases := []struct {
		name  string
		data  []byte
		chunk int
		want  string // "raw", "compressed" or "" (either)
	}{
		{"empty", nil, 32768, "raw"},
		{"1 byte", []byte{0x41}, 32768, "raw"},
		{"260 bytes", make([]byte, 260), 32768, "raw"},
		{"300 zeros", make([]byte, 300), 32768, "compressed"},
		{"zeros 32K", make([]byte, 32768), 32768, "compressed"},
		{"zeros 64K", make([]byte, 65536), 65536, "compressed"},
		{"x86 32K", x86[:32768], 32768, "compressed"},
		{"x86 64K", x86[:65536], 65536, "compressed"},
		{"x86 odd", x86[:12345], 32768, "compressed"},
		{"incompressible 32K", incompressible[:32768], 32768, "raw"},
		{"incompressible 64K", incompressible, 65536, "raw"},
		{"one long match (u16 length)", long, 65536, "compressed"},
		{"text", []byte(strings.Repeat("pxewim serves WinPE. ", 1600))[:32000], 32768, "compressed"},
		{"incompressible then zeros", append(append([]byte{}, incompressible[:30000]...), make([]byte, 2768)...), 32768, "compressed"},
		{"4 KiB chunk", x86[:4096], 4096, ""},
	}
	for period := 1; period <= 9; period++ {
		cases = append(cases, struct {
			name  string
			data  []byte
			chunk int
			want  string
		}{fmt.Sprintf("period %d", period), periodic(period, 65536), 65536, "compressed"})
	}
	// Many long matches of varied lengths between random runs: the writer's list of long
	// lengths stays in step with the items, and runs of >128 misses switch on skipping.
	var many []byte
	for j := 0; len(many) < 60000; j++ {
		many = append(many, incompressible[j*300:j*300+40+j%300]...)
		many = append(many, x86[1000:1000+15+(j*37)%700]...)
	}
	cases = append(cases, struct {
		name  string
		data  []byte
		chunk int
		want  string
	}{"long matches between random runs", many[:60000], 65536, "compressed"})
	// Lengths around the extra-byte (18) and 16-bit (273) thresholds.
	for _, l := range []int{17, 18, 19, 272, 273, 274, 275} {
		d := append(append([]byte{}, x86[:2000]...), x86[100:100+l]...)
		d = append(d, x86[40000:42000]...)
		cases = append(cases, struct {
			name  string
			data  []byte
			chunk int
			want  string
		}{fmt.Sprintf("match length %d", l), d, 32768, "compressed"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEncoder(tc.chunk)
			if err != nil {
				t.Fatal(err)
			}
			comp, ok := encodeChunk(t, e, tc.data)
			if tc.want == "raw" && ok || tc.want == "compressed" && !ok {
				t.Fatalf("compressed=%v (%d -> %d bytes); want %s", ok, len(tc.data), len(comp), tc.want)
			}
			if ok {
				checkDecoders(t, tc.chunk, comp, tc.data, wimlibDecoder(t, tc.chunk))
			}
			// Deterministic, and independent of what the encoder compressed before.
			e.Compress(make([]byte, 65536), incompressible[:tc.chunk])
			again, _ := encodeChunk(t, e, tc.data)
			if !bytes.Equal(again, comp) {
				t.Fatal("compressing the same chunk again gives different bytes")
			}
		})
	}
}

func TestCompressErrors(t *testing.T) {
	for _, size := range []int{0, -1, 65537} {
		if _, err := NewEncoder(size); err == nil {
			t.Errorf("NewEncoder(%d) accepted", size)
		}
	}
	e, _ := NewEncoder(4096)
	if _, _, err := e.Compress(make([]byte, 5000), make([]byte, 4097)); err == nil || !strings.HasPrefix(err.Error(), "xpress: ") {
		t.Errorf("oversized chunk: %v", err)
	}
	if _, _, err := e.Compress(make([]byte, 10), make([]byte, 100)); err == nil {
		t.Error("short output buffer accepted")
	}
}

// TestCompressIndependent checks that an encoder's tables carry nothing from one chunk to the
// next: a chunk compressed after others gives the bytes a fresh encoder gives.
func TestCompressIndependent(t *testing.T) {
	text, x86 := corpus(t, "text", 65536), corpus(t, "x86", 65536)
	e, _ := NewEncoder(65536)
	first, _ := encodeChunk(t, e, text)
	for i, src := range [][]byte{x86, text[:40000], x86[:1000]} {
		encodeChunk(t, e, src)
		if got, _ := encodeChunk(t, e, text); !bytes.Equal(got, first) {
			t.Fatalf("after chunk %d the same input compresses differently", i)
		}
	}
}

func TestCompressNoAllocs(t *testing.T) {
	data := corpus(t, "x86", 32768)
	e, _ := NewEncoder(32768)
	dst := make([]byte, len(data))
	if n := testing.AllocsPerRun(10, func() {
		if _, _, err := e.Compress(dst, data); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per chunk, want 0", n)
	}
}

// FuzzCompress compresses arbitrary input with an arbitrary chunk size: the result must follow
// the raw-chunk rule and decode (with ours, and wimlib's when built in) to the input.
func FuzzCompress(f *testing.F) {
	f.Add([]byte("The quick brown fox jumps over the lazy dog. The quick brown fox."), uint8(0))
	f.Add(bytes.Repeat([]byte{0}, 5000), uint8(4))
	f.Add(bytes.Repeat([]byte("ab"), 3000), uint8(2))
	f.Add(bytes.Repeat([]byte("\xE8\x00\x01\x00\x00xyz"), 700), uint8(3))
	f.Add(append(bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), 20), []byte("x0123456789abcdefghij 0123456789abcdefghijklmnopqrstuvwxyz!")...), uint8(1))
	encs := map[int]*Encoder{}
	refs := map[int]*wimlibc.Decompressor{}
	f.Fuzz(func(t *testing.T, data []byte, order uint8) {
		chunk := 1 << (12 + order%5)
		if len(data) > chunk {
			data = data[:chunk]
		}
		e := encs[chunk]
		if e == nil {
			e, _ = NewEncoder(chunk)
			encs[chunk] = e
		}
		comp, ok := encodeChunk(t, e, data)
		if !ok {
			return
		}
		ref := refs[chunk]
		if ref == nil && wimlibc.Available() {
			var err error
			if ref, err = wimlibc.NewDecompressor(wimlibc.XPRESS, chunk); err != nil {
				t.Fatal(err)
			}
			refs[chunk] = ref
		}
		checkDecoders(t, chunk, comp, data, ref)
	})
}
