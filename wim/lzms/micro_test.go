package lzms

import (
	"testing"
)

func BenchmarkX86Undo(b *testing.B) {
	data := sample(b, "binary", 4<<20, 5)
	x := newX86Undo()
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for off := 0; off+len(buf) <= len(data); off += len(buf) {
			copy(buf, data[off:])
			x.undo(buf)
		}
	}
}

func BenchmarkRebuild(b *testing.B) {
	for _, c := range []struct {
		name string
		syms int
		tb   uint
	}{{"literal", 256, literalTableBits}, {"offset32K", numOffsetSlots(32 << 10), offsetTableBits}, {"offset64M", numOffsetSlots(64 << 20), offsetTableBits}, {"length", 54, lengthTableBits}} {
		b.Run(c.name, func(b *testing.B) {
			var s huffScratch
			code := newAdaptiveCode(c.syms, c.tb, 1024)
			code.reset(c.syms, &s)
			rng := uint32(1)
			syms := make([]int, 1024)
			for i := range syms { // skewed symbol counts like real data
				rng = rng*1664525 + 1013904223
				syms[i] = int(rng>>16) % c.syms * int(rng>>8&255) / 256
			}
			for b.Loop() {
				for _, sym := range syms {
					code.freqs[sym]++
				}
				code.rebuild(&s)
			}
		})
	}
}

// BenchmarkOwn runs only this package's decoder (for profiling).
func BenchmarkOwn(b *testing.B) {
	needWimlib(b)
	for _, kind := range []string{"text", "binary", "int32ramp", "bitmap"} {
		b.Run(kind, func(b *testing.B) {
			chunks, n := benchChunks(b, kind, 1<<20, 4<<20)
			d, _ := NewDecoder(1 << 20)
			dst := make([]byte, 1<<20)
			b.SetBytes(int64(n))
			for b.Loop() {
				for _, ch := range chunks {
					if err := d.Decompress(dst[:len(ch.raw)], ch.comp); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func TestBytewiseArithmetic(t *testing.T) {
	rng := uint64(0x9e3779b97f4a7c15)
	for range 100000 {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		x, y := rng, rng*0x2545F4914F6CDD1D
		add, sub := addBytes64(x, y), subBytes64(x, y)
		for k := 0; k < 64; k += 8 {
			bx, by := byte(x>>k), byte(y>>k)
			if byte(add>>k) != bx+by || byte(sub>>k) != bx-by {
				t.Fatalf("bytewise arithmetic wrong for %#x, %#x at byte %d", x, y, k/8)
			}
		}
	}
}
