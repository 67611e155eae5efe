package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/internal/testenv"
)

// No Microsoft boot binaries (bootmgr, pxeboot, bootmgfw.efi) and no wimboot (GPL, not in
// Debian) are available to the test suite. The WinPE scenarios therefore stop where the
// missing binaries would take over, and check what those binaries would have received:
//
//   - TestWinPEWimbootSeaBIOS (and the variants in wimboot_bios_test.go): iPXE runs pxewim's
//     wimboot script and boots testenv.WimbootStandIn, a bzImage that walks the initrds iPXE
//     hands it as wimboot does and prints each file's name, size and SHA-1 and its command
//     line; the test compares them with bootmgr.exe, BCD and boot.sdi from the source WIM and
//     with the boot.wim pxewim serves (verified, and holding the image with the injected files).
//   - TestWinPENativeOVMF: OVMF's own PXE client boots the image's Windows/Boot/EFI/bootmgfw.efi
//     over TFTP (the test WIM holds Debian's snponly.efi under that name, so the firmware
//     really executes what pxewim served from inside the WIM); that iPXE, steered by a rule,
//     then asks for \Boot\BCD over TFTP as bootmgr would, and must get this client's BCD.
//   - TestWinPEIPXEChainsNativeSeaBIOS: iPXE chains testenv.PXEStandIn as pxeboot.n12; it
//     reports its own CRC-32 as loaded and fetches \Boot\BCD through the PXE TFTP API.

// winpeLabStart sets up the lab, the site dnsmasq, tcpdump and pxewim for a WinPE scenario.
func winpeLabStart(t *testing.T, subnet, name string, cfg func(lab *testenv.Lab, store string) string, fill func(store string)) (*testenv.Lab, *daemon, *testenv.Capture, *testenv.Dnsmasq, string) {
	t.Helper()
	requireVMLab(t)
	testenv.RequireTools(t, "dnsmasq", "ss", "wimlib-imagex")
	ctx := context.Background()
	pxewimBinary(t)
	dir := runDir(t)
	store := filepath.Join(dir, "store")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	fill(store)
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: subnet})
	site := &testenv.Dnsmasq{Dir: dir, Name: "site-dnsmasq", Interface: lab.DHCPIf, RA: true,
		Range: fmt.Sprintf("%s,%s", lab.Host(100), lab.Host(199)), Router: lab.DHCPIP.String()}
	if _, err := site.Start(ctx, lab.DHCP); err != nil {
		t.Fatal(err)
	}
	capture := startCapture(t, ctx, lab, dir)
	d := startPxewim(t, ctx, lab, dir, "proxy", cfg(lab, store))
	return lab, d, capture, site, dir
}

func winpeBaseConfig(lab *testenv.Lab, store string) string {
	return fmt.Sprintf(`store: %s
listen:
  http: "%s:80"
  tftp: "%s:69"
dhcp:
  mode: proxy
  interfaces: [%s]
ipxe:
  dir: %s
  bios: undionly.kpxe
  efi64: snponly.efi
menu:
  timeout: 1s
  default: shell
`, store, lab.SrvIP, lab.SrvIP, lab.Bridge, testenv.IPXEDir)
}

