package testenv

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"debug/pe"
	"io"
	"os"
	"strings"
	"testing"
)

// TestARM64Assets: the arm64 assets are what an AAVMF VM needs: an arm64 EFI-stub kernel, an
// initramfs whose busybox is an aarch64 static ELF and whose /init writes to ttyAMA0, GRUB an
// arm64 PE, tools.wim built.
func TestARM64Assets(t *testing.T) {
	RequireARM64(t)
	a := MustARM64Assets(t)
	k, err := os.ReadFile(a.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	// arm64 Image header: MZ (EFI stub) and "ARM\x64" at 0x38.
	if len(k) < 64 || string(k[:2]) != "MZ" || string(k[0x38:0x3c]) != "ARM\x64" {
		t.Errorf("%s is not an arm64 EFI-stub Image (head % x)", a.Kernel, k[:min(64, len(k))])
	}
	g, err := pe.Open(a.GRUB)
	if err != nil {
		t.Fatal(err)
	}
	if g.Machine != 0xaa64 {
		t.Errorf("%s: PE machine %#x, want 0xaa64", a.GRUB, g.Machine)
	}
	g.Close()
	initrd, err := os.ReadFile(a.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(initrd))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	i := bytes.Index(raw, []byte("\x7fELF"))
	if i < 0 {
		t.Fatal("initramfs holds no ELF")
	}
	f, err := elf.NewFile(bytes.NewReader(raw[i:]))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("initramfs busybox: machine %v, want EM_AARCH64", f.Machine)
	}
	if !bytes.Contains(raw, []byte("> /dev/"+ARM64Console)) {
		t.Errorf("/init does not write to /dev/%s", ARM64Console)
	}
	if st, err := os.Stat(a.ToolsWIM); err != nil || st.Size() == 0 {
		t.Errorf("tools.wim: %v", err)
	}
	if !strings.HasPrefix(a.KernelPackage, "linux-image-") {
		t.Errorf("kernel package %q", a.KernelPackage)
	}
}

// TestAAVMFArgs: an AAVMF VMSpec runs qemu-system-aarch64's virt machine with AAVMF's code
// read-only, a fresh copy of its VARS, the NIC without option ROM as boot device 1, and the
// fw_cfg items (HTTPBootOnly works on AAVMF: the same EDK2 PxeBcDxe PCDs as OVMF).
func TestAAVMFArgs(t *testing.T) {
	RequireFiles(t, "qemu-efi-aarch64", AAVMFVars)
	dir := t.TempDir()
	s := VMSpec{Name: "a", Firmware: AAVMF, MAC: "52:54:00:a6:00:01", Dir: dir, FwCfg: HTTPBootOnly()}
	args, err := s.Args()
	if err != nil {
		t.Fatal(err)
	}
	cmd := strings.Join(args, " ")
	for _, want := range []string{"qemu-system-aarch64 ", "-machine virt", "-cpu cortex-a57", "-accel tcg",
		"if=pflash,format=raw,unit=0,readonly=on,file=" + AAVMFCode, "unit=1,file=" + dir + "/a-AAVMF_VARS.fd",
		"virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:a6:00:01,bootindex=1", "name=opt/org.tianocore/IPv4PXESupport,string=n",
		"-serial file:" + s.SerialPath()} {
		if !strings.Contains(cmd, want) {
			t.Errorf("AAVMF command line lacks %q:\n%s", want, cmd)
		}
	}
	if _, err := os.Stat(dir + "/a-AAVMF_VARS.fd"); err != nil {
		t.Errorf("VARS copy: %v", err)
	}
	if AAVMF.String() != "aavmf" {
		t.Errorf("AAVMF.String() = %q", AAVMF.String())
	}
}

// TestARM64BootmgrStandIn: the stand-in is an arm64 EFI program (built from the downloaded
// modules with its config embedded), and ParseARM64StandIn reads its console lines.
func TestARM64BootmgrStandIn(t *testing.T) {
	RequireARM64(t)
	b := ARM64BootmgrStandIn(t, t.TempDir())
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != 0xaa64 {
		t.Errorf("stand-in: PE machine %#x, want 0xaa64", f.Machine)
	}
	for _, want := range []string{"sha1sum ($root)/Boot/BCD", "sha1sum ($root)/sources/boot.wim", "echo " + ARM64StandInDone} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("stand-in lacks its embedded config line %q", want)
		}
	}
	serial := "\x1b[0mPXEWIM-ARM64-BOOTMGR root=tftp,10.77.68.1\r\n" +
		"0123456789abcdef0123456789abcdef01234567  (tftp,10.77.68.1)/Boot/BCD\r\n" +
		"error: file `/Boot/boot.sdi' not found.\r\n" +
		"89abcdef0123456789abcdef0123456789abcdef  (tftp,10.77.68.1)/sources/boot.wim\r\nPXEWIM-ARM64-BOOTMGR-DONE\r\n"
	root, sums := ParseARM64StandIn(serial)
	if root != "tftp,10.77.68.1" || len(sums) != 2 || sums["/Boot/BCD"] != "0123456789abcdef0123456789abcdef01234567" || sums["/sources/boot.wim"] == "" {
		t.Errorf("ParseARM64StandIn: %q %v", root, sums)
	}
}
