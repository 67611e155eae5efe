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

// Diskless images: a boot sector assembled here with nasm prints a marker (and the BIOS drive
// number it was started from, DL) on COM1 and exits QEMU through isa-debug-exit. Put on a
// 1.44 MB floppy image it boots through memdisk; put in an ISO as an El Torito no-emulation
// boot image it boots through iPXE sanboot, reading the ISO over HTTP ranges from pxewim.

const bootSectorMarker = "PXEWIM-BOOTSECTOR-OK"

// bootSectorASM: no BIOS services, so nothing but the CPU and two I/O ports is trusted.
const bootSectorASM = `bits 16
org 0x7c00
start:
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	mov bl, dl              ; the BIOS passes the boot drive in DL
	mov si, msg
	call puts
	mov al, bl
	shr al, 4
	call hexdigit
	mov al, bl
	and al, 0x0f
	call hexdigit
	mov si, crlf
	call puts
	mov dx, 0xf4            ; isa-debug-exit: QEMU exits with status (1<<1)|1
	mov al, 1
	out dx, al
halt:
	hlt
	jmp halt
hexdigit:
	add al, '0'
	cmp al, '9'
	jbe .ok
	add al, 7
.ok:
	jmp putc
puts:
	lodsb
	test al, al
	jz .done
	call putc
	jmp puts
.done:
	ret
putc:                       ; wait for the UART's transmit holding register, then send AL
	push ax
	mov dx, 0x3fd
.wait:
	in al, dx
	test al, 0x20
	jz .wait
	pop ax
	mov dx, 0x3f8
	out dx, al
	ret
msg db "` + bootSectorMarker + ` dl=", 0
crlf db 13, 10, 0
times 510-($-$$) db 0
dw 0xaa55
`

// buildBootSector assembles the boot sector and returns its 512 bytes.
func buildBootSector(t *testing.T, dir string) []byte {
	t.Helper()
	src := filepath.Join(dir, "bootsector.asm")
	bin := filepath.Join(dir, "bootsector.bin")
	if err := os.WriteFile(src, []byte(bootSectorASM), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nasm", "-f", "bin", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("nasm: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 512 || b[510] != 0x55 || b[511] != 0xaa {
		t.Fatalf("nasm made %d bytes without the 55 AA signature", len(b))
	}
	return b
}

// writeFloppy writes a 1.44 MB floppy image starting with the boot sector (memdisk takes the
// geometry, 80 cylinders, 2 heads, 18 sectors, from the size).
func writeFloppy(t *testing.T, path string, sector []byte) {
	t.Helper()
	img := make([]byte, 1474560)
	copy(img, sector)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeBootISO makes an ISO 9660 + Joliet image whose El Torito catalog boots the boot sector
// without emulation (iPXE's int 13h CD support knows only no-emulation boot), plus a README so
// the image has some body past the boot records.
func writeBootISO(t *testing.T, path string, sector []byte) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "iso")
	if err := os.MkdirAll(filepath.Join(root, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	boot := make([]byte, 2048) // one CD sector: four 512-byte "virtual sectors" loaded at 7C00
	copy(boot, sector)
	if err := os.WriteFile(filepath.Join(root, "boot", "boot.bin"), boot, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "README.TXT"), []byte(strings.Repeat("pxewim sanboot e2e\n", 20000)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("genisoimage", "-quiet", "-J", "-r", "-V", "PXEWIM_E2E", "-o", path,
		"-b", "boot/boot.bin", "-c", "boot/boot.cat", "-no-emul-boot", "-boot-load-size", "4", root).CombinedOutput()
	if err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
}

// TestImagesMemdiskSeaBIOS: a floppy image in the store gets a menu entry by itself (the
// config names none); the menu's default boots it: iPXE loads memdisk and the image from
// pxewim and memdisk boots it as drive A: (DL=00).
func TestImagesMemdiskSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:81:0a"
	memdisk := "/usr/lib/syslinux/memdisk"
	testenv.RequireTools(t, "nasm")
	testenv.RequireFiles(t, "syslinux-common", memdisk)
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.81", "memdisk", func(lab *testenv.Lab, store string) string {
		// No entries and no menu default: the menu holds only what the catalog found, and
		// its first entry is the default (a rule cannot name an entry the store may lack).
		base := strings.Replace(winpeBaseConfig(lab, store), "  default: shell\n", "", 1)
		return base + "images:\n  syslinux: /usr/lib/syslinux\n"
	}, func(store string) {
		os.MkdirAll(filepath.Join(store, "dos"), 0o755)
		writeFloppy(t, filepath.Join(store, "dos", "marker.img"), buildBootSector(t, t.TempDir()))
	})
	res, recs := runImageVM(t, lab, d, capture, site, dir, "memdisk", mac)
	if !strings.Contains(res.Serial, "pxewim: booting marker.img (disk image, memdisk)") {
		t.Errorf("console lacks the catalog entry's \"booting marker.img\" line")
	}
	if !strings.Contains(res.Serial, bootSectorMarker+" dl=00") {
		t.Errorf("boot sector did not start from floppy drive 00: %q", res.MarkerLine)
	}
	wantComplete(t, recs, "syslinux/memdisk", fileSize(t, memdisk))
	wantComplete(t, recs, "dos/marker.img", 1474560)
}

