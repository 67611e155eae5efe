package wim_test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// cpuTime is the process's user + system CPU time: on a busy machine it says more about a
// change than ns/op does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// goodVerdict is a WIM reader whose store vouches for it.
type goodVerdict struct{ io.ReaderAt }

func (goodVerdict) Verified() bool                     { return true }
func (goodVerdict) WaitVerified(context.Context) error { return nil }

// BenchmarkFullRead copies a 64 MiB file out of an uncompressed WIM through an io.SectionReader
// in 32 KiB reads (what http.ServeContent does): "first" opens the WIM afresh for each copy,
// so every copy checks the SHA-1; "again" reuses it, so every copy after the first checks the
// verified blocks' CRC-32C; "store-verified" opens it afresh through a reader whose store
// vouches for it (nothing is hashed). The difference to a copy without any check is the cost
// of the check.
func BenchmarkFullRead(b *testing.B) {
	wimtest.NeedWimlib(b)
	const size = 64 << 20
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "big.wim")
	wimtest.Wimlib(b, "capture", src, out, "bench", "--compress=none")
	var verified bool // open through a reader whose store vouches for the WIM (wim.Verdict)
	open := func() *wim.Image {
		f, err := os.Open(out)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		var ra io.ReaderAt = f
		if verified {
			ra = goodVerdict{f}
		}
		st, err := f.Stat()
		if err != nil {
			b.Fatal(err)
		}
		a, err := wim.Open(ra, st.Size(), nil)
		if err != nil {
			b.Fatal(err)
		}
		img, err := a.Image(1)
		if err != nil {
			b.Fatal(err)
		}
		return img
	}
	buf := make([]byte, 32<<10)
	for _, c := range []struct {
		name            string
		fresh, verified bool
	}{{"first", true, false}, {"again", false, false}, {"store-verified", true, true}} {
		fresh := c.fresh
		verified = c.verified
		b.Run(c.name, func(b *testing.B) {
			img := open()
			b.SetBytes(size)
			cpu0, iters := cpuTime(b), 0
			for b.Loop() {
				iters++
				if fresh {
					img = open()
				}
				f, err := img.Open("big.bin")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, io.NewSectionReader(f.(io.ReaderAt), 0, size), buf)
				f.Close()
				if err != nil || n != size {
					b.Fatalf("%d bytes, %v", n, err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(iters)/1e6, "cpu-ms/op")
		})
	}
}
