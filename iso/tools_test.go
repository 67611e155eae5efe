package iso

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pxewim/pxewim/wim"
)

// needTool skips the test when an external tool is missing.
func needTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not found: install Debian package %s", name, pkg)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// winPETree writes a WinPE-shaped tree (with sources/boot.wim built by wimlib-imagex) plus
// the awkward cases: deep directories, a directory of many files, long and non-ASCII names,
// an empty file and a file of many sectors.
func winPETree(t testing.TB) string {
	t.Helper()
	needTool(t, "wimlib-imagex", "wimtools")
	root, pe := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(pe, "Windows/Boot/EFI/bootmgfw.efi"), randBytes(1, 70_000))
	writeFile(t, filepath.Join(pe, "Windows/System32/winload.exe"), randBytes(2, 150_000))
	writeFile(t, filepath.Join(pe, "Windows/System32/config/SYSTEM"), bytes.Repeat([]byte("regf"), 5000))
	writeFile(t, filepath.Join(pe, "Windows/System32/startnet.cmd"), []byte("wpeinit\r\n"))
	if err := os.MkdirAll(filepath.Join(root, "sources"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "wimlib-imagex", "capture", pe, filepath.Join(root, "sources/boot.wim"), "WinPE", "--compress=LZX", "--boot")

	writeFile(t, filepath.Join(root, "bootmgr"), randBytes(3, 400_000))
	writeFile(t, filepath.Join(root, "boot/bcd"), randBytes(4, 16_384))
	writeFile(t, filepath.Join(root, "boot/boot.sdi"), randBytes(5, 3_170_304/8))
	writeFile(t, filepath.Join(root, "efi/boot/bootx64.efi"), randBytes(6, 1_500_000))
	writeFile(t, filepath.Join(root, "efi/microsoft/boot/bcd"), randBytes(7, 12_288))
	deep := root
	for i := 1; i <= 12; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("level%02d", i))
	}
	writeFile(t, filepath.Join(deep, "deep.txt"), []byte("at the bottom\n"))
	for i := range 300 {
		writeFile(t, filepath.Join(root, fmt.Sprintf("many/file_with_a_longish_name_%03d.txt", i)), []byte(fmt.Sprint(i)))
	}
	writeFile(t, filepath.Join(root, "a_rather_long_file_name_that_exceeds_sixty_four_characters_of_joliet.txt"), []byte("long"))
	writeFile(t, filepath.Join(root, "ünïcødé_日本語_Ωmega.txt"), []byte("non-ascii"))
	writeFile(t, filepath.Join(root, "empty.txt"), nil)
	writeFile(t, filepath.Join(root, "big.bin"), randBytes(8, 200_000))
	return root
}

// checkTree asserts that fsys holds exactly the files under src, byte for byte.
func checkTree(t *testing.T, fsys *FS, src string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, 42))
	files := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			checkNames(t, fsys, p, rel)
			return nil
		}
		files++
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checkFile(t, fsys, rel, want, rng)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d files match", fsys.Format(), files)
}

// checkNames compares a directory listing with the source directory's.
func checkNames(t *testing.T, fsys *FS, dir, rel string) {
	t.Helper()
	src, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fsys.ReadDir(rel)
	if err != nil {
		t.Fatalf("ReadDir(%q): %v", rel, err)
	}
	var a, b []string
	for _, e := range src {
		a = append(a, e.Name())
	}
	for _, e := range got {
		b = append(b, e.Name())
	}
	sort.Strings(a)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("ReadDir(%q) = %q, want %q", rel, b, a)
	}
}

// checkFile reads a file whole and at random ranges.
func checkFile(t *testing.T, fsys *FS, name string, want []byte, rng *rand.Rand) {
	t.Helper()
	got, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("ReadFile(%q): %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the source's %d", name, len(got), len(want))
	}
	f, err := fsys.OpenFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 8 {
		if len(want) == 0 {
			break
		}
		off := rng.IntN(len(want))
		n := rng.IntN(len(want)-off) + 1
		buf := make([]byte, n)
		if k, err := f.ReadAt(buf, int64(off)); k != n || (err != nil && err != io.EOF) {
			t.Fatalf("%s: ReadAt(%d, %d) = %d, %v", name, n, off, k, err)
		}
		if !bytes.Equal(buf, want[off:off+n]) {
			t.Fatalf("%s: ReadAt(%d, %d) differs", name, n, off)
		}
	}
}

