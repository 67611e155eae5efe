package wim

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestRawLayouts checks that the WIMs wimlib writes really contain the two layouts a reader
// must not confuse, and that both read back: a resource stored uncompressed inside a
// compressed WIM (incompressible file) and raw chunks inside a compressed resource (a file
// whose middle chunk is random).
func TestRawLayouts(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := bytes.Repeat([]byte("mostly compressible text; "), 32768/26+1)[:32768]
	files := map[string][]byte{
		"random.bin": random(100000),
		"mixed.bin":  append(append(append([]byte{}, text...), random(32768)...), text...),
	}
	for name, data := range files {
		os.WriteFile(filepath.Join(src, name), data, 0o644)
	}
	w := filepath.Join(dir, "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x", "--compress=xpress", "--chunk-size=32768")
	a, err := OpenFile(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, err := a.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := fs.ReadFile(img, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v", name, len(got), err)
		}
	}
	e, _ := img.Lookup("random.bin")
	if r := a.blobs[e.Hash].res; r.chunked {
		t.Errorf("random.bin: stored compressed; want an uncompressed resource in a compressed WIM")
	}
	e, _ = img.Lookup("mixed.bin")
	r := a.blobs[e.Hash].res
	if !r.chunked {
		t.Fatal("mixed.bin: stored uncompressed; want a compressed resource")
	}
	if err := r.loadTable(); err != nil {
		t.Fatal(err)
	}
	raw := 0
	for i := int64(0); i < r.chunks(); i++ {
		if r.offs[i+1]-r.offs[i] == r.chunkLen(i) {
			raw++
		}
	}
	if raw != 1 {
		t.Errorf("mixed.bin: %d raw chunks, want 1 (the random one)", raw)
	}
}
