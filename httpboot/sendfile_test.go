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
	"testing"
)

// countingFile is an *os.File seen through the fs.File and kernelFile interfaces that counts
// the bytes read through Read and ReadAt: what a sendfile copy does not go through.
type countingFile struct {
	*os.File
	read *int64
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
	dir  string
	read int64
}

func (c *countingFS) Open(name string) (fs.File, error) {
	f, err := os.Open(filepath.Join(c.dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, err
	}
	return countingFile{File: f, read: &c.read}, nil
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
	// net/http reads at most the first 512 bytes itself (its sniffing copy).
	if cfs.read > 512 {
		t.Fatalf("%d bytes went through Read/ReadAt: the body was not handed to the kernel", cfs.read)
	}
	if st, b := get("GET", "bytes=4194000-8388700"); st != 206 || !bytes.Equal(b, data[4194000:8388701]) {
		t.Fatalf("range: status %d, %d bytes", st, len(b))
	}
	if ev := obs.lastEnded(t); ev.Bytes != 8388701-4194000 {
		t.Fatalf("range ended with %d bytes", ev.Bytes)
	}
	if st, b := get("HEAD", ""); st != 200 || len(b) != 0 {
		t.Fatalf("HEAD: status %d, %d bytes", st, len(b))
	}
	if cfs.read > 1024 {
		t.Fatalf("%d bytes went through Read/ReadAt", cfs.read)
	}
}
