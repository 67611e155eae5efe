package wim

import (
	"bytes"
	"context"
	"fmt"
	"github.com/pxewim/pxewim/wim/wimtest"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// captureCase is one way wimlib-imagex writes a WIM.
type captureCase struct {
	name      string
	args      []string // capture options
	chunkSize int      // for boundary sizes in the tree
	split     bool     // split the WIM into ~1 MB .swm parts
}

var captureCases = []captureCase{
	{"none", []string{"--compress=none"}, 32768, false},
	{"xpress-4k", []string{"--compress=xpress", "--chunk-size=4096"}, 4096, false},
	{"xpress-32k", []string{"--compress=xpress", "--chunk-size=32768"}, 32768, false},
	{"xpress-64k", []string{"--compress=xpress", "--chunk-size=65536"}, 65536, false},
	{"lzx-32k", []string{"--compress=lzx", "--chunk-size=32768"}, 32768, false},
	{"lzx-128k", []string{"--compress=lzx", "--chunk-size=131072"}, 131072, false},
	{"lzx-2m", []string{"--compress=lzx", "--chunk-size=2097152"}, 2097152, false},
	{"lzms-32k", []string{"--compress=lzms", "--chunk-size=32768"}, 32768, false},
	{"lzms-1m", []string{"--compress=lzms", "--chunk-size=1048576"}, 1048576, false},
	{"solid-lzms-default", []string{"--solid"}, 65536, false},
	{"solid-lzms-256k", []string{"--solid", "--solid-chunk-size=262144"}, 262144, false},
	{"solid-lzx", []string{"--solid", "--solid-compress=lzx", "--solid-chunk-size=65536"}, 65536, false},
	{"solid-xpress", []string{"--solid", "--solid-compress=xpress", "--solid-chunk-size=16384"}, 16384, false},
	{"pipable-xpress", []string{"--pipable", "--compress=xpress"}, 32768, false},
	{"pipable-lzms", []string{"--pipable", "--compress=lzms"}, 32768, false},
	{"split-lzx", []string{"--compress=lzx"}, 32768, true},
	{"split-none", []string{"--compress=none"}, 32768, true},
}

// buildWIM makes a tree and captures it; it returns the source tree, the WIM path and the
// --ref glob (empty unless split).
func buildWIM(t *testing.T, c captureCase, seed uint64) (src, wimPath, ref string) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "src")
	wimtest.MakeTree(t, src, wimtest.TreeSpec{Seed: seed, Files: 30, MaxSize: 150_000, ChunkSize: c.chunkSize})
	wimPath = filepath.Join(dir, "test.wim")
	args := append([]string{"capture", src, wimPath, "Test Image", "test description", "--unix-data"}, c.args...)
	wimtest.Wimlib(t, args...)
	if c.split {
		swm := filepath.Join(dir, "test.swm")
		wimtest.Wimlib(t, "split", wimPath, swm, "1")
		parts, _ := filepath.Glob(filepath.Join(dir, "test*.swm"))
		if len(parts) < 2 {
			t.Fatalf("split made %d parts; want several", len(parts))
		}
		return src, swm, filepath.Join(dir, "test*.swm")
	}
	return src, wimPath, ""
}

func TestWimlibCompat(t *testing.T) {
	wimtest.NeedWimlib(t)
	for i, c := range captureCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src, wimPath, ref := buildWIM(t, c, uint64(i+1))
			a, err := OpenFile(wimPath, &OpenFileOptions{Ref: ref, Cache: NewCache(8 << 20)})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			img, err := a.Image(1)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("apply", func(t *testing.T) { checkApply(t, img, wimPath, ref) })
			t.Run("dir", func(t *testing.T) { checkDir(t, img, wimPath, ref) })
			t.Run("readat", func(t *testing.T) { checkReadAt(t, img, src) })
			t.Run("verify", func(t *testing.T) {
				if err := a.Verify(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("info", func(t *testing.T) {
				infos := a.Images()
				if len(infos) != 1 || infos[0].Name != "Test Image" || infos[0].Description != "test description" {
					t.Fatalf("images = %+v", infos)
				}
				if infos[0].FileCount == 0 || infos[0].TotalBytes == 0 {
					t.Errorf("XML counts missing: %+v", infos[0])
				}
			})
		})
	}
}

func refArgs(ref string) []string {
	if ref == "" {
		return nil
	}
	return []string{"--ref=" + ref}
}

// checkApply compares Image.Apply with wimlib-imagex apply, both with --unix-data.
func checkApply(t *testing.T, img *Image, wimPath, ref string) {
	dir := t.TempDir()
	want, got := filepath.Join(dir, "wimlib"), filepath.Join(dir, "pxewim")
	wimtest.Wimlib(t, append([]string{"apply", wimPath, "1", want, "--unix-data"}, refArgs(ref)...)...)
	if err := img.Apply(context.Background(), got, &ApplyOptions{UnixData: true}); err != nil {
		t.Fatal(err)
	}
	wimtest.CompareTrees(t, want, got)
}

