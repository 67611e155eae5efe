package lzx

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/wimlibc"
	"github.com/pxewim/pxewim/wim/internal/codectest"
)

func needWimlib(t testing.TB) { t.Helper(); codectest.NeedWimlib(t) }

// roundTrip compresses data with wimlib and checks that our decoder restores it
// (codectest.RoundTrip).
func roundTrip(t *testing.T, d *Decoder, chunkSize int, data []byte) bool {
	t.Helper()
	return codectest.RoundTrip(t, wimlibc.LZX, chunkSize, data, d.Decompress)
}

var firstDiff = codectest.FirstDiff

func TestRoundTripChunkSizes(t *testing.T) {
	needWimlib(t)
	kinds := []string{"x86", "text", "random", "zeros", "mixed"}
	for order := 15; order <= 21; order++ {
		chunk := 1 << order
		for _, kind := range kinds {
			t.Run(fmt.Sprintf("%d/%s", chunk, kind), func(t *testing.T) {
				d, err := NewDecoder(chunk)
				if err != nil {
					t.Fatal(err)
				}
				// Two full chunks (the decoder is reused: state must reset per chunk),
				// then a short last chunk of odd size.
				total := min(2*chunk, 1<<21) + chunk/3 + 1
				data := corpus(t, kind, total)
				compressed := 0
				for off := 0; off < len(data); off += chunk {
					if roundTrip(t, d, chunk, data[off:min(off+chunk, len(data))]) {
						compressed++
					}
				}
				if kind != "random" && compressed == 0 {
					t.Fatalf("wimlib stored every %s chunk raw: test covers nothing", kind)
				}
			})
		}
	}
}

func TestRoundTripSmall(t *testing.T) {
	needWimlib(t)
	text := corpus(t, "text", 200)
	x86 := corpus(t, "x86", 200)
	d, _ := NewDecoder(32768)
	n := 0
	for size := 1; size <= 100; size++ {
		for _, src := range [][]byte{text, x86, bytes.Repeat([]byte{0xE8}, size), make([]byte, size)} {
			if roundTrip(t, d, 32768, src[:size]) {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("wimlib compressed none of the small inputs")
	}
}

// TestRoundTripShapes covers long matches, overlapping matches with every short offset,
// and E8 bytes near the end of the chunk, where translation must stop.
func TestRoundTripShapes(t *testing.T) {
	needWimlib(t)
	x86 := corpus(t, "x86", 40000)
	var shapes = map[string][]byte{}
	for off := 1; off <= 9; off++ {
		pat := x86[1000 : 1000+off]
		shapes[fmt.Sprintf("period%d", off)] = bytes.Repeat(pat, 30000/off)
	}
	e8 := append(bytes.Repeat([]byte("\xE8\x10\x00\x00\x00abc"), 3000), x86[:100]...)
	for tail := 0; tail < 16; tail++ {
		shapes[fmt.Sprintf("e8tail%d", tail)] = append(append([]byte{}, e8...), bytes.Repeat([]byte{0xE8}, tail)...)
	}
	shapes["longmatch"] = append(append(append([]byte{}, x86[:20000]...), x86[:10000]...), x86[:2]...)
	shapes["textlike"] = []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 700))
	// Short matches (3-24 bytes, offsets 8-40) up to the very end: the decoders copy them
	// with three unconditional words when 24 bytes of room are left, else word by word.
	for tail := 0; tail < 26; tail += 5 {
		b := append([]byte{}, x86[3000:3200]...)
		for j := 0; len(b) < 3000+tail; j++ {
			back := 8 + j*13%33
			n := min(3+j*7%22, back)
			b = append(b, b[len(b)-back:len(b)-back+n]...)
			b = append(b, x86[5000+j])
		}
		shapes[fmt.Sprintf("shortmatches%d", tail)] = b[:3000+tail]
	}
	for name, data := range shapes {
		t.Run(name, func(t *testing.T) {
			d, _ := NewDecoder(32768)
			if !roundTrip(t, d, 32768, data[:min(len(data), 32768)]) {
				t.Fatal("wimlib did not compress it")
			}
		})
	}
}

func TestNewDecoderSizes(t *testing.T) {
	for _, tc := range []struct {
		size    int
		numMain int
		wantErr bool
	}{
		{32768, 496, false}, {65536, 512, false}, {1 << 17, 528, false}, {1 << 18, 544, false},
		{1 << 19, 560, false}, {1 << 20, 592, false}, {1 << 21, 656, false}, {4096, 496, false},
		{0, 0, true}, {-1, 0, true}, {1<<21 + 1, 0, true},
	} {
		d, err := NewDecoder(tc.size)
		if (err != nil) != tc.wantErr {
			t.Errorf("NewDecoder(%d): err = %v", tc.size, err)
			continue
		}
		if err == nil && d.numMain != tc.numMain {
			t.Errorf("NewDecoder(%d): %d main symbols, want %d", tc.size, d.numMain, tc.numMain)
		}
	}
	if mainTableSize != tableSize(maxMainSyms, mainTableBits, maxCodeLen) ||
		lenTableSize != tableSize(numLenSyms, lenTableBits, maxCodeLen) ||
		preTableSize != tableSize(numPreSyms, preTableBits, maxPreLen) {
		t.Fatal("table size constants are out of date")
	}
}

// TestNoAllocs checks that a Decoder decodes without allocating once it exists.
func TestNoAllocs(t *testing.T) {
	needWimlib(t)
	data := corpus(t, "x86", 32768)
	comp, ok, err := wimlibc.Compress(wimlibc.LZX, 32768, data)
	if err != nil || !ok {
		t.Fatalf("wimlib compress: ok=%v err=%v", ok, err)
	}
	d, _ := NewDecoder(32768)
	dst := make([]byte, len(data))
	if n := testing.AllocsPerRun(20, func() {
		if err := d.Decompress(dst, comp); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per chunk, want 0", n)
	}
}