// checkWIMInPlace opens sources/boot.wim inside the image with the wim package.
func checkWIMInPlace(t *testing.T, fsys *FS, src string) {
	t.Helper()
	f, err := fsys.OpenFile("SOURCES/BOOT.WIM") // case-insensitive lookup
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := wim.Open(f, f.Size(), nil)
	if err != nil {
		t.Fatalf("wim.Open on the ISO's boot.wim: %v", err)
	}
	img, err := a.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	for name, seed := range map[string]uint64{"Windows/System32/winload.exe": 2, "Windows/Boot/EFI/bootmgfw.efi": 1} {
		got, err := fs.ReadFile(img, name)
		if err != nil {
			t.Fatalf("%s in boot.wim: %v", name, err)
		}
		if want := randBytes(seed, len(got)); !bytes.Equal(got, want) || len(got) == 0 {
			t.Errorf("%s in boot.wim: bytes differ", name)
		}
	}
}

func openImage(t testing.TB, path string) *FS {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("Open(%s): %v", filepath.Base(path), err)
	}
	return fsys
}

// TestToolImages builds images of the WinPE-shaped tree with genisoimage and xorriso and
// checks every file, listing and the WIM inside.
func TestToolImages(t *testing.T) {
	src := winPETree(t)
	cases := []struct {
		name, tool, pkg string
		args            []string
		format          string
	}{
		// With both Rock Ridge and Joliet, the Rock Ridge tree is read (as Linux does).
		{"genisoimage-joliet-rr", "genisoimage", "genisoimage", []string{"-J", "-R", "-joliet-long"}, "iso9660"},
		{"genisoimage-joliet-deep", "genisoimage", "genisoimage", []string{"-J", "-D", "-joliet-long"}, "joliet"},
		{"genisoimage-rockridge", "genisoimage", "genisoimage", []string{"-R"}, "iso9660"},
		{"genisoimage-udf", "genisoimage", "genisoimage", []string{"-J", "-joliet-long", "-R", "-udf"}, "udf 1.02"},
		{"xorriso-joliet", "xorriso", "xorriso", []string{"-as", "mkisofs", "-J", "-joliet-long"}, "iso9660"}, // xorriso always writes Rock Ridge
		{"xorriso-rockridge", "xorriso", "xorriso", []string{"-as", "mkisofs", "-R"}, "iso9660"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			needTool(t, c.tool, c.pkg)
			out := filepath.Join(t.TempDir(), "test.iso")
			args := append(append([]string{}, c.args...), "-input-charset", "utf-8", "-V", "PXEWIM_TEST", "-o", out, src)
			if c.tool == "xorriso" {
				args = append(append([]string{}, c.args...), "-V", "PXEWIM_TEST", "-o", out, src)
			}
			run(t, c.tool, args...)
			fsys := openImage(t, out)
			if fsys.Format() != c.format {
				t.Errorf("Format() = %q, want %q", fsys.Format(), c.format)
			}
			if fsys.VolumeLabel() != "PXEWIM_TEST" {
				t.Errorf("VolumeLabel() = %q", fsys.VolumeLabel())
			}
			checkTree(t, fsys, src)
			checkWIMInPlace(t, fsys, src)
			bootmgr, err := os.ReadFile(filepath.Join(src, "bootmgr"))
			if err != nil {
				t.Fatal(err)
			}
			checkServeContent(t, fsys, "BOOTMGR", bootmgr)
			checkModTime(t, fsys, src, "efi/boot/bootx64.efi")
		})
	}
}

