package testenv

import (
	"context"
	"crypto/sha1"
	"debug/pe"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWimbootEFIStandInIsEFIApp: the stand-in builds from source into a PE32+ x86-64 EFI
// application with base relocations (the firmware may load it anywhere).
func TestWimbootEFIStandInIsEFIApp(t *testing.T) {
	RequireGnuEFI(t)
	p, err := BuildWimbootEFIStandIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.Open(p)
	if err != nil {
		t.Fatalf("%s is not a PE file: %v", p, err)
	}
	defer f.Close()
	if f.FileHeader.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("machine %#x, want AMD64 (%#x)", f.FileHeader.Machine, pe.IMAGE_FILE_MACHINE_AMD64)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("optional header is %T, want PE32+ (OptionalHeader64)", f.OptionalHeader)
	}
	if oh.Magic != 0x20b {
		t.Errorf("optional header magic %#x, want 0x20b (PE32+)", oh.Magic)
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		t.Errorf("subsystem %d, want %d (EFI application)", oh.Subsystem, pe.IMAGE_SUBSYSTEM_EFI_APPLICATION)
	}
	if oh.AddressOfEntryPoint == 0 {
		t.Error("no entry point")
	}
	if f.Section(".reloc") == nil || oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_BASERELOC].Size == 0 {
		t.Error("no base relocation table: the firmware could load it only at its link address")
	}
	if f.Section(".text") == nil {
		t.Error("no .text section")
	}
}

// TestWimbootEFIStandInReadsVolume boots the stand-in from a FAT disk under OVMF (no network):
// there the loaded image's DeviceHandle is the FAT partition, which carries the firmware's own
// EFI_SIMPLE_FILE_SYSTEM_PROTOCOL, so the stand-in must list, read and hash the files in the
// disk's root exactly, skip the EFI directory, and power the VM off.
func TestWimbootEFIStandInReadsVolume(t *testing.T) {
	if testing.Short() {
		t.Skip("QEMU boot skipped in -short mode")
	}
	RequireGnuEFI(t)
	RequireOVMF(t)
	RequireTools(t, "qemu-system-x86_64", "mformat", "mmd", "mcopy")
	dir := t.TempDir()
	efi, err := BuildWimbootEFIStandIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"big.bin":   pseudoRandom(600_001), // > 2 reads of 256 KiB, not a multiple of them
		"hello.txt": []byte("hello from the FAT root\n"),
		"empty":     nil,
		// 31 characters: the longest name wimboot keeps (VDISK_NAME_LEN).
		"name-of-thirty-one-characters.x": []byte("long name\n"),
	}
	img := filepath.Join(dir, "esp.img")
	mtools := [][]string{
		{"mformat", "-i", img, "-C", "-T", "8192", "-h", "2", "-s", "16", "::"},
		{"mmd", "-i", img, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-i", img, efi, "::/EFI/BOOT/BOOTX64.EFI"},
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		mtools = append(mtools, []string{"mcopy", "-i", img, p, "::/" + name})
	}
	for _, args := range mtools {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	vars := filepath.Join(dir, "vars.fd")
	if err := copyFile(OVMFVars, vars); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	// The stand-in powers the VM off (ResetSystem), so QEMU's exit ends the run.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-machine", "q35", "-nographic", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-serial", "file:"+serial,
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+OVMFCode,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-drive", "if=virtio,format=raw,file="+img)
	out, err := cmd.CombinedOutput()
	raw, _ := os.ReadFile(serial)
	console := CleanConsole(raw)
	if err != nil {
		t.Fatalf("qemu: %v\n%s\nserial:\n%s", err, out, Tail(console, 30))
	}
	r, err := ParseEFIStandIn(console)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Done || len(r.Errors) > 0 {
		t.Fatalf("stand-in did not finish cleanly (done %v, errors %q):\n%s", r.Done, r.Errors, Tail(console, 30))
	}
	if len(r.Files) != len(files) {
		t.Errorf("stand-in listed %d files, want %d (the EFI directory skipped): %+v", len(r.Files), len(files), r.Files)
	}
	for name, b := range files {
		sum := sha1.Sum(b)
		got, ok := r.ByName(name)
		switch {
		case !ok:
			t.Errorf("%s: not listed", name)
		case got.Size != int64(len(b)) || got.SHA1 != hex.EncodeToString(sum[:]):
			t.Errorf("%s: stand-in read %d bytes, SHA-1 %s; want %d, %x", name, got.Size, got.SHA1, len(b), sum)
		}
	}
	// Started from the boot manager: no load options set by a loader, or the boot option's.
	t.Logf("LoadOptions as the firmware set them: %q", r.Cmdline)
}

func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestParseEFIStandIn(t *testing.T) {
	const sum = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	good := strings.Join([]string{
		"iPXE 1.0.0+ -- Open Source Network Boot Firmware",
		"pxewim e2e stand-in for wimboot.efi",
		"PXEWIM-EFI-CMDLINE [wimboot index=2]",
		"PXEWIM-EFI-FILE " + sum + " 0 wimboot",
		"PXEWIM-EFI-FILE " + sum + " 123 name with spaces.efi",
		"PXEWIM-EFI-ERROR short BCD: 10 of 20",
		"  PXEWIM-EFI-STANDIN-DONE files=2 errors=1  ",
	}, "\n")
	r, err := ParseEFIStandIn(good)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cmdline != "wimboot index=2" || !r.Done || len(r.Files) != 2 || len(r.Errors) != 1 {
		t.Fatalf("parsed %+v", r)
	}
	if f, ok := r.ByName("NAME WITH SPACES.EFI"); !ok || f.Size != 123 || f.SHA1 != sum {
		t.Errorf("ByName: %+v %v", f, ok)
	}
	if r.Errors[0] != "short BCD: 10 of 20" {
		t.Errorf("error line %q", r.Errors[0])
	}
	// Nothing from the stand-in: no report, no error (the caller checks Done).
	if r, err := ParseEFIStandIn("BdsDxe: failed to load Boot0001\n"); err != nil || r.Done || len(r.Files) > 0 {
		t.Errorf("console without the stand-in: %+v, %v", r, err)
	}
	for _, bad := range []string{
		"PXEWIM-EFI-CMDLINE wimboot",                                                // no brackets
		"PXEWIM-EFI-FILE " + sum + " 12",                                            // no name
		"PXEWIM-EFI-FILE " + sum[:39] + " 12 x",                                     // short hash
		"PXEWIM-EFI-FILE " + sum + " -1 x",                                          // negative size
		"PXEWIM-EFI-FILE zz" + sum[2:] + " 1 x",                                     // not hex
		"PXEWIM-EFI-STANDIN-DONE files=x",                                           // no count
		"PXEWIM-EFI-FILE " + sum + " 1 x\nPXEWIM-EFI-STANDIN-DONE files=2 errors=0", // count mismatch
	} {
		if _, err := ParseEFIStandIn(bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}
