package localstore

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestISOPaths: a UDF ISO made by genisoimage holding sources/boot.wim (wimlib-imagex) is a
// folder of the store: its files, the WIM itself, and files inside the WIM's image read
// byte-exact in any case; the WIM inside stays open (one entry) across reads.
func TestISOPaths(t *testing.T) {
	for _, tool := range []string{"genisoimage", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install genisoimage and wimtools", tool)
		}
	}
	dir := t.TempDir()
	pe := filepath.Join(dir, "pe")
	bootmgr := bytes.Repeat([]byte("bootmgr.exe bytes "), 5000)
	os.MkdirAll(filepath.Join(pe, "Windows", "Boot", "PXE"), 0o755)
	os.WriteFile(filepath.Join(pe, "Windows", "Boot", "PXE", "bootmgr.exe"), bootmgr, 0o644)
	isoRoot := filepath.Join(dir, "isoroot")
	os.MkdirAll(filepath.Join(isoRoot, "sources"), 0o755)
	os.MkdirAll(filepath.Join(isoRoot, "boot"), 0o755)
	os.WriteFile(filepath.Join(isoRoot, "boot", "boot.sdi"), []byte("sdi"), 0o644)
	wimPath := filepath.Join(isoRoot, "sources", "boot.wim")
	if out, err := exec.Command("wimlib-imagex", "capture", pe, wimPath, "WinPE", "--compress=LZX").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex: %v\n%s", err, out)
	}
	store := filepath.Join(dir, "store")
	os.MkdirAll(store, 0o755)
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "win.iso"), isoRoot).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	wimBytes, _ := os.ReadFile(wimPath)
	local, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// NewFS over a file system with nothing but Open (as a remote store may be).
	for _, s := range []*Store{local, NewFS(onlyOpen{os.DirFS(store)}, "onlyopen", Options{})} {
		t.Run(s.Root(), func(t *testing.T) { checkISOStore(t, s, wimBytes, bootmgr) })
	}
}

type onlyOpen struct{ fsys fs.FS }

func (o onlyOpen) Open(name string) (fs.File, error) { return o.fsys.Open(name) }

func checkISOStore(t *testing.T, s *Store, wimBytes, bootmgr []byte) {
	defer s.Close()
	for _, c := range []struct {
		name string
		want []byte
	}{
		{"win.iso/boot/boot.sdi", []byte("sdi")},
		{"WIN.ISO/Sources/BOOT.WIM", wimBytes},
		{"win.iso/sources/boot.wim:1/Windows/Boot/PXE/bootmgr.exe", bootmgr},
		{"Win.iso/SOURCES/boot.wim:1/windows/boot/pxe/BOOTMGR.EXE", bootmgr},
	} {
		b, err := fs.ReadFile(s, c.name)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !bytes.Equal(b, c.want) {
			t.Errorf("%s: %d bytes, want %d", c.name, len(b), len(c.want))
		}
	}
	if n := s.OpenWIMs(); n != 1 {
		t.Errorf("%d WIMs open, want 1 (the one inside the ISO, shared)", n)
	}
	f, err := s.Open("win.iso/sources/boot.wim:1/Windows/Boot/PXE/bootmgr.exe")
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 100)
	if _, err := f.(io.ReaderAt).ReadAt(part, 50000); err != nil || !bytes.Equal(part, bootmgr[50000:50100]) {
		t.Errorf("ReadAt inside the ISO's WIM: %v", err)
	}
	f.Close()
	for _, bad := range []string{"win.iso/missing", "win.iso/sources/boot.wim:2/x", "win.iso/../x", "win.iso/boot/boot.sdi/x"} {
		if _, err := s.Open(bad); err == nil {
			t.Errorf("%s opened", bad)
		}
	}
}

