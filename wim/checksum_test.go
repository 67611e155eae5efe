package wim_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// openDamaged opens image 1 of a damaged WIM and returns the damaged file's handle opener.
func openDamaged(t *testing.T, compress string) (wimtest.DamagedWIM, *wim.Image) {
	t.Helper()
	d := wimtest.MakeDamagedWIM(t, compress, 7)
	rc, err := wim.OpenFile(d.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	img, err := rc.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	return d, img
}

func openFile(t *testing.T, img *wim.Image, name string) *wim.File {
	t.Helper()
	f, err := img.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f.(*wim.File)
}

// checkMismatch asserts err is the checksum error naming the WIM, image, path and both SHA-1s.
func checkMismatch(t *testing.T, err error, d wimtest.DamagedWIM) {
	t.Helper()
	var ce *wim.ChecksumError
	if !errors.Is(err, wim.ErrChecksum) || !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a *wim.ChecksumError", err)
	}
	want := sha1.Sum(d.Data)
	if ce.WIM != d.Path || ce.Image != 1 || ce.Path != d.Name || ce.Want != want || ce.Got == want || !ce.Corrupt() {
		t.Fatalf("checksum error %+v: want WIM %s, image 1, path %s, want %x", ce, d.Path, d.Name, want)
	}
	for _, s := range []string{d.Path, "image 1", d.Name, "SHA-1 mismatch"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

// TestFullReadNeverCompletesWithWrongBytes: every way of reading a damaged stream in full and
// in order (Read, io.Copy, an io.SectionReader over ReadAt as http.ServeContent and the TFTP
// server use it, re-reads as TFTP retransmissions do) fails before the last bytes are
// returned, in an uncompressed WIM and in an XPRESS WIM whose damaged chunk is stored raw.
func TestFullReadNeverCompletesWithWrongBytes(t *testing.T) {
	for _, compress := range []string{"none", "XPRESS", "LZX"} {
		t.Run(compress, func(t *testing.T) {
			d, img := openDamaged(t, compress)
			size := len(d.Data)
			readers := map[string]func(f *wim.File) io.Reader{
				"Read":          func(f *wim.File) io.Reader { return struct{ io.Reader }{f} },
				"SectionReader": func(f *wim.File) io.Reader { return io.NewSectionReader(f, 0, f.Size()) },
				"SectionReader-1468": func(f *wim.File) io.Reader {
					return &smallReads{r: io.NewSectionReader(f, 0, f.Size()), n: 1468}
				},
			}
			for name, mk := range readers {
				t.Run(name, func(t *testing.T) {
					var got bytes.Buffer
					n, err := io.Copy(&got, mk(openFile(t, img, d.Name)))
					checkMismatch(t, err, d)
					if n >= int64(size) || int64(got.Len()) != n {
						t.Fatalf("copied %d of %d bytes before the error", n, size)
					}
				})
			}
			t.Run("ReadAt-retransmits", func(t *testing.T) {
				f := openFile(t, img, d.Name)
				buf := make([]byte, 1468)
				var err error
				var off int64
				for off < int64(size) && err == nil {
					var n int
					n, err = f.ReadAt(buf, off)
					if err == io.EOF && n > 0 {
						err = nil
					}
					if off > 0 && err == nil {
						_, err = f.ReadAt(buf[:100], off-50) // a retransmitted block overlapping the checked prefix
					}
					off += int64(n)
				}
				checkMismatch(t, err, d)
				if off >= int64(size) {
					t.Fatalf("all %d bytes were returned", size)
				}
				// The verdict sticks: the last bytes are refused to this handle from now on.
				if n, err := f.ReadAt(buf[:10], int64(size-10)); n != 0 || !errors.Is(err, wim.ErrChecksum) {
					t.Fatalf("tail read after the mismatch: %d bytes, %v", n, err)
				}
			})
			t.Run("undamaged-file", func(t *testing.T) {
				got, err := io.ReadAll(io.NewSectionReader(openFile(t, img, d.Other), 0, int64(len(d.OData))))
				if err != nil || !bytes.Equal(got, d.OData) {
					t.Fatalf("other.bin: %d bytes, %v", len(got), err)
				}
			})
			t.Run("ReadFile", func(t *testing.T) {
				_, err := img.ReadFile(d.Name)
				checkMismatch(t, err, d)
			})
			t.Run("range-not-checked", func(t *testing.T) {
				// A range (here the second half) cannot be checked against the whole stream's
				// SHA-1: it is served as stored. Issue 11 point 3 covers ranges.
				f := openFile(t, img, d.Name)
				buf := make([]byte, size/2)
				if _, err := f.ReadAt(buf, int64(size-len(buf))); err != nil && err != io.EOF {
					t.Fatalf("range read: %v", err)
				}
			})
		})
	}
}

// TestGoodFullReadsPass: undamaged streams read in full, in order, by every pattern, give
// exactly their bytes and no error (the check never refuses good data).
func TestGoodFullReadsPass(t *testing.T) {
	d := wimtest.MakeDamagedWIM(t, "XPRESS", 8)
	rc, err := wim.OpenFile(d.Good, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	img, err := rc.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 1468, 32 << 10, 1 << 20} {
		f := openFile(t, img, d.Name)
		var got bytes.Buffer
		if _, err := io.Copy(&got, &smallReads{r: io.NewSectionReader(f, 0, f.Size()), n: n}); err != nil || !bytes.Equal(got.Bytes(), d.Data) {
			t.Fatalf("reads of %d: %d bytes, %v", n, got.Len(), err)
		}
		// Reading the end again, as a range, still works.
		if _, err := f.ReadAt(make([]byte, 10), f.Size()-10); err != nil {
			t.Fatalf("tail re-read: %v", err)
		}
	}
}

// smallReads caps every Read at n bytes.
type smallReads struct {
	r io.Reader
	n int
}

func (s *smallReads) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), s.n)]) }

