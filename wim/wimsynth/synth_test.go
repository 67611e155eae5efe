package wimsynth

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// writeFile writes data at root/rel, making directories.
func writeFile(t testing.TB, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// winpeTree writes a WinPE-shaped tree: the boot files pxewim serves, startnet.cmd, random
// binaries, and (from wimtest.MakeTree) hard links, symlinks, empty files and odd names.
func winpeTree(t testing.TB, root string, seed uint64, files, maxSize int) {
	t.Helper()
	wimtest.MakeTree(t, root, wimtest.TreeSpec{Seed: seed, Files: files, MaxSize: maxSize, ChunkSize: 32768})
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, f := range []struct {
		path string
		size int
	}{
		{"Windows/Boot/PXE/bootmgr.exe", 400_000},
		{"Windows/Boot/PXE/pxeboot.n12", 30_000},
		{"Windows/Boot/EFI/bootmgfw.efi", 500_000},
		{"Windows/Boot/DVD/PCAT/BCD", 16384},
		{"Windows/Boot/DVD/PCAT/boot.sdi", 3_170_304 / 8},
		{"Windows/System32/winpeshl.exe", 50_000},
	} {
		writeFile(t, root, f.path, wimtest.Content(rng, f.size))
	}
	writeFile(t, root, "Windows/System32/startnet.cmd", []byte("wpeinit\r\n"))
}

// source is a captured test WIM.
type source struct {
	path   string
	ref    string // --ref glob of a split set's other parts
	images int
	odd    bool // wimlib ignores some of its dentries: its XML counters cannot be compared
}

// applyArgs are wimlib-imagex apply's arguments for image index of s into dir.
func (s source) applyArgs(index int, dir string) []string {
	args := []string{"apply", s.path, fmt.Sprint(index), dir, "--unix-data"}
	if s.ref != "" {
		args = append(args, "--ref="+s.ref)
	}
	return args
}

var captureModes = []struct {
	name string
	args []string
	two  bool // append a second image
}{
	{"split-lzx", []string{"--compress=lzx", "split"}, false},
	{"xpress-32k", []string{"--compress=xpress", "--chunk-size=32768"}, false},
	{"lzx-32k", []string{"--compress=lzx", "--chunk-size=32768"}, false},
	{"lzms", []string{"--compress=lzms"}, false},
	{"solid", []string{"--solid"}, false},
	{"multi-lzx", []string{"--compress=lzx"}, true},
	{"pipable-xpress", []string{"--pipable", "--compress=xpress"}, false},
}

// capture builds the source WIM for a mode in dir.
func capture(t testing.TB, dir string, i int, args []string, two bool) source {
	t.Helper()
	src := filepath.Join(dir, "tree1")
	winpeTree(t, src, uint64(i+1), 20, 120_000)
	p := filepath.Join(dir, "src.wim")
	if args[len(args)-1] == "split" {
		wimtest.Wimlib(t, append([]string{"capture", src, p, "WinPE", "--unix-data"}, args[:len(args)-1]...)...)
		swm := filepath.Join(dir, "src.swm")
		wimtest.Wimlib(t, "split", p, swm, "1")
		if parts, _ := filepath.Glob(filepath.Join(dir, "src*.swm")); len(parts) < 2 {
			t.Fatalf("split made %d parts; want several", len(parts))
		}
		return source{path: swm, ref: filepath.Join(dir, "src*.swm"), images: 1}
	}
	wimtest.Wimlib(t, append([]string{"capture", src, p, "WinPE", "--unix-data"}, args...)...)
	s := source{path: p, images: 1}
	if two {
		src2 := filepath.Join(dir, "tree2")
		winpeTree(t, src2, uint64(i+100), 10, 60_000)
		wimtest.Wimlib(t, "append", src2, p, "Setup", "--unix-data")
		s.images = 2
	}
	return s
}

func openWIM(t testing.TB, p string, ref ...string) *wim.ReadCloser {
	t.Helper()
	opts := &wim.OpenFileOptions{}
	if len(ref) > 0 {
		opts.Ref = ref[0]
	}
	a, err := wim.OpenFile(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// materialise writes f to path the way a client would get it: by reading it in order.
func materialise(t testing.TB, f *File, path string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if n, err := io.Copy(&buf, io.NewSectionReader(f, 0, f.Size())); err != nil || n != f.Size() {
		t.Fatalf("reading synthesised WIM: %d of %d bytes: %v", n, f.Size(), err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkRanges compares random ReadAt ranges (and ones crossing the end) with the whole bytes.
func checkRanges(t testing.TB, f *File, all []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		off := rng.Int64N(f.Size())
		n := rng.IntN(200_000) + 1
		p := make([]byte, n)
		got, err := f.ReadAt(p, off)
		want := min(int64(n), f.Size()-off)
		if int64(got) != want || (want < int64(n)) != errors.Is(err, io.EOF) || (err != nil && !errors.Is(err, io.EOF)) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d", n, off, got, err, want)
		}
		if !bytes.Equal(p[:got], all[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d bytes at %d) differs from the sequential read", n, off)
		}
	}
	if n, err := f.ReadAt(make([]byte, 1), f.Size()); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
}

// overlayFiles is what the injection tests add or replace.
func testOverlay(t testing.TB) (*Overlay, map[string][]byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 9))
	files := map[string][]byte{
		`Windows\System32\startnet.cmd`:         []byte("wpeinit\r\nnet use z: \\\\server\\share\r\n"),
		"Windows/System32/winpeshl.ini":         []byte("[LaunchApps]\r\n%SYSTEMDRIVE%\\setup.exe\r\n"),
		"/unattend.xml":                         []byte("<unattend/>\r\n"),
		"Drivers/net/e1000/e1000.inf":           wimtest.Content(rng, 20_000),
		"Drivers/net/e1000/e1000.sys":           wimtest.Content(rng, 150_000),
		"drivers/NET/e1000/copy.sys":            wimtest.Content(rng, 70_000), // case-insensitive: same dir
		"links/hard1":                           []byte("replaced one link of a hard-link group\n"),
		"Windows/Boot/DVD/PCAT/same-as-bcd.bin": nil, // filled below: content equal to an existing blob
		"empty.txt":                             {},
	}
	files["Windows/Boot/DVD/PCAT/same-as-bcd.bin"] = []byte("wpeinit\r\n")
	o := &Overlay{ModTime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	// The driver folder comes from a directory, through AddFS.
	drivers := t.TempDir()
	for p, b := range files {
		if rel, ok := strings.CutPrefix(p, "Drivers/net/"); ok {
			writeFile(t, drivers, rel, b)
		}
	}
	if err := o.AddFS("Drivers/net", os.DirFS(drivers), "."); err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		if strings.HasPrefix(p, "Drivers/net/") {
			continue
		}
		if err := o.AddBytes(p, b); err != nil {
			t.Fatal(err)
		}
	}
	if o.Len() != len(files) {
		t.Fatalf("overlay has %d files; want %d", o.Len(), len(files))
	}
	return o, files
}

// expectedTree applies the source image with wimlib and puts the overlay on top.
func expectedTree(t testing.TB, s source, index int, dir string, o *Overlay, files map[string][]byte) {
	t.Helper()
	wimtest.Wimlib(t, s.applyArgs(index, dir)...)
	// In the overlay's order: the first path to create a directory names it.
	for _, of := range o.sorted() {
		b := files[of.path]
		elems := of.elems
		// Resolve existing names case-insensitively, as the image does.
		cur := dir
		for i, e := range elems {
			name := e
			if ents, err := os.ReadDir(cur); err == nil {
				for _, de := range ents {
					if de.Name() == e {
						name = e
						break
					}
					if strings.EqualFold(de.Name(), e) {
						name = de.Name()
					}
				}
			}
			cur = filepath.Join(cur, name)
			if i < len(elems)-1 {
				os.Mkdir(cur, 0o755)
			}
		}
		os.Remove(cur) // break hard links, as the injected file leaves its group
		if err := os.WriteFile(cur, b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(cur, o.ModTime, o.ModTime)
	}
}

// compareTrees compares two applied trees; directory times are left out because adding a
// file changes its directory's time on the expected side only.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	w, g := wimtest.ScanTree(t, want), wimtest.ScanTree(t, got)
	var diffs []string
	for p, wn := range w {
		gn, ok := g[p]
		if wn.Type.IsDir() {
			wn.MTime, gn.MTime = time.Time{}, time.Time{}
		}
		switch {
		case !ok:
			diffs = append(diffs, "missing "+p)
		case p == ".":
		case wn != gn:
			diffs = append(diffs, fmt.Sprintf("%s: want %+v, got %+v", p, wn, gn))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			diffs = append(diffs, "extra "+p)
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 15 {
			diffs = append(diffs[:15], fmt.Sprintf("... %d more", len(diffs)-15))
		}
		t.Errorf("applied trees differ:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestSynthesiseWithWimlib(t *testing.T) {
	wimtest.NeedWimlib(t)
	features := []struct {
		name         string
		overlay      bool
		uncompressed bool
	}{
		{"export", false, false},
		{"inject", true, false},
		{"transcode", false, true},
		{"transcode+inject", true, true},
	}
	for i, m := range captureModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := capture(t, dir, i, m.args, m.two)
			a := openWIM(t, s.path, s.ref)
			for _, ft := range features {
				t.Run(ft.name, func(t *testing.T) {
					index := s.images // the last image: image 2 of the multi-image WIM
					opts := Options{Index: index, Uncompressed: ft.uncompressed}
					var files map[string][]byte
					if ft.overlay {
						opts.Overlay, files = testOverlay(t)
					}
					checkFeature(t, a.Archive, s, opts, files)
				})
			}
		})
	}
}

func checkFeature(t *testing.T, a *wim.Archive, s source, opts Options, files map[string][]byte) {
	dir := t.TempDir()
	f, err := Build(a, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.wim")
	all := materialise(t, f, out)
	// Any warning but the one about the integrity table we do not write is a defect, unless
	// the source has it too (odd sources exported with their metadata unchanged).
	srcWarn := ""
	if s.odd {
		srcWarn = wimtest.Wimlib(t, "verify", s.path)
	}
	for _, line := range strings.Split(wimtest.Wimlib(t, "verify", out), "\n") {
		if strings.Contains(line, "WARNING") && !strings.Contains(line, "integrity information") && !strings.Contains(srcWarn, line) {
			t.Errorf("wimlib-imagex verify: %s", line)
		}
	}
	want, got := filepath.Join(dir, "want"), filepath.Join(dir, "got")
	if files != nil {
		expectedTree(t, s, opts.Index, want, opts.Overlay, files)
	} else {
		wimtest.Wimlib(t, s.applyArgs(opts.Index, want)...)
	}
	wimtest.Wimlib(t, "apply", out, "1", got, "--unix-data")
	compareTrees(t, want, got)
	checkRanges(t, f, all)

	// Same inputs, same bytes and ETag.
	f2, err := Build(a, opts)
	if err != nil {
		t.Fatal(err)
	}
	if f2.ETag() != f.ETag() || f2.Size() != f.Size() {
		t.Fatalf("second build: ETag %s size %d; first %s %d", f2.ETag(), f2.Size(), f.ETag(), f.Size())
	}
	var b2 bytes.Buffer
	io.Copy(&b2, io.NewSectionReader(f2, 0, f2.Size()))
	if !bytes.Equal(b2.Bytes(), all) {
		t.Fatal("second build gives different bytes")
	}

	// The header says what the options asked for, and pxewim's reader agrees with wimlib.
	r, err := wim.Open(bytes.NewReader(all), int64(len(all)), nil)
	if err != nil {
		t.Fatalf("wim.Open of the synthesised WIM: %v", err)
	}
	h, sh := r.Header(), a.Header()
	if h.ImageCount != 1 || h.BootIndex != 1 {
		t.Errorf("header: %d images, boot index %d; want 1, 1", h.ImageCount, h.BootIndex)
	}
	if target := opts.Transcode; target != TranscodeOff || opts.Uncompressed {
		want := wim.CompressionNone
		if target == TranscodeXPRESS {
			want = wim.CompressionXPRESS
		}
		if h.Compression != want {
			t.Errorf("transcoded WIM is %v; want %v", h.Compression, want)
		}
		if bad, why := NeedsTranscode(r); bad {
			t.Errorf("transcoded WIM still needs transcoding: %s", why)
		}
	} else if h.Compression != sh.Compression || h.ChunkSize != sh.ChunkSize {
		t.Errorf("export is %v/%d; source %v/%d", h.Compression, h.ChunkSize, sh.Compression, sh.ChunkSize)
	}
	want1, got1 := a.Images()[opts.Index-1], r.Images()[0]
	if got1.Name != want1.Name || got1.Index != 1 {
		t.Errorf("XML image: %+v; want name %q index 1", got1, want1.Name)
	}
	img, err := r.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		elems, _ := splitPath(p)
		data, err := img.ReadFile(strings.Join(elems, "/"))
		if err != nil || !bytes.Equal(data, b) {
			t.Errorf("%s through wim.Open: %d bytes, %v; want %d bytes", p, len(data), err, len(b))
		}
	}
	if files != nil && !s.odd {
		checkCounts(t, want, dir, got1)
	}
}

// checkCounts compares the injected image's XML counters with those wimlib writes when it
// captures the expected tree.
func checkCounts(t *testing.T, want, dir string, got wim.ImageInfo) {
	p := filepath.Join(dir, "expected.wim")
	wimtest.Wimlib(t, "capture", want, p, "expected", "--unix-data", "--compress=none")
	e := openWIM(t, p).Images()[0]
	if got.DirCount != e.DirCount || got.FileCount != e.FileCount || got.TotalBytes != e.TotalBytes ||
		got.HardLinkBytes != e.HardLinkBytes {
		t.Errorf("XML counters dirs/files/bytes/hardlink bytes %d/%d/%d/%d; wimlib's capture of the expected tree: %d/%d/%d/%d",
			got.DirCount, got.FileCount, got.TotalBytes, got.HardLinkBytes, e.DirCount, e.FileCount, e.TotalBytes, e.HardLinkBytes)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	s := capture(t, dir, 0, []string{"--compress=xpress"}, false)
	a := openWIM(t, s.path)
	mb, err := a.MetadataBlob(1)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := readBlob(a.Archive, mb)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := parseTree(buf)
	if err != nil {
		t.Fatal(err)
	}
	if out := tr.serialize(); !bytes.Equal(out, buf) {
		i := 0
		for i < min(len(out), len(buf)) && out[i] == buf[i] {
			i++
		}
		t.Fatalf("re-serialised metadata differs from wimlib's at byte %#x (lengths %d, %d)", i, len(out), len(buf))
	}
	if sha1.Sum(buf) != mb.Hash {
		t.Fatal("metadata hash")
	}
}
