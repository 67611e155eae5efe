package xpress

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pxewim/pxewim/internal/wimlibc"
)

// chunkSet is a corpus cut into chunks and compressed by wimlib; raw chunks are left out, as a
// WIM reader would not decode them.
type chunkSet struct {
	comp [][]byte
	size []int
	n    int64
}

func compressChunks(b *testing.B, codec wimlibc.Codec, chunk int, data []byte) chunkSet {
	var s chunkSet
	for off := 0; off < len(data); off += chunk {
		in := data[off:min(off+chunk, len(data))]
		c, ok, err := wimlibc.Compress(codec, chunk, in)
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			s.comp = append(s.comp, c)
			s.size = append(s.size, len(in))
			s.n += int64(len(in))
		}
	}
	return s
}

// BenchmarkDecompress decodes the same wimlib-compressed chunks with this package and with
// wimlib's C decoder, alternating chunk by chunk and measuring thread CPU time, and reports each one's MB/s and the time ratio (go/wimlib; below 1 is faster than
// wimlib). The wimlib side includes the binding's copies of src and dst (a few % of its time).
// bench/codecs.sh runs it.
func BenchmarkDecompress(b *testing.B) {
	needWimlib(b)
	benchCodec(b, wimlibc.XPRESS, []int{32768, 65536}, func(chunk int) func(dst, src []byte) error {
		d, err := NewDecoder(chunk)
		if err != nil {
			b.Fatal(err)
		}
		return d.Decompress
	})
}

func benchCodec(b *testing.B, codec wimlibc.Codec, chunks []int, newDec func(int) func(dst, src []byte) error) {
	const total = 4 << 20
	for _, chunk := range chunks {
		for _, kind := range []string{"x86", "text", "zeros", "mixed"} {
			b.Run(fmt.Sprintf("%s/%d", kind, chunk), func(b *testing.B) {
				s := compressChunks(b, codec, chunk, corpus(b, kind, total))
				ours := newDec(chunk)
				ref, err := wimlibc.NewDecompressor(codec, chunk)
				if err != nil {
					b.Fatal(err)
				}
				defer ref.Close()
				dst := make([]byte, chunk)
				// Alternate chunk by chunk and count this thread's CPU time, so that the
				// other processes on a busy machine skew neither side.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var tGo, tC time.Duration
				b.SetBytes(2 * s.n)
				b.ResetTimer()
				for range b.N {
					for i, c := range s.comp {
						t0 := threadCPU()
						errGo := ours(dst[:s.size[i]], c)
						t1 := threadCPU()
						errC := ref.Decompress(dst[:s.size[i]], c)
						t2 := threadCPU()
						if errGo != nil || errC != nil {
							b.Fatalf("chunk %d: go: %v, wimlib: %v", i, errGo, errC)
						}
						tGo += t1 - t0
						tC += t2 - t1
					}
				}
				mb := float64(s.n) * float64(b.N) / 1e6
				b.ReportMetric(mb/tGo.Seconds(), "go-MB/s")
				b.ReportMetric(mb/tC.Seconds(), "wimlib-MB/s")
				b.ReportMetric(tGo.Seconds()/tC.Seconds(), "ratio")
			})
		}
	}
}

// threadCPU is the CPU time used by the calling OS thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}
