package catalog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// isoTool is one ISO maker the tests build images with.
type isoTool struct {
	name string
	argv func(out, root string) []string
}

var isoTools = []isoTool{
	// ISO 9660 + Joliet + UDF 1.02 (the UDF tree is the one package iso reads).
	{"genisoimage-udf", func(out, root string) []string {
		return []string{"genisoimage", "-quiet", "-udf", "-J", "-o", out, root}
	}},
	// ISO 9660 + Rock Ridge + Joliet, as xorriso writes Linux and rescue ISOs.
	{"xorriso", func(out, root string) []string {
		return []string{"xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", out, root}
	}},
}

// buildISO runs the tool on root, writing out; it skips when the tool is missing.
func buildISO(t *testing.T, tool isoTool, out, root string) {
	t.Helper()
	argv := tool.argv(out, root)
	if _, err := exec.LookPath(argv[0]); err != nil {
		t.Skipf("%s not found: install genisoimage and xorriso", argv[0])
	}
	if b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, b)
	}
}

// winISORoot lays out Windows Setup media: sources/boot.wim (two WindowsPE images, boot index
// 2, as Windows Setup's boot.wim), sources/install.wim (an install image), boot/ and
// efi/microsoft/boot/ files. sourcesDir and wimName set the spelling (any case must work).
func winISORoot(t *testing.T, sourcesDir, wimName string) string {
	root := t.TempDir()
	src := filepath.Join(root, sourcesDir)
	for _, d := range []string{src, filepath.Join(root, "boot"), filepath.Join(root, "efi", "microsoft", "boot")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testenv.BuildWinPE(t, filepath.Join(src, wimName), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"},
		{Name: "Microsoft Windows Setup (amd64)"},
	}, "--compress=LZX", "--boot")
	testenv.BuildWinPE(t, filepath.Join(src, "install.wim"), []testenv.WinPEImage{{Name: "Windows 11 Pro", InstallationType: "Client"}})
	os.WriteFile(filepath.Join(root, "boot", "boot.sdi"), []byte("iso boot.sdi"), 0o644)
	os.WriteFile(filepath.Join(root, "efi", "microsoft", "boot", "bcd"), []byte("iso efi BCD"), 0o644)
	return root
}

