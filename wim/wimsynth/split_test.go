package wimsynth

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// A split set that boot loaders could read but for the split is joined by copying each
// part's stored resources: no re-encoding (the output keeps LZX with 32K chunks), verified
// by wimlib, applying to the same tree as the set.
func TestSplitJoinedRaw(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	s := capture(t, dir, 0, []string{"--compress=lzx", "split"}, false)
	a := openWIM(t, s.path, s.ref)
	if need, why := NeedsReencode(a.Archive); need {
		t.Fatalf("NeedsReencode = true (%s) for an LZX 32K split set", why)
	}
	if need, why := NeedsTranscode(a.Archive); !need || !strings.Contains(why, "split") {
		t.Fatalf("NeedsTranscode = %v %q: the set as it is cannot boot", need, why)
	}
	checkFeature(t, a.Archive, s, Options{Index: 1}, nil)
	f, err := Build(a.Archive, Options{Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "joined.wim")
	materialise(t, f, out)
	j := openWIM(t, out)
	if h := j.Header(); h.TotalParts != 1 || h.Compression != wim.CompressionLZX || h.ChunkSize != 32768 {
		t.Fatalf("joined header: %v", h)
	}
	var copied int
	for bi := range j.Blobs() {
		src, ok := a.Blob(bi.Hash)
		if !ok {
			t.Fatalf("blob %x is not in the set", bi.Hash)
		}
		if bi.Resource.SizeInWIM != src.Resource.SizeInWIM || bi.Compression != src.Compression {
			t.Errorf("blob %x: stored %d bytes %v, in part %d %d bytes %v: re-encoded", bi.Hash,
				bi.Resource.SizeInWIM, bi.Compression, src.Part, src.Resource.SizeInWIM, src.Compression)
		}
		if src.Part > 1 {
			copied++
		}
	}
	if copied == 0 {
		t.Fatal("no blob came from parts 2 and later")
	}
}

// Without the other parts, Build names the missing ones by number.
func TestSplitMissingPartNamedByBuild(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	s := capture(t, dir, 0, []string{"--compress=lzx", "split"}, false)
	parts, _ := filepath.Glob(s.ref)
	a := openWIM(t, s.path)
	_, err := Build(a.Archive, Options{Index: 1})
	want := "of " + itoa(len(parts)) + " of the split WIM (GUID " + a.Header().GUIDString() + ")"
	if err == nil || !regexp.MustCompile(`parts? 2\b`).MatchString(err.Error()) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Build without parts: %v, want parts named by number and %q", err, want)
	}
}

// Parts stored with different chunk sizes (a hostile set: wimlib never writes one) are not
// copied raw into a WIM whose header says otherwise: such blobs are decoded and stored
// uncompressed, and the result still verifies and applies.
func TestSplitMismatchedChunkSizes(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 6 {
		b := make([]byte, 150_000)
		for j := range b {
			b[j] = byte(r.Uint32()%16) + 'a' // compressible to about half: stored chunked
		}
		writeFile(t, tree, "Windows/pad"+itoa(i)+".bin", b)
	}
	mk := func(name string, args ...string) []string {
		p := filepath.Join(dir, name+".wim")
		wimtest.Wimlib(t, append([]string{"capture", tree, p, "WinPE"}, args...)...)
		wimtest.Wimlib(t, "split", p, filepath.Join(dir, name+".swm"), "0.3")
		parts, _ := filepath.Glob(filepath.Join(dir, name+"*.swm"))
		return parts
	}
	a32 := mk("a", "--compress=lzx", "--chunk-size=32768")
	b64 := mk("b", "--compress=lzx", "--chunk-size=65536")
	if len(a32) < 2 || len(a32) != len(b64) {
		t.Skipf("splits differ in part count (%d, %d): no mixed set to build", len(a32), len(b64))
	}
	guid := func(p string) []byte { b, _ := os.ReadFile(p); return b[0x18:0x28] }
	g := guid(a32[0])
	// Part 2 of the 64K set, given the 32K set's GUID.
	b, _ := os.ReadFile(filepath.Join(dir, "b2.swm"))
	copy(b[0x18:0x28], g)
	mixed := filepath.Join(dir, "mixed2.swm")
	os.WriteFile(mixed, b, 0o644)
	if binary.LittleEndian.Uint32(b[0x14:]) != 65536 {
		t.Fatal("patched part is not 64K")
	}
	var parts []wim.Part
	for _, p := range a32[1:] {
		if filepath.Base(p) == "a2.swm" {
			p = mixed
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fi, _ := f.Stat()
		parts = append(parts, wim.Part{R: f, Size: fi.Size()})
	}
	f1, _ := os.Open(filepath.Join(dir, "a.swm"))
	defer f1.Close()
	fi, _ := f1.Stat()
	a, err := wim.Open(f1, fi.Size(), &wim.Options{Parts: parts})
	if err != nil {
		t.Fatal(err)
	}
	if need, why := NeedsReencode(a); !need || !strings.Contains(why, "65536") {
		t.Errorf("NeedsReencode = %v %q for parts of two chunk sizes", need, why)
	}
	f, err := Build(a, Options{Index: 1})
	if err != nil {
		if strings.Contains(err.Error(), "lacks") {
			t.Skipf("the two splits put blobs in different parts: %v", err)
		}
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.wim")
	materialise(t, f, out)
	if v := wimtest.Wimlib(t, "verify", out); strings.Contains(v, "ERROR") {
		t.Fatalf("verify: %s", v)
	}
	want, got := filepath.Join(dir, "want"), filepath.Join(dir, "got")
	wimtest.Wimlib(t, "apply", filepath.Join(dir, "a.wim"), "1", want)
	wimtest.Wimlib(t, "apply", out, "1", got)
	compareTrees(t, want, got)
	j := openWIM(t, out)
	var decoded int
	for bi := range j.Blobs() {
		src, _ := a.Blob(bi.Hash)
		if src.ChunkSize == 65536 {
			decoded++
			if bi.Compression != wim.CompressionNone {
				t.Errorf("blob %x from the 64K part is stored %v in the 32K WIM", bi.Hash, bi.Compression)
			}
		}
	}
	if decoded == 0 {
		t.Fatal("no blob came from the 64K part")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
