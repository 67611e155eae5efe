package wiminterop

import (
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// cpuTime is the process's user + system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServeFileInWIM downloads a 64 MiB file from inside a WIM over loopback HTTP (the
// Handler, ServeContent over an io.SectionReader on wim.File.ReadAt): a whole-file GET, which
// the wim package checks against the stream's SHA-1 as it goes, in an uncompressed WIM (the
// pure cost of serving plus checking) and in an XPRESS WIM (decoding too, warm chunk cache).
// The first GET of each case checks the SHA-1, later ones the verified blocks' CRC-32C.
// "cpu-ms/op" is the process's CPU time per GET, client included.
func BenchmarkServeFileInWIM(b *testing.B) {
	wimtest.NeedWimlib(b)
	const size = 64 << 20
	rng := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, size)
	for i := range data {
		if i%4096 < 2048 {
			data[i] = byte(rng.Uint32()) // half random, half runs: XPRESS compresses the runs
		}
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "boot.wim"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, comp string
		fresh      bool // open the WIM afresh for each GET: every GET is a first read
	}{{"none", "none", false}, {"none-first-reads", "none", true}, {"XPRESS", "XPRESS", false}} {
		b.Run(c.name, func(b *testing.B) {
			out := filepath.Join(dir, c.comp+".wim")
			if _, err := os.Stat(out); err != nil {
				wimtest.Wimlib(b, "capture", src, out, "bench", "--compress="+c.comp)
			}
			var img *wim.Image
			open := func() {
				rc, err := wim.OpenFile(out, &wim.OpenFileOptions{Cache: wim.NewCache(256 << 20)})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { rc.Close() })
				if img, err = rc.Image(1); err != nil {
					b.Fatal(err)
				}
			}
			open()
			h := httpboot.NewHandler(httpboot.Config{Resolve: func(*http.Request, httpboot.ClientInfo) (fs.FS, error) { return img, nil },
				Logger: slog.New(slog.DiscardHandler)})
			srv := httptest.NewServer(h)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			b.SetBytes(size)
			cpu0, iters := cpuTime(b), 0
			for b.Loop() {
				iters++
				if c.fresh {
					open()
				}
				resp, err := client.Get(srv.URL + "/files/boot.wim")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != size {
					b.Fatalf("got %d bytes, %v", n, err)
				}
			}
			// Process CPU time (client and server): unlike ns/op, it hardly depends on what
			// else the machine runs.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(iters)/1e6, "cpu-ms/op")
		})
	}
}
