package wimsynth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestTranscodeXPRESS transcodes WIMs that boot loaders refuse (LZMS, solid LZMS) and ones
// they read (XPRESS and LZX with 32 KiB chunks, pipable) to XPRESS, with and without
// injected files: wimlib-imagex verify passes, apply gives the source tree (plus the
// injected files), ranges match a sequential read, and the result is smaller than the
// uncompressed transcode.
func TestTranscodeXPRESS(t *testing.T) {
	wimtest.NeedWimlib(t)
	for i, m := range captureModes {
		switch m.name {
		case "lzms", "solid", "xpress-32k", "lzx-32k", "pipable-xpress":
		default:
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := capture(t, dir, i, m.args, m.two)
			a := openWIM(t, s.path, s.ref)
			cache := NewChunkCache(1 << 20) // smaller than the image: reads recompress
			for _, inject := range []bool{false, true} {
				name := "plain"
				if inject {
					name = "inject"
				}
				t.Run(name, func(t *testing.T) {
					opts := Options{Index: 1, Transcode: TranscodeXPRESS, Cache: cache}
					var files map[string][]byte
					if inject {
						opts.Overlay, files = testOverlay(t)
					}
					checkFeature(t, a.Archive, s, opts, files)

					x, err := Build(a.Archive, opts)
					if err != nil {
						t.Fatal(err)
					}
					// The metadata resource is stored uncompressed (for wimboot) unless it is
					// copied raw from an XPRESS source; every decoded blob that shrinks is XPRESS.
					xa, err := wim.Open(x, x.Size(), nil)
					if err != nil {
						t.Fatal(err)
					}
					mb, err := xa.MetadataBlob(1)
					if err != nil {
						t.Fatal(err)
					}
					if copied := m.name == "xpress-32k" && !inject; (mb.Resource.Flags&wim.ResFlagCompressed != 0) != copied {
						t.Errorf("metadata resource flags %#x", mb.Resource.Flags)
					}
					compressed := 0
					for bi := range xa.Blobs() {
						if bi.Resource.Flags&wim.ResFlagCompressed != 0 {
							compressed++
							if bi.Compression != wim.CompressionXPRESS || bi.ChunkSize != BootChunkSize || bi.Solid {
								t.Errorf("blob %x: %v, %d-byte chunks, solid %v", bi.Hash, bi.Compression, bi.ChunkSize, bi.Solid)
							}
						}
					}
					if compressed == 0 {
						t.Error("no compressed blob in the XPRESS transcode")
					}
					opts.Transcode = TranscodeUncompressed
					u, err := Build(a.Archive, opts)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("XPRESS %d bytes, uncompressed %d (%.1f%%)", x.Size(), u.Size(), 100*float64(x.Size())/float64(u.Size()))
					if x.Size() >= u.Size() {
						t.Errorf("XPRESS transcode is %d bytes, uncompressed %d", x.Size(), u.Size())
					}
					if !inject {
						// wimlib's own XPRESS export of the image is the yardstick for size.
						ref := filepath.Join(t.TempDir(), "ref.wim")
						wimtest.Wimlib(t, "export", s.path, "1", ref, "--compress=xpress", "--chunk-size=32768")
						st, err := os.Stat(ref)
						if err != nil {
							t.Fatal(err)
						}
						t.Logf("wimlib-imagex export --compress=xpress: %d bytes (ours %.1f%% of it)", st.Size(), 100*float64(x.Size())/float64(st.Size()))
						if x.Size() > st.Size()*105/100 {
							t.Errorf("XPRESS transcode is %d bytes, wimlib's XPRESS export %d: more than 5%% larger", x.Size(), st.Size())
						}
					}
					if x.ETag() == u.ETag() {
						t.Error("XPRESS and uncompressed transcodes share an ETag")
					}
				})
			}
		})
	}
}

// xpressSource captures a small LZMS WIM and opens it.
func xpressSource(t *testing.T) (source, *wim.ReadCloser) {
	t.Helper()
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	s := capture(t, dir, 3, []string{"--compress=lzms"}, false)
	return s, openWIM(t, s.path)
}

