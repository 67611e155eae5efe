package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// UEFI ARM64 clients end to end: QEMU's aarch64 virt machine (cortex-a57, TCG) with AAVMF
// (Debian qemu-efi-aarch64, EDK2's PxeBcDxe on a virtio NIC without option ROM), in a lab
// namespace, pxewim with `arm64: grub`:
//
//	DHCP (option 93 = 11) -> arm64/grubaa64.efi over TFTP (Debian's signed grubnetaa64 from
//	grub-efi-arm64-signed:arm64) -> grub/grub.cfg written by pxewim for this client -> the
//	Debian cloud-arm64 kernel and the arm64 test initramfs, both read out of tools.wim over
//	TFTP -> /init prints the marker and the SHA-1s of what arrived on ttyAMA0.
//
// UEFI HTTP Boot (arch 19) gets no boot file (boot/arm64.go: the netboot GRUB has no http
// module); TestDecideARM64 covers that decision.

type arm64Scenario struct {
	name   string
	mode   string // proxy | full
	subnet string
	// httpBoot turns off AAVMF's PXE (HTTPBootOnly): the client asks with arch 19, pxewim
	// refuses it (no boot file, the reason logged), and the firmware gives up: the run waits
	// for EDK2's boot manager failing the HTTPv4 option instead of the marker.
	httpBoot bool
}

// TestARM64GRUBPXEProxyAAVMF: the same beside the site's DHCP server (dnsmasq), pxewim in proxy
// mode. As on x64 (secureboot_test.go), Debian's GRUB takes its TFTP server from the site's ACK
// (siaddr): the site names pxewim as next-server (dnsmasq dhcp-boot=,pxewim,ADDR).
func TestARM64GRUBPXEProxyAAVMF(t *testing.T) {
	runARM64(t, arm64Scenario{name: "arm64-pxe-proxy", mode: "proxy", subnet: "10.77.72"})
}

func (sc arm64Scenario) mac() string {
	return "52:54:00:a6:" + strings.Split(sc.subnet, ".")[2] + ":64"
}

func (sc arm64Scenario) config(lab *testenv.Lab, store, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s\nlisten:\n  http: \"%s:80\"\n  tftp: \"%s:69\"\ndhcp:\n  mode: %s\n  interfaces: [%s]\n",
		store, lab.SrvIP, lab.SrvIP, sc.mode, lab.Bridge)
	if sc.mode == "full" {
		fmt.Fprintf(&b, "  full:\n    range: %s-%s\n    netmask: 255.255.255.0\n    router: %s\n    lease: 10m\n    leases: %s\n",
			lab.Host(100), lab.Host(150), lab.SrvIP, filepath.Join(dir, "leases.db"))
	}
	fmt.Fprintf(&b, `arm64: grub
menu:
  title: "pxewim e2e %[1]s"
  timeout: 2s
  default: rescue
entries:
  - name: shell
    title: "iPXE shell"
    ipxe: |
      shell
  - name: rescue
    title: "Rescue Linux from tools.wim"
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: [tools.wim:1/boot/initrd]
      cmdline: "console=%[2]s pxewim.e2e=%[1]s"
`, sc.name, testenv.ARM64Console)
	return b.String()
}

// TestARM64GRUBPXEFullAAVMF: pxewim as the only DHCPv4 server; an AAVMF client PXE-boots
// Debian's arm64 GRUB, which boots the arm64 kernel and initramfs from inside tools.wim.
func TestARM64GRUBPXEFullAAVMF(t *testing.T) {
	runARM64(t, arm64Scenario{name: "arm64-pxe-full", mode: "full", subnet: "10.77.71"})
}

// TestARM64HTTPBootRefusedAAVMF: AAVMF with PXE off does UEFI HTTP Boot (arch 19); pxewim
// gives it no boot file, with the reason in its log, since Debian's arm64 netboot GRUB could
// not read its grub.cfg over HTTP.
func TestARM64HTTPBootRefusedAAVMF(t *testing.T) {
	runARM64(t, arm64Scenario{name: "arm64-http-refused", mode: "full", subnet: "10.77.73", httpBoot: true})
}

