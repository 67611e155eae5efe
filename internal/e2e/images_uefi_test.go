package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// UEFI sanboot: the ISO's El Torito catalog holds a UEFI entry (platform 0xEF) whose image is a
// FAT file system with EFI/BOOT/BOOTX64.EFI. iPXE's EFI sanboot installs the HTTP-backed SAN
// disk as an EFI block device, OVMF's partition driver finds the El Torito EFI image on it, the
// FAT driver mounts it, and iPXE starts BOOTX64.EFI from it. BOOTX64.EFI is a GRUB standalone
// image (Debian's grub-efi-amd64-bin) whose embedded grub.cfg finds the ISO 9660 file system on
// the same device and prints a file of it: so the marker proves that the booted loader reads the
// rest of the ISO through the SAN device too, i.e. through pxewim's HTTP ranges.

// efiISOMarker starts the line that GRUB reads from the ISO and prints; a nonce per run follows.
const efiISOMarker = "PXEWIM-EFI-ISO-OK"

// efiGrubCfg is the GRUB config embedded in BOOTX64.EFI. insmod iso9660 first: otherwise search
// autoloads every file system module listed in fs.lst, most of which the small image lacks.
// halt powers the VM off (EFI ResetSystem), so QEMU exits after the marker.
const efiGrubCfg = `insmod iso9660
echo "pxewim e2e: GRUB from the ISO's EFI boot image, cmdpath=$cmdpath"
search --no-floppy --file /pxewim/marker.txt --set=iso
echo "pxewim e2e: ISO found as ($iso)"
cat ($iso)/pxewim/marker.txt
halt
`

// requireTool skips unless tool is on PATH, naming the Debian package that provides it.
func requireTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("needs %s: apt-get install %s", tool, pkg)
	}
}

