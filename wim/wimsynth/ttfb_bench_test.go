package wimsynth

import (
	"os"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim"
)

// BenchmarkTranscodedSolidTTFB builds the solid WIM named by $PXEWIM_BENCH_SOLID transcoded
// to uncompressed (as the daemon serves solid sources to boot loaders), on a fresh open each
// time (cold chunk cache), and times the first 512 bytes through the checking Reader (what
// http.ServeContent reads before the first body byte), against, in the same run, a read in
// the middle of the image on another fresh open (it needs a whole 64 MiB solid chunk).
func BenchmarkTranscodedSolidTTFB(b *testing.B) {
	p := os.Getenv("PXEWIM_BENCH_SOLID")
	if p == "" {
		b.Skip("set PXEWIM_BENCH_SOLID to a solid WIM (bench/wim-verify.sh KEEP=1 builds solid.wim)")
	}
	build := func() (*wim.ReadCloser, *File) {
		a, err := wim.OpenFile(p, nil)
		if err != nil {
			b.Fatal(err)
		}
		f, err := Build(a.Archive, Options{Index: 1, Name: "boot.wim", Uncompressed: true})
		if err != nil {
			b.Fatal(err)
		}
		return a, f
	}
	var first, middle time.Duration
	buf := make([]byte, 512)
	for b.Loop() {
		a, f := build()
		t0 := time.Now()
		if _, err := f.NewReader().ReadAt(buf, 0); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		if first == 0 || d < first {
			first = d
		}
		a.Close() // (the first read's background full decode may still use the other core)
		a, f = build()
		t0 = time.Now()
		if _, err := f.ReadAt(buf, f.Size()/4); err != nil {
			b.Fatal(err)
		}
		d = time.Since(t0)
		if middle == 0 || d < middle {
			middle = d
		}
		a.Close()
	}
	b.ReportMetric(float64(first.Microseconds())/1000, "first-512B-ms")
	b.ReportMetric(float64(middle.Microseconds())/1000, "mid-read-ms")
	b.ReportMetric(first.Seconds()/middle.Seconds(), "ratio")
}
