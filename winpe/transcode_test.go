package winpe_test

import (
	"github.com/pxewim/pxewim/winpe"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/wim/wimsynth"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestWinPETranscodeTargets: winpe.transcode picks how an LZMS solid image is served. Both
// targets pass wimlib-imagex verify and apply to the source's tree; xpress is XPRESS-compressed
// and smaller; two policies sharing a chunk cache (a reload) compress the image once.
func TestWinPETranscodeTargets(t *testing.T) {
	dir, store := winpeStore(t)
	ref := filepath.Join(t.TempDir(), "ref")
	wimtest.Wimlib(t, "apply", filepath.Join(dir, "solid.wim"), "1", ref)
	cache := wimsynth.NewChunkCache(16 << 20)
	sizes := map[string]int{}
	var compressed []int64 // the cache's compressed-chunk count after each case
	for _, tc := range []struct{ section, entry, target, info string }{
		{"", "", "uncompressed", "Compression:    None"},
		{"winpe: {transcode: xpress}\n", "", "xpress", "Compression:    XPRESS"},
		{"winpe: {transcode: uncompressed}\n", ", transcode: xpress", "xpress", "Compression:    XPRESS"},
	} {
		src := tc.section + "entries:\n  - name: solid\n    winpe: {image: solid.wim" + tc.entry + "}\n"
		cfg, err := boot.ParseConfig("c.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := boot.NewPolicy(cfg)
		if err != nil {
			t.Fatal(err)
		}
		set := winpe.NewLibrary(winpe.Options{Transcode: cache}).Bind(p, store, "store", nil)
		files, err := set.Files("solid")
		if err != nil {
			t.Fatal(err)
		}
		served, err := fs.ReadFile(files, "boot.wim")
		if err != nil {
			t.Fatal(err)
		}
		if served == nil {
			t.Fatalf("%s: no boot.wim in the entry's files", tc.target)
		}
		f := filepath.Join(t.TempDir(), "boot.wim")
		os.WriteFile(f, served, 0o644)
		wimtest.Wimlib(t, "verify", f)
		if info := wimtest.Wimlib(t, "info", f); !strings.Contains(info, tc.info) {
			t.Errorf("%s: wimlib-imagex info lacks %q:\n%s", tc.target, tc.info, info)
		}
		got := filepath.Join(t.TempDir(), "got")
		wimtest.Wimlib(t, "apply", f, "1", got)
		wimtest.CompareTrees(t, ref, got)
		sizes[tc.target+tc.entry] = len(served)
		compressed = append(compressed, cache.Stats().Compressed)
		findings := ""
		for _, fd := range set.Check("solid") {
			findings += fd.What + "\n"
		}
		if !strings.Contains(findings, "transcoded to "+tc.target) {
			t.Errorf("findings do not say %q:\n%s", "transcoded to "+tc.target, findings)
		}
	}
	if x, u := sizes["xpress"], sizes["uncompressed"]; x == 0 || x >= u {
		t.Errorf("xpress transcode %d bytes, uncompressed %d: want smaller", x, u)
	}
	// The third policy (a reload, same cache) builds the same image again.
	first, again := compressed[1]-compressed[0], compressed[2]-compressed[1]
	t.Logf("chunks compressed: first xpress build and read %d, again with the shared cache %d", first, again)
	if first == 0 || again >= first {
		t.Errorf("the shared cache did not spare the second build: %d then %d chunks compressed", first, again)
	}
}

// TestPrepareTranscodes: the XPRESS pass runs in the background before any client asks; the
// first request then finds the served WIM built (no chunk compressed for it).
func TestPrepareTranscodes(t *testing.T) {
	_, store := winpeStore(t)
	cfg, err := boot.ParseConfig("c.yaml", []byte("winpe: {transcode: xpress}\nentries:\n"+
		"  - name: solid\n    winpe: {image: solid.wim}\n  - name: setup\n    winpe: {image: setup.wim, transcode: uncompressed}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := boot.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cache := wimsynth.NewChunkCache(16 << 20)
	set := winpe.NewLibrary(winpe.Options{Transcode: cache}).Bind(p, store, "store", nil)
	type result struct {
		entry string
		err   error
	}
	done := make(chan result, 4)
	set.PrepareTranscodes(func(entry string, err error, _ time.Duration) { done <- result{entry, err} })
	select {
	case r := <-done:
		if r.entry != "solid" || r.err != nil {
			t.Fatalf("prepared %q: %v, want solid without error", r.entry, r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("PrepareTranscodes never reported")
	}
	select {
	case r := <-done:
		t.Fatalf("an entry without transcode: xpress was prepared: %q", r.entry)
	case <-time.After(200 * time.Millisecond):
	}
	before := cache.Stats().Compressed
	if before == 0 {
		t.Fatal("the background pass compressed nothing")
	}
	files, err := set.Files("solid")
	if err != nil {
		t.Fatal(err)
	}
	f, err := files.Open("boot.wim")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if after := cache.Stats().Compressed; after != before {
		t.Errorf("opening boot.wim after the background pass compressed %d more chunks", after-before)
	}
}