func runARM64(t *testing.T, sc arm64Scenario) {
	requireVMLab(t)
	testenv.RequireARM64(t)
	ctx := context.Background()
	a := testenv.MustARM64Assets(t)
	pxewimBinary(t)
	dir := runDir(t)
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: sc.subnet})
	store := storeWith(t, dir, &a.Assets)
	if sc.mode == "proxy" {
		site := &testenv.Dnsmasq{Dir: dir, Name: "site-dnsmasq", Interface: lab.DHCPIf,
			Range: fmt.Sprintf("%s,%s", lab.Host(100), lab.Host(199)), Router: lab.DHCPIP.String(),
			Extra: []string{"dhcp-boot=,pxewim," + lab.SrvIP.String()}}
		if _, err := site.Start(ctx, lab.DHCP); err != nil {
			t.Fatal(err)
		}
	}
	capture := startCapture(t, ctx, lab, dir)
	// The config names Debian's grubnetaa64 where grub-efi-arm64-signed installs it; the test
	// serves the copy extracted from the downloaded .deb instead (the package is not installed).
	cfg := strings.Replace(sc.config(lab, store, dir), "arm64: grub\n", "arm64:\n  loader: grub\n  grub: "+a.GRUB+"\n", 1)
	d := startPxewim(t, ctx, lab, dir, sc.mode, cfg)
	vm := testenv.VMSpec{Name: sc.name, Firmware: testenv.AAVMF, NIC: "virtio-net-pci", MAC: sc.mac(), Dir: dir, MemoryMB: 1024,
		// "grub> ": GRUB found no config and stopped at its prompt.
		FailOn: append(testenv.FatalConsoleLines(), "grub> ")}
	// TCG emulation of an arm64 machine on a loaded 2-core host: firmware, GRUB fetching a 27 MB
	// kernel over TFTP in 1 KiB blocks, and the kernel's boot take minutes.
	marker := testenv.Marker
	if sc.httpBoot {
		vm.FwCfg, vm.FailOn, marker = testenv.HTTPBootOnly(), []string{"grub> ", testenv.Marker, ">>Start PXE"}, "BdsDxe: failed to load"
	}
	res, err := testenv.RunVM(ctx, lab.Srv, vm, marker, 15*time.Minute)
	pkts := stopCapture(t, capture)
	recs := d.stop(t)
	logRun(t, sc.name, res, pkts)
	if err != nil {
		t.Fatalf("%v\n\npxewim log (last 50 lines):\n%s", err, dumpLog(recs, 50))
	}
	if sc.httpBoot {
		wantARM64HTTPBootRefused(t, sc, res, recs)
		return
	}
	for _, rec := range filterLog(recs, "dhcp decision", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), sc.mac()) }) {
		t.Logf("decision: arch=%v file=%s reason=%s", rec["arch"], rec.str("file"), rec.str("reason"))
		if f := rec.str("file"); f != "arm64/grubaa64.efi" {
			t.Errorf("pxewim offered %q to the ARM64 client, want arm64/grubaa64.efi", f)
		}
	}
	if !strings.Contains(res.Serial, "pxewim: booting Rescue Linux from tools.wim") {
		t.Error("console lacks grub.cfg's echo: pxewim's menu did not run in GRUB")
	}
	if !strings.Contains(res.MarkerLine, "pxewim.e2e="+sc.name) {
		t.Errorf("the kernel command line is not the entry's: %q", res.MarkerLine)
	}
	if err := a.CheckInitramfsReport(res.MarkerLine); err != nil {
		t.Error(err)
	}
	if n, want := tftpSent(recs, "arm64/grubaa64.efi"), fileSize(t, a.GRUB); n != want {
		t.Errorf("TFTP arm64/grubaa64.efi: sent %d bytes, want %d", n, want)
	}
	if n := tftpSent(recs, "grub/grub.cfg"); n <= 0 {
		t.Errorf("grub/grub.cfg was not sent over TFTP; TFTP log:\n%s", dumpLog(filterLogPrefix(recs, "tftp"), 20))
	}
	for suffix, size := range map[string]int64{"tools.wim:1/boot/vmlinuz": a.KernelSize, "tools.wim:1/boot/initrd": a.InitrdSize} {
		if n := tftpSent(recs, suffix); n != size {
			t.Errorf("TFTP %s: sent %d bytes, want %d", suffix, n, size)
		}
	}
	wantNoErrorLogs(t, recs)
}

// wantARM64HTTPBootRefused: the firmware failed its HTTPv4 option after pxewim answered its arch
// 19 requests with no boot file and the reason; nothing of the GRUB chain was fetched.
func wantARM64HTTPBootRefused(t *testing.T, sc arm64Scenario, res *testenv.VMResult, recs []logRecord) {
	t.Helper()
	t.Logf("serial console:\n%s", testenv.Tail(res.Serial, 8))
	if !strings.Contains(res.MarkerLine, "HTTPv4") {
		t.Errorf("the failed boot option is not HTTPv4: %q", res.MarkerLine)
	}
	decisions := filterLog(recs, "dhcp decision", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), sc.mac()) })
	if len(decisions) == 0 {
		t.Fatalf("pxewim logged no decision for %s:\n%s", sc.mac(), dumpLog(recs, 30))
	}
	for _, rec := range decisions {
		arch, _ := rec.num("arch")
		if arch != 19 || rec["noboot"] != true || rec.str("file") != "" || !strings.Contains(rec.str("reason"), "ARM64 HTTP Boot") {
			t.Errorf("decision for the ARM64 HTTP Boot client: %s; want arch 19, noboot, no file, the reason", rec)
		}
	}
	t.Logf("decision: %s", decisions[0].str("reason"))
	for _, rec := range recs {
		if strings.Contains(strings.ToLower(rec.str("path")), "grub") {
			t.Errorf("the GRUB chain was requested: %s", rec)
		}
	}
	wantNoErrorLogs(t, recs)
}
