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
// tree over TFTP. The test WIM holds testenv.PXEStandIn under that name: iPXE runs it as a PXE
// NBP, and it reports the CRC-32 of its own image as loaded, the boot file and option 252 of
// the DHCP packet iPXE hands it, and the CRC-32 of the BCD it then fetches through the PXE TFTP
// API (as pxeboot and bootmgr do). The test compares those with the image's pxeboot.n12 and
// BIOS BCD (wimlib-imagex extract).
func TestWinPEIPXEChainsNativeSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:73:0a"
	nbp := testenv.PXEStandIn(t)
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
			Files: map[string][]byte{"Windows/Boot/PXE/pxeboot.n12": nbp}}}, "--compress=LZX")
	})
	vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "winpe-chain", MAC: mac, Dir: dir,
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed", "cannot boot", testenv.PXEStandInFail)}
	res, recs, _ := bootVM(t, lab, d, capture, site, vm, testenv.PXEStandInDone, "winpe-chain")
	if !strings.Contains(res.Serial, "pxewim: chaining pxeboot.n12 (native WinPE over TFTP)") {
		t.Errorf("console lacks the script's chaining line")
	}
	rep, err := testenv.ParsePXEStandInReport(res.Serial)
	if err != nil {
		t.Fatal(err)
	}
	// What pxewim should serve: the image's own loader and BIOS BCD.
	wantNBP := testenv.WimExtract(t, wimPath, 1, "Windows/Boot/PXE/pxeboot.n12")
	wantBCD := testenv.WimExtract(t, wimPath, 1, "Windows/Boot/DVD/PCAT/BCD")
	if string(wantNBP) != string(nbp) {
		t.Errorf("test WIM's pxeboot.n12 is not the stand-in")
	}
	if rep.Self == nil || rep.Self.Size != int64(len(wantNBP)) || rep.Self.CRC32 != testenv.CRC32(wantNBP) {
		t.Errorf("the NBP iPXE ran: %+v, want %d bytes, CRC-32 %08x", rep.Self, len(wantNBP), testenv.CRC32(wantNBP))
	}
	// The DHCP ACK iPXE hands the NBP carries the script's filename and option 252.
	if rep.ACK == nil || rep.ACK.BootFile != `boot\pxeboot.n12` || !rep.ACK.HasOpt252 || rep.ACK.Option252 != `\Boot\BCD` {
		t.Errorf("DHCP ACK the NBP got: %+v; want boot file boot\\pxeboot.n12 and option 252 \\Boot\\BCD", rep.ACK)
	}
	// The server it was loaded from (the cached reply's siaddr) is pxewim.
	if rep.Reply == nil || rep.Reply.SIAddr != lab.SrvIP {
		t.Errorf("cached reply the NBP got: %+v; want siaddr %s (pxewim)", rep.Reply, lab.SrvIP)
	}
	// The DHCP ACK's siaddr is pxewim too (the script sets netX/next-server: a global setting
	// lost to the site DHCP server's next-server in the net device's block).
	if rep.ACK == nil || rep.ACK.SIAddr != lab.SrvIP {
		t.Errorf("the DHCP ACK iPXE hands the NBP: %+v; want siaddr %s (pxewim): a loader that takes its TFTP server from the ACK would ask the wrong host", rep.ACK, lab.SrvIP)
	}
	if rep.TFTP == nil || rep.TFTP.Name != `\Boot\BCD` || rep.TFTP.Size != int64(len(wantBCD)) || rep.TFTP.CRC32 != testenv.CRC32(wantBCD) {
		t.Errorf("the BCD the NBP fetched over the PXE TFTP API: %+v, want \\Boot\\BCD, %d bytes, CRC-32 %08x",
			rep.TFTP, len(wantBCD), testenv.CRC32(wantBCD))
	}
	t.Logf("stand-in: self %+v, DHCP ACK %+v, cached reply %+v, tftp %+v", rep.Self, rep.ACK, rep.Reply, rep.TFTP)
	wantTFTPSent(t, recs, "boot/pxeboot.n12", int64(len(nbp)))
	wantTFTPSent(t, recs, `\Boot\BCD`, int64(len(wantBCD)))
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
