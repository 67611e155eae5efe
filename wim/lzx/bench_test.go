package lzx

import (
	"fmt"
	"testing"
	"time"

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
// wimlib's C decoder, alternating pass by pass so that load from other processes hits both
// alike, and reports each one's MB/s and the time ratio (go/wimlib; below 1 is faster than
// wimlib). The wimlib side includes the binding's copies of src and dst (a few % of its time).
// bench/codecs.sh runs it.
func BenchmarkDecompress(b *testing.B) {
	needWimlib(b)
	benchCodec(b, wimlibc.LZX, []int{32768, 1 << 20}, func(chunk int) func(dst, src []byte) error {
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
				pass := func(dec func(dst, src []byte) error) time.Duration {
					start := time.Now()
					for i, c := range s.comp {
						if err := dec(dst[:s.size[i]], c); err != nil {
							b.Fatal(err)
						}
					}
					return time.Since(start)
				}
				var tGo, tC time.Duration
				b.SetBytes(2 * s.n)
				b.ResetTimer()
				for range b.N {
					tGo += pass(ours)
					tC += pass(ref.Decompress)
				}
				mb := float64(s.n) * float64(b.N) / 1e6
				b.ReportMetric(mb/tGo.Seconds(), "go-MB/s")
				b.ReportMetric(mb/tC.Seconds(), "wimlib-MB/s")
				b.ReportMetric(tGo.Seconds()/tC.Seconds(), "ratio")
			})
		}
	}
}
