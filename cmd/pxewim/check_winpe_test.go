package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
)

// TestCheckCommandWinPE runs "pxewim check" on a store with a healthy Windows Setup boot.wim,
// an LZMS solid WIM, a WIM without UEFI boot files, a broken file and two images of the same
// name, and reads the findings. Every WIM the check opens (store, catalog scan, WinPE sources
// and the synthesised WIMs) decodes through its one cache, bounded by the config's cache:
// none gets a private one.
func TestCheckCommandWinPE(t *testing.T) {
	store := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(store, "setup.wim"), []testenv.WinPEImage{
		{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"}}, "--boot")
	testenv.BuildWinPE(t, filepath.Join(store, "solid.wim"), []testenv.WinPEImage{{Name: "Microsoft Windows PE (amd64)"}}, "--solid")
	testenv.BuildWinPE(t, filepath.Join(store, "nouefi.wim"), []testenv.WinPEImage{
		{Name: "No UEFI", Omit: []string{"Windows/Boot/EFI/bootmgfw.efi"}}})
	os.WriteFile(filepath.Join(store, "cut.wim"), []byte("MSWIM\x00\x00\x00short"), 0o644)
	os.WriteFile(filepath.Join(store, "wimboot"), []byte("stand-in"), 0o644)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("store: "+store+"\nlisten: {tftp: \"\"}\nwinpe: {auto: true, wimboot: wimboot}\n"+
		"entries:\n  - name: setup\n    winpe: {image: setup.wim}\n"+
		"rules:\n  - match: {mac: \"52:54:00:00:00:01\"}\n    entry: pe-gone-1\n"), 0o644)
	var out, errb bytes.Buffer
	private := wim.PrivateCaches()
	code := run([]string{"check", "--config", cfg}, &out, &errb)
	text := out.String() + errb.String()
	if n := wim.PrivateCaches() - private; n != 0 {
		t.Errorf("check opened %d WIMs with a private chunk cache", n)
	}
	if code == 0 {
		t.Fatalf("check found no problems:\n%s", text)
	}
	for _, want := range []string{
		"4 entries (3 from the catalog)",
		"problem: store cut.wim: unreadable WIM",
		`problem: entry "pe-nouefi-1" (from the catalog): UEFI clients cannot boot it: the image has no bootmgr (Windows/Boot/EFI/bootmgfw.efi)`,
		"fix: inject it from a Windows ADK",
		"note: store solid.wim: LZMS compression",
		"re-export it: wimlib-imagex export solid.wim INDEX new.wim --compress=LZX --chunk-size=32K",
		`note: store solid.wim:1: image name "Microsoft Windows PE (amd64)" is also the name of setup.wim:1`,
		`c.yaml:8: rules[0].entry: no entry "pe-gone-1" at the moment`,
		"fix: put the image back into the store",
		"problems found",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("check output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, `entry "setup"`) {
		t.Errorf("the healthy entry has findings:\n%s", text)
	}
}