// TestScanISO: Windows Setup ISOs made by genisoimage (UDF) and xorriso (Rock Ridge, Joliet),
// sources folder and WIM name in any case: the catalog lists the ISO and its WIMs as files of
// their own, with the same facts as a bare WIM (images, WindowsPE, default index 2, boot
// files); a rescue ISO without WIMs is listed with none, and a junk ISO as a problem.
func TestScanISO(t *testing.T) {
	cases := []struct {
		tool              isoTool
		sourcesDir, wimNm string
	}{
		{isoTools[0], "sources", "boot.wim"},
		{isoTools[1], "SOURCES", "Boot.WIM"},
	}
	for _, c := range cases {
		t.Run(c.tool.name, func(t *testing.T) {
			store := t.TempDir()
			buildISO(t, c.tool, filepath.Join(store, "win.iso"), winISORoot(t, c.sourcesDir, c.wimNm))
			rescue := t.TempDir()
			os.WriteFile(filepath.Join(rescue, "vmlinuz"), []byte("kernel"), 0o644)
			os.MkdirAll(filepath.Join(store, "isos"), 0o755)
			buildISO(t, c.tool, filepath.Join(store, "isos", "rescue.iso"), rescue)
			os.WriteFile(filepath.Join(store, "junk.iso"), []byte(strings.Repeat("not an ISO ", 10000)), 0o644)

			start := time.Now()
			snap, err := Scan(context.Background(), store, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("scan of 3 ISOs (2 WIMs inside): %v", time.Since(start))
			bootWIM := "win.iso/" + c.sourcesDir + "/" + c.wimNm
			var got []string
			for _, f := range snap.Files {
				got = append(got, f.Kind+":"+f.Path+"<"+f.In)
			}
			want := []string{"iso:isos/rescue.iso<", "iso:junk.iso<", "iso:win.iso<",
				"wim:" + bootWIM + "<win.iso", "wim:win.iso/" + c.sourcesDir + "/install.wim<win.iso"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("files:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			f, ok := snap.File("WIN.ISO/sources/boot.wim")
			if !ok {
				t.Fatal("the ISO's boot.wim is not found without regard to case")
			}
			if idx, ok := f.DefaultPEIndex(); !ok || idx != 2 || len(f.Images) != 2 || f.Compression != "LZX" || len(f.Problems) != 0 {
				t.Errorf("boot.wim: default index %d %v, %d images, %s, problems %v", idx, ok, len(f.Images), f.Compression, f.Problems)
			}
			for _, fw := range []Firmware{BIOS, UEFI} {
				bf := f.Images[1].Boot[fw]
				if len(bf.Missing) != 0 || !bf.Has(RoleBootmgr) || !bf.Has(RoleSDI) || !bf.Has(RoleBCD) {
					t.Errorf("%s boot files of image 2: %+v", fw, bf)
				}
			}
			var pe []string
			for _, r := range snap.WindowsPE() {
				pe = append(pe, r.File.Path+":"+r.Image.Name)
			}
			if want := bootWIM + ":Microsoft Windows PE (amd64) " + bootWIM + ":Microsoft Windows Setup (amd64)"; strings.Join(pe, " ") != want {
				t.Errorf("WindowsPE images: %q, want %q", strings.Join(pe, " "), want)
			}
			junk, _ := snap.File("junk.iso")
			if len(junk.Problems) != 1 || !strings.Contains(junk.Problems[0].String(), "junk.iso: unreadable ISO") {
				t.Errorf("junk.iso problems: %v", junk.Problems)
			}
			for _, p := range []string{"win.iso", "isos/rescue.iso"} {
				if f, _ := snap.File(p); len(f.Problems) != 0 {
					t.Errorf("%s: problems %v", p, f.Problems)
				}
			}
		})
	}
}

// TestWatchISO: an ISO dropped into a watched store brings its WIM's images; replacing the
// ISO rescans the WIMs inside it; removing it removes them.
func TestWatchISO(t *testing.T) {
	store := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := NewWatcher(ctx, store, nil, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, unsub := w.Subscribe()
	defer unsub()
	go w.Run(ctx)
	build := func(names ...string) string {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "sources"), 0o755)
		var imgs []testenv.WinPEImage
		for _, n := range names {
			imgs = append(imgs, testenv.WinPEImage{Name: n})
		}
		testenv.BuildWinPE(t, filepath.Join(root, "sources", "boot.wim"), imgs)
		out := filepath.Join(t.TempDir(), "pe.iso")
		buildISO(t, isoTools[0], out, root)
		return out
	}
	names := func(s *Snapshot) string {
		var n []string
		for _, r := range s.WindowsPE() {
			n = append(n, r.File.Path+":"+r.Image.Name)
		}
		return strings.Join(n, " ")
	}
	waitSnap(t, ch, w, "no images", func(s *Snapshot) bool { return true })
	if err := os.Rename(build("first"), filepath.Join(store, "pe.iso")); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, ch, w, "ISO added", func(s *Snapshot) bool { return names(s) == "pe.iso/sources/boot.wim:first" })
	next := build("second", "third")
	future := time.Now().Add(time.Minute)
	os.Chtimes(next, future, future)
	if err := os.Rename(next, filepath.Join(store, "pe.iso")); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, ch, w, "ISO replaced", func(s *Snapshot) bool {
		return names(s) == "pe.iso/sources/boot.wim:second pe.iso/sources/boot.wim:third"
	})
	os.Remove(filepath.Join(store, "pe.iso"))
	waitSnap(t, ch, w, "ISO removed", func(s *Snapshot) bool { return len(s.Files) == 0 })
}

