package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestWinPEIPXEChainsNativeSeaBIOS: SeaBIOS + QEMU's iPXE ROM (the client runs iPXE from the
// start), and a rule sends its MAC to a winpe entry with path: native, which iPXE cannot boot
// through wimboot. pxewim's script must set next-server, filename and option 252 (real iPXE
// parses the hex settings, or the script stops) and chain pxeboot.n12 from the client's own
// tree over TFTP; the test WIM holds the wimboot stand-in (INT 18h) under that name, so the
// run ends when iPXE has downloaded it. pxewim must have sent the image's bytes.
func TestWinPEIPXEChainsNativeSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:73:0a"
	var wimPath string
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.73", "winpe-chain", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`entries:
  - name: shell
    ipxe: |
      shell
  - name: pe
    winpe:
      image: pe.wim
      path: native
rules:
  - match: { mac: %q }
    entry: pe
`, mac)
	}, func(store string) {
		wimPath = filepath.Join(store, "pe.wim")
		testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "WinPE chain e2e",
			Files: map[string][]byte{"Windows/Boot/PXE/pxeboot.n12": wimbootStandIn}}}, "--compress=LZX")
	})
	vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "winpe-chain", MAC: mac, Dir: dir,
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed", "cannot boot")}
	res, recs, _ := bootVM(t, lab, d, capture, site, vm, "/boot/pxeboot.n12... ok", "winpe-chain")
	if !strings.Contains(res.Serial, "pxewim: chaining pxeboot.n12 (native WinPE over TFTP)") {
		t.Errorf("console lacks the script's chaining line")
	}
	wantTFTPSent(t, recs, "boot/pxeboot.n12", int64(len(wimbootStandIn)))
	if got := testenv.WimExtract(t, wimPath, 1, "Windows/Boot/PXE/pxeboot.n12"); string(got) != string(wimbootStandIn) {
		t.Errorf("test WIM's pxeboot.n12 is not the stand-in")
	}
	wantNoErrorLogs(t, recs)
}

// TestWinPEIPXEChainsNativeOVMF: the same on UEFI. OVMF's PXE gets iPXE (snponly.efi) since
// the rule matches only clients running iPXE; that iPXE gets the chain script and fetches
// bootmgfw.efi from the client's own tree over TFTP (the test WIM holds snponly.efi under that
// name). The run ends when iPXE has downloaded it.
func TestWinPEIPXEChainsNativeOVMF(t *testing.T) {
	testenv.RequireOVMF(t)
	snponly := filepath.Join(testenv.IPXEDir, "snponly.efi")
	testenv.RequireFiles(t, "ipxe", snponly)
	const mac = "52:54:00:77:74:0a"
	efi, err := os.ReadFile(snponly)
	if err != nil {
		t.Fatal(err)
	}
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.74", "winpe-chain-uefi", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`entries:
  - name: shell
    ipxe: |
      shell
  - name: pe
    winpe:
      image: pe.wim
      path: native
rules:
  - match: { mac: %q, ipxe: true }
    entry: pe
`, mac)
	}, func(store string) {
		testenv.BuildWinPE(t, filepath.Join(store, "pe.wim"), []testenv.WinPEImage{{Name: "WinPE chain e2e",
			Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": efi}}}, "--compress=LZX")
	})
	vm := testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), Name: "winpe-chain-uefi", MAC: mac, Dir: dir,
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed", "cannot boot")}
	_, recs, _ := bootVM(t, lab, d, capture, site, vm, "/boot/bootmgfw.efi... ok", "winpe-chain-uefi")
	dec := filterLog(recs, "dhcp decision", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), mac) })
	if len(dec) < 2 || dec[0].str("file") != "ipxe/snponly.efi" || !strings.Contains(dec[len(dec)-1].str("file"), "/boot.ipxe?") {
		t.Errorf("DHCP decisions are not iPXE binary, then script URL:\n%s", dumpLog(dec, 5))
	}
	wantTFTPSent(t, recs, "boot/bootmgfw.efi", int64(len(efi)))
	wantNoErrorLogs(t, recs)
}
