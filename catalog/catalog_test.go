package catalog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim/wimtest"
)

func buildStore(t *testing.T) string {
	store := t.TempDir()
	os.MkdirAll(filepath.Join(store, "sub"), 0o755)
	testenv.BuildWinPE(t, filepath.Join(store, "setup.wim"), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"},
		{Name: "Microsoft Windows Setup (amd64)"},
	}, "--compress=LZX", "--boot")
	testenv.BuildWinPE(t, filepath.Join(store, "sub", "solid.wim"), []testenv.WinPEImage{{Name: "PE solid"}}, "--solid")
	testenv.BuildWinPE(t, filepath.Join(store, "nouefi.wim"), []testenv.WinPEImage{
		{Name: "PE no UEFI", Omit: []string{"Windows/Boot/EFI/bootmgfw.efi"}},
	}, "--compress=XPRESS")
	testenv.BuildWinPE(t, filepath.Join(store, "install.wim"), []testenv.WinPEImage{{Name: "Windows 11 Pro", InstallationType: "Client"}})
	os.WriteFile(filepath.Join(store, "broken.wim"), []byte("MSWIM\x00\x00\x00 this is not a WIM"), 0o644)
	os.WriteFile(filepath.Join(store, "readme.txt"), []byte("not an image"), 0o644)
	return store
}

