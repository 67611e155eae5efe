package winpe_test

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/winpe"
)

// variantStore is a store whose setup.wim image 1 holds files small files besides the boot
// files (a Setup image's metadata is what a variant re-synthesises).
func variantStore(t testing.TB, files int) *localstore.Store {
	t.Helper()
	dir := t.TempDir()
	extra := map[string][]byte{}
	for i := range files {
		extra[fmt.Sprintf("Windows/WinSxS/d%d/file-%d.dll", i/100, i)] = []byte(fmt.Sprintf("f%d", i))
	}
	testenv.BuildWinPE(t, filepath.Join(dir, "setup.wim"), []testenv.WinPEImage{{Name: "Microsoft Windows Setup (amd64)", Files: extra}}, "--compress=LZX", "--boot")
	st, err := localstore.New(dir, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestVariantsShareSource builds variants of one source image that differ in one injected file
// (as per-client Setup credentials do): the store image is opened and its tree decoded once for
// all of them, each serves its own startnet.cmd and the source's boot files, and the heap a
// variant keeps after GC is its own metadata and layout: below maxPerVariant for a
// 15,000-file image (it was ~31 MiB when every variant opened and decoded the image itself
// and read its synthesised WIM back).
func TestVariantsShareSource(t *testing.T) {
	const files, n = 15000, 6
	const maxPerVariant = 8 << 20
	store := variantStore(t, files)
	const cfgText = "entries:\n  - name: pe\n    winpe: {image: setup.wim, index: 1}\n"
	lib := winpe.NewLibrary(winpe.Options{})
	var sets []*winpe.Set
	bindN := func(i int) {
		cfg := withGenerated(t, cfgText, map[string][]byte{"Windows/System32/startnet.cmd": []byte(fmt.Sprintf("wpeinit\r\nrem client %d\r\n", i))})
		p, err := boot.NewPolicy(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := lib.Bind(p, store, "store", nil)
		files, err := s.Files("pe")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Stat(files, "boot.wim"); err != nil {
			t.Fatal(err)
		}
		if got, err := fs.ReadFile(files, "image/Windows/Boot/EFI/bootmgfw.efi"); err != nil || string(got) != string(testenv.WinPEContent(1, "Windows/Boot/EFI/bootmgfw.efi")) {
			t.Fatalf("variant %d serves bootmgfw.efi %q (%v)", i, got, err)
		}
		sets = append(sets, s)
	}
	bindN(0) // the first variant pays for what variants share
	before := heapInuse()
	for i := 1; i <= n; i++ {
		bindN(i)
	}
	after := heapInuse()
	per := (int64(after) - int64(before)) / n
	t.Logf("%d variants of a %d-file image: %.2f MiB heap kept per variant", n, files, float64(per)/(1<<20))
	if per > maxPerVariant {
		t.Errorf("a variant keeps %.1f MiB of heap, want below %d MiB", float64(per)/(1<<20), maxPerVariant>>20)
	}
	if got := lib.ImagesOpened(); got != 1 {
		t.Errorf("the store image was opened %d times for %d variants, want once", got, n+1)
	}
	if _, opened := lib.Stats(); opened != n+1 {
		t.Errorf("%d sources opened, want %d (one per variant)", opened, n+1)
	}
	// Each serves its own startnet.cmd (in image/: read from its synthesised WIM, which the
	// view opens for the injected paths only).
	for i, set := range sets {
		files, err := set.Files("pe")
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile(files, "image/Windows/System32/startnet.cmd")
		if want := fmt.Sprintf("wpeinit\r\nrem client %d\r\n", i); err != nil || string(got) != want {
			t.Fatalf("variant %d serves startnet.cmd %q (%v), want %q", i, got, err, want)
		}
		// Other letter case and the folder's listing: as the synthesised image has them.
		if got2, err := fs.ReadFile(files, "image/WINDOWS/system32/STARTNET.CMD"); err != nil || string(got2) != string(got) {
			t.Errorf("variant %d: STARTNET.CMD in other case reads %q (%v)", i, got2, err)
		}
		if des, err := fs.ReadDir(files, "image/Windows/System32"); err != nil || !slices.ContainsFunc(des, func(d fs.DirEntry) bool { return d.Name() == "startnet.cmd" }) {
			t.Errorf("variant %d: listing of Windows/System32 %v (%v) lacks startnet.cmd", i, des, err)
		}
	}
}
