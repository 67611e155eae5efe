package localstore

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// makeTree writes files (name -> content) under dir.
func makeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// captureWIM builds a WIM with wimlib-imagex (the reference implementation) from src.
func captureWIM(t *testing.T, src, dst, compress string) {
	t.Helper()
	exe, err := exec.LookPath("wimlib-imagex")
	if err != nil {
		t.Skip("wimlib-imagex not found: install wimtools")
	}
	out, err := exec.Command(exe, "capture", src, dst, "tools", "--compress="+compress).CombinedOutput()
	if err != nil {
		t.Fatalf("wimlib-imagex capture: %v\n%s", err, out)
	}
}

func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	makeTree(t, root, map[string]string{
		"Boot/BCD":         "bcd-bytes",
		"isos/Rescue.iso":  "iso-bytes",
		"ipxe/local.txt":   "store's own ipxe folder",
		"notes/readme.txt": "hello",
	})
	ipxeDir := t.TempDir()
	makeTree(t, ipxeDir, map[string]string{"undionly.kpxe": "kpxe-bytes", "snponly.efi": "efi-bytes"})
	src := t.TempDir()
	kernel := bytes.Repeat([]byte("vmlinuz!"), 40000) // several LZX chunks
	makeTree(t, src, map[string]string{"boot/vmlinuz": string(kernel), "boot/initrd": "initrd-bytes"})
	captureWIM(t, src, filepath.Join(root, "tools.wim"), "LZX")
	s, err := New(root, Options{IPXEDir: ipxeDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

func readAll(t *testing.T, fsys fs.FS, name string) ([]byte, error) {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func TestStoreOpen(t *testing.T) {
	s, _ := newTestStore(t)
	kernel := bytes.Repeat([]byte("vmlinuz!"), 40000)
	tests := []struct{ name, want string }{
		{"Boot/BCD", "bcd-bytes"},
		{"boot/bcd", "bcd-bytes"},
		{"BOOT/Bcd", "bcd-bytes"},
		{"isos/rescue.ISO", "iso-bytes"},
		{"ipxe/undionly.kpxe", "kpxe-bytes"},
		{"IPXE/SNPONLY.EFI", "efi-bytes"},
		{"ipxe/local.txt", "store's own ipxe folder"},
		{"tools.wim:1/boot/initrd", "initrd-bytes"},
		{"TOOLS.WIM:1/BOOT/INITRD", "initrd-bytes"},
		{"tools.wim:1/boot/vmlinuz", string(kernel)},
	}
	for _, tt := range tests {
		got, err := readAll(t, s, tt.name)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("%s: %d bytes, want %d", tt.name, len(got), len(tt.want))
		}
	}
	if err := fstestReadAt(s, "tools.wim:1/boot/vmlinuz", kernel); err != nil {
		t.Error(err)
	}
}

// fstestReadAt checks that a WIM file is an io.ReaderAt + Seeker with the stream's SHA-1.
func fstestReadAt(fsys fs.FS, name string, want []byte) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return errors.New(name + ": not an io.ReaderAt")
	}
	if _, ok := f.(io.Seeker); !ok {
		return errors.New(name + ": not an io.Seeker")
	}
	buf := make([]byte, 1000)
	if _, err := ra.ReadAt(buf, 200000); err != nil || !bytes.Equal(buf, want[200000:201000]) {
		return errors.New(name + ": ReadAt in the middle gave wrong bytes")
	}
	h, ok := f.(interface{ Hash() [20]byte })
	if !ok || h.Hash() != sha1.Sum(want) {
		return errors.New(name + ": Hash() missing or wrong")
	}
	return nil
}

func TestStoreHostilePaths(t *testing.T) {
	s, _ := newTestStore(t)
	bad := []string{
		"../etc/passwd", "/etc/passwd", "Boot/../../etc/passwd", "ipxe/../../etc/passwd",
		"tools.wim:1/../../../etc/passwd", "tools.wim:0/boot/initrd", "tools.wim:2/boot/initrd",
		"tools.wim:999999999/boot/initrd", "nope.wim:1/boot/initrd", "Boot/BCD:1/x",
		"notes/readme.txt.wim:1/x", "", "a\x00b", "tools.wim:1/boot/nothing", "ipxe/nothing",
		"isos/Rescue.iso/x", `..\..\etc\passwd`,
	}
	for _, name := range bad {
		f, err := s.Open(name)
		if err == nil {
			f.Close()
			t.Errorf("Open(%q) succeeded", name)
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q): %v is neither not-exist nor invalid", name, err)
		}
	}
}

