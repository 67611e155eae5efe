package testenv

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestWimbootStandInHeader builds the stand-in and checks the setup header fields iPXE's
// bzImage loader reads (src/arch/x86/image/bzimage.c): the 55AA flag, "HdrS", protocol 2.03
// like wimboot, LOADED_HIGH (so the 32-bit part goes to 0x100000), initrd_addr_max, and a
// syssize and setup_sects that match the file.
func TestWimbootStandInHeader(t *testing.T) {
	b := WimbootStandIn(t)
	h, err := ParseBzImageHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stand-in: %d bytes, header %+v", len(b), h)
	if h.BootFlag != 0xaa55 || h.Magic != "HdrS" {
		t.Errorf("boot flag %#x, magic %q: want 0xaa55, HdrS", h.BootFlag, h.Magic)
	}
	if h.Version < 0x0203 {
		t.Errorf("boot protocol %#x: iPXE reads initrd_addr_max only from 2.03", h.Version)
	}
	if h.Loadflags&1 == 0 {
		t.Errorf("loadflags %#x: LOADED_HIGH not set", h.Loadflags)
	}
	if h.Code32Start != 0x100000 || h.InitrdAddrMax != 0xffffffff {
		t.Errorf("code32_start %#x, initrd_addr_max %#x", h.Code32Start, h.InitrdAddrMax)
	}
	rm := (h.SetupSects + 1) * 512
	if h.SetupSects == 0 || rm >= len(b) {
		t.Fatalf("setup_sects %d: real-mode part %d of %d bytes", h.SetupSects, rm, len(b))
	}
	if want := uint32((len(b) - rm + 15) / 16); h.Syssize != want {
		t.Errorf("syssize %d, want %d", h.Syssize, want)
	}
	// The 32-bit part starts with _start: movw $0x10,%ax (66 b8 10 00).
	if !bytes.HasPrefix(b[rm:], []byte{0x66, 0xb8, 0x10, 0x00}) {
		t.Errorf("32-bit part starts % x, want _start's movw $0x10,%%ax", b[rm:rm+8])
	}
	// And a second build gives the same bytes (nothing depends on time or place).
	if b2 := WimbootStandIn(t); !bytes.Equal(b, b2) {
		t.Errorf("two builds differ")
	}
}

