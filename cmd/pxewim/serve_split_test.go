package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestServeSplitSet: a split WinPE set (pe.swm, pe2.swm, ...) dropped into the store gets one
// automatic menu entry; curl gets every boot file of its wimboot script byte-exact with
// wimlib-imagex extract, and a boot.wim that wimlib-imagex verifies and that applies to the
// tree of the WIM before the split; "pe.swm:1/path" store files come whole and by range; atftp
// gets the native boot files.
func TestServeSplitSet(t *testing.T) {
	for _, tool := range []string{"curl", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install curl and wimtools", tool)
		}
	}
	store := t.TempDir()
	src, _ := testenv.BuildSplitWinPE(t, store, "pe", 1)
	os.WriteFile(filepath.Join(store, "wimboot"), []byte("wimboot stand-in"), 0o644)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	// A linux entry whose kernel and initrd lie inside the set (any file of it will do here).
	os.WriteFile(cfg, []byte("store: "+store+"\nwinpe: {auto: true, wimboot: wimboot}\nmenu: {timeout: 5s}\n"+
		"entries:\n  - name: fromsplit\n    linux: {kernel: pe.swm:1/Windows/System32/drivers/pad4.sys, initrd: pe.swm:1/Windows/Boot/EFI/boot.stl}\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, tftpAddr, log, done := startServe(t, ctx, "--config", cfg)
	defer func() { cancel(); <-done }()

	menu := serveHTTPGet(t, base+"/ipxe/menu.ipxe?mac=52-54-00-00-00-0a&platform=pcbios")
	items := regexp.MustCompile(`item (pe-\S+) [^\n]*\(pe\.swm:1, x86_64\)`).FindAllStringSubmatch(menu, -1)
	if len(items) != 1 || strings.Contains(menu, "pe2.swm") {
		t.Fatalf("menu has no single entry for the split set:\n%s", menu)
	}
	entry := items[0][1]
	curl := func(args ...string) []byte {
		b, err := exec.Command("curl", append([]string{"-sSf", "--globoff"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v\nserve log:\n%s", args, err, log)
		}
		return b
	}
	files := wimbootFiles(t, base, entry, log)
	for fw, names := range map[string]map[string]string{
		"bios": {"bootmgr.exe": "Windows/Boot/PXE/bootmgr.exe", "BCD": "Windows/Boot/DVD/PCAT/BCD", "boot.sdi": "Windows/Boot/DVD/PCAT/boot.sdi"},
		"uefi": {"bootmgfw.efi": "Windows/Boot/EFI/bootmgfw.efi", "BCD": "Windows/Boot/DVD/EFI/BCD", "boot.sdi": "Windows/Boot/DVD/EFI/boot.sdi"},
	} {
		for name, inWIM := range names {
			u, ok := files[fw][name]
			if !ok {
				t.Errorf("%s %s: not in the script (%v)", fw, name, files[fw])
				continue
			}
			if b, exp := curl(u), testenv.WimExtract(t, src, 1, inWIM); !bytes.Equal(b, exp) {
				t.Errorf("%s %s: %d bytes, wimlib-imagex extract gives %d", fw, name, len(b), len(exp))
			}
		}
		wimFile := filepath.Join(t.TempDir(), "boot.wim")
		os.WriteFile(wimFile, curl(files[fw]["boot.wim"]), 0o644)
		for _, line := range strings.Split(wimtest.Wimlib(t, "verify", wimFile), "\n") {
			if strings.Contains(line, "WARNING") && !strings.Contains(line, "integrity information") {
				t.Errorf("%s boot.wim: wimlib-imagex verify: %s", fw, line)
			}
		}
		want, got := filepath.Join(t.TempDir(), "want"), filepath.Join(t.TempDir(), "got")
		wimtest.Wimlib(t, "apply", src, "1", want)
		wimtest.Wimlib(t, "apply", wimFile, "1", got)
		wimtest.CompareTrees(t, want, got)
	}
	for _, p := range []string{"Windows/Boot/PXE/bootmgr.exe", "Windows/System32/drivers/pad5.sys"} {
		exp := testenv.WimExtract(t, src, 1, p)
		if b := curl(base + "/files/pe.swm:1/" + p); !bytes.Equal(b, exp) {
			t.Errorf("/files/pe.swm:1/%s: %d bytes, want %d", p, len(b), len(exp))
		}
		if b := curl("-r", "1000-2999", base+"/files/pe.swm:1/"+p); !bytes.Equal(b, exp[1000:3000]) {
			t.Errorf("/files/pe.swm:1/%s range 1000-2999: %d bytes", p, len(b))
		}
	}
	// The linux entry's kernel and initrd: content-addressed URLs (as for a .wim), right bytes.
	lm := regexp.MustCompile(`(?m)^kernel (\S+/pad4\.sys)\b[^\n]*\ninitrd (?:-n \S+ )?(\S+/boot\.stl)`).FindStringSubmatch(menu)
	if lm == nil || !strings.Contains(lm[1], "/blob/") {
		t.Fatalf("menu has no content-addressed kernel and initrd from the set:\n%s", menu)
	}
	if b, exp := curl(lm[1]), testenv.WimExtract(t, src, 1, "Windows/System32/drivers/pad4.sys"); !bytes.Equal(b, exp) {
		t.Errorf("kernel %s: %d bytes, want %d", lm[1], len(b), len(exp))
	}
	if b, exp := curl(lm[2]), testenv.WimExtract(t, src, 1, "Windows/Boot/EFI/boot.stl"); !bytes.Equal(b, exp) {
		t.Errorf("initrd %s: %d bytes, want %d", lm[2], len(b), len(exp))
	}
	checkWinPETFTP(t, tftpAddr, entry, src, 1, log)
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("serve logged errors:\n%s", log)
	}
}
