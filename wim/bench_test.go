package wim

import (
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// largeLZXWIM captures one ~48 MiB file of real binaries (from $PXEWIM_BENCH_SRC or
// /usr/lib/x86_64-linux-gnu) into an LZX WIM with 32 KiB chunks.
func largeLZXWIM(b *testing.B) (wimPath string, size int64) {
	wimtest.NeedWimlib(b)
	srcRoot := os.Getenv("PXEWIM_BENCH_SRC")
	if srcRoot == "" {
		srcRoot = "/usr/lib/x86_64-linux-gnu"
	}
	dir := b.TempDir()
	big := filepath.Join(dir, "src", "big.bin")
	os.MkdirAll(filepath.Dir(big), 0o755)
	out, err := os.Create(big)
	if err != nil {
		b.Fatal(err)
	}
	const want = 48 << 20
	filepath.WalkDir(srcRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || size >= want {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		n, _ := io.Copy(out, io.LimitReader(f, want-size))
		size += n
		return nil
	})
	out.Close()
	if size < want/2 {
		b.Skipf("found only %d bytes of binaries under %s", size, srcRoot)
	}
	wimPath = filepath.Join(dir, "big.wim")
	wimtest.Wimlib(b, "capture", filepath.Dir(big), wimPath, "big", "--compress=lzx", "--chunk-size=32768")
	return wimPath, size
}

// BenchmarkColdReadAt times 64 KiB ReadAts at random offsets of a large LZX file with a cache
// that keeps nothing, so every read decodes its chunks. It reports p50/p99 latency and chunk
// decodes per read (64 KiB-aligned reads span two 32 KiB chunks, unaligned ones three).
func BenchmarkColdReadAt(b *testing.B) {
	wimPath, size := largeLZXWIM(b)
	for _, aligned := range []bool{true, false} {
		name := "aligned64K"
		if !aligned {
			name = "unaligned"
		}
		b.Run(name, func(b *testing.B) {
			cache := NewCache(0)
			a, err := OpenFile(wimPath, &OpenFileOptions{Cache: cache})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			img, err := a.Image(1)
			if err != nil {
				b.Fatal(err)
			}
			f, err := img.Open("big.bin")
			if err != nil {
				b.Fatal(err)
			}
			ra := f.(io.ReaderAt)
			buf := make([]byte, 64<<10)
			ra.ReadAt(buf, 0) // loads the chunk table once
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]time.Duration, 0, b.N)
			var maxDecodes int64
			before := cache.Stats().Misses
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				off := rng.Int64N(size - int64(len(buf)))
				if aligned {
					off &^= 64<<10 - 1
				}
				m0 := cache.Stats().Misses
				t0 := time.Now()
				if _, err := ra.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				maxDecodes = max(maxDecodes, cache.Stats().Misses-m0)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(cache.Stats().Misses-before)/float64(b.N), "decodes/op")
			b.ReportMetric(float64(maxDecodes), "max-decodes")
		})
	}
}

// BenchmarkVerify runs Archive.Verify on each WIM named by $PXEWIM_BENCH_WIMS (a glob, e.g.
// the XPRESS, LZX, LZMS and solid WIMs that bench/wim-verify.sh builds with KEEP=1). It is the
// workload bench/pgo.sh profiles for cmd/pxewim/default.pgo.
func BenchmarkVerify(b *testing.B) {
	pattern := os.Getenv("PXEWIM_BENCH_WIMS")
	if pattern == "" {
		b.Skip("set PXEWIM_BENCH_WIMS to a glob of WIM files (bench/wim-verify.sh KEEP=1 builds some)")
	}
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		b.Skipf("no WIM files match %q", pattern)
	}
	for _, p := range paths {
		b.Run(filepath.Base(p), func(b *testing.B) {
			st, err := os.Stat(p)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Size())
			for i := 0; i < b.N; i++ {
				a, err := OpenFile(p, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Verify(context.Background(), nil); err != nil {
					b.Fatal(err)
				}
				a.Close()
			}
		})
	}
}

// BenchmarkSolidFirstRead opens the solid WIM named by $PXEWIM_BENCH_SOLID afresh (cold chunk
// cache) and times a 32 KiB ReadAt at the start of the blob stored first in its first solid
// chunk, which is what a transcoded solid image's first byte waits for, against the time to
// get that whole chunk (a read at its middle, on another fresh open), in the same run. It
// reports both (ms, best of the iterations) and their ratio.
func BenchmarkSolidFirstRead(b *testing.B) {
	p := os.Getenv("PXEWIM_BENCH_SOLID")
	if p == "" {
		b.Skip("set PXEWIM_BENCH_SOLID to a solid WIM (bench/wim-verify.sh KEEP=1 builds solid.wim)")
	}
	first := func() (*ReadCloser, *blob) {
		a, err := OpenFile(p, &OpenFileOptions{Cache: NewCache(DefaultCacheSize)})
		if err != nil {
			b.Fatal(err)
		}
		var best *blob
		for _, bl := range a.blobs {
			if bl.res.solid && bl.size >= 32<<10 && (best == nil || bl.res.hdr.Offset < best.res.hdr.Offset ||
				bl.res.hdr.Offset == best.res.hdr.Offset && bl.off < best.off) {
				best = bl
			}
		}
		if best == nil {
			b.Skip("no blob of 32 KiB or more in a solid resource")
		}
		return a, best
	}
	buf := make([]byte, 32<<10)
	var bestFirst, bestFull time.Duration
	for b.Loop() {
		a, bl := first()
		t0 := time.Now()
		if _, err := bl.readAt(buf, 0, nil); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		bl.res.warm(context.Background(), 0) // wait for the background full decode: it must not slow the next timing
		a.Close()
		if bestFirst == 0 || d < bestFirst {
			bestFirst = d
		}
		a, bl = first()
		r := bl.res
		if err := r.loadTable(); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if _, err := r.readAt(buf, r.chunkLen(0)/2, nil); err != nil {
			b.Fatal(err)
		}
		d = time.Since(t0)
		a.Close()
		if bestFull == 0 || d < bestFull {
			bestFull = d
		}
	}
	b.ReportMetric(float64(bestFirst.Microseconds())/1000, "first-read-ms")
	b.ReportMetric(float64(bestFull.Microseconds())/1000, "whole-chunk-ms")
	b.ReportMetric(bestFirst.Seconds()/bestFull.Seconds(), "ratio")
}