// TestChangedAfterVerifiedRead: after one full read matched the SHA-1, later full reads check
// the CRC-32C of each 64 KiB block against what that read verified. When the WIM file is
// then changed in place (4 bytes flipped; an uncompressed WIM, so no decoded chunk is cached),
// the next full read fails at the block that differs, with the byte range, and never returns
// the last bytes.
func TestChangedAfterVerifiedRead(t *testing.T) {
	d := wimtest.MakeDamagedWIM(t, "none", 9)
	good, err := os.ReadFile(d.Good)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "changing.wim")
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := wim.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	img, err := rc.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	full := func() ([]byte, error) {
		return io.ReadAll(io.NewSectionReader(openFile(t, img, d.Name), 0, int64(len(d.Data))))
	}
	for i := range 2 { // the first read verifies the SHA-1, the second the blocks
		if got, err := full(); err != nil || !bytes.Equal(got, d.Data) {
			t.Fatalf("full read %d of the good WIM: %d bytes, %v", i, len(got), err)
		}
	}
	damaged, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0) // in place, like dd conv=notrunc
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(damaged[d.Offset:d.Offset+4], d.Offset); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := full()
	var ce *wim.ChecksumError
	if !errors.As(err, &ce) || ce.Got != ([20]byte{}) || ce.Block != [2]int64{32 << 10 / (64 << 10) * (64 << 10), 64 << 10} {
		t.Fatalf("full read after the change: %d bytes, %v (%+v)", len(got), err, ce)
	}
	if len(got) >= len(d.Data) || !strings.Contains(err.Error(), "differ from the data verified") {
		t.Fatalf("full read after the change returned %d of %d bytes: %v", len(got), len(d.Data), err)
	}
}

// TestVerifyBlob: VerifyBlob decodes and checks one blob by SHA-1 (what a synthesised WIM
// does for resources it copies raw): a damaged one fails with a *ChecksumError naming the WIM
// and the blob, an undamaged one passes, and a verified blob is not decoded again.
func TestVerifyBlob(t *testing.T) {
	for _, compress := range []string{"none", "LZX"} {
		t.Run(compress, func(t *testing.T) {
			d := wimtest.MakeDamagedWIM(t, compress, 10)
			rc, err := wim.OpenFile(d.Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			bad, good := sha1.Sum(d.Data), sha1.Sum(d.OData)
			err = rc.VerifyBlob(bad)
			var ce *wim.ChecksumError
			if !errors.As(err, &ce) || ce.WIM != d.Path || ce.Want != bad || !strings.Contains(err.Error(), fmt.Sprintf("blob %x", bad)) {
				t.Fatalf("VerifyBlob(damaged) = %v", err)
			}
			if err := rc.VerifyBlob(good); err != nil {
				t.Fatalf("VerifyBlob(good) = %v", err)
			}
			if err := rc.VerifyBlob([20]byte{1}); err == nil {
				t.Fatal("VerifyBlob of an unknown hash succeeded")
			}
		})
	}
}

// storeVerdict is a WIM reader whose store gives a verdict (wim.Verdict).
type storeVerdict struct {
	io.ReaderAt
	good bool
}

func (s storeVerdict) Verified() bool { return s.good }
func (s storeVerdict) WaitVerified(ctx context.Context) error {
	if s.good {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestCheckWithStoreVerdict: a WIM whose store has not verified it yet is checked as any
// other (the damaged file fails its full read); one the store vouches for is not hashed
// again (the store's guard fails reads once the file changes), and its good files read whole.
func TestCheckWithStoreVerdict(t *testing.T) {
	d := wimtest.MakeDamagedWIM(t, "XPRESS", 12)
	open := func(path string, good bool) *wim.Image {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		a, err := wim.Open(storeVerdict{f, good}, st.Size(), nil)
		if err != nil {
			t.Fatal(err)
		}
		img, err := a.Image(1)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	img := open(d.Path, false)
	if _, err := io.ReadAll(io.NewSectionReader(openFile(t, img, d.Name), 0, int64(len(d.Data)))); !errors.Is(err, wim.ErrChecksum) {
		t.Fatalf("unverified store, damaged file: %v, want the checksum error", err)
	}
	img = open(d.Good, true)
	if got, err := io.ReadAll(io.NewSectionReader(openFile(t, img, d.Name), 0, int64(len(d.Data)))); err != nil || !bytes.Equal(got, d.Data) {
		t.Fatalf("verified store, good file: %d bytes, %v", len(got), err)
	}
}
