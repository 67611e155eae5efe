package httpboot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// The benchmarks in this file serve a WinPE boot.wim through the real Handler on loopback to
// net/http clients, as iPXE + wimboot would pull it: the plain file from disk, the same image
// with injected files (wimsynth: original resources + new blobs and metadata), and LZMS and
// LZMS solid WIMs transcoded to uncompressed ones on the fly. PXEWIM_BENCH_MB sets the size of the
// image's tree (default 32); bench/winpe-http.sh runs them and prints the ratios.

func winpeBenchMiB() int {
	if n, err := strconv.Atoi(os.Getenv("PXEWIM_BENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 32
}

// winpeBenchWIMs captures a WinPE-shaped tree of about mib MiB with wimlib-imagex: LZX (what
// wimboot reads as is), LZMS and LZMS solid (what it refuses).
func winpeBenchWIMs(b *testing.B, mib int) (lzx, lzms, solid string) {
	wimtest.NeedWimlib(b)
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	write := func(p string, data []byte) {
		fp := filepath.Join(tree, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(fp, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range testenv.WinPEBootPaths {
		write(p, testenv.WinPEContent(1, p))
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for done, i := 0, 0; done < mib<<20; i++ {
		n := 64<<10 + rng.IntN(512<<10)
		write(fmt.Sprintf("Windows/System32/mod%02d/file%04d.dll", i%23, i), wimtest.Content(rng, n))
		done += n
	}
	lzx, lzms, solid = filepath.Join(dir, "lzx.wim"), filepath.Join(dir, "lzms.wim"), filepath.Join(dir, "solid.wim")
	wimtest.Wimlib(b, "capture", tree, lzx, "WinPE", "--compress=LZX")
	wimtest.Wimlib(b, "capture", tree, lzms, "WinPE", "--compress=LZMS")
	wimtest.Wimlib(b, "capture", tree, solid, "WinPE", "--solid")
	os.RemoveAll(tree)
	return lzx, lzms, solid
}

func openArchive(b *testing.B, path string) *wim.Archive {
	a, err := wim.OpenFile(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a.Archive
}

// goodVerdict is a WIM reader whose store vouches for its bytes (wim.Verdict).
type goodVerdict struct{ io.ReaderAt }

func (goodVerdict) Verified() bool                     { return true }
func (goodVerdict) WaitVerified(context.Context) error { return nil }

// openVerified opens the WIM at path through a goodVerdict.
func openVerified(b *testing.B, path string) *wim.Archive {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	a, err := wim.Open(goodVerdict{f}, st.Size(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// benchOverlay is client k's injected files: a startnet.cmd of its own and a winpeshl.ini.
func benchOverlay(b *testing.B, k int) *wimsynth.Overlay {
	o := &wimsynth.Overlay{}
	if err := o.AddBytes("Windows/System32/startnet.cmd", fmt.Appendf(nil, "wpeinit\r\nrem client %d\r\n", k)); err != nil {
		b.Fatal(err)
	}
	if err := o.AddBytes("Windows/System32/winpeshl.ini", []byte("[LaunchApps]\r\n%SYSTEMROOT%\\System32\\cmd.exe\r\n")); err != nil {
		b.Fatal(err)
	}
	return o
}

// raFS serves io.ReaderAt files (synthesised WIMs) as the boot package's trees do.
type raFS struct {
	mu    sync.Mutex
	files map[string]*wimsynth.File
	make  func(name string) (*wimsynth.File, error) // builds a missing file on first use
}

func (r *raFS) Open(name string) (fs.File, error) {
	r.mu.Lock()
	f, ok := r.files[name]
	if !ok && r.make != nil {
		var err error
		if f, err = r.make(name); err != nil {
			r.mu.Unlock()
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		r.files[name] = f
		ok = true
	}
	r.mu.Unlock()
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	// Through a Reader, as the daemon serves it: a full read is checked against the source.
	return &raOpen{SectionReader: io.NewSectionReader(f.NewReader(), 0, f.Size()), f: f, name: name}, nil
}

type raOpen struct {
	*io.SectionReader
	f    *wimsynth.File
	name string
}

func (o *raOpen) Stat() (fs.FileInfo, error) { return raStat{o}, nil }
func (o *raOpen) Close() error               { return nil }
func (o *raOpen) ETag() string               { return o.f.ETag() }

type raStat struct{ o *raOpen }

func (s raStat) Name() string       { return s.o.name }
func (s raStat) Size() int64        { return s.o.f.Size() }
func (s raStat) Mode() fs.FileMode  { return 0o444 }
func (s raStat) ModTime() time.Time { return time.Unix(1700000000, 0) }
func (s raStat) IsDir() bool        { return false }
func (s raStat) Sys() any           { return nil }

// pull GETs url (with an optional Range), reads the body to the end and returns the time to
// the first body byte and the bytes read.
func pull(client *http.Client, url, rng string) (time.Duration, int64, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return 0, 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	buf := make([]byte, 32<<10)
	var ttfb time.Duration
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		if m > 0 && n == 0 {
			ttfb = time.Since(start)
		}
		n += int64(m)
		if err == io.EOF {
			return ttfb, n, nil
		}
		if err != nil {
			return 0, n, err
		}
	}
}

// BenchmarkWinPEOverHTTP: time to first byte and throughput of one client pulling boot.wim
// over loopback HTTP: plain (the LZX file from disk; and, as the peer, the same file from
// net/http.FileServer, which uses sendfile), injected (two files added to that
// image, synthesised) and transcoded (the LZMS and LZMS solid captures of the same tree served
// as uncompressed WIMs, decoded as they are served; a solid resource's chunks are 64 MiB by
// default, so its first byte waits for a whole chunk). "build-ms" is the one-off cost of synthesising
// (metadata only; pxewim does it once per source version and injection set), "ttfb-ms" the
// time to the first body byte of a whole-file GET, "range-ttfb-ms" that of a 64 KiB range in
// the middle of the file (a decoder only decodes the chunks a range covers); "warm-ttfb-ms" and
// "warm-range-ttfb-ms" are the same two requests again on the server whose source was just
// read whole (its chunk cache warm). ns/op and MB/s time the whole-file GET only. Each
// iteration opens the source WIMs afresh, so the first requests are served from a cold chunk
// cache.
func BenchmarkWinPEOverHTTP(b *testing.B) {
	lzxPath, lzmsPath, solidPath := winpeBenchWIMs(b, winpeBenchMiB())
	dir := filepath.Dir(lzxPath)
	cases := []struct {
		name string
		src  string
		opts *wimsynth.Options // nil: the file as it is
		peer bool              // served by net/http.FileServer (sendfile) instead of the Handler
		// verified: the source is opened through a reader whose store vouches for it (as the
		// daemon's store does once its background verification passed); else the synthesised
		// WIM's Reader decodes the raw-copied resources' source blobs to check them.
		verified bool
	}{
		{"peer-fileserver-plain", lzxPath, nil, true, false},
		{"plain", lzxPath, nil, false, false},
		{"injected", lzxPath, &wimsynth.Options{Index: 1, Name: "boot.wim"}, false, false},
		{"injected-store-verified", lzxPath, &wimsynth.Options{Index: 1, Name: "boot.wim"}, false, true},
		{"transcoded-lzms", lzmsPath, &wimsynth.Options{Index: 1, Name: "boot.wim", Uncompressed: true}, false, false},
		{"transcoded-lzms-solid", solidPath, &wimsynth.Options{Index: 1, Name: "boot.wim", Uncompressed: true}, false, false},
	}
	// Warm up the HTTP client and server code once, so that the first case pays no more than
	// the others.
	warm := httptest.NewServer(NewHandler(Config{Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return os.DirFS(dir), nil }, Logger: discardLogger()}))
	if _, _, err := pull(http.DefaultClient, warm.URL+"/files/"+filepath.Base(lzxPath), ""); err != nil {
		b.Fatal(err)
	}
	warm.Close()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			var build, ttfb, rttfb, wttfb, wrttfb time.Duration
			var size int64
			iters := 0
			for b.Loop() {
				iters++
				b.StopTimer()
				// Two servers of the same file, each over its own freshly opened source, so that
				// both the whole-file GET and the range GET start from a cold chunk cache.
				var srvs [2]*httptest.Server
				var built time.Duration
				name := filepath.Base(c.src)
				for i := range srvs {
					fsys := fs.FS(os.DirFS(dir))
					if c.opts != nil {
						a := openArchive(b, c.src)
						if c.verified {
							a = openVerified(b, c.src)
						}
						opts := *c.opts
						if !opts.Uncompressed {
							opts.Overlay = benchOverlay(b, iters)
						}
						start := time.Now()
						f, err := wimsynth.Build(a, opts)
						if err != nil {
							b.Fatal(err)
						}
						built = time.Since(start)
						name = "boot.wim"
						fsys = &raFS{files: map[string]*wimsynth.File{name: f}}
					}
					var h http.Handler = NewHandler(Config{Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return fsys, nil }, Logger: discardLogger()})
					if c.peer {
						h = http.StripPrefix("/files/", http.FileServer(http.Dir(dir)))
					}
					srvs[i] = httptest.NewServer(h)
				}
				srv := srvs[0]
				b.StartTimer()
				t, n, err := pull(client, srv.URL+"/files/"+name, "")
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				mid := n / 2
				rng := fmt.Sprintf("bytes=%d-%d", mid, mid+64<<10-1)
				rt, rn, err := pull(client, srvs[1].URL+"/files/"+name, rng)
				if err != nil || rn != 64<<10 {
					b.Fatalf("range: %d bytes, %v", rn, err)
				}
				// Warm: the same two requests again on the first server, whose source was just
				// read whole (its decoded chunks are in the chunk cache, as far as it holds them).
				wt, _, err := pull(client, srvs[0].URL+"/files/"+name, "")
				if err != nil {
					b.Fatal(err)
				}
				wrt, wrn, err := pull(client, srvs[0].URL+"/files/"+name, rng)
				if err != nil || wrn != 64<<10 {
					b.Fatalf("warm range: %d bytes, %v", wrn, err)
				}
				srvs[0].Close()
				srvs[1].Close()
				b.StartTimer()
				build, ttfb, rttfb, size = build+built, ttfb+t, rttfb+rt, n
				wttfb, wrttfb = wttfb+wt, wrttfb+wrt
			}
			b.SetBytes(size)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(iters) }
			b.ReportMetric(ms(build), "build-ms")
			b.ReportMetric(ms(ttfb), "ttfb-ms")
			b.ReportMetric(ms(rttfb), "range-ttfb-ms")
			b.ReportMetric(ms(wttfb), "warm-ttfb-ms")
			b.ReportMetric(ms(wrttfb), "warm-range-ttfb-ms")
			b.ReportMetric(float64(size)/(1<<20), "wim-MiB")
		})
	}
}

// BenchmarkWinPE20Variants: 20 clients pull 20 different injected variants of one boot.wim at
// the same time over loopback HTTP; each variant is synthesised when its first request comes
// (as pxewim does per entry). Reported: aggregate MB/s, the peak Go heap above the heap
// before the run ("peak-heap-MiB", sampled every 2 ms), and the process's peak resident set
// during the run ("peak-rss-MiB": VmHWM after resetting it through /proc/self/clear_refs,
// beside "rss-before-MiB"; -1 when the kernel does not allow that). The variant WIM files are
// "variants-MiB" in total: memory bounded means the peaks stay far below that and do not
// grow with the number of clients. Run each case in its own process (bench/winpe-http.sh
// does) so that one case's resident memory does not hide the next one's.
func BenchmarkWinPE20Variants(b *testing.B) {
	lzxPath, lzmsPath, solidPath := winpeBenchWIMs(b, winpeBenchMiB())
	for _, c := range []struct {
		name         string
		src          string
		uncompressed bool
	}{
		{"injected-lzx", lzxPath, false},
		{"injected-transcoded-lzms", lzmsPath, true},
		{"injected-transcoded-lzms-solid", solidPath, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			clients := 20 // PXEWIM_BENCH_CLIENTS: to see whether memory grows with clients
			if n, err := strconv.Atoi(os.Getenv("PXEWIM_BENCH_CLIENTS")); err == nil && n > 0 {
				clients = n
			}
			for b.Loop() {
				b.StopTimer()
				a := openArchive(b, c.src)
				fsys := &raFS{files: map[string]*wimsynth.File{}, make: func(name string) (*wimsynth.File, error) {
					k, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "v"), ".wim"))
					if err != nil {
						return nil, fs.ErrNotExist
					}
					return wimsynth.Build(a, wimsynth.Options{Index: 1, Overlay: benchOverlay(b, k), Uncompressed: c.uncompressed, Name: name})
				}}
				srv := httptest.NewServer(NewHandler(Config{Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return fsys, nil }, Logger: discardLogger()}))
				client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: clients}}
				var total atomic.Int64
				var ttfbs []time.Duration
				var mu sync.Mutex
				b.StartTimer()
				start := time.Now()
				heap, rss, rssBefore := memPeak(func() {
					var wg sync.WaitGroup
					for k := range clients {
						wg.Go(func() {
							t, n, err := pull(client, fmt.Sprintf("%s/files/v%02d.wim", srv.URL, k), "")
							if err != nil {
								b.Error(err)
								return
							}
							total.Add(n)
							mu.Lock()
							ttfbs = append(ttfbs, t)
							mu.Unlock()
						})
					}
					wg.Wait()
				})
				elapsed := time.Since(start)
				b.StopTimer()
				srv.Close()
				slices.Sort(ttfbs)
				b.SetBytes(total.Load())
				b.ReportMetric(float64(total.Load())/1e6/elapsed.Seconds(), "aggregate-MB/s")
				b.ReportMetric(float64(total.Load())/(1<<20), "variants-MiB")
				b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(rss, "peak-rss-MiB")
				b.ReportMetric(rssBefore, "rss-before-MiB")
				if len(ttfbs) > 0 {
					b.ReportMetric(float64(ttfbs[len(ttfbs)-1].Microseconds())/1000, "max-ttfb-ms")
				}
				b.StartTimer()
			}
		})
	}
}

// memPeak runs fn and returns the peak heap in use above the heap before it, the peak
// resident set while it ran, and the resident set before it, in MiB (-1 when the kernel
// does not let VmHWM be reset).
func memPeak(fn func()) (heap uint64, rssMiB, rssBeforeMiB float64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	rssBefore, rssOK := vmKiB("VmRSS")
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0 and later).
	rssOK = rssOK && os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
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
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	if p := peak.Load(); p > base {
		heap = p - base
	}
	rssMiB, rssBeforeMiB = -1, -1
	if hwm, ok := vmKiB("VmHWM"); ok && rssOK {
		rssMiB, rssBeforeMiB = float64(hwm)/1024, float64(rssBefore)/1024
	}
	return heap, rssMiB, rssBeforeMiB
}

// vmKiB reads one "Vm...: N kB" line of /proc/self/status.
func vmKiB(key string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if v, ok := strings.CutPrefix(string(line), key+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
