package lzms

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func BenchmarkX86Undo(b *testing.B) {
	data := sample(b, "binary", 4<<20, 5)
	x := newX86Undo()
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(data)))
	var best cpuBest
	for b.Loop() {
		t0 := best.start()
		for off := 0; off+len(buf) <= len(data); off += len(buf) {
			copy(buf, data[off:])
			x.undo(buf)
		}
		best.stop(t0)
	}
	best.report(b, len(data))
}

// cpuBest keeps the fastest pass of a benchmark in thread CPU time, which (unlike the
// wall time behind ns/op) a busy machine does not inflate.
type cpuBest struct{ d time.Duration }

func (c *cpuBest) start() time.Duration {
	runtime.LockOSThread()
	return threadCPU()
}

func (c *cpuBest) stop(t0 time.Duration) {
	if d := threadCPU() - t0; c.d == 0 || d < c.d {
		c.d = d
	}
	runtime.UnlockOSThread()
}

func (c *cpuBest) report(b *testing.B, n int) {
	if c.d > 0 {
		b.ReportMetric(float64(n)/1e6/c.d.Seconds(), "cpu-MB/s")
	}
}

func BenchmarkRebuild(b *testing.B) {
	for _, c := range []struct {
		name string
		syms int
		tb   uint
	}{{"literal", 256, literalTableBits}, {"offset32K", numOffsetSlots(32 << 10), offsetTableBits}, {"offset1M", numOffsetSlots(1 << 20), offsetTableBits}, {"offset64M", numOffsetSlots(64 << 20), offsetTableBits}, {"length", 54, lengthTableBits}} {
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
			var best cpuBest
			for b.Loop() {
				t0 := best.start()
				for range 100 {
					for _, sym := range syms {
						code.freqs[sym]++
					}
					code.rebuild(&s)
				}
				best.stop(t0)
			}
			if best.d > 0 {
				b.ReportMetric(float64(best.d.Nanoseconds())/100, "cpu-ns/rebuild")
			}
		})
	}
}

// BenchmarkOwn runs only this package's decoder (for profiling).
func BenchmarkOwn(b *testing.B) {
	needWimlib(b)
	for _, c := range benchCases() {
		if c.chunkSize > 1<<20 {
			continue
		}
		b.Run(fmt.Sprintf("%s/chunk=%dK", c.kind, c.chunkSize>>10), func(b *testing.B) {
			chunks, n := benchChunks(b, c.kind, c.chunkSize, c.total)
			d, _ := NewDecoder(c.chunkSize)
			dst := make([]byte, c.chunkSize)
			b.SetBytes(int64(n))
			var best cpuBest
			for b.Loop() {
				t0 := best.start()
				for _, ch := range chunks {
					if err := d.Decompress(dst[:len(ch.raw)], ch.comp); err != nil {
						b.Fatal(err)
					}
				}
				best.stop(t0)
			}
			best.report(b, n)
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

// TestX86Flags checks the candidate scan (SIMD where there is one, and the portable one)
// byte by byte on data dense in candidate opcodes.
func TestX86Flags(t *testing.T) {
	rng := uint64(1)
	data := make([]byte, x86Block)
	for i := range data {
		rng = rng*6364136223846793005 + 1442695040888963407
		switch b := byte(rng >> 56); b & 3 {
		case 0:
			data[i] = []byte{0x48, 0x4c, 0xe8, 0xe9, 0xf0, 0xff, 0x49, 0xea, 0xef, 0xf1, 0xfe, 0x44}[int(b>>2)%12]
		default:
			data[i] = b
		}
	}
	for _, groups := range []int{1, 3, 100, x86Block / 16} {
		var simd, port [x86Block / 64]uint64
		x86Candidates(&simd, data, groups)
		x86FlagsGo(&port, data, groups)
		for i := range groups * 16 {
			want := false
			switch data[i] {
			case 0x48, 0x4c, 0xe8, 0xe9, 0xf0, 0xff:
				want = true
			}
			if got := simd[i>>6]>>(i&63)&1 == 1; got != want {
				t.Fatalf("groups %d: flag of byte %d (%#x) is %v", groups, i, data[i], got)
			}
			if got := port[i>>6]>>(i&63)&1 == 1; got != want {
				t.Fatalf("groups %d: portable flag of byte %d (%#x) is %v", groups, i, data[i], got)
			}
		}
	}
}
