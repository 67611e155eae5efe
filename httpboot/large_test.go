package httpboot

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// synthFS holds one large file whose bytes are computed, not stored: serving it proves that
// nothing buffers a file whole (the heap stays far below the file size).
type synthFS struct{ size int64 }

type synthFile struct {
	size int64
	off  int64
}

func synthByte(i int64) byte { return byte(i*7 + i>>13) }

func (s synthFS) Open(name string) (fs.File, error) {
	if name != "big.wim" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &synthFile{size: s.size}, nil
}

func (f *synthFile) Stat() (fs.FileInfo, error) { return synthInfo{f.size}, nil }
func (f *synthFile) Close() error               { return nil }
func (f *synthFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	return n, err
}
func (f *synthFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.size-off))
	for i := range n {
		p[i] = synthByte(off + int64(i))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (f *synthFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += f.size
	}
	f.off = off
	return off, nil
}

type synthInfo struct{ size int64 }

func (i synthInfo) Name() string       { return "big.wim" }
func (i synthInfo) Size() int64        { return i.size }
func (i synthInfo) Mode() fs.FileMode  { return 0o444 }
func (i synthInfo) ModTime() time.Time { return time.Unix(1700000000, 0) }
func (i synthInfo) IsDir() bool        { return false }
func (i synthInfo) Sys() any           { return nil }

// checkWriter verifies a downloaded stream against synthByte from a start offset.
type checkWriter struct {
	off int64
	bad bool
}

func (c *checkWriter) Write(p []byte) (int, error) {
	for i, b := range p {
		if b != synthByte(c.off+int64(i)) {
			c.bad = true
		}
	}
	c.off += int64(len(p))
	return len(p), nil
}

// TestLargeFileStreams downloads a 256 MiB file four times at once over loopback, two of them
// as ranges: every byte checks out, and the peak heap stays under 64 MiB.
func TestLargeFileStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 768 MiB over loopback: not in -short")
	}
	const size = 256 << 20
	h := NewHandler(Config{Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return synthFS{size}, nil }, Logger: discardLogger()})
	srv, _ := loopbackServer(t, h)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	jobs := []struct {
		rng   string
		start int64
		want  int64
	}{{"", 0, size}, {"", 0, size}, {"bytes=100000000-", 100000000, size - 100000000}, {"bytes=1-1000000", 1, 1000000}}
	var wg sync.WaitGroup
	start := time.Now()
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+"/files/big.wim", nil)
			if j.rng != "" {
				req.Header.Set("Range", j.rng)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			cw := &checkWriter{off: j.start}
			n, err := io.Copy(cw, resp.Body)
			if err != nil || n != j.want || cw.bad {
				errs <- fmt.Errorf("range %q: %d bytes (want %d), err %v, content ok=%v", j.rng, n, j.want, err, !cw.bad)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := float64(3*size-100000000+1000000) / (1 << 20)
	t.Logf("%.0f MiB in %v (%.0f MiB/s, 4 concurrent clients), peak heap in use %.1f MiB", total, elapsed.Round(time.Millisecond), total/elapsed.Seconds(), float64(peak.Load())/(1<<20))
	if p := peak.Load(); p > 64<<20 {
		t.Errorf("peak heap %d MiB while serving a 256 MiB file: something buffers whole files", p>>20)
	}
}
