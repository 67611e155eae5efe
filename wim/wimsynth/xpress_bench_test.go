package wimsynth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// BenchmarkServeXPRESS compares serving an LZMS (and a solid LZMS) image transcoded to XPRESS
// with the uncompressed transcode: bytes on the wire, Build time (the XPRESS sizing pass),
// and MB/s of ReadAt over the whole file in 32 KiB reads (wire bytes per second), for the
// first reader and for a second one. The XPRESS cache gets 8 MiB, a quarter of the
// compressed image at the default size, so most reads compress their chunks on demand (the
// pass leaves the first 8 MiB of chunks in it).
// Run with -benchtime=1x; PXEWIM_BENCH_MB sets the tree size (default 48).
func BenchmarkServeXPRESS(b *testing.B) {
	wimtest.NeedWimlib(b)
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	benchTree(b, tree, benchMiB())
	for _, src := range []struct{ name, comp string }{{"lzms", "--compress=lzms"}, {"solid", "--solid"}} {
		p := filepath.Join(dir, src.name+".wim")
		wimtest.Wimlib(b, "capture", tree, p, "WinPE", src.comp)
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		for _, target := range []Transcode{TranscodeUncompressed, TranscodeXPRESS} {
			b.Run(src.name+"/"+target.String(), func(b *testing.B) {
				for range b.N {
					// A fresh archive each round: the wim package's decoded-chunk cache
					// starts cold, as for a newly opened store file.
					a, err := wim.OpenFile(p, nil)
					if err != nil {
						b.Fatal(err)
					}
					opts := Options{Index: 1, Transcode: target}
					if target == TranscodeXPRESS {
						opts.Cache = NewChunkCache(8 << 20)
					}
					start := time.Now()
					f, err := Build(a.Archive, opts)
					if err != nil {
						b.Fatal(err)
					}
					build := time.Since(start)
					start = time.Now()
					mustRead(b, f, f.Size())
					first := time.Since(start)
					start = time.Now()
					mustRead(b, f, f.Size())
					second := time.Since(start)
					a.Close()
					b.SetBytes(f.Size())
					mb := float64(f.Size()) / 1e6
					b.ReportMetric(mb, "wire-MB")
					b.ReportMetric(float64(st.Size())/1e6, "source-MB")
					b.ReportMetric(build.Seconds()*1000, "build-ms")
					b.ReportMetric(mb/first.Seconds(), "read1-MB/s")
					b.ReportMetric(mb/second.Seconds(), "read2-MB/s")
					if opts.Cache != nil {
						cs := opts.Cache.Stats()
						b.ReportMetric(float64(cs.Compressed), "chunks-compressed")
					}
				}
			})
		}
	}
}
