package winpe_test

import (
	"bytes"
	"github.com/pxewim/pxewim/winpe"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// A split WinPE set boots: the explicit entry (image: pe.swm) and the catalog's automatic one
// serve a boot.wim joined from the parts (LZX kept, one part), which wimlib-imagex verifies
// and which applies to the tree of the WIM before the split; files of the image read across
// the parts. A set missing a part fails naming it by number.
func TestWinPESplitSet(t *testing.T) {
	dir := t.TempDir()
	src, _ := testenv.BuildSplitWinPE(t, dir, "pe", 1)
	os.MkdirAll(filepath.Join(dir, "tools"), 0o755)
	os.WriteFile(filepath.Join(dir, "tools", "wimboot"), []byte("stand-in for wimboot"), 0o644)
	os.MkdirAll(filepath.Join(dir, "broken"), 0o755)
	_, bparts := testenv.BuildSplitWinPE(t, filepath.Join(dir, "broken"), "bk", 2)
	os.Remove(bparts[1])
	store, err := localstore.New(dir, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	want := filepath.Join(t.TempDir(), "want")
	wimtest.Wimlib(t, "apply", src, "1", want)

	cfg, err := boot.ParseConfig("c.yaml", []byte("winpe: {auto: true, wimboot: tools/wimboot}\nentries:\n"+
		"  - name: split\n    winpe: {image: pe.swm}\n  - name: broken\n    winpe: {image: broken/bk.swm}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustBind(t, cfg, store, nil)
	checkServed(t, p.set, "split", want)

	// The automatic entry of the catalog (a config naming no entry for the set).
	auto, err := boot.ParseConfig("a.yaml", []byte("winpe: {auto: true, wimboot: tools/wimboot}\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := catalog.Scan(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	autoPE := ""
	for _, e := range auto.WithCatalog(winpe.Facts(snap)).Entries {
		if w, ok := e.Boot.(*boot.WinPEBoot); ok && w.Image == "pe.swm" {
			autoPE = e.Name
		} else if ok && strings.Contains(w.Image, "bk") {
			t.Errorf("the incomplete set got an entry: %s", e.Name)
		}
	}
	if autoPE == "" {
		t.Fatal("no automatic entry for pe.swm")
	}
	checkServed(t, mustBind(t, auto.WithCatalog(winpe.Facts(snap)), store, snap).set, autoPE, want)

	// Part 2 of broken/bk.swm is missing: the entry says so, by number.
	_, err = p.set.Files("broken")
	wantErr := "part 2 of " + strconv.Itoa(len(bparts)) + " of broken/bk.swm (GUID "
	if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("incomplete set: %v, want %q", err, wantErr)
	}
	var what string
	for _, f := range snap.Problems() {
		what += f.What + "\n"
	}
	if !strings.Contains(what, wantErr) {
		t.Errorf("catalog problems lack %q:\n%s", wantErr, what)
	}
}

func checkServed(t *testing.T, set *winpe.Set, entry string, want string) {
	t.Helper()
	files, err := set.Files(entry)
	if err != nil {
		t.Fatal(err)
	}
	served, err := fs.ReadFile(files, "boot.wim")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "boot.wim")
	os.WriteFile(f, served, 0o644)
	for _, line := range strings.Split(wimtest.Wimlib(t, "verify", f), "\n") {
		if strings.Contains(line, "WARNING") && !strings.Contains(line, "integrity information") {
			t.Errorf("wimlib-imagex verify: %s", line)
		}
	}
	info := wimtest.Wimlib(t, "info", f)
	for _, w := range []string{"Compression:    LZX", "Part Number:    1/1", "Chunk Size:     32768 bytes"} {
		if !strings.Contains(info, w) {
			t.Errorf("served boot.wim: info lacks %q:\n%s", w, info)
		}
	}
	got := filepath.Join(t.TempDir(), "got")
	wimtest.Wimlib(t, "apply", f, "1", got)
	wimtest.CompareTrees(t, want, got)
	for _, p := range []string{"Windows/Boot/PXE/bootmgr.exe", "Windows/System32/drivers/pad5.sys"} {
		b, err := fs.ReadFile(files, "image/"+p)
		wb, _ := os.ReadFile(filepath.Join(want, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(b, wb) {
			t.Errorf("image/%s: %d bytes, %v; want %d", p, len(b), err, len(wb))
		}
	}
	findings := ""
	for _, fd := range set.Check(entry) {
		findings += fd.What + "\n"
	}
	if !strings.Contains(findings, "split parts joined") {
		t.Errorf("findings do not say the parts are joined:\n%s", findings)
	}
}
