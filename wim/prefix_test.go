package wim

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestSolidPrefixReads reads a solid LZMS WIM whose chunks are large enough (8 MiB) for
// prefix decoding: the first read of a file near a chunk's start is served from a decoded
// prefix while the full chunk decodes in the background; every byte must still be right,
// for single readers, growing sequential reads and concurrent readers, and a chunk cut
// short must give an error, not a prefix of garbage.
func TestSolidPrefixReads(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	wimtest.MakeTree(t, src, wimtest.TreeSpec{Seed: 16, Files: 40, MaxSize: 600_000, ChunkSize: 1 << 20})
	wimPath := filepath.Join(dir, "solid.wim")
	wimtest.Wimlib(t, "capture", src, wimPath, "solid", "--solid", "--solid-chunk-size=8388608")

	files := map[string][]byte{}
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(src, p)
			b, _ := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = b
		}
		return nil
	})
	open := func() (*ReadCloser, *Image) {
		a, err := OpenFile(wimPath, &OpenFileOptions{Cache: NewCache(64 << 20)})
		if err != nil {
			t.Fatal(err)
		}
		img, err := a.Image(1)
		if err != nil {
			t.Fatal(err)
		}
		return a, img
	}

	// A cold read at the very start of the first solid chunk must come from a prefix; then
	// one small read per file (in map order: whichever lands early in a chunk before the
	// full decode is done also comes from a prefix).
	a, img := open()
	var first *resource
	for _, b := range a.blobs {
		if b.res.solid && b.res.codec == CompressionLZMS {
			first = b.res
			break
		}
	}
	if first == nil {
		t.Fatal("no solid LZMS resource")
	}
	if _, err := first.readAt(make([]byte, 4096), 0, nil); err != nil {
		t.Fatal(err)
	}
	prefixes := 0
	for name, want := range files {
		if len(want) == 0 {
			continue
		}
		f, err := img.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, min(len(want), 4096))
		if n, err := f.(io.ReaderAt).ReadAt(buf, 0); n != len(buf) || (err != nil && err != io.EOF) {
			t.Fatalf("%s: ReadAt: n=%d err=%v", name, n, err)
		}
		if !bytes.Equal(buf, want[:len(buf)]) {
			t.Fatalf("%s: first %d bytes differ", name, len(buf))
		}
		f.Close()
	}
	seen := map[*resource]bool{}
	for _, b := range a.blobs {
		if !seen[b.res] {
			seen[b.res] = true
			prefixes += int(b.res.prefixes.Load())
		}
	}
	if prefixes == 0 {
		t.Fatal("no read was served from a prefix decode: the test does not exercise it")
	}
	// Whole files, sequentially in small reads, then random ranges from 8 goroutines.
	for name, want := range files {
		f, err := img.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := io.CopyBuffer(&got, f, make([]byte, 3000)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("%s: sequential read differs", name)
		}
		f.Close()
	}
	a.Close()

	a, img = open()
	defer a.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for name, want := range files {
				if len(want) == 0 {
					continue
				}
				f, err := img.Open(name)
				if err != nil {
					t.Error(err)
					return
				}
				checkRange(t, name, f.(io.ReaderAt), want, rng)
				f.Close()
			}
		})
	}
	wg.Wait()
	if err := a.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	// A truncated copy: reads inside the damaged chunk fail (a prefix decode sees only
	// the data it needs, so the full decode or a later read reports it).
	raw, err := os.ReadFile(wimPath)
	if err != nil {
		t.Fatal(err)
	}
	var solid *resource
	for _, b := range a.blobs {
		if b.res.solid && b.res.codec == CompressionLZMS {
			solid = b.res
			break
		}
	}
	if solid == nil {
		t.Fatal("no solid LZMS resource")
	}
	if err := solid.loadTable(); err != nil {
		t.Fatal(err)
	}
	start, end := solid.chunkSpan(0)
	bad := append([]byte(nil), raw...)
	for i := start + (end-start)/4; i < end; i++ {
		bad[i] = 0xff
	}
	badPath := filepath.Join(dir, "bad.wim")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	b2, err := OpenFile(badPath, &OpenFileOptions{Cache: NewCache(64 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	img2, err := b2.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for name, want := range files {
		got, err := fs.ReadFile(img2, name)
		if err != nil {
			failed++
			continue
		}
		_ = bytes.Equal(got, want) // chunks past the damage decode fine
	}
	if failed == 0 {
		t.Fatal("every file read without error from a WIM whose first solid chunk is damaged")
	}
	if err := b2.Verify(context.Background(), nil); err == nil {
		t.Fatal("verify accepted a damaged solid chunk")
	}
}
