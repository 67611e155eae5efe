package localstore

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSyslinuxDir: memdisk from the syslinux folder appears as syslinux/memdisk (any case); a
// store file of the same name is shadowed, and nothing outside the folder is reachable.
func TestSyslinuxDir(t *testing.T) {
	root, sys := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(sys, "memdisk"), []byte("MEMDISK"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(root, Options{SyslinuxDir: sys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"syslinux/memdisk", "SYSLINUX/MemDisk"} {
		f, err := s.Open(name)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != "MEMDISK" {
			t.Errorf("%s = %q", name, b)
		}
	}
	if _, err := s.Open("syslinux/../etc/passwd"); err == nil {
		t.Error("syslinux/../etc/passwd opened")
	}
	if _, err := s.Open("syslinux/missing"); err == nil {
		t.Error("syslinux/missing opened")
	}
}