func TestScan(t *testing.T) {
	store := buildStore(t)
	snap, err := Scan(context.Background(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range snap.Files {
		paths = append(paths, f.Path)
	}
	if got, want := strings.Join(paths, " "), "broken.wim install.wim nouefi.wim setup.wim sub/solid.wim"; got != want {
		t.Fatalf("files = %q, want %q", got, want)
	}
	setup, _ := snap.File("SETUP.wim")
	if len(setup.Images) != 2 || setup.Compression != "LZX" || setup.ChunkSize != 32768 || setup.Solid || setup.Transcode != "" {
		t.Errorf("setup.wim: %+v", setup)
	}
	if idx, ok := setup.DefaultPEIndex(); !ok || idx != 2 || setup.BootIndex != 2 {
		t.Errorf("setup.wim default index = %d %v (boot index %d), want 2", idx, ok, setup.BootIndex)
	}
	im := setup.Images[0]
	if im.Arch != 9 || im.ArchName != "x86_64" || !im.WindowsPE() || im.Name != "Microsoft Windows PE (amd64)" {
		t.Errorf("image 1: %+v", im)
	}
	bios, uefi := im.Boot[BIOS], im.Boot[UEFI]
	wantFiles := []struct {
		bf   BootFiles
		role Role
		path string
	}{
		{bios, RoleNBP, "Windows/Boot/PXE/pxeboot.n12"},
		{bios, RoleBootmgr, "Windows/Boot/PXE/bootmgr.exe"},
		{bios, RoleBCD, "Windows/Boot/DVD/PCAT/BCD"},
		{bios, RoleSDI, "Windows/Boot/DVD/PCAT/boot.sdi"},
		{uefi, RoleBootmgr, "Windows/Boot/EFI/bootmgfw.efi"},
		{uefi, RoleBootmgrEX, "Windows/Boot/EFI_EX/bootmgfw_EX.efi"},
		{uefi, RoleBCD, "Windows/Boot/DVD/EFI/BCD"},
		{uefi, RoleSDI, "Windows/Boot/DVD/EFI/boot.sdi"},
		{uefi, RoleSTL, "Windows/Boot/EFI/boot.stl"},
	}
	for _, w := range wantFiles {
		if got := w.bf.Files[w.role]; got != w.path {
			t.Errorf("role %s = %q, want %q", w.role, got, w.path)
		}
	}
	if len(bios.Fonts) != 2 || len(bios.Missing)+len(uefi.Missing) != 0 {
		t.Errorf("fonts %v missing %v %v", bios.Fonts, bios.Missing, uefi.Missing)
	}
	solid, _ := snap.File("sub/solid.wim")
	if !solid.Solid || solid.Compression != "LZMS" || solid.Transcode == "" {
		t.Errorf("solid.wim: solid %v codec %s transcode %q", solid.Solid, solid.Compression, solid.Transcode)
	}
	install, _ := snap.File("install.wim")
	if install.Images[0].WindowsPE() || len(install.Problems) != 0 {
		t.Errorf("install.wim counted as WinPE or has problems: %+v", install)
	}
	// Every WindowsPE image, in order; the install image is not one.
	var pe []string
	for _, r := range snap.WindowsPE() {
		pe = append(pe, r.File.Path+":"+strings.Fields(r.Image.Name)[0])
	}
	if got := strings.Join(pe, " "); got != "nouefi.wim:PE setup.wim:Microsoft setup.wim:Microsoft sub/solid.wim:PE" {
		t.Errorf("WindowsPE images: %s", got)
	}
	// Problems name the file and say what to do.
	probs := map[string]string{}
	for _, p := range snap.Problems() {
		probs[p.File] += p.String() + "\n"
	}
	for file, want := range map[string][]string{
		"broken.wim":    {"unreadable WIM", "pxewim wim verify"},
		"nouefi.wim":    {"nouefi.wim:1", "UEFI clients cannot boot it", "Windows/Boot/EFI/bootmgfw.efi", "inject"},
		"sub/solid.wim": {"LZMS", "uncompressed copy", "--compress=LZX --chunk-size=32K"},
	} {
		for _, w := range want {
			if !strings.Contains(probs[file], w) {
				t.Errorf("problems of %s lack %q:\n%s", file, w, probs[file])
			}
		}
	}
	if probs["setup.wim"] != "" {
		t.Errorf("setup.wim has problems: %s", probs["setup.wim"])
	}
}

func TestWatch(t *testing.T) {
	store := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := NewWatcher(ctx, store, nil, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, unsub := w.Subscribe()
	defer unsub()
	go w.Run(ctx)
	if n := len(w.Snapshot().Files); n != 0 {
		t.Fatalf("empty store lists %d files", n)
	}
	wait := func(what string, ok func(*Snapshot) bool) {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case s := <-ch:
				if ok(s) {
					if !ok(w.Snapshot()) {
						t.Fatalf("%s: Snapshot() lags the notification", what)
					}
					return
				}
			case <-deadline:
				t.Fatalf("%s: not seen within a minute", what)
			}
		}
	}
	// Build elsewhere and rename in, as an admin's copy tool would.
	tmp := filepath.Join(t.TempDir(), "pe.wim")
	testenv.BuildWinPE(t, tmp, []testenv.WinPEImage{{Name: "first"}})
	if err := os.Rename(tmp, filepath.Join(store, "pe.wim")); err != nil {
		t.Fatal(err)
	}
	wait("added", func(s *Snapshot) bool { return len(s.WindowsPE()) == 1 && s.WindowsPE()[0].Image.Name == "first" })

	testenv.BuildWinPE(t, tmp, []testenv.WinPEImage{{Name: "second"}, {Name: "third"}})
	future := time.Now().Add(time.Minute)
	os.Chtimes(tmp, future, future) // a different mtime even on coarse clocks
	if err := os.Rename(tmp, filepath.Join(store, "pe.wim")); err != nil {
		t.Fatal(err)
	}
	wait("changed", func(s *Snapshot) bool { return len(s.WindowsPE()) == 2 && s.WindowsPE()[1].Image.Name == "third" })

	os.Remove(filepath.Join(store, "pe.wim"))
	wait("removed", func(s *Snapshot) bool { return len(s.Files) == 0 })
}

// TestScanHostileWIMs scans wimlib's hostile test WIMs (cycles, "..", corrupt data): each
// comes back listed, as images or as a problem, and nothing panics.
func TestScanHostileWIMs(t *testing.T) {
	src := filepath.Join(wimtest.ModuleRoot(t), "wim", "testdata", "wimlib-tests") // copied from ../shared: the project never needs it
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Skipf("hostile test WIMs not found (%v)", err)
	}
	store := t.TempDir()
	n := 0
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".wim" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(store, e.Name()), b, 0o644)
		n++
	}
	snap, err := Scan(context.Background(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) != n {
		t.Fatalf("%d of %d files listed", len(snap.Files), n)
	}
	for _, f := range snap.Files {
		if len(f.Images) == 0 && len(f.Problems) == 0 {
			t.Errorf("%s: neither images nor problems", f.Path)
		}
		t.Logf("%s: %d images, problems %v", f.Path, len(f.Images), f.Problems)
	}
}
