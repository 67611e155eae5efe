package localstore

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
)

// BenchmarkISOStat measures what every request for a winpe entry whose WIM sits in an ISO
// costs before any byte moves: a Stat of "win.iso/sources/boot.wim" (the entry checks that
// its WIM has not changed), on an ISO shaped like Windows Setup media (1200 files in 60
// folders, UDF by genisoimage).
func BenchmarkISOStat(b *testing.B) {
	if _, err := exec.LookPath("genisoimage"); err != nil {
		b.Skip("genisoimage not found: install genisoimage")
	}
	root := b.TempDir()
	for d := range 60 {
		dir := filepath.Join(root, "sources", fmt.Sprintf("dir%02d", d))
		os.MkdirAll(dir, 0o755)
		for f := range 20 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%02d.dll", f)), []byte("x"), 0o644)
		}
	}
	testenv.BuildWinPE(b, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{{}})
	store := b.TempDir()
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "win.iso"), root).CombinedOutput(); err != nil {
		b.Fatalf("genisoimage: %v\n%s", err, out)
	}
	s, err := New(store, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"win.iso/sources/boot.wim", "win.iso/sources/boot.wim:1/Windows/Boot/PXE/bootmgr.exe"} {
		b.Run(filepath.Base(name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fs.Stat(s, name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
