package wimsynth_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestReaderNeverCompletesWithWrongBytes: WIMs synthesised from a source with 4 bytes flipped
// inside a file's data (uncompressed, and XPRESS and LZX with the damaged chunk stored raw),
// exported, injected, transcoded to uncompressed and to XPRESS: a full in-order read through a
// Reader fails with the source's checksum error before it returns the last byte of the damaged
// resource, so it never completes; the same builds of the undamaged source read whole, byte
// for byte what File.ReadAt gives, and wimlib-imagex verifies them.
func TestReaderNeverCompletesWithWrongBytes(t *testing.T) {
	modes := []struct {
		name string
		opts func() wimsynth.Options
	}{
		{"export", func() wimsynth.Options { return wimsynth.Options{Index: 1} }},
		{"injected", func() wimsynth.Options {
			ov := &wimsynth.Overlay{}
			if err := ov.AddBytes("Windows/System32/startnet.cmd", []byte("wpeinit\r\n")); err != nil {
				t.Fatal(err)
			}
			return wimsynth.Options{Index: 1, Overlay: ov}
		}},
		{"transcode-none", func() wimsynth.Options { return wimsynth.Options{Index: 1, Transcode: wimsynth.TranscodeUncompressed} }},
		{"transcode-xpress", func() wimsynth.Options { return wimsynth.Options{Index: 1, Transcode: wimsynth.TranscodeXPRESS} }},
	}
	for _, compress := range []string{"none", "XPRESS", "LZX"} {
		d := wimtest.MakeDamagedWIM(t, compress, 40)
		for _, m := range modes {
			t.Run(compress+"/"+m.name, func(t *testing.T) {
				// Damaged source: the full read fails.
				sf := build(t, d.Path, m.opts())
				got, err := io.ReadAll(&smallReads{r: io.NewSectionReader(sf.NewReader(), 0, sf.Size()), n: 32 << 10})
				var ce *wim.ChecksumError
				if !errors.As(err, &ce) || !errors.Is(err, wim.ErrChecksum) || int64(len(got)) >= sf.Size() {
					t.Fatalf("full read of the damaged build: %d of %d bytes, %v", len(got), sf.Size(), err)
				}
				var c interface{ Corrupt() bool }
				if !errors.As(err, &c) || !c.Corrupt() {
					t.Fatalf("error %v: not marked Corrupt for the servers", err)
				}
				// Good source: the full read completes, byte-identical to File.ReadAt.
				gf := build(t, d.Good, m.opts())
				want := make([]byte, gf.Size())
				if _, err := gf.ReadAt(want, 0); err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1468, 32 << 10, 1 << 20} {
					got, err := io.ReadAll(&smallReads{r: io.NewSectionReader(gf.NewReader(), 0, gf.Size()), n: n})
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("full read of the good build in %d-byte reads: %d bytes, %v", n, len(got), err)
					}
				}
				out := t.TempDir() + "/out.wim"
				if err := os.WriteFile(out, want, 0o644); err != nil {
					t.Fatal(err)
				}
				wimtest.Wimlib(t, "verify", out)
			})
		}
	}
}

// build synthesises from the WIM at path (kept open until the test ends).
func build(t *testing.T, path string, opts wimsynth.Options) *wimsynth.File {
	t.Helper()
	rc, err := wim.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	f, err := wimsynth.Build(rc.Archive, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// smallReads caps every Read at n bytes.
type smallReads struct {
	r io.Reader
	n int
}

func (s *smallReads) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), s.n)]) }