// TestLargeUDFFile has genisoimage write a file over 1 GiB, which UDF must split into
// several allocation descriptors (each under 2^30 bytes), and reads across the seams.
func TestLargeUDFFile(t *testing.T) {
	needTool(t, "genisoimage", "genisoimage")
	if testing.Short() {
		t.Skip("writes a 1.1 GiB image; skipped with -short")
	}
	src := t.TempDir()
	large := filepath.Join(src, "large.bin")
	f, err := os.Create(large)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1100 << 20
	marks := []int64{0, 1<<30 - 2048 - 100, 1<<30 - 100, 1 << 30, size - 70_000}
	for i, off := range marks {
		if _, err := f.WriteAt(randBytes(uint64(100+i), 70_000), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(t.TempDir(), "large.iso")
	run(t, "genisoimage", "-quiet", "-udf", "-J", "-R", "-o", out, src)
	fsys := openImage(t, out)
	if fsys.Format() != "udf 1.02" {
		t.Fatalf("Format() = %q", fsys.Format())
	}
	isoFile, err := fsys.OpenFile("LARGE.BIN")
	if err != nil {
		t.Fatal(err)
	}
	if isoFile.Size() != size {
		t.Fatalf("size %d, want %d", isoFile.Size(), int64(size))
	}
	srcFile, err := os.Open(large)
	if err != nil {
		t.Fatal(err)
	}
	defer srcFile.Close()
	for _, off := range append(marks, 1<<29, 1<<30-2048) {
		want, got := make([]byte, 70_000), make([]byte, 70_000)
		n, _ := srcFile.ReadAt(want, off)
		if k, err := isoFile.ReadAt(got, off); k != n || (err != nil && err != io.EOF) || !bytes.Equal(got[:k], want[:n]) {
			t.Errorf("ReadAt(%d) = %d, %v (equal %v)", off, k, err, bytes.Equal(got[:k], want[:n]))
		}
	}
	if n := len(fsys.root.child("large.bin").ext); n < 2 {
		t.Errorf("large.bin has %d extents; expected genisoimage to split it", n)
	}
}

// checkModTime compares a file's modification time with its source's (image timestamps
// keep whole seconds at best).
func checkModTime(t *testing.T, fsys *FS, src, name string) {
	t.Helper()
	want, err := os.Stat(filepath.Join(src, name))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.ModTime().Sub(want.ModTime()); d < -time.Second || d > time.Second {
		t.Errorf("%s: ModTime %v, source %v", name, got.ModTime(), want.ModTime())
	}
}

// TestDamagedToolImages truncates and scribbles over a real genisoimage UDF/Joliet image:
// Open must fail cleanly or give a tree whose files read without panics.
func TestDamagedToolImages(t *testing.T) {
	needTool(t, "genisoimage", "genisoimage")
	src := winPETree(t)
	out := filepath.Join(t.TempDir(), "test.iso")
	run(t, "genisoimage", "-quiet", "-J", "-R", "-udf", "-joliet-long", "-o", out, src)
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, frac := range []int{1, 10, 50, 90} { // the last few percent are padding
		cut := img[:len(img)*frac/100]
		if _, err := Open(bytes.NewReader(cut), int64(len(cut))); err == nil {
			t.Errorf("image cut to %d%% opened without error", frac)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	opened := 0
	for range 300 {
		bad := bytes.Clone(img)
		for range 1 + rng.IntN(8) {
			// Aim at the first 600 KiB, where descriptors and directories live.
			bad[rng.IntN(min(len(bad), 600<<10))] = byte(rng.Uint32())
		}
		fsys, err := Open(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			continue
		}
		opened++
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				_, _ = fs.ReadFile(fsys, p)
			}
			return nil
		})
	}
	t.Logf("%d of 300 scribbled images still opened", opened)
}

// TestFSConformance runs testing/fstest over small images of each tree kind.
func TestFSConformance(t *testing.T) {
	needTool(t, "genisoimage", "genisoimage")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "boot/bcd"), randBytes(20, 16_384))
	writeFile(t, filepath.Join(src, "efi/boot/bootx64.efi"), randBytes(21, 100_000))
	writeFile(t, filepath.Join(src, "Ωmega.txt"), []byte("omega"))
	writeFile(t, filepath.Join(src, "empty.txt"), nil)
	for _, flags := range [][]string{{"-udf"}, {"-J"}, {"-R"}} {
		out := filepath.Join(t.TempDir(), "small.iso")
		run(t, "genisoimage", append(append([]string{"-quiet", "-input-charset", "utf-8"}, flags...), "-o", out, src)...)
		fsys := openImage(t, out)
		if err := fstest.TestFS(fsys, "boot/bcd", "efi/boot/bootx64.efi", "Ωmega.txt", "empty.txt"); err != nil {
			t.Errorf("%s: %v", fsys.Format(), err)
		}
	}
}
