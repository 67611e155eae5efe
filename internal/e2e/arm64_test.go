package e2e

import (
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/boot"
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
// UEFI HTTP Boot (arch 19) with arm64.grub_http (TestARM64GRUBHTTPBootAAVMF):
//
//	DHCP (option 93 = 19, HTTPClient) -> BASE/mac/MAC/files/arm64/grubaa64-http.efi over HTTP
//	(the site's GRUB, built at test time by boot.ARM64HTTPGRUBCommand from the downloaded
//	grub-efi-arm64-bin:arm64 modules; never stored in the repository) -> its prefix is the
//	URL's folder, so it reads arm64/grub.cfg over HTTP -> kernel and initramfs out of
//	tools.wim over HTTP -> the marker. Nothing goes over TFTP.
//
// Without grub_http, arch 19 gets no boot file (TestDecideARM64HTTPBoot).

type arm64Scenario struct {
	name   string
	mode   string // proxy | full
	subnet string
	// httpBoot turns off AAVMF's PXE (HTTPBootOnly): the client asks with arch 19 and gets
	// the site's HTTP GRUB (arm64.grub_http), built for the run.
	httpBoot bool
}

// TestARM64GRUBPXEProxyAAVMF: the same beside the site's DHCP server (dnsmasq), pxewim in proxy
// mode. As on x64 (secureboot_test.go), Debian's GRUB takes its TFTP server from the site's ACK
// (siaddr): the site names pxewim as next-server (dnsmasq dhcp-boot=,pxewim,ADDR).
func TestARM64GRUBPXEProxyAAVMF(t *testing.T) {
	runARM64(t, arm64Scenario{name: "arm64-pxe-proxy", mode: "proxy", subnet: "10.77.72"})
}

// httpHost is pxewim's HTTP listen address: the HTTP Boot run uses pxewim's default port,
// 8080, so that GRUB's device names a port ("(http,SERVER:8080)"); the PXE runs port 80.
func (sc arm64Scenario) httpHost(lab *testenv.Lab) string {
	return fmt.Sprintf("%s:%d", lab.SrvIP, sc.httpPort())
}

func (sc arm64Scenario) httpPort() int {
	if sc.httpBoot {
		return 8080
	}
	return 80
}

func (sc arm64Scenario) mac() string {
	return "52:54:00:a6:" + strings.Split(sc.subnet, ".")[2] + ":64"
}

func (sc arm64Scenario) config(lab *testenv.Lab, store, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s\nlisten:\n  http: \"%s\"\n  tftp: \"%s:69\"\ndhcp:\n  mode: %s\n  interfaces: [%s]\n",
		store, sc.httpHost(lab), lab.SrvIP, sc.mode, lab.Bridge)
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

// TestARM64GRUBHTTPBootAAVMF: AAVMF with PXE off does UEFI HTTP Boot (arch 19); pxewim, as
// the only DHCPv4 server, hands it the site's GRUB with http (arm64.grub_http), which reads its
// grub.cfg and the kernel and initramfs inside tools.wim over HTTP, on port 8080 (pxewim's
// default listen.http): GRUB takes "(http,SERVER:8080)" from the URL.
func TestARM64GRUBHTTPBootAAVMF(t *testing.T) {
	runARM64(t, arm64Scenario{name: "arm64-http", mode: "full", subnet: "10.77.73", httpBoot: true})
}

// buildARM64HTTPGRUB runs the command README documents (boot.ARM64HTTPGRUBCommand) on the
// downloaded arm64 modules: the run's own GRUB image, in its folder.
func buildARM64HTTPGRUB(t *testing.T, dir string) string {
	t.Helper()
	testenv.RequireTools(t, "grub-mkimage")
	mods, err := testenv.ARM64GRUBModules(testenv.CacheDir())
	if err != nil {
		t.Fatalf("arm64 GRUB modules: %v", err)
	}
	out := filepath.Join(dir, boot.ARM64HTTPGRUBName)
	args := boot.ARM64HTTPGRUBCommand(mods, out)
	if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
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
	arm64Cfg := "arm64:\n  loader: grub\n  grub: " + a.GRUB + "\n"
	var httpGRUB string
	if sc.httpBoot {
		httpGRUB = buildARM64HTTPGRUB(t, dir)
		arm64Cfg += "  grub_http: " + httpGRUB + "\n"
	}
	cfg := strings.Replace(sc.config(lab, store, dir), "arm64: grub\n", arm64Cfg, 1)
	d := startPxewimHTTP(t, ctx, lab, dir, sc.mode, cfg, sc.httpPort())
	vm := testenv.VMSpec{Name: sc.name, Firmware: testenv.AAVMF, NIC: "virtio-net-pci", MAC: sc.mac(), Dir: dir, MemoryMB: 1024,
		// "grub> ": GRUB found no config and stopped at its prompt.
		FailOn: append(testenv.FatalConsoleLines(), "grub> ")}
	// TCG emulation of an arm64 machine on a loaded 2-core host: firmware, GRUB fetching a 27 MB
	// kernel over TFTP in 1 KiB blocks, and the kernel's boot take minutes.
	if sc.httpBoot {
		vm.FwCfg, vm.FailOn = testenv.HTTPBootOnly(), append(vm.FailOn, ">>Start PXE")
	}
	res, err := testenv.RunVM(ctx, lab.Srv, vm, testenv.Marker, 15*time.Minute)
	pkts := stopCapture(t, capture)
	recs := d.stop(t)
	logRun(t, sc.name, res, pkts)
	if err != nil {
		t.Fatalf("%v\n\npxewim log (last 50 lines):\n%s", err, dumpLog(recs, 50))
	}
	wantFile := "arm64/grubaa64.efi"
	if sc.httpBoot {
		wantFile = fmt.Sprintf("http://%s/mac/%s/files/arm64/%s", sc.httpHost(lab), strings.ReplaceAll(sc.mac(), ":", "-"), boot.ARM64HTTPGRUBName)
	}
	decisions := filterLog(recs, "dhcp decision", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), sc.mac()) })
	if len(decisions) == 0 {
		t.Errorf("pxewim logged no decision for %s", sc.mac())
	}
	for _, rec := range decisions {
		t.Logf("decision: arch=%v file=%s reason=%s", rec["arch"], rec.str("file"), rec.str("reason"))
		if f := rec.str("file"); f != wantFile {
			t.Errorf("pxewim offered %q to the ARM64 client, want %s", f, wantFile)
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
	if sc.httpBoot {
		mac := "/mac/" + strings.ReplaceAll(sc.mac(), ":", "-")
		wantARM64OverHTTP(t, recs, map[string]int64{mac + "/files/arm64/" + boot.ARM64HTTPGRUBName: fileSize(t, httpGRUB),
			blobPath(t, a.Kernel, "tools.wim:1/boot/vmlinuz"): a.KernelSize, blobPath(t, a.Initrd, "tools.wim:1/boot/initrd"): a.InitrdSize})
	} else {
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
	}
	wantNoErrorLogs(t, recs)
}

// blobPath is the immutable URL path of a file inside a WIM: /blob/ + the SHA-1 of its bytes
// (the content of host file src) + its store path.
func blobPath(t *testing.T, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("/blob/%x/%s", sha1.Sum(b), name)
}

// wantARM64OverHTTP: the HTTP Boot chain went over HTTP only: each file (URL path -> size) was
// sent whole in one response (the GRUB under the client's /mac/ prefix, files inside WIMs at
// their blob URLs, which name their SHA-1), the client's grub.cfg (arm64/grub.cfg, the GRUB's
// prefix) was served, and nothing was sent over TFTP.
func wantARM64OverHTTP(t *testing.T, recs []logRecord, files map[string]int64) {
	t.Helper()
	reqs := filterLog(recs, "http request", nil)
	for p, size := range files {
		whole := false
		for _, r := range reqs {
			n, _ := r.num("bytes")
			st, _ := r.num("status")
			whole = whole || r.str("path") == p && st == 200 && n == size
		}
		if !whole {
			t.Errorf("HTTP %s: no response sent its %d bytes whole; HTTP log:\n%s", p, size, dumpLog(reqs, 20))
		}
	}
	cfg := false
	for _, r := range reqs {
		n, _ := r.num("bytes")
		cfg = cfg || strings.HasSuffix(r.str("path"), "/files/arm64/grub.cfg") && n > 0
	}
	if !cfg {
		t.Errorf("arm64/grub.cfg was not served over HTTP; HTTP log:\n%s", dumpLog(reqs, 20))
	}
	if tf := filterLog(recs, "tftp: sent", nil); len(tf) > 0 {
		t.Errorf("the HTTP Boot client was sent files over TFTP: %s", tf[0])
	}
}

// TestARM64WinPENativeAAVMF: WinPE for ARM64, natively. The store holds pe.wim, a WinPE-shaped
// image the catalog reads as ARM64 (XML WINDOWS/ARCH 12), whose Windows/Boot/EFI/bootmgfw.efi
// is testenv.ARM64BootmgrStandIn (a GRUB arm64 image built at test time; no ARM64 bootmgr is
// available). A rule sends the AAVMF client to that winpe entry; pxewim (full mode, no arm64:
// section: native WinPE needs no GRUB) must name boot\bootmgfw.efi with option 252 \Boot\BCD,
// serve the stand-in out of the WIM, and then \Boot\BCD, \Boot\boot.sdi and \sources\boot.wim
// from the entry's own tree, whose SHA-1s the stand-in prints: the image's UEFI BCD and
// boot.sdi, and the WIM itself (one image, LZX: served as it is).
func TestARM64WinPENativeAAVMF(t *testing.T) {
	requireVMLab(t)
	testenv.RequireARM64(t)
	ctx := context.Background()
	const mac = "52:54:00:a6:68:64"
	pxewimBinary(t)
	dir := runDir(t)
	store := filepath.Join(dir, "store")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	standin := testenv.ARM64BootmgrStandIn(t, dir)
	wimPath := filepath.Join(store, "pe.wim")
	testenv.BuildWinPE(t, wimPath, []testenv.WinPEImage{{Name: "Microsoft Windows PE (arm64)", Files: map[string][]byte{"Windows/Boot/EFI/bootmgfw.efi": standin}}})
	// BuildWinPE marks images x64 (ARCH 9); this one is ARM64 (12).
	if out, err := exec.Command("wimlib-imagex", "info", wimPath, "1", "--image-property", "WINDOWS/ARCH=12").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex info --image-property WINDOWS/ARCH=12: %v\n%s", err, out)
	}
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: "10.77.68"})
	capture := startCapture(t, ctx, lab, dir)
	cfg := fmt.Sprintf(`store: %s
listen:
  http: "%s:80"
  tftp: "%s:69"
dhcp:
  mode: full
  interfaces: [%s]
  full:
    range: %s-%s
    netmask: 255.255.255.0
    router: %s
    lease: 10m
    leases: %s
entries:
  - name: pe-arm64
    title: "WinPE ARM64"
    winpe:
      image: pe.wim
      path: native
rules:
  - match: {mac: %q, arch: efi-arm64}
    entry: pe-arm64
`, store, lab.SrvIP, lab.SrvIP, lab.Bridge, lab.Host(100), lab.Host(150), lab.SrvIP, filepath.Join(dir, "leases.db"), mac)
	d := startPxewim(t, ctx, lab, dir, "full", cfg)
	vm := testenv.VMSpec{Name: "arm64-winpe-native", Firmware: testenv.AAVMF, NIC: "virtio-net-pci", MAC: mac, Dir: dir, MemoryMB: 1024,
		FailOn: append(testenv.FatalConsoleLines(), "grub rescue> ")}
	res, err := testenv.RunVM(ctx, lab.Srv, vm, testenv.ARM64StandInDone, 15*time.Minute)
	pkts := stopCapture(t, capture)
	recs := d.stop(t)
	logRun(t, vm.Name, res, pkts)
	if err != nil {
		t.Fatalf("%v\n\npxewim log (last 50 lines):\n%s", err, dumpLog(recs, 50))
	}
	t.Logf("serial console:\n%s", testenv.Tail(res.Serial, 10))
	dec := filterLog(recs, "dhcp decision", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), mac) })
	if len(dec) == 0 {
		t.Fatalf("pxewim logged no decision for %s", mac)
	}
	for _, r := range dec {
		if r.str("file") != `boot\bootmgfw.efi` || r.str("firmware") != "efi-arm64" || r.str("bcd") != `\Boot\BCD` {
			t.Errorf("decision %s; want boot\\bootmgfw.efi, firmware efi-arm64, bcd \\Boot\\BCD", r)
		}
	}
	t.Logf("decision: %s", dec[0].str("reason"))
	wantTFTPSent(t, recs, `boot\bootmgfw.efi`, int64(len(standin))) // the stand-in, out of the WIM
	src, err := os.ReadFile(wimPath)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"/Boot/BCD":         testenv.WimExtract(t, wimPath, 1, "Windows/Boot/DVD/EFI/BCD"),
		"/Boot/boot.sdi":    testenv.WimExtract(t, wimPath, 1, "Windows/Boot/DVD/EFI/boot.sdi"),
		"/sources/boot.wim": src,
	}
	root, sums := testenv.ParseARM64StandIn(res.Serial)
	if root != "tftp,"+lab.SrvIP.String() {
		t.Errorf("the stand-in's root is %q, want tftp,%s (the server that loaded it)", root, lab.SrvIP)
	}
	for p, b := range want {
		if got, sum := sums[p], fmt.Sprintf("%x", sha1.Sum(b)); got != sum {
			t.Errorf("%s: the stand-in read SHA-1 %q, want %s (%d bytes)", p, got, sum, len(b))
		}
		wantTFTPSent(t, recs, p, int64(len(b)))
	}
	wantNoErrorLogs(t, recs)
}