func TestParseStandInReport(t *testing.T) {
	data := []byte("abc")
	sum := sha1.Sum(data)
	console := "iPXE noise\n" +
		"wimboot-standin: cmdline \"index=2\\x20x\\x5c\"\n" +
		"wimboot-standin: initrd 0x1f000000 4096\n" +
		"wimboot-standin: file 3 " + hex.EncodeToString(sum[:]) + " bootmgr.exe\n" +
		"wimboot-standin: file 0 da39a3ee5e6b4b0d3255bfef95601890afd80709 a\\x0ab\n" +
		"wimboot-standin: done 2 files\n"
	r, err := ParseStandInReport(console)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cmdline != `index=2 x\` || !r.Done || len(r.Files) != 2 || r.Files[1].Name != "a\nb" || r.Files[0].Size != 3 {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range []string{
		"wimboot-standin: file 3 xyz bootmgr.exe",
		"wimboot-standin: done 1 files",
		"wimboot-standin: cmdline index=1",
		"wimboot-standin: file 3 " + hex.EncodeToString(sum[:]) + " a\\x4",
		"wimboot-standin: what",
	} {
		if _, err := ParseStandInReport(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	r, err = ParseStandInReport("wimboot-standin: cmdline \"\"\nBad CPIO magic\nFATAL: could not extract initrd files\n")
	if err != nil || r.Done || len(r.Failures) != 2 {
		t.Errorf("failure report: %+v, %v", r, err)
	}
}

// ipxeInitrds lays files out as iPXE's bzImage loader does (bzimage_load_initrd() in the 2019
// build, initrd_load() + cpio_header() today): a newc header named by the initrd's command line
// (none when the command line is empty: the bytes go in bare), the data, and zero padding to
// the next 4 KiB (INITRD_ALIGN). No trailer.
func ipxeInitrds(files []StandInFile, data [][]byte) []byte {
	var out []byte
	for i, f := range files {
		if f.Name != "" {
			hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
				0, 0o100644, 0, 0, 1, 0, len(data[i]), 0, 0, 0, 0, len(f.Name)+1, 0)
			out = append(out, hdr...)
			out = append(out, f.Name...)
			out = append(out, make([]byte, 4-len(out)%4)...) // the NUL, then zeros to 4 bytes
		}
		out = append(out, data[i]...)
		out = append(out, make([]byte, (4096-len(out)%4096)%4096)...)
	}
	return out
}

// runStandInKernel boots the stand-in with QEMU's own Linux loader (-kernel/-initrd/-append,
// no network) and returns its report. The e2e tests check it behind iPXE; this checks the
// stand-in itself in a second.
func runStandInKernel(t *testing.T, kernel, initrd []byte, cmdline string) (*StandInReport, string) {
	t.Helper()
	dir := t.TempDir()
	k, i, ser := filepath.Join(dir, "wimboot"), filepath.Join(dir, "initrd"), filepath.Join(dir, "serial.log")
	if err := os.WriteFile(k, kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(i, initrd, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none",
		"-monitor", "none", "-serial", "file:"+ser, "-no-reboot", "-net", "none",
		"-kernel", k, "-initrd", i, "-append", cmdline)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(ser)
	console := CleanConsole(raw)
	r, err := ParseStandInReport(console)
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, console)
	}
	return r, console
}

// TestWimbootStandInQEMU: under QEMU, the stand-in reads the command line and the initrd from
// its setup header and reports every named file with the right size and SHA-1; a nameless
// initrd (bare bytes, as iPXE hands over an initrd with no command line) stops it with
// wimboot's "Bad CPIO magic" / "FATAL: could not extract initrd files".
func TestWimbootStandInQEMU(t *testing.T) {
	RequireTools(t, "qemu-system-x86_64")
	kernel := WimbootStandIn(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	mk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	files := []StandInFile{{Name: "bootmgr.exe"}, {Name: "BCD"}, {Name: "boot.sdi"}, {Name: "boot.wim"}}
	data := [][]byte{append([]byte("MZ"), mk(5001)...), mk(8192), mk(3), mk(300_001)}
	for i := range files {
		sum := sha1.Sum(data[i])
		files[i].Size, files[i].SHA1 = int64(len(data[i])), hex.EncodeToString(sum[:])
	}
	r, console := runStandInKernel(t, kernel, ipxeInitrds(files, data), "index=3 gui")
	if !r.Done || len(r.Failures) > 0 || r.Cmdline != "index=3 gui" || !reflect.DeepEqual(r.Files, files) {
		t.Errorf("stand-in report %+v, want files %+v and cmdline \"index=3 gui\"\nconsole:\n%s", r, files, console)
	}

	// As a Linux kernel stand-in: the whole region, bare.
	region := ipxeInitrds(files, data)
	r, console = runStandInKernel(t, kernel, region, "initrd=x standin=raw")
	sum := sha1.Sum(region)
	if !r.Done || r.Ramdisk == nil || r.Ramdisk.Size != int64(len(region)) || r.Ramdisk.SHA1 != hex.EncodeToString(sum[:]) || len(r.Files) != 0 {
		t.Errorf("standin=raw: report %+v (ramdisk %+v), want %d bytes sha1 %x\nconsole:\n%s", r, r.Ramdisk, len(region), sum, console)
	}

	// The old script form: bootmgr.exe with no command line comes first, bare.
	files[0].Name = ""
	r, console = runStandInKernel(t, kernel, ipxeInitrds(files, data), "")
	if r.Done || len(r.Files) != 0 || len(r.Failures) != 2 || r.Failures[0] != StandInBadMagic || r.Failures[1] != StandInFatal {
		t.Errorf("nameless initrd: report %+v, want %q then %q\nconsole:\n%s", r, StandInBadMagic, StandInFatal, console)
	}
}
