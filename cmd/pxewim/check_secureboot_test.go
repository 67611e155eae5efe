package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/internal/testenv"
)

// TestCheckSecureBoot runs "pxewim check" on a store with a WinPE image whose bootmgfw.efi is
// signed only through (a throwaway) Microsoft Windows Production PCA 2011, one that also holds
// a bootmgfw_EX.efi signed through Windows UEFI CA 2023, and one whose boot manager was altered
// after signing, with secure_boot: shim in proxy mode; and reads the findings.
func TestCheckSecureBoot(t *testing.T) {
	for _, tool := range []string{"openssl", "sbsign", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (test.sh installs openssl, sbsigntool, wimtools)", tool)
		}
	}
	pe := filepath.Join(testenv.IPXEDir, "snponly.efi") // any unsigned PE/COFF image
	testenv.RequireFiles(t, "ipxe", pe)
	testenv.RequireFiles(t, "shim-signed", boot.DefaultSecureBootShim)
	testenv.RequireFiles(t, "grub-efi-amd64-signed", boot.DefaultSecureBootGRUB)
	keys := t.TempDir()
	signPCA := testenv.ThrowawayCA(t, keys, "Microsoft Windows Production PCA 2011")
	sign2023 := testenv.ThrowawayCA(t, keys, "Windows UEFI CA 2023")
	pcaEFI, exEFI := filepath.Join(keys, "bootmgfw.efi"), filepath.Join(keys, "bootmgfw_EX.efi")
	signPCA(pe, pcaEFI)
	sign2023(pe, exEFI)
	pca, _ := os.ReadFile(pcaEFI)
	ex, _ := os.ReadFile(exEFI)
	tampered := append([]byte(nil), pca...)
	tampered[0x400] ^= 0xff // inside the first section, after the headers

	store := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(store, "old.wim"), []testenv.WinPEImage{{Name: "Old PE",
		Omit: []string{"Windows/Boot/EFI_EX/bootmgfw_EX.efi"}, Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": pca}}})
	testenv.BuildWinPE(t, filepath.Join(store, "new.wim"), []testenv.WinPEImage{{Name: "New PE",
		Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": pca, "Windows/Boot/EFI_EX/bootmgfw_EX.efi": ex}}})
	testenv.BuildWinPE(t, filepath.Join(store, "bad.wim"), []testenv.WinPEImage{{Name: "Bad PE",
		Omit: []string{"Windows/Boot/EFI_EX/bootmgfw_EX.efi"}, Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": tampered}}})
	os.WriteFile(filepath.Join(store, "vmlinuz"), []byte("kernel"), 0o644)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("store: "+store+"\nlisten: {tftp: \"\"}\nsecure_boot: shim\nwinpe: {auto: true}\n"+
		"entries:\n  - name: rescue\n    linux: {kernel: vmlinuz}\n  - name: shell\n    ipxe: \"shell\\n\"\n"), 0o644)
	var out, errb bytes.Buffer
	run([]string{"check", "--config", cfg}, &out, &errb)
	text := out.String() + errb.String()
	t.Logf("pxewim check:\n%s", text)
	for _, want := range []string{
		"problem: store old.wim:1: bootmgfw.efi: signed by Microsoft Windows Production PCA 2011 (digest ok): PCA 2011-only: will stop booting once the 2023 CA update is applied; use media with bootmgfw_EX.efi",
		"note: store new.wim:1: EFI_EX/bootmgfw_EX.efi: signed by Windows UEFI CA 2023 (digest ok)",
		"note: store new.wim:1: bootmgfw.efi: signed by Microsoft Windows Production PCA 2011 (digest ok): PCA 2011-only",
		"set uefi_bootmgr: auto (or ex)",
		"problem: store bad.wim:1: bootmgfw.efi: signed by Microsoft Windows Production PCA 2011 (digest mismatch): Secure Boot firmware refuses it",
		"secure_boot.shim: " + boot.DefaultSecureBootShim + ": signed by Microsoft Corporation UEFI CA 2011 (digest ok)",
		"secure_boot.grub: " + boot.DefaultSecureBootGRUB + ": signed by Debian Secure Boot CA (digest ok)",
		"c.yaml:8): not offered to Secure Boot (shim -> GRUB) clients: an ipxe: entry needs iPXE",
		`note: entry "pe-old-1" (from the catalog): not offered to Secure Boot (shim -> GRUB) clients: winpe entries boot signed only natively`,
		"fix: take the boot files from untouched Windows media or the ADK",
		"note: secure_boot shim: UEFI HTTP Boot clients get no boot file",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if strings.Contains(text, `entry "rescue"`) {
		t.Errorf("the linux entry has findings")
	}
}