// TestImagesSanbootSeaBIOS: an iso entry boots the ISO through iPXE sanboot; iPXE reads it over
// HTTP range requests (206), and the boot sector runs from iPXE's SAN drive (int 13h 0x80).
func TestImagesSanbootSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:82:0a"
	testenv.RequireTools(t, "nasm", "genisoimage")
	var isoPath string
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.82", "sanboot", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`entries:
  - name: shell
    ipxe: |
      shell
  - name: rescue
    title: Rescue ISO
    iso: { image: isos/marker.iso, method: sanboot }
rules:
  - match: { mac: %q }
    entry: rescue
`, mac)
	}, func(store string) {
		os.MkdirAll(filepath.Join(store, "isos"), 0o755)
		isoPath = filepath.Join(store, "isos", "marker.iso")
		writeBootISO(t, isoPath, buildBootSector(t, t.TempDir()))
	})
	res, recs := runImageVM(t, lab, d, capture, site, dir, "sanboot", mac)
	if !strings.Contains(res.Serial, "pxewim: booting Rescue ISO") {
		t.Errorf("console lacks the entry's \"booting Rescue ISO\" line")
	}
	if !strings.Contains(res.Serial, "Booting from SAN device 0x8") || !strings.Contains(res.MarkerLine, bootSectorMarker+" dl=80") {
		t.Errorf("boot sector did not start from iPXE's SAN drive 0x80: %q", res.MarkerLine)
	}
	size := fileSize(t, isoPath)
	ranges, bytes := sanbootRanges(recs, "marker.iso")
	t.Logf("sanboot: %d range requests, %d of the ISO's %d bytes", ranges, bytes, size)
	if ranges == 0 {
		t.Errorf("no HTTP range request (206) for marker.iso:\n%s", dumpLog(filterLog(recs, "http request", nil), 30))
	}
	if bytes >= size {
		t.Errorf("sanboot read %d bytes of a %d-byte ISO: it should read only what it boots", bytes, size)
	}
}

// runImageVM boots the SeaBIOS VM to the boot sector's marker and returns the result and log.
func runImageVM(t *testing.T, lab *testenv.Lab, d *daemon, capture *testenv.Capture, site *testenv.Dnsmasq, dir, name, mac string) (*testenv.VMResult, []logRecord) {
	t.Helper()
	vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: name, MAC: mac, Dir: dir,
		Extra:  []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"},
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed")}
	start := time.Now()
	res, recs, _ := bootVM(t, lab, d, capture, site, vm, bootSectorMarker, name)
	t.Logf("%s: boot sector marker %.1fs after QEMU started (run %.1fs): %s", name, res.TimeToMarker.Seconds(), time.Since(start).Seconds(), res.MarkerLine)
	wantNoErrorLogs(t, recs)
	return res, recs
}

// wantComplete: some GET of a path ending in suffix sent exactly size bytes.
func wantComplete(t *testing.T, recs []logRecord, suffix string, size int64) {
	t.Helper()
	reqs := filterLog(recs, "http request", nil)
	for _, r := range reqs {
		n, _ := r.num("bytes")
		if strings.HasSuffix(r.str("path"), suffix) && n == size {
			return
		}
	}
	t.Errorf("no complete HTTP download of %s (%d bytes); HTTP log:\n%s", suffix, size, dumpLog(reqs, 30))
}

// TestImagesISOMemdiskSeaBIOS: the same ISO with method memdisk: iPXE loads memdisk and the
// whole ISO ("iso raw"), and memdisk emulates the CD for the El Torito boot image.
func TestImagesISOMemdiskSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:83:0a"
	testenv.RequireTools(t, "nasm", "genisoimage")
	testenv.RequireFiles(t, "syslinux-common", "/usr/lib/syslinux/memdisk")
	var isoPath string
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.83", "iso-memdisk", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`entries:
  - name: shell
    ipxe: |
      shell
  - name: oldcd
    title: Old CD in RAM
    iso: { image: isos/marker.iso, method: memdisk }
rules:
  - match: { mac: %q }
    entry: oldcd
`, mac)
	}, func(store string) {
		os.MkdirAll(filepath.Join(store, "isos"), 0o755)
		isoPath = filepath.Join(store, "isos", "marker.iso")
		writeBootISO(t, isoPath, buildBootSector(t, t.TempDir()))
	})
	res, recs := runImageVM(t, lab, d, capture, site, dir, "iso-memdisk", mac)
	if !strings.Contains(res.Serial, "pxewim: booting Old CD in RAM") {
		t.Errorf("console lacks the entry's \"booting Old CD in RAM\" line")
	}
	if !strings.Contains(res.MarkerLine, bootSectorMarker+" dl=E0") {
		t.Errorf("boot sector did not start from memdisk's emulated CD drive E0: %q", res.MarkerLine)
	}
	wantComplete(t, recs, "isos/marker.iso", fileSize(t, isoPath))
}