// TestWinPEWimbootSeaBIOS: SeaBIOS + iPXE ROM, a rule sends the MAC to a winpe entry booting
// image 1 of a two-image Windows-Setup-shaped boot.wim (boot index 2) with an injected
// startnet.cmd, so the served boot.wim is synthesised: exported + injected. The wimboot
// stand-in must receive bootmgr.exe, BCD, boot.sdi and boot.wim under those names, with the
// bytes of image 1 and of the WIM pxewim serves.
func TestWinPEWimbootSeaBIOS(t *testing.T) {
	const mac = "52:54:00:77:71:0a"
	var wimPath string
	var wimboot []byte
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.71", "winpe-wimboot", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`winpe:
  wimboot: tools/wimboot
entries:
  - name: shell
    ipxe: |
      shell
  - name: pe
    title: WinPE e2e
    winpe:
      image: boot.wim
      index: 1
      inject:
        - { path: Windows/System32/startnet.cmd, content: "wpeinit\r\n" }
rules:
  - match: { mac: %q }
    entry: pe
`, mac)
	}, func(store string) {
		wimPath = filepath.Join(store, "boot.wim")
		testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "Microsoft Windows PE (amd64)"}, {Name: "Microsoft Windows Setup (amd64)"}}, "--boot")
		wimboot = storeStandIn(t, store)
	})
	vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "winpe-wimboot", MAC: mac, Dir: dir,
		FailOn: wimbootBIOSFailOn()}
	rep := runStandInVM(t, lab, d, site, vm)
	checkStandInPE(t, lab, d, mac, rep, wantPE{src: wimPath, index: 1,
		inject: map[string][]byte{"Windows/System32/startnet.cmd": []byte("wpeinit\r\n")}})
	recs := stopLab(t, capture, d)
	serial, _ := os.ReadFile(vm.SerialPath())
	if !strings.Contains(testenv.CleanConsole(serial), "pxewim: booting WinPE e2e") {
		t.Errorf("console lacks the entry's \"booting WinPE e2e\" line")
	}
	wantHTTPSent(t, recs, "/tools/wimboot", int64(len(wimboot)), 1)
	wantNoErrorLogs(t, recs)
}

// TestWinPENativeOVMF: OVMF PXE, a rule sends the (not yet iPXE) client to a native winpe
// entry: the DHCP boot file is boot\bootmgfw.efi from the client's own tree, i.e. the image's
// Windows/Boot/EFI/bootmgfw.efi (here Debian's snponly.efi). Once that iPXE runs, a second
// rule has it fetch \Boot\BCD over TFTP like bootmgr; pxewim must serve the image's UEFI BCD
// from the client's tree (the store itself holds no Boot folder).
func TestWinPENativeOVMF(t *testing.T) {
	testenv.RequireOVMF(t)
	snponly := filepath.Join(testenv.IPXEDir, "snponly.efi")
	testenv.RequireFiles(t, "ipxe", snponly)
	const mac = "52:54:00:77:72:0a"
	var wimPath string
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.72", "winpe-native", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`entries:
  - name: shell
    ipxe: |
      shell
  - name: pe
    winpe:
      image: pe.wim
      path: native
  - name: like-bootmgr
    ipxe: |
      imgfetch tftp://%s/%%5CBoot%%5CBCD || goto failed
      echo PXEWIM-E2E-BCD-FETCHED
      sleep 30
rules:
  - match: { mac: %q, ipxe: false }
    entry: pe
  - match: { mac: %q, ipxe: true }
    entry: like-bootmgr
`, lab.SrvIP, mac, mac)
	}, func(store string) {
		efi, err := os.ReadFile(snponly)
		if err != nil {
			t.Fatal(err)
		}
		wimPath = filepath.Join(store, "pe.wim")
		testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "WinPE e2e", Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": efi}}}, "--compress=LZX")
	})
	vm := testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), Name: "winpe-native", MAC: mac, Dir: dir,
		FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed")}
	_, recs, pkts := bootVM(t, lab, d, capture, site, vm, "PXEWIM-E2E-BCD-FETCHED", "winpe-native")
	dec := filterLog(recs, "dhcp decision", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), mac) })
	if len(dec) == 0 || dec[0].str("file") != `boot\bootmgfw.efi` || dec[0].str("firmware") != "efi64" {
		t.Errorf("first DHCP decision is not the native boot file boot\\bootmgfw.efi:\n%s", dumpLog(dec, 5))
	}
	efi, _ := os.ReadFile(snponly)
	bcd := testenv.WimExtract(t, wimPath, 1, "Windows/Boot/DVD/EFI/BCD")
	wantTFTPSent(t, recs, `boot\bootmgfw.efi`, int64(len(efi))) // from the WIM
	wantTFTPSent(t, recs, `\Boot\BCD`, int64(len(bcd)))         // the image's UEFI BCD
	if dec[0].str("bcd") != `\Boot\BCD` {
		t.Errorf("native DHCP decision names BCD %q, want \\Boot\\BCD (option 252)", dec[0].str("bcd"))
	}
	if pkts != nil {
		for _, tr := range testenv.TFTPTransfers(pkts) {
			t.Logf("capture: TFTP %q from %s: %d bytes, options %v, OACK %v", tr.File, tr.Client, tr.Bytes, tr.Options, tr.OACK)
		}
		// On the wire: the proxy answer that names the native boot file carries option 252.
		var with252 int
		for _, m := range testenv.DHCPMessages(pkts) {
			if m.OpCode == dhcpv4.OpcodeBootReply && strings.EqualFold(m.BootFileName, `boot\bootmgfw.efi`) {
				if got := string(m.Options.Get(dhcpv4.GenericOptionCode(252))); got == `\Boot\BCD` {
					with252++
				} else {
					t.Errorf("reply %s -> %s names bootmgfw.efi with option 252 %q", m.Src, m.Dst, got)
				}
			}
		}
		if with252 == 0 {
			t.Errorf("no captured DHCP reply names boot\\bootmgfw.efi with option 252")
		}
	}
}