// waitSnap waits up to 10 s for a published snapshot that satisfies ok (the first call also
// accepts the current one).
func waitSnap(t *testing.T, ch <-chan *Snapshot, w *Watcher, what string, ok func(*Snapshot) bool) {
	t.Helper()
	if ok(w.Snapshot()) && what == "no images" {
		return
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: not seen within a minute (now %d files)", what, len(w.Snapshot().Files))
		}
	}
}

// mediaOmit are the boot files a WinPE rescue build leaves out of its WIM and keeps only in the
// ISO's own boot folders.
var mediaOmit = []string{"Windows/Boot/DVD/PCAT/BCD", "Windows/Boot/DVD/PCAT/boot.sdi", "Windows/Boot/DVD/EFI/BCD",
	"Windows/Boot/DVD/EFI/boot.sdi", "Windows/Boot/EFI/bootmgfw.efi", "Windows/Boot/Fonts/segmono_boot.ttf", "Windows/Boot/Fonts/wgl4_boot.ttf"}

// TestScanISOMedia: a WIM without its DVD boot files inside an ISO that has them in boot/ and
// efi/: the catalog finds every boot file, records which come from the ISO (Image.Media) and
// notes it as information, not a problem; the same WIM bare in the store misses them.
func TestScanISOMedia(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"sources", "boot/fonts", "efi/microsoft/boot", "efi/boot"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	testenv.BuildWinPE(t, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{{Name: "Rescue PE", Omit: mediaOmit}})
	for p, b := range map[string]string{"boot/boot.sdi": "sdi", "boot/bcd": "bios bcd", "efi/microsoft/boot/bcd": "uefi bcd",
		"efi/boot/bootx64.efi": "bootx64", "boot/fonts/wgl4_boot.ttf": "font"} {
		os.WriteFile(filepath.Join(root, filepath.FromSlash(p)), []byte(b), 0o644)
	}
	store := t.TempDir()
	buildISO(t, isoTools[0], filepath.Join(store, "rescue.iso"), root)
	b, _ := os.ReadFile(filepath.Join(root, "sources", "boot.wim"))
	os.WriteFile(filepath.Join(store, "bare.wim"), b, 0o644)
	snap, err := Scan(context.Background(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := snap.File("rescue.iso/sources/boot.wim")
	if !ok {
		t.Fatal("the ISO's WIM is not listed")
	}
	im := f.Images[0]
	want := map[string]string{
		"Windows/Boot/DVD/PCAT/boot.sdi":   "boot/boot.sdi",
		"Windows/Boot/DVD/EFI/boot.sdi":    "boot/boot.sdi",
		"Windows/Boot/DVD/PCAT/BCD":        "boot/bcd",
		"Windows/Boot/DVD/EFI/BCD":         "efi/microsoft/boot/bcd",
		"Windows/Boot/EFI/bootmgfw.efi":    "efi/boot/bootx64.efi",
		"Windows/Boot/Fonts/wgl4_boot.ttf": "boot/fonts/wgl4_boot.ttf",
	}
	if fmt.Sprint(im.Media) != fmt.Sprint(want) {
		t.Errorf("media files:\n%v\nwant\n%v", im.Media, want)
	}
	for _, fw := range []Firmware{BIOS, UEFI} {
		if bf := im.Boot[fw]; len(bf.Missing) != 0 || !bf.Has(RoleBCD) || len(bf.Fonts) != 1 {
			t.Errorf("%s: %+v", fw, bf)
		}
	}
	if len(f.Problems) != 1 || !f.Problems[0].Info || !strings.Contains(f.Problems[0].String(), "boot/boot.sdi as Windows/Boot/DVD/PCAT/boot.sdi") {
		t.Errorf("problems: %v", f.Problems)
	}
	bare, _ := snap.File("bare.wim")
	if len(bare.Images[0].Media) != 0 || len(bare.Images[0].Boot[UEFI].Missing) == 0 {
		t.Errorf("bare WIM: media %v, UEFI missing %v", bare.Images[0].Media, bare.Images[0].Boot[UEFI].Missing)
	}
}
