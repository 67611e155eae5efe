package localstore

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

// wimlibExtractRef is what wimlib-imagex extract --ref gives for path in image 1 of a set.
func wimlibExtractRef(t *testing.T, first, ref, p string) []byte {
	t.Helper()
	dir := t.TempDir()
	args := []string{"extract", first, "1", "/" + p, "--ref=" + ref, "--dest-dir=" + dir, "--no-acls"}
	if out, err := exec.Command("wimlib-imagex", args...).CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.Base(p)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// "x.swm:1/path" reads across the parts of the set the part belongs to, byte for byte what
// wimlib-imagex extract --ref gives; any part (in any case) names the set; a missing or foreign
// part makes every open fail, naming the part by number, until the set is whole again.
func TestSplitSetPaths(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pe")
	os.MkdirAll(dir, 0o755)
	_, parts := testenv.BuildSplitWinPE(t, dir, "pe", 1)
	ref := filepath.Join(dir, "pe*.swm")
	s, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	paths := []string{"Windows/Boot/PXE/bootmgr.exe", "Windows/Boot/DVD/PCAT/boot.sdi", "Windows/Boot/EFI/bootmgfw.efi"}
	for i := range 6 {
		paths = append(paths, "Windows/System32/drivers/pad"+strconv.Itoa(i)+".sys")
	}
	a, err := wim.OpenFile(parts[0], &wim.OpenFileOptions{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := a.Image(1)
	inLater := 0
	for _, p := range paths {
		want := wimlibExtractRef(t, parts[0], ref, p)
		for _, name := range []string{"pe/pe.swm:1/" + p, "PE/PE.SWM:1/" + strings.ToLower(p), "pe/pe2.swm:1/" + p} {
			got, err := readAll(t, s, name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %d bytes, %v; wimlib-imagex extract --ref gives %d", name, len(got), err, len(want))
			}
		}
		if err := readAtMiddle(s, "pe/pe.swm:1/"+p, want); err != nil {
			t.Error(err)
		}
		if f, err := img.Open(p); err == nil {
			if bi, ok := a.Blob(f.(*wim.File).Hash()); ok && bi.Part > 1 {
				inLater++
			}
			f.Close()
		}
	}
	a.Close()
	if inLater == 0 {
		t.Fatal("no file read lies in parts 2 and later")
	}
	if s.OpenWIMs() != 2 {
		t.Errorf("%d sets open, want 2 (by pe.swm and by pe2.swm)", s.OpenWIMs())
	}

	// Part 3 goes missing while the set is open: the next open sees it.
	p3, _ := os.ReadFile(parts[2])
	os.Remove(parts[2])
	_, err = readAll(t, s, "pe/pe.swm:1/"+paths[0])
	want := "part 3 of " + strconv.Itoa(len(parts)) + " of pe/pe.swm (GUID "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "is missing") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("with part 3 missing: %v, want a not-found error saying %q", err, want)
	}
	// A part of another set (other GUID) in its place is not taken for it.
	other := t.TempDir()
	_, foreign := testenv.BuildSplitWinPE(t, other, "pe", 2)
	fb, _ := os.ReadFile(foreign[2])
	os.WriteFile(parts[2], fb, 0o644)
	_, err = readAll(t, s, "pe/pe.swm:1/"+paths[0])
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "pe/pe3.swm is not part 3 of pe/pe.swm") {
		t.Fatalf("with a foreign part 3: %v", err)
	}
	// Whole again: served again.
	os.WriteFile(parts[2], p3, 0o644)
	if got, err := readAll(t, s, "pe/pe.swm:1/"+paths[3]); err != nil || !bytes.Equal(got, wimlibExtractRef(t, parts[0], ref, paths[3])) {
		t.Fatalf("set whole again: %v", err)
	}
	// A part alone, read as a file, is the file.
	if got, err := readAll(t, s, "pe/pe2.swm"); err != nil || len(got) == 0 {
		t.Fatalf("pe/pe2.swm as a file: %v", err)
	}
}

// readAtMiddle checks that a file inside a set is an io.ReaderAt reading the middle right,
// with the stream's SHA-1.
func readAtMiddle(fsys fs.FS, name string, want []byte) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return errors.New(name + ": not an io.ReaderAt")
	}
	mid := len(want) / 2
	buf := make([]byte, min(1000, len(want)-mid))
	if _, err := ra.ReadAt(buf, int64(mid)); err != nil || !bytes.Equal(buf, want[mid:mid+len(buf)]) {
		return fmt.Errorf("%s: ReadAt(%d) gave wrong bytes: %v", name, mid, err)
	}
	if h, ok := f.(interface{ Hash() [20]byte }); !ok || h.Hash() != sha1.Sum(want) {
		return errors.New(name + ": Hash() missing or wrong")
	}
	return nil
}

// Many requests for a set not yet open open it once, and all read the right bytes.
func TestSplitSetConcurrentOpen(t *testing.T) {
	root := t.TempDir()
	_, parts := testenv.BuildSplitWinPE(t, root, "pe", 1)
	s, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := "Windows/System32/drivers/pad2.sys"
	want := wimlibExtractRef(t, parts[0], filepath.Join(root, "pe*.swm"), p)
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			got, err := readAll(t, s, "pe.swm:1/"+p)
			if err == nil && !bytes.Equal(got, want) {
				err = errors.New("wrong bytes")
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := s.OpenWIMs(); n != 1 {
		t.Errorf("%d sets open after concurrent requests, want 1", n)
	}
}
