package wimsynth

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// benchMiB is the size of the benchmark's source tree: PXEWIM_BENCH_MB, default 48 (the
// report's numbers use 300).
func benchMiB() int {
	if n, err := strconv.Atoi(os.Getenv("PXEWIM_BENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 48
}

// benchTree writes a WinPE-shaped tree of about mib MiB: boot files plus many binaries of
// machine code, text and random bytes (so compression behaves as on real images).
func benchTree(b *testing.B, root string, mib int) {
	winpeTree(b, root, 77, 10, 50_000)
	rng := rand.New(rand.NewPCG(5, 5))
	for done, i := 0, 0; done < mib<<20; i++ {
		n := 64<<10 + rng.IntN(512<<10)
		writeFile(b, root, fmt.Sprintf("Windows/System32/mod%02d/file%04d.dll", i%37, i), wimtest.Content(rng, n))
		done += n
	}
}

// readAll reads f from start to end in 32 KiB ReadAt calls, as http.ServeContent does, and
// returns the time to the first block.
func readAll(r io.ReaderAt, size int64) (time.Duration, error) {
	start := time.Now()
	var first time.Duration
	buf := make([]byte, 32<<10)
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !(err == io.EOF && off+int64(n) == size) {
			return 0, err
		}
		if off == 0 {
			first = time.Since(start)
		}
		off += int64(n)
	}
	return first, nil
}

func mustRead(b *testing.B, r io.ReaderAt, size int64) time.Duration {
	d, err := readAll(r, size)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// heapPeak samples the heap while fn runs and returns the peak above the heap before it.
func heapPeak(fn func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

func variant(b *testing.B, i int) *Overlay {
	o := &Overlay{}
	if err := o.AddBytes("Windows/System32/startnet.cmd", fmt.Appendf(nil, "wpeinit\r\nrem client %d\r\n", i)); err != nil {
		b.Fatal(err)
	}
	if err := o.AddBytes("Windows/System32/winpeshl.ini", []byte("[LaunchApps]\r\ncmd.exe\r\n")); err != nil {
		b.Fatal(err)
	}
	return o
}

// BenchmarkServe compares reading a plain WIM with reading synthesised ones (export,
// injection, transcoding) of the same image, and measures memory while 20 clients read 20
// different injected variants at once. Run with -benchtime=1x; PXEWIM_BENCH_MB sets the size.
func BenchmarkServe(b *testing.B) {
	wimtest.NeedWimlib(b)
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	benchTree(b, tree, benchMiB())
	sources := map[string]string{}
	for _, c := range []struct{ name, comp string }{{"lzx", "--compress=lzx"}, {"lzms", "--compress=lzms"}} {
		p := filepath.Join(dir, c.name+".wim")
		start := time.Now()
		wimtest.Wimlib(b, "capture", tree, p, "WinPE", c.comp)
		b.Logf("captured %s in %v", c.name, time.Since(start))
		sources[c.name] = p
	}
	open := func(b *testing.B, name string) (*wim.ReadCloser, int64) {
		a, err := wim.OpenFile(sources[name], nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { a.Close() })
		return a, a.FileSize()
	}
	b.Run("plain-lzx-file", func(b *testing.B) {
		f, err := os.Open(sources["lzx"])
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		b.SetBytes(st.Size())
		for i := 0; i < b.N; i++ {
			b.ReportMetric(float64(mustRead(b, f, st.Size()).Microseconds())/1000, "ttfb-ms")
		}
	})
	for _, c := range []struct {
		name, src    string
		overlay      bool
		uncompressed bool
	}{
		{"export-lzx", "lzx", false, false},
		{"injected-lzx", "lzx", true, false},
		{"transcoded-lzx", "lzx", true, true},
		{"transcoded-lzms", "lzms", true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			a, _ := open(b, c.src)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				opts := Options{Index: 1, Uncompressed: c.uncompressed}
				if c.overlay {
					opts.Overlay = variant(b, i)
				}
				f, err := Build(a.Archive, opts)
				if err != nil {
					b.Fatal(err)
				}
				built := time.Since(start)
				first := mustRead(b, f, f.Size())
				b.SetBytes(f.Size())
				b.ReportMetric(float64((built+first).Microseconds())/1000, "ttfb-ms")
			}
		})
	}
	for _, c := range []struct {
		name, src    string
		uncompressed bool
	}{{"20clients-injected-lzx", "lzx", false}, {"20clients-transcoded-lzms", "lzms", true}} {
		b.Run(c.name, func(b *testing.B) {
			a, _ := open(b, c.src)
			const clients = 20
			for i := 0; i < b.N; i++ {
				var total atomic.Int64
				peak := heapPeak(func() {
					var wg sync.WaitGroup
					for k := 0; k < clients; k++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							f, err := Build(a.Archive, Options{Index: 1, Overlay: variant(b, k), Uncompressed: c.uncompressed})
							if err != nil {
								b.Error(err)
								return
							}
							if _, err := readAll(f, f.Size()); err != nil {
								b.Error(err)
							}
							total.Add(f.Size())
						}()
					}
					wg.Wait()
				})
				b.SetBytes(total.Load())
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			}
		})
	}
}