// FuzzStoreISOPaths: any name through a store holding a real ISO (genisoimage) and a junk
// one: no panic, and whatever opens is the README inside the real ISO, an ISO, or a folder.
func FuzzStoreISOPaths(f *testing.F) {
	if _, err := exec.LookPath("genisoimage"); err != nil {
		f.Skip("genisoimage not found: install genisoimage")
	}
	root := f.TempDir()
	src := filepath.Join(f.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "README.TXT"), []byte("inside"), 0o644)
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(root, "good.iso"), src).CombinedOutput(); err != nil {
		f.Fatalf("genisoimage: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(root, "junk.iso"), bytes.Repeat([]byte{0xff}, 40000), 0o644)
	s, err := New(root, Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"good.iso/sub/readme.txt", "good.iso/sub", "junk.iso/x", "good.iso/../good.iso",
		"good.iso/sub/x.wim:1/a", "GOOD.ISO/SUB/README.TXT/x", "good.iso/good.iso/x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		file, err := s.Open(name)
		if err != nil {
			return
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.ToLower(st.Name()); !st.IsDir() && n != "readme.txt" && !strings.HasSuffix(n, ".iso") {
			t.Errorf("Open(%q) reached %q", name, st.Name())
		}
	})
}

// TestISOTreeCache: an ISO's tree is read once and shared by every file opened inside it; an
// ISO replaced on disk is read again (new bytes served, a file opened before keeps the old
// ones); the cache is bounded and Close empties it.
func TestISOTreeCache(t *testing.T) {
	if _, err := exec.LookPath("genisoimage"); err != nil {
		t.Skip("genisoimage not found: install genisoimage")
	}
	store := t.TempDir()
	mkISO := func(dst, content string) {
		src := t.TempDir()
		os.MkdirAll(filepath.Join(src, "boot"), 0o755)
		os.WriteFile(filepath.Join(src, "boot", "boot.sdi"), []byte(content), 0o644)
		if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", dst, src).CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
	}
	mkISO(filepath.Join(store, "a.iso"), "first sdi")
	s, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if b, err := fs.ReadFile(s, "A.ISO/boot/BOOT.SDI"); err != nil || string(b) != "first sdi" {
			t.Fatalf("read: %q %v", b, err)
		}
	}
	if n := s.OpenISOs(); n != 1 {
		t.Errorf("%d ISO trees cached after 5 reads of one ISO, want 1", n)
	}
	held, err := s.Open("a.iso/boot/boot.sdi")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "a.iso")
	mkISO(tmp, "second, longer sdi")
	future := time.Now().Add(time.Minute)
	os.Chtimes(tmp, future, future)
	if err := os.Rename(tmp, filepath.Join(store, "a.iso")); err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(s, "a.iso/boot/boot.sdi"); err != nil || string(b) != "second, longer sdi" {
		t.Errorf("after replacing the ISO: %q %v", b, err)
	}
	if b, err := io.ReadAll(held); err != nil || string(b) != "first sdi" {
		t.Errorf("file opened before the replacement: %q %v", b, err)
	}
	held.Close()
	for i := range maxOpenISOs + 3 {
		mkISO(filepath.Join(store, fmt.Sprintf("n%d.iso", i)), "n")
		if _, err := fs.ReadFile(s, fmt.Sprintf("n%d.iso/boot/boot.sdi", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.OpenISOs(); n != maxOpenISOs {
		t.Errorf("%d ISO trees cached, want the bound %d", n, maxOpenISOs)
	}
	s.Close()
	if n := s.OpenISOs(); n != 0 {
		t.Errorf("%d ISO trees cached after Close", n)
	}
	if b, err := fs.ReadFile(s, "a.iso/boot/boot.sdi"); err != nil || s.OpenISOs() != 0 {
		t.Errorf("read after Close: %q %v, %d cached", b, err, s.OpenISOs())
	}
}

// TestCheckISOWIM: the CheckISOWIM hook sees every WIM inside an ISO before it is read, as a
// file or as a WIM, with the ISO's version; its error refuses the open; other files inside
// the ISO are not checked.
func TestCheckISOWIM(t *testing.T) {
	for _, tool := range []string{"genisoimage", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install genisoimage and wimtools", tool)
		}
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "pe", "Windows"), 0o755)
	os.WriteFile(filepath.Join(src, "pe", "Windows", "x.txt"), []byte("in the WIM"), 0o644)
	iso := t.TempDir()
	os.MkdirAll(filepath.Join(iso, "sources"), 0o755)
	os.WriteFile(filepath.Join(iso, "readme.txt"), []byte("readme"), 0o644)
	if out, err := exec.Command("wimlib-imagex", "capture", filepath.Join(src, "pe"), filepath.Join(iso, "sources", "boot.wim"), "PE").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex: %v\n%s", err, out)
	}
	store := t.TempDir()
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "win.iso"), iso).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	var calls []string
	refuse := false
	s, err := New(store, Options{CheckISOWIM: func(name, version string, r io.ReaderAt, size int64) error {
		magic := make([]byte, 5)
		r.ReadAt(magic, 0)
		calls = append(calls, fmt.Sprintf("%s %s %d", name, magic, size))
		if version == "" {
			t.Error("empty version")
		}
		if refuse {
			return fmt.Errorf("blob SHA-1 mismatch")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"win.iso/readme.txt", "win.iso/SOURCES/boot.wim", "win.iso/sources/boot.wim:1/Windows/x.txt"} {
		if _, err := fs.ReadFile(s, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "win.iso/SOURCES/boot.wim MSWIM") || !strings.HasPrefix(calls[1], "win.iso/sources/boot.wim MSWIM") {
		t.Errorf("checks: %q", calls)
	}
	refuse = true
	for _, name := range []string{"win.iso/sources/boot.wim", "win.iso/sources/boot.wim:1/Windows/x.txt"} {
		s.Close() // drop the WIM kept open, so the next read opens it again
		if _, err := fs.ReadFile(s, name); err == nil || !strings.Contains(err.Error(), "blob SHA-1 mismatch") {
			t.Errorf("%s with a refusing check: %v", name, err)
		}
	}
}