// checkDir compares the image's paths with wimlib-imagex dir.
func checkDir(t *testing.T, img *Image, wimPath, ref string) {
	out := wimtest.Wimlib(t, append([]string{"dir", wimPath, "1"}, refArgs(ref)...)...)
	var want, got []string
	want = append(want, strings.Split(strings.TrimSpace(out), "\n")...)
	img.Walk(func(p string, e *Entry) error {
		if p == "." {
			got = append(got, "/")
		} else {
			got = append(got, "/"+p)
		}
		return nil
	})
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("dir listings differ:\nwimlib:\n%s\npxewim:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// checkReadAt compares random ReadAt ranges and full reads of the image's files with the source
// tree, also from concurrent readers of one File.
func checkReadAt(t *testing.T, img *Image, src string) {
	rng := rand.New(rand.NewPCG(7, 7))
	var files []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(src, p)
			files = append(files, rel)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no files in source tree")
	}
	var biggest string
	var biggestSize int64
	for _, rel := range files {
		want, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(want)) > biggestSize {
			biggest, biggestSize = rel, int64(len(want))
		}
		got, err := fs.ReadFile(img, filepath.ToSlash(rel))
		if err != nil {
			t.Fatalf("ReadFile %s: %v", rel, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ReadFile %s: content differs (%d vs %d bytes)", rel, len(got), len(want))
		}
		f, err := img.Open(filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		ra := f.(io.ReaderAt)
		for k := 0; k < 5 && len(want) > 0; k++ {
			checkRange(t, rel, ra, want, rng)
		}
		f.Close()
	}
	// Concurrent readers of one file see the right bytes.
	want, _ := os.ReadFile(filepath.Join(src, biggest))
	f, err := img.Open(filepath.ToSlash(biggest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			for k := 0; k < 40; k++ {
				checkRange(t, biggest, f.(io.ReaderAt), want, r)
			}
		}(uint64(g))
	}
	wg.Wait()
}

func checkRange(t *testing.T, name string, ra io.ReaderAt, want []byte, rng *rand.Rand) {
	a := rng.IntN(len(want))
	b := a + rng.IntN(len(want)-a+1)
	buf := make([]byte, b-a)
	n, err := ra.ReadAt(buf, int64(a))
	if n != b-a || (err != nil && !(err == io.EOF && b == len(want))) {
		t.Errorf("%s: ReadAt [%d,%d): n=%d err=%v", name, a, b, n, err)
		return
	}
	if !bytes.Equal(buf, want[a:b]) {
		t.Errorf("%s: ReadAt [%d,%d) returned wrong bytes", name, a, b)
	}
}

// TestWimlibHostile runs wimlib's own odd and corrupt WIMs and expects wimlib-imagex's results
// (see testdata/wimlib-tests/README.md): corrupt ones fail verify and apply, odd ones extract
// exactly what wimlib extracts.
func TestWimlibHostile(t *testing.T) {
	dir := filepath.Join("testdata", "wimlib-tests")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("wimlib test WIMs not found at %s", dir)
	}
	cases := []struct {
		file    string
		wantErr string // substring of the verify and apply error; "" = success
	}{
		{"corrupted_file_1.wim", "SHA-1 mismatch"},
		{"corrupted_file_2.wim", "LZX chunk 0"},
		{"cyclic.wim", "cyclic"},
		{"dotdot.wim", ""},
		{"duplicate_names.wim", ""},
		{"longpaths.wim", ""},
		{"empty_dacl.wim", ""},
		{"linux_xattrs_old.wim", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			a, err := OpenFile(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			verr := a.Verify(context.Background(), nil)
			out := t.TempDir()
			target := filepath.Join(out, "pxewim")
			aerr := func() error {
				img, err := a.Image(1)
				if err != nil {
					return err
				}
				return img.Apply(context.Background(), target, nil)
			}()
			if c.wantErr != "" {
				for _, err := range []error{verr, aerr} {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Errorf("got error %v, want one containing %q", err, c.wantErr)
					}
				}
				return
			}
			if verr != nil || aerr != nil {
				t.Fatalf("verify: %v, apply: %v", verr, aerr)
			}
			wimtest.NeedWimlib(t)
			want := filepath.Join(out, "wimlib")
			wimtest.Wimlib(t, "apply", path, "1", want)
			wimtest.CompareTrees(t, want, target)
			// Nothing may land outside the target.
			ents, _ := os.ReadDir(out)
			if len(ents) != 2 {
				t.Errorf("extraction wrote outside its target: %v", ents)
			}
		})
	}
}

func TestDirMatchesOrderAndCase(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "Windows", "System32"), 0o755)
	os.WriteFile(filepath.Join(src, "Windows", "System32", "winload.efi"), []byte("efi"), 0o644)
	os.WriteFile(filepath.Join(src, "Windows", "System32", "WINLOAD.EFI"), []byte("EFI"), 0o644)
	os.WriteFile(filepath.Join(src, "Windows", "System32", "config.sys"), []byte("cfg"), 0o644)
	w := filepath.Join(dir, "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x", "--compress=none")
	a, err := OpenFile(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, _ := a.Image(1)
	for _, c := range []struct{ path, want string }{
		{"Windows/System32/winload.efi", "efi"},
		{"Windows/System32/WINLOAD.EFI", "EFI"},
		{"windows/system32/WinLoad.Efi", "EFI"}, // no exact match: first in folded order (upper sorts first)
		{"WINDOWS/SYSTEM32/CONFIG.SYS", "cfg"},
	} {
		b, err := fs.ReadFile(img, c.path)
		if err != nil || string(b) != c.want {
			t.Errorf("ReadFile(%q) = %q, %v; want %q", c.path, b, err, c.want)
		}
	}
	if _, err := fs.ReadFile(img, "Windows/nope"); !errorsIsNotExist(err) {
		t.Errorf("missing file: err = %v", err)
	}
	if err := fsTestFS(img, "Windows/System32/config.sys"); err != nil {
		t.Error(err)
	}
	_ = fmt.Sprint()
}
