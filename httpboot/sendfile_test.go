package httpboot

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// countingFile is an *os.File seen through the fs.File and kernelFile interfaces that counts
// the bytes read through Read and ReadAt: what a sendfile copy does not go through.
type countingFile struct {
	*os.File
	read  *int64
	seeks *atomic.Int64
}

func (c countingFile) Seek(off int64, whence int) (int64, error) {
	c.seeks.Add(1)
	return c.File.Seek(off, whence)
}

func (c countingFile) Read(p []byte) (int, error) {
	n, err := c.File.Read(p)
	*c.read += int64(n)
	return n, err
}

func (c countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.File.ReadAt(p, off)
	*c.read += int64(n)
	return n, err
}

type countingFS struct {
	dir   string
	read  int64
	seeks atomic.Int64
}

func (c *countingFS) Open(name string) (fs.File, error) {
	f, err := os.Open(filepath.Join(c.dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, err
	}
	return countingFile{File: f, read: &c.read, seeks: &c.seeks}, nil
}

// TestPlainFileSentByKernel serves a plain file (an *os.File: a loose store file, or a blob
// cache's copy) over a real TCP connection: its body leaves through the connection's ReadFrom
// (sendfile), not through Read and Write, and the request's byte count and progress events
// still add up, for a whole GET (several ReadFrom pieces), a range and a HEAD.
func TestPlainFileSentByKernel(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(2*readFromPiece+12345, 7)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfs := &countingFS{dir: dir}
	obs := &eventLog{}
	srv := httptest.NewServer(NewHandler(Config{
		Resolve:          func(*http.Request, ClientInfo) (fs.FS, error) { return cfs, nil },
		Observer:         obs,
		ProgressInterval: 1, // every piece
	}))
	defer srv.Close()
	get := func(method, rng string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/files/big.bin", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	if st, b := get("GET", ""); st != 200 || !bytes.Equal(b, data) {
		t.Fatalf("GET: status %d, %d bytes, want %d", st, len(b), len(data))
	}
	ev := obs.lastEnded(t)
	if ev.Bytes != int64(len(data)) || ev.Err != nil || ev.Status != 200 {
		t.Fatalf("GET ended: bytes %d status %d err %v, want %d", ev.Bytes, ev.Status, ev.Err, len(data))
	}
	progress := 0
	for _, e := range obs.events {
		if e == fmt.Sprintf("%d:progress", ev.ID) {
			progress++
		}
	}
	if progress < 2 {
		t.Errorf("%d progress events for a body of 3 ReadFrom pieces, want at least 2", progress)
	}
	// The header goes out first, alone: not even net/http's first 512 bytes are read through
	// user space, and a body from offset 0 needs no seek of the descriptor.
	if cfs.read != 0 || cfs.seeks.Load() != 0 {
		t.Fatalf("%d bytes went through Read/ReadAt, %d seeks: the body was not handed to the kernel as it is", cfs.read, cfs.seeks.Load())
	}
	if st, b := get("GET", "bytes=4194000-8388700"); st != 206 || !bytes.Equal(b, data[4194000:8388701]) {
		t.Fatalf("range: status %d, %d bytes", st, len(b))
	}
	if ev := obs.lastEnded(t); ev.Bytes != 8388701-4194000 {
		t.Fatalf("range ended with %d bytes", ev.Bytes)
	}
	// One seek of the descriptor for a range (ServeContent's own three stay in the handler).
	if cfs.read != 0 || cfs.seeks.Load() != 1 {
		t.Fatalf("range: %d bytes through Read/ReadAt, %d seeks of the file, want 0 and 1", cfs.read, cfs.seeks.Load())
	}
	if st, b := get("HEAD", ""); st != 200 || len(b) != 0 {
		t.Fatalf("HEAD: status %d, %d bytes", st, len(b))
	}
	if st, b := get("GET", "bytes=-100"); st != 206 || !bytes.Equal(b, data[len(data)-100:]) {
		t.Fatalf("suffix range: status %d, %d bytes", st, len(b))
	}
	if cfs.read != 0 {
		t.Fatalf("%d bytes went through Read/ReadAt", cfs.read)
	}
	// A multi-range response is written by net/http through Read: each part from its own
	// offset.
	st, b := get("GET", "bytes=10-19,5000000-5000099,-7")
	if st != 206 {
		t.Fatalf("multi-range: status %d", st)
	}
	for _, part := range [][]byte{data[10:20], data[5000000:5000100], data[len(data)-7:]} {
		if !bytes.Contains(b, part) {
			t.Fatalf("multi-range: a part is missing or wrong in %d bytes", len(b))
		}
	}
	// Concurrent ranges, each on its own open of the file, in pieces of 1 MiB as boot clients
	// read: every byte where it belongs.
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for off := c * 100000; off < len(data); off += 1 << 20 {
				end := min(off+1<<20, len(data)) - 1
				req, _ := http.NewRequest("GET", srv.URL+"/files/big.bin", nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, end))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 206 || !bytes.Equal(b, data[off:end+1]) {
					t.Errorf("range %d-%d: status %d, %d bytes, err %v", off, end, resp.StatusCode, len(b), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
