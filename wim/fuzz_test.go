package wim

import (
	"bytes"
	"fmt"
	"github.com/pxewim/pxewim/wim/wimtest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FuzzOpen feeds arbitrary bytes to Open (header, blob table, XML), then reads every image,
// file and blob: errors are fine, panics and runaway allocations are not. Seeds are small WIMs
// written by wimlib-imagex (testdata/fuzz/FuzzOpen, see TestGenerateFuzzSeeds).
func FuzzOpen(f *testing.F) {
	f.Add([]byte("MSWIM\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(bytes.NewReader(data), int64(len(data)), nil)
		if err != nil {
			return
		}
		// Chunk sizes up to 1 GiB are valid (LZMS) but make each fuzz run allocate that much;
		// the parsers under test are the same with smaller chunks.
		for _, b := range append(a.blobOrder, a.metadata...) {
			if b.res.chunkSize > 1<<20 {
				return
			}
		}
		// A hang is a bug too: crash so the fuzzer records the input.
		watchdog := time.AfterFunc(20*time.Second, func() { panic("FuzzOpen: input takes over 20 s") })
		defer watchdog.Stop()
		_ = openAndReadAll(data)
	})
}

// FuzzMetadata feeds arbitrary bytes to the metadata parser (security data and dentry tree)
// and walks the result.
func FuzzMetadata(f *testing.F) {
	f.Add(make([]byte, 8+dentryFixedSize+8))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := parseMetadata(data)
		if err != nil {
			return
		}
		n := 0
		img.Walk(func(p string, e *Entry) error {
			n++
			_ = e.Path()
			_ = e.Mode()
			if e.parent != nil {
				if got := lookupChild(e.parent, e.Name); got == nil {
					t.Fatalf("%s: not found by its own name", p)
				}
			}
			return nil
		})
		if n != img.Entries()+1 {
			t.Fatalf("walked %d entries, parser counted %d", n, img.Entries()+1)
		}
	})
}

// TestGenerateFuzzSeeds writes the seed corpora from tiny WIMs made by wimlib-imagex. It runs
// only with PXEWIM_GEN_FUZZ_SEEDS=1 (the seeds are committed).
func TestGenerateFuzzSeeds(t *testing.T) {
	if os.Getenv("PXEWIM_GEN_FUZZ_SEEDS") != "1" {
		t.Skip("set PXEWIM_GEN_FUZZ_SEEDS=1 to regenerate testdata/fuzz seeds")
	}
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "dir", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "dir", "text.txt"), bytes.Repeat([]byte("fuzz seed text\n"), 600), 0o644)
	os.WriteFile(filepath.Join(src, "dir", "sub", "small"), []byte("small"), 0o600)
	os.WriteFile(filepath.Join(src, "empty"), nil, 0o644)
	os.Link(filepath.Join(src, "dir", "sub", "small"), filepath.Join(src, "hardlink"))
	os.Symlink("dir/text.txt", filepath.Join(src, "symlink"))
	modes := map[string][]string{
		"none":    {"--compress=none"},
		"xpress":  {"--compress=xpress", "--chunk-size=4096"},
		"lzx":     {"--compress=lzx"},
		"lzms":    {"--compress=lzms"},
		"solid":   {"--solid", "--solid-chunk-size=32768"},
		"pipable": {"--pipable", "--compress=xpress"},
	}
	for name, args := range modes {
		w := filepath.Join(dir, name+".wim")
		wimtest.Wimlib(t, append([]string{"capture", src, w, "seed", "--unix-data"}, args...)...)
		b, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 20000 {
			t.Fatalf("%s seed is %d bytes", name, len(b))
		}
		writeSeed(t, "FuzzOpen", name, b)
		if name == "none" || name == "lzx" {
			a, err := Open(bytes.NewReader(b), int64(len(b)), nil)
			if err != nil {
				t.Fatal(err)
			}
			md, err := a.metadata[0].readAll()
			if err != nil {
				t.Fatal(err)
			}
			writeSeed(t, "FuzzMetadata", name, md)
		}
	}
}

func writeSeed(t *testing.T, target, name string, data []byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
	if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
