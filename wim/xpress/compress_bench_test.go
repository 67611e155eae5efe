package xpress

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// BenchmarkCompress compresses the shared corpus chunk by chunk with this package's encoder
// and, alternating chunk by chunk on the same thread (thread CPU time, so other processes on
// a busy machine skew neither side), with wimlib's XPRESS compressor at its default level.
// It reports each one's MB/s, from each chunk's fastest pass, and output/input ratio (raw
// chunks count at their size, as in a WIM). wimlibc.Compress creates and frees a compressor
// per call; that setup, measured on a 1-byte chunk, is reported as wimlib-setup-us and
// subtracted from wimlib's time.
func BenchmarkCompress(b *testing.B) {
	const total = 4 << 20
	for _, chunk := range []int{32768, 65536} {
		for _, kind := range []string{"x86", "text", "mixed", "random", "zeros"} {
			b.Run(fmt.Sprintf("%s/%d", kind, chunk), func(b *testing.B) {
				data := corpus(b, kind, total)
				e, err := NewEncoder(chunk)
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, chunk)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				withC := wimlibc.Available()
				var setup time.Duration
				if withC {
					setup = wimlibSetup(b, chunk)
				}
				// Each chunk's fastest time over the passes, for both sides: a pass that a
				// busy machine interrupts or evicts from the caches then skews neither.
				nch := (len(data) + chunk - 1) / chunk
				minGo := make([]time.Duration, nch)
				minC := make([]time.Duration, nch)
				var outGo, outC int64
				b.SetBytes(int64(len(data)))
				b.ResetTimer()
				for pass := range b.N {
					outGo, outC = 0, 0
					for c := range nch {
						src := data[c*chunk : min((c+1)*chunk, len(data))]
						t0 := threadCPU()
						n, _, err := e.Compress(dst, src)
						t1 := threadCPU()
						if err != nil {
							b.Fatal(err)
						}
						if pass == 0 || t1-t0 < minGo[c] {
							minGo[c] = t1 - t0
						}
						outGo += int64(n)
						if !withC {
							continue
						}
						comp, ok, err := wimlibc.Compress(wimlibc.XPRESS, chunk, src)
						tc := threadCPU() - t1 - setup
						if err != nil {
							b.Fatal(err)
						}
						if pass == 0 || tc < minC[c] {
							minC[c] = tc
						}
						if ok {
							outC += int64(len(comp))
						} else {
							outC += int64(len(src))
						}
					}
				}
				var tGo, tC time.Duration
				for c := range nch {
					tGo += minGo[c]
					tC += minC[c]
				}
				mb := float64(len(data)) / 1e6
				b.ReportMetric(mb/tGo.Seconds(), "go-MB/s")
				b.ReportMetric(float64(outGo)/float64(len(data)), "go-ratio")
				if withC {
					b.ReportMetric(mb/tC.Seconds(), "wimlib-MB/s")
					b.ReportMetric(float64(outC)/float64(len(data)), "wimlib-ratio")
					b.ReportMetric(float64(setup.Microseconds()), "wimlib-setup-us")
				}
			})
		}
	}
}

// wimlibSetup is the median thread CPU time of wimlibc.Compress on a 1-byte chunk: creating
// and freeing wimlib's compressor (its hash tables) plus the cgo call and copies.
func wimlibSetup(b *testing.B, chunk int) time.Duration {
	var ts []time.Duration
	for i := 0; i < 21; i++ {
		t0 := threadCPU()
		if _, _, err := wimlibc.Compress(wimlibc.XPRESS, chunk, []byte{1}); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, threadCPU()-t0)
	}
	for i := range ts { // insertion sort: 21 values
		for j := i; j > 0 && ts[j] < ts[j-1]; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
	return ts[len(ts)/2]
}
