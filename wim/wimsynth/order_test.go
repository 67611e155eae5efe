package wimsynth

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestTranscodedBlobsInSourceOrder: a solid WIM transcoded to uncompressed (and to XPRESS)
// holds its blobs in the order their bytes lie in the source's solid resource, so a client
// reading the output from its start decodes the source from its start (the first byte of the
// image needs only the first bytes of the first solid chunk). The output is a good WIM with
// the source's content.
func TestTranscodedBlobsInSourceOrder(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	rng := rand.New(rand.NewPCG(16, 16))
	// Names and sizes that wimlib's solid sort (by extension, then name) puts in an order
	// other than its blob table's.
	for i := range 60 {
		ext := []string{".dll", ".exe", ".sys", ".txt"}[i%4]
		p := filepath.Join(tree, fmt.Sprintf("mod%02d", i%23), fmt.Sprintf("file%04d%s", i, ext))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, wimtest.Content(rng, 1000+rng.IntN(40000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(dir, "solid.wim")
	wimtest.Wimlib(t, "capture", tree, src, "img", "--solid")
	reverseSolidEntries(t, src)
	a, err := wim.OpenFile(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var inSource [][20]byte
	for bi := range a.Blobs() {
		if bi.Solid {
			inSource = append(inSource, bi.Hash)
		}
	}
	tableOrder := slices.Clone(inSource)
	pos := map[[20]byte]int64{}
	for bi := range a.Blobs() {
		pos[bi.Hash] = bi.OffsetInResource
	}
	slices.SortFunc(inSource, func(x, y [20]byte) int { return cmp.Compare(pos[x], pos[y]) })
	if slices.Equal(tableOrder, inSource) {
		t.Fatal("the source's blob table lists its solid blobs in solid order: the test would show nothing")
	}
	want := applyTo(t, src, filepath.Join(dir, "want"))
	for _, tr := range []Transcode{TranscodeUncompressed, TranscodeXPRESS} {
		f, err := Build(a.Archive, Options{Index: 1, Transcode: tr})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, io.NewSectionReader(f.NewReader(), 0, f.Size())); err != nil {
			t.Fatalf("%v: reading the output: %v", tr, err)
		}
		out, err := wim.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil)
		if err != nil {
			t.Fatal(err)
		}
		at := map[[20]byte]int64{}
		for bi := range out.Blobs() {
			at[bi.Hash] = bi.Resource.Offset
		}
		for i := 1; i < len(inSource); i++ {
			if at[inSource[i-1]] >= at[inSource[i]] {
				t.Fatalf("%v: blob %d of the solid resource lies at %d in the output, blob %d at %d: not in source order",
					tr, i-1, at[inSource[i-1]], i, at[inSource[i]])
			}
		}
		p := filepath.Join(dir, tr.String()+".wim")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		wimtest.Wimlib(t, "verify", p)
		compareTrees(t, want, applyTo(t, p, filepath.Join(dir, tr.String())))
	}
}

// applyTo extracts image 1 of the WIM at p to dir with wimlib-imagex and returns dir.
func applyTo(t *testing.T, p, dir string) string {
	t.Helper()
	wimtest.Wimlib(t, "apply", p, "1", dir)
	return dir
}

// reverseSolidEntries reverses, in the WIM at p, the order of the blob table entries that
// follow each solid resource's entry (wimlib writes them in the resource's order; other
// tools need not). Each blob still belongs to the resource entry before it, so the WIM stays
// valid (it has no integrity table).
func reverseSolidEntries(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	le := func(x []byte, n int) uint64 {
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(x[i])
		}
		return v
	}
	size, off := int(le(b[0x30:], 7)), int(le(b[0x38:], 8))
	const entry = 50
	table := b[off : off+size]
	isResource := func(e []byte) bool { return le(e[16:], 8) == 0x100000000 } // the solid resource magic size
	for i := 0; i < len(table)/entry; {
		if !isResource(table[i*entry:]) {
			i++
			continue
		}
		j := i + 1
		for j < len(table)/entry && table[j*entry+7]&0x10 != 0 && !isResource(table[j*entry:]) {
			j++
		}
		for a, z := i+1, j-1; a < z; a, z = a+1, z-1 {
			ea, ez := slices.Clone(table[a*entry:(a+1)*entry]), table[z*entry:(z+1)*entry]
			copy(table[a*entry:], ez)
			copy(table[z*entry:], ea)
		}
		i = j
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	wimtest.Wimlib(t, "verify", p)
}