func TestStoreWIMReplacedWhileReading(t *testing.T) {
	s, root := newTestStore(t)
	old, err := s.Open("tools.wim:1/boot/initrd")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// The admin replaces the WIM (new file, rename over the old one).
	src := t.TempDir()
	makeTree(t, src, map[string]string{"boot/initrd": "new-initrd", "boot/vmlinuz": "k"})
	tmp := filepath.Join(t.TempDir(), "new.wim")
	captureWIM(t, src, tmp, "XPRESS")
	time.Sleep(10 * time.Millisecond) // a different mtime even on coarse clocks
	data, _ := os.ReadFile(tmp)
	if err := os.WriteFile(filepath.Join(root, "tools.wim.tmp"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "tools.wim.tmp"), filepath.Join(root, "tools.wim")); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s, "tools.wim:1/boot/initrd")
	if err != nil || string(got) != "new-initrd" {
		t.Errorf("after replace: %q, %v", got, err)
	}
	// The reader that opened the old WIM still reads the old content.
	buf := make([]byte, 12)
	if n, err := old.(io.ReaderAt).ReadAt(buf, 0); string(buf[:n]) != "initrd-bytes" {
		t.Errorf("old reader: %q, %v", buf[:n], err)
	}
}

func TestStoreConcurrentAndBounded(t *testing.T) {
	s, root := newTestStore(t)
	for _, n := range []string{"a.wim", "b.wim", "c.wim"} {
		data, _ := os.ReadFile(filepath.Join(root, "tools.wim"))
		os.WriteFile(filepath.Join(root, n), data, 0o644)
	}
	s.maxOpen = 2
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			name := []string{"a.wim", "b.wim", "c.wim", "tools.wim"}[i%4] + ":1/boot/initrd"
			got, err := readAll(t, s, name)
			if err != nil || string(got) != "initrd-bytes" {
				errs <- errors.New(name + ": " + string(got))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.OpenWIMs(); n > 2 {
		t.Errorf("%d WIMs open, bound is 2", n)
	}
}

func FuzzStoreOpen(f *testing.F) {
	root := f.TempDir()
	os.MkdirAll(filepath.Join(root, "Boot"), 0o755)
	os.WriteFile(filepath.Join(root, "Boot", "BCD"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "bad.wim"), []byte("not a wim at all"), 0o644)
	s, err := New(root, Options{IPXEDir: root})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"boot/bcd", "bad.wim:1/x", "ipxe/Boot/BCD", "../x", "a.wim:1", "BOOT/BCD/x"} {
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
		// Only the two files under root exist; anything else opened would be an escape.
		if !st.IsDir() && st.Name() != "BCD" && st.Name() != "bad.wim" {
			t.Errorf("Open(%q) reached %q", name, st.Name())
		}
	})
}

func TestStoreCloseWhileReading(t *testing.T) {
	s, _ := newTestStore(t)
	f, err := s.Open("tools.wim:1/boot/initrd")
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // a reload replaced the store while a transfer runs
	buf := make([]byte, 12)
	if n, err := f.(io.ReaderAt).ReadAt(buf, 0); string(buf[:n]) != "initrd-bytes" {
		t.Errorf("read after Close: %q, %v", buf[:n], err)
	}
	f.Close()
	// A request that loaded the old store just before the swap still gets its file, and the
	// store keeps nothing open afterwards.
	got, err := readAll(t, s, "tools.wim:1/boot/initrd")
	if err != nil || string(got) != "initrd-bytes" {
		t.Errorf("open after Close: %q, %v", got, err)
	}
	if n := s.OpenWIMs(); n != 0 {
		t.Errorf("%d WIMs still open after Close", n)
	}
}