// buildGrubEFI makes a GRUB x86_64-efi standalone image with efiGrubCfg embedded and only the
// modules the config uses (~0.5 MB instead of ~3 MB with every module).
func buildGrubEFI(t *testing.T, dir string) string {
	t.Helper()
	cfg := filepath.Join(dir, "grub.cfg")
	if err := os.WriteFile(cfg, []byte(efiGrubCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "BOOTX64.EFI")
	cmd := exec.Command("grub-mkstandalone", "-O", "x86_64-efi", "-o", out,
		"--install-modules=normal echo halt search search_fs_file cat iso9660",
		"--locales=", "--themes=", "--fonts=", "boot/grub/grub.cfg="+cfg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("grub-mkstandalone: %v\n%s", err, b)
	}
	return out
}

// writeFATImage makes a 1 MB FAT12 image holding efi as EFI/BOOT/BOOTX64.EFI (the removable
// media path that iPXE's EFI sanboot and the firmware both look for).
func writeFATImage(t *testing.T, path, efi string) {
	t.Helper()
	for _, args := range [][]string{
		{"mformat", "-i", path, "-C", "-T", "2048", "-h", "2", "-s", "16", "-v", "PXEWIM_ESP", "::"},
		{"mmd", "-i", path, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-i", path, efi, "::/EFI/BOOT/BOOTX64.EFI"},
	} {
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
}

// writeEFIBootISO makes a hybrid-catalog ISO like real rescue media: a BIOS no-emulation entry
// (the nasm boot sector) and a UEFI entry (the FAT image), plus pxewim/marker.txt holding
// marker and 4 MB of padding that no boot step needs to read.
func writeEFIBootISO(t *testing.T, path, marker string, sector []byte) {
	t.Helper()
	work := t.TempDir()
	root := filepath.Join(work, "iso")
	for _, d := range []string{"boot", "pxewim"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFATImage(t, filepath.Join(root, "boot", "efiboot.img"), buildGrubEFI(t, work))
	boot := make([]byte, 2048)
	copy(boot, sector)
	pad := make([]byte, 4<<20)
	for i := range pad {
		pad[i] = byte(i*7 + i>>11) // not all zeros, so no layer can skip it as sparse
	}
	for name, data := range map[string][]byte{
		"boot/boot.bin":     boot,
		"pxewim/marker.txt": []byte(marker + "\n"),
		"PADDING.BIN":       pad,
	} {
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-J", "-r", "-V", "PXEWIM_EFI_E2E", "-o", path,
		"-c", "boot/boot.cat",
		"-b", "boot/boot.bin", "-no-emul-boot", "-boot-load-size", "4",
		"-eltorito-alt-boot", "-e", "boot/efiboot.img", "-no-emul-boot",
		root).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
}

// TestImagesSanbootOVMF: OVMF's own PXE client (virtio-net, no option ROM) gets snponly.efi from
// pxewim, whose script (a rule sends the MAC to the iso entry) sanboots the ISO over HTTP. The
// firmware then runs the ISO's El Torito EFI image: GRUB prints a file it read from the ISO
// through the SAN device. iPXE must read the ISO with HTTP range requests, and only part of it.
func TestImagesSanbootOVMF(t *testing.T) {
	const mac = "52:54:00:77:84:0a"
	testenv.RequireOVMF(t)
	testenv.RequireFiles(t, "ipxe", filepath.Join(testenv.IPXEDir, "snponly.efi"))
	testenv.RequireTools(t, "nasm")
	requireTool(t, "grub-mkstandalone", "grub-efi-amd64-bin")
	if _, err := os.Stat("/usr/lib/grub/x86_64-efi/modinfo.sh"); err != nil {
		t.Skip("needs GRUB's x86_64-efi modules: apt-get install grub-efi-amd64-bin")
	}
	requireTool(t, "mformat", "mtools")
	requireTool(t, "xorriso", "xorriso")
	marker := fmt.Sprintf("%s nonce=%x", efiISOMarker, time.Now().UnixNano())
	var isoPath string
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.84", "sanboot-ovmf", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`entries:
  - name: shell
    ipxe: |
      shell
  - name: rescue
    title: Rescue ISO (UEFI)
    iso: { image: isos/efi-marker.iso, method: sanboot }
rules:
  - match: { mac: %q }
    entry: rescue
`, mac)
	}, func(store string) {
		os.MkdirAll(filepath.Join(store, "isos"), 0o755)
		isoPath = filepath.Join(store, "isos", "efi-marker.iso")
		writeEFIBootISO(t, isoPath, marker, buildBootSector(t, t.TempDir()))
	})
	res, recs := runOVMFImageVM(t, lab, d, capture, site, dir, "sanboot-ovmf", mac, marker)

	for _, want := range []struct{ line, why string }{
		{"pxewim: booting Rescue ISO (UEFI)", "pxewim's entry script did not run in iPXE"},
		{"Registered SAN device 0x80", "iPXE's sanboot did not hook the ISO as a SAN device"},
		{"Booting from SAN device 0x80", "iPXE's sanboot did not boot from the SAN device"},
		{"pxewim e2e: GRUB from the ISO's EFI boot image", "GRUB from the El Torito EFI image did not start"},
		{"pxewim e2e: ISO found as (", "GRUB did not find the ISO 9660 file system on the SAN device"},
	} {
		if !strings.Contains(res.Serial, want.line) {
			t.Errorf("console lacks %q: %s", want.line, want.why)
		}
	}
	if strings.Contains(res.Serial, bootSectorMarker) {
		t.Errorf("the BIOS boot sector ran under UEFI: %q", res.Serial)
	}
	ranges, bytes := sanbootRanges(recs, "isos/efi-marker.iso")
	size := fileSize(t, isoPath)
	t.Logf("sanboot-ovmf: %d range requests, %d of the ISO's %d bytes (%.1f%%)", ranges, bytes, size, 100*float64(bytes)/float64(size))
	if ranges == 0 {
		t.Errorf("no HTTP range request (206) for efi-marker.iso:\n%s", dumpLog(filterLog(recs, "http request", nil), 30))
	}
	if bytes >= size {
		t.Errorf("sanboot read %d bytes of a %d-byte ISO: it should read only what it boots", bytes, size)
	}
	// GRUB's cat of marker.txt must have been a read through iPXE's SAN device, i.e. a range
	// request covering the file's place in the ISO.
	off := markerOffset(t, isoPath, marker)
	if !rangeCovered(recs, "isos/efi-marker.iso", off) {
		t.Errorf("no 206 range request covers marker.txt at ISO offset %d:\n%s", off,
			dumpLog(filterLog(recs, "http request", nil), 70))
	}
}

// markerOffset returns where the marker's bytes (pxewim/marker.txt's contents) sit in the ISO.
func markerOffset(t *testing.T, iso, marker string) int64 {
	t.Helper()
	b, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), marker)
	if i < 0 {
		t.Fatalf("%s does not hold the marker %q", iso, marker)
	}
	return int64(i)
}

// rangeCovered reports whether a 206 answer for a path ending in suffix carried byte off.
func rangeCovered(recs []logRecord, suffix string, off int64) bool {
	for _, r := range filterLog(recs, "http request", func(r logRecord) bool { return strings.HasSuffix(r.str("path"), suffix) }) {
		var first, last int64
		if st, _ := r.num("status"); st != 206 {
			continue
		}
		if _, err := fmt.Sscanf(r.str("range"), "bytes=%d-%d", &first, &last); err == nil && first <= off && off <= last {
			return true
		}
	}
	return false
}

// runOVMFImageVM boots the OVMF PXE VM until marker and returns the result and pxewim's log.
func runOVMFImageVM(t *testing.T, lab *testenv.Lab, d *daemon, capture *testenv.Capture, site *testenv.Dnsmasq, dir, name, mac, marker string) (*testenv.VMResult, []logRecord) {
	t.Helper()
	vm := testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), Name: name, MAC: mac, Dir: dir,
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed")}
	start := time.Now()
	res, recs, _ := bootVM(t, lab, d, capture, site, vm, marker, name)
	t.Logf("%s: marker %.1fs after QEMU started (QEMU wall %.1fs, run %.1fs): %s", name, res.TimeToMarker.Seconds(), res.Wall.Seconds(), time.Since(start).Seconds(), res.MarkerLine)
	wantNoErrorLogs(t, recs)
	return res, recs
}

// sanbootRanges counts the 206 answers to range requests for a path ending in suffix and the
// body bytes they carried.
func sanbootRanges(recs []logRecord, suffix string) (ranges int, bytes int64) {
	for _, r := range filterLog(recs, "http request", func(r logRecord) bool { return strings.HasSuffix(r.str("path"), suffix) }) {
		st, _ := r.num("status")
		n, _ := r.num("bytes")
		if st == 206 && r.str("range") != "" {
			ranges++
			bytes += n
		}
	}
	return ranges, bytes
}