// TestXPRESSRangesCompressOnlyWhatTheyCover reads small ranges of a transcoded WIM with a
// cache that keeps nothing: each read compresses only the chunks it covers.
func TestXPRESSRangesCompressOnlyWhatTheyCover(t *testing.T) {
	_, a := xpressSource(t)
	cache := NewChunkCache(0)
	f, err := Build(a.Archive, Options{Index: 1, Transcode: TranscodeXPRESS, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	all := make([]byte, f.Size())
	if _, err := f.ReadAt(all, 0); err != nil {
		t.Fatal(err)
	}
	// Find a compressed resource, and read 100 bytes in the middle of it.
	var res *xpressRes
	var seg segment
	for _, sg := range f.segs {
		if x, ok := sg.r.(*xpressRes); ok && len(x.ends) >= 3 && (res == nil || len(x.ends) > len(res.ends)) {
			res, seg = x, sg
		}
	}
	if res == nil {
		t.Fatal("no XPRESS resource of 3 chunks or more in the transcoded WIM")
	}
	before := cache.Stats()
	k := len(res.ends) / 2
	off := seg.off + int64(len(res.table)) + res.start(k) + 1
	p := make([]byte, 100)
	if _, err := f.ReadAt(p, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, all[off:off+100]) {
		t.Fatal("range differs from the whole read")
	}
	after := cache.Stats()
	raw := int(res.ends[k]-res.start(k)) == res.usize(k)
	want := int64(1)
	if raw {
		want = 0 // a raw chunk is read from the source, not compressed
	}
	if got := after.Compressed - before.Compressed; got != want {
		t.Fatalf("a 100-byte range inside chunk %d compressed %d chunks; want %d", k, got, want)
	}
	if after.Bytes != 0 {
		t.Fatalf("a zero-budget cache holds %d bytes", after.Bytes)
	}

	// A second Build with the same cache reuses the sizing pass: nothing is compressed.
	before = cache.Stats()
	f2, err := Build(a.Archive, Options{Index: 1, Transcode: TranscodeXPRESS, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if n := cache.Stats().Compressed - before.Compressed; n != 0 || f2.Size() != f.Size() {
		t.Fatalf("second Build compressed %d chunks (size %d, first %d); want 0 and the same size", n, f2.Size(), f.Size())
	}
}

// TestXPRESSCacheSharedByVariants checks that a cache with room for the image serves a second
// injected variant's reads without compressing any chunk of the shared blobs again.
func TestXPRESSCacheSharedByVariants(t *testing.T) {
	_, a := xpressSource(t)
	cache := NewChunkCache(64 << 20)
	var sizes []int64
	for i := 0; i < 2; i++ {
		o := &Overlay{}
		if err := o.AddBytes("Windows/System32/startnet.cmd", []byte(strings.Repeat("rem variant ", 40+i))); err != nil {
			t.Fatal(err)
		}
		before := cache.Stats()
		f, err := Build(a.Archive, Options{Index: 1, Transcode: TranscodeXPRESS, Cache: cache, Overlay: o})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, f.Size())); err != nil {
			t.Fatal(err)
		}
		after := cache.Stats()
		sizes = append(sizes, f.Size())
		// Variant 2 compresses only its own startnet.cmd and metadata (1 chunk each, maybe a
		// few more for a larger metadata resource).
		if n := after.Compressed - before.Compressed; i == 1 && n > 4 {
			t.Errorf("variant 2 compressed %d chunks; want only its own blobs' (<= 4)", n)
		}
	}
	t.Logf("variant sizes %v, cache %+v", sizes, cache.Stats())
}

// TestXPRESSCancel stops the sizing pass with a cancelled context.
func TestXPRESSCancel(t *testing.T) {
	_, a := xpressSource(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := BuildContext(ctx, a.Archive, Options{Index: 1, Transcode: TranscodeXPRESS})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build with a cancelled context: %v; want context.Canceled", err)
	}
}

// changingReader returns different bytes once flipped, as a source file replaced under a
// running server would.
type changingReader struct {
	data    []byte
	flipped bool
}

func (c *changingReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(c.data)) {
		return 0, io.EOF
	}
	n := copy(p, c.data[off:])
	if c.flipped {
		for i := range p[:n] {
			p[i] = byte(off) + byte(i)*7 // incompressible-ish, differs from data
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestXPRESSSourceChanged: a chunk that recompresses to another size is an error, never
// wrong bytes.
func TestXPRESSSourceChanged(t *testing.T) {
	src := &changingReader{data: bytes.Repeat([]byte("pxewim transcodes WinPE. "), 4000)}
	cache := NewChunkCache(0)
	x, err := sizeXPRESS(context.Background(), cache, src, blobKey{size: int64(len(src.data))}, "test blob")
	if err != nil || x == nil {
		t.Fatalf("sizeXPRESS: %v, %v", x, err)
	}
	p := make([]byte, x.Size())
	if _, err := x.ReadAt(p, 0); err != nil {
		t.Fatal(err)
	}
	src.flipped = true
	if _, err := x.ReadAt(p, 0); err == nil || !strings.Contains(err.Error(), "source changed") {
		t.Fatalf("read after the source changed: %v; want an error naming it", err)
	}
}

func TestParseTranscode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Transcode
		err  bool
	}{{"xpress", TranscodeXPRESS, false}, {"uncompressed", TranscodeUncompressed, false}, {"none", TranscodeUncompressed, false},
		{"XPRESS", TranscodeOff, true}, {"lzx", TranscodeOff, true}, {"", TranscodeOff, true}} {
		got, err := ParseTranscode(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseTranscode(%q) = %v, %v", tc.in, got, err)
		}
		if err == nil && got.String() != tc.in && tc.in != "none" {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := Build(nil, Options{Transcode: 7}); err == nil {
		t.Error("unknown target accepted")
	}
}

// TestXPRESSConcurrentReaders reads random ranges of one transcoded WIM from 8 goroutines
// through a cache smaller than the file (run with -race): every range matches the sequential
// bytes, and the cache stays within its budget.
func TestXPRESSConcurrentReaders(t *testing.T) {
	_, a := xpressSource(t)
	const budget = 256 << 10
	cache := NewChunkCache(budget)
	f, err := Build(a.Archive, Options{Index: 1, Transcode: TranscodeXPRESS, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	if _, err := io.Copy(&all, io.NewSectionReader(f, 0, f.Size())); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 200; i++ {
				off := rng.Int64N(f.Size())
				p := make([]byte, min(int64(rng.IntN(100_000)+1), f.Size()-off))
				if _, err := f.ReadAt(p, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(p, all.Bytes()[off:off+int64(len(p))]) {
					errs <- fmt.Errorf("goroutine %d: %d bytes at %d differ", g, len(p), off)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := cache.Stats(); st.Bytes > budget || st.Hits == 0 {
		t.Fatalf("cache %+v: over its %d-byte budget, or never hit", st, budget)
	}
}
