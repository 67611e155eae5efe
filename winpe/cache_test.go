package winpe_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
	"github.com/pxewim/pxewim/winpe"
)

// TestWinPEEntriesShareOneChunkCache: ten winpe entries over an LZMS solid source (served
// transcoded, so every read decodes source chunks) and twenty clients reading their boot.wim at
// once. Every entry decodes through the one cache the daemon attaches, and that cache never
// holds more than its bound, however many entries there are (before: each entry's source and
// each synthesised WIM read back got a private 256 MiB cache, so memory grew with the entries).
func TestWinPEEntriesShareOneChunkCache(t *testing.T) {
	dir, store := winpeStore(t)
	// Five copies of the solid source: variants of one store image share its opened archive
	// (and so its decoded chunks), so the load on the bound comes from distinct images.
	solid, err := os.ReadFile(filepath.Join(dir, "solid.wim"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("solid%d.wim", i)), solid, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cfgText strings.Builder
	cfgText.WriteString("entries:\n")
	for i := range 10 {
		// Ten distinct served WIMs: five copies of a solid source, each with two different
		// injected files.
		fmt.Fprintf(&cfgText, "  - name: pe%d\n    winpe:\n      image: solid%d.wim\n      inject:\n        - {path: Windows/System32/startnet.cmd, content: \"rem %d\"}\n", i, i%5, i)
	}
	cfg, err := boot.ParseConfig("c.yaml", []byte(cfgText.String()))
	if err != nil {
		t.Fatal(err)
	}
	p, err := boot.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const bound = 1 << 20 // smaller than what the entries decode together (5 images x ~0.4 MiB)
	chunks := wim.NewCache(bound)
	set := winpe.NewLibrary(winpe.Options{Chunks: chunks, Transcode: wimsynth.NewChunkCache(4 << 20)}).Bind(p, store, "store", nil)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		peakHeap uint64
		overCap  int64
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := chunks.Stats()
		mu.Lock()
		peakHeap = max(peakHeap, ms.HeapInuse)
		if st.Bytes > bound {
			overCap = max(overCap, st.Bytes)
		}
		mu.Unlock()
	}
	want := map[string][]byte{}
	for i := range 20 {
		e := cfg.Entries[i%10]
		files, err := set.Files(e.Name)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := files.Open("boot.wim")
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			var got bytes.Buffer
			buf := make([]byte, 64<<10)
			for off := int64(0); ; off += int64(len(buf)) {
				n, err := f.(io.ReaderAt).ReadAt(buf, off)
				got.Write(buf[:n])
				sample()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("%s: %v", e.Name, err)
					return
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := want[e.Name]; ok && !bytes.Equal(prev, got.Bytes()) {
				t.Errorf("%s: two clients read different bytes", e.Name)
			}
			want[e.Name] = got.Bytes()
		}()
	}
	wg.Wait()
	st := chunks.Stats()
	t.Logf("shared cache: %d misses, %d hits, %d evictions, %d bytes held (bound %d); heap in use %d -> peak %d MiB",
		st.Misses, st.Hits, st.Evictions, st.Bytes, bound, before.HeapInuse>>20, peakHeap>>20)
	if overCap > 0 {
		t.Errorf("the shared cache held %d bytes, over its bound of %d", overCap, bound)
	}
	if st.Misses == 0 {
		t.Fatalf("no entry decoded through the shared cache (each used a private one)")
	}
	if st.Evictions == 0 {
		t.Errorf("ten entries' chunks fit in %d bytes without an eviction: the test does not load the bound", bound)
	}
	if len(want) != 10 {
		t.Errorf("read %d distinct entries, want 10", len(want))
	}
	// Each entry's served WIM really is its own (a different injected startnet.cmd).
	seen := map[string]string{}
	for name, b := range want {
		k := string(b)
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s served the same bytes", name, other)
		}
		seen[k] = name
	}
}

// TestConfigChunkCache: `cache:` sets the decoded-chunk cache's bound; too small a bound is
// refused naming the line.
func TestConfigChunkCache(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int64
		err  string
	}{
		{"entries: []\n", boot.DefaultChunkCache, ""},
		{"cache: 1GiB\nentries: []\n", 1 << 30, ""},
		{"cache: 1MiB\nentries: []\n", 0, "c.yaml:1: cache: at least 16MiB"},
		{"cache: lots\nentries: []\n", 0, "c.yaml:1: cache: want a size"},
	} {
		cfg, err := boot.ParseConfig("c.yaml", []byte(tc.src))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.src, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := cfg.ChunkCacheBytes(); got != tc.want {
			t.Errorf("%q: chunk cache %d, want %d", tc.src, got, tc.want)
		}
	}
}
