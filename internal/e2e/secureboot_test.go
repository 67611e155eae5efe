package e2e

import (
	"context"
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

// Secure Boot end to end: Debian's OVMF with Secure Boot enforced and Microsoft's keys
// enrolled (OVMF_CODE_4M.secboot.fd + a copy of OVMF_VARS_4M.ms.fd, q35 with SMM), its own
// PxeBcDxe (virtio-net, no option ROM), in the lab namespace beside the site's dnsmasq.
//
//	pxewim secure_boot: shim -> DHCP boot file secureboot/shimx64.efi (Debian's shim-signed,
//	Microsoft UEFI CA) -> grubx64.efi (Debian's signed grubnetx64) -> grub/grub.cfg written by
//	pxewim for this client -> the Debian cloud kernel (signed by Debian, checked by shim) and
//	the test initramfs, both read out of tools.wim over TFTP -> /init prints the marker.
//
// The kernel says "Secure boot enabled" on the console: the firmware really enforced it.

// sbScenario is one Secure Boot run.
type sbScenario struct {
	name   string
	mode   string // proxy | full
	subnet string
	vars   string // OVMF VARS template: testenv.OVMFVarsMS or OVMFVarsSnakeoil
	// secureBoot is the config's secure_boot value ("" = the key is left out).
	secureBoot string
	httpBoot   bool
	// siteNextServer: the site's DHCP server names pxewim as next-server (siaddr) in its
	// ACK (dnsmasq: dhcp-boot=,pxewim,ADDR, no file name). Debian's signed GRUB 2.06 configures
	// its network from the firmware's DHCP ACK alone, not the proxy offer, and looks for
	// grub.cfg at that ACK's siaddr (dnsmasq puts its own address there by default).
	siteNextServer bool
	// extraStore are more store files (name -> host file, copied); kernelWIM is the WIM the
	// rescue entry boots from ("" = tools.wim).
	extraStore map[string]string
	kernelWIM  string
}

func (sc sbScenario) mac() string {
	return "52:54:00:77:" + strings.Split(sc.subnet, ".")[2] + ":5b"
}

func (sc sbScenario) config(lab *testenv.Lab, store, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s\nlisten:\n  http: \"%s:80\"\n  tftp: \"%s:69\"\ndhcp:\n  mode: %s\n  interfaces: [%s]\n",
		store, lab.SrvIP, lab.SrvIP, sc.mode, lab.Bridge)
	if sc.mode == "full" {
		fmt.Fprintf(&b, "  full:\n    range: %s-%s\n    netmask: 255.255.255.0\n    router: %s\n    lease: 10m\n    leases: %s\n",
			lab.Host(100), lab.Host(150), lab.SrvIP, filepath.Join(dir, "leases.db"))
	}
	fmt.Fprintf(&b, "ipxe:\n  dir: %s\n  bios: undionly.kpxe\n  efi64: snponly.efi\n  httpboot: snponly.efi\n", testenv.IPXEDir)
	if sc.secureBoot != "" {
		b.WriteString("secure_boot:\n" + sc.secureBoot)
	}
	fmt.Fprintf(&b, `menu:
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
      kernel: %[2]s:1/boot/vmlinuz
      initrd: [%[2]s:1/boot/initrd]
      cmdline: "console=ttyS0 pxewim.e2e=%[1]s"
`, sc.name, map[bool]string{true: "tools.wim", false: sc.kernelWIM}[sc.kernelWIM == ""])
	return b.String()
}

// requireSecureBootLab skips unless the VM lab, Debian's Secure Boot OVMF and the signed chain
// are installed.
func requireSecureBootLab(t *testing.T, vars string) {
	t.Helper()
	requireVMLab(t)
	testenv.RequireTools(t, "dnsmasq", "ss")
	testenv.RequireOVMF(t)
	testenv.RequireFiles(t, "ovmf", testenv.OVMFSecureBootCode, vars)
	testenv.RequireFiles(t, "shim-signed", boot.DefaultSecureBootShim)
	testenv.RequireFiles(t, "grub-efi-amd64-signed", boot.DefaultSecureBootGRUB)
	testenv.RequireFiles(t, "ipxe", filepath.Join(testenv.IPXEDir, "snponly.efi"))
}

// sbRun is what one Secure Boot VM run left behind.
type sbRun struct {
	res  *testenv.VMResult
	err  error
	recs []logRecord
	pkts []testenv.Packet
	site *testenv.Dnsmasq
	a    *testenv.Assets
}

// runSecureBoot boots the scenario's VM until marker (or a FailOn line) and returns the run.
func runSecureBoot(t *testing.T, sc sbScenario, marker string, failOn []string) *sbRun {
	t.Helper()
	ctx := context.Background()
	a := mustAssets(t)
	pxewimBinary(t)
	dir := runDir(t)
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: sc.subnet})
	store := storeWith(t, dir, a)
	for name, host := range sc.extraStore {
		b, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(store, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	site := &testenv.Dnsmasq{Dir: dir, Name: "site-dnsmasq", Interface: lab.DHCPIf, RA: true}
	if sc.mode == "proxy" {
		site.Range = fmt.Sprintf("%s,%s", lab.Host(100), lab.Host(199))
		site.Router = lab.DHCPIP.String()
	}
	if sc.siteNextServer {
		site.Extra = append(site.Extra, "dhcp-boot=,pxewim,"+lab.SrvIP.String())
	}
	if _, err := site.Start(ctx, lab.DHCP); err != nil {
		t.Fatal(err)
	}
	capture := startCapture(t, ctx, lab, dir)
	d := startPxewim(t, ctx, lab, dir, sc.mode, sc.config(lab, store, dir))
	vm := testenv.VMSpec{Name: sc.name, Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(),
		MAC: sc.mac(), Dir: dir, MemoryMB: 768, SecureBoot: &testenv.SecureBootFirmware{Vars: sc.vars}, FailOn: failOn}
	if sc.httpBoot {
		vm.FwCfg = testenv.HTTPBootOnly()
	}
	res, err := testenv.RunVM(ctx, lab.Srv, vm, marker, 240*time.Second)
	r := &sbRun{res: res, err: err, pkts: stopCapture(t, capture), recs: d.stop(t), site: site, a: a}
	logRun(t, sc.name, res, r.pkts)
	return r
}

func (r *sbRun) fatal(t *testing.T) {
	t.Helper()
	t.Fatalf("%v\n\npxewim log (last 50 lines):\n%s\nsite dnsmasq log:\n%s", r.err, dumpLog(r.recs, 50), testenv.Tail(r.site.Log(), 20))
}

// tftpSent is the bytes pxewim's log says it sent of a file whose path ends in suffix (-1: never).
func tftpSent(recs []logRecord, suffix string) int64 {
	n := int64(-1)
	for _, r := range filterLog(recs, "tftp: sent", func(r logRecord) bool { return strings.HasSuffix(strings.ToLower(r.str("path")), suffix) }) {
		n, _ = r.num("sent")
	}
	return n
}

// wantNoIPXE: pxewim never offered iPXE to the client: no decision, TFTP read or HTTP request
// names snponly.efi, and the capture holds no transfer of it.
func wantNoIPXE(t *testing.T, r *sbRun, mac string) {
	t.Helper()
	for _, rec := range filterLog(r.recs, "dhcp decision", func(rec logRecord) bool { return strings.EqualFold(rec.str("mac"), mac) }) {
		t.Logf("decision: arch=%v httpboot=%v file=%s reason=%s", rec["arch"], rec["httpboot"], rec.str("file"), rec.str("reason"))
		if strings.Contains(rec.str("file"), "snponly") || strings.Contains(rec.str("file"), "ipxe") {
			t.Errorf("pxewim offered iPXE to a Secure Boot client: %s", rec)
		}
	}
	for _, rec := range r.recs {
		if strings.Contains(rec.str("path"), "snponly") {
			t.Errorf("snponly.efi was requested: %s", rec)
		}
	}
	for _, tr := range testenv.TFTPTransfers(r.pkts) {
		if strings.Contains(tr.File, "snponly") {
			t.Errorf("capture: TFTP RRQ for %s", tr.File)
		}
	}
}

// TestSecureBootShimGRUBProxyOVMF: proxy mode, Secure Boot with Microsoft's keys: shim -> GRUB
// -> the signed Debian kernel and the initramfs from inside tools.wim -> the marker. The site's
// DHCP server names pxewim as next-server (see siteNextServer): without it GRUB asks the site
// server for its grub.cfg and stops at its prompt.
func TestSecureBootShimGRUBProxyOVMF(t *testing.T) {
	runShimGRUB(t, sbScenario{name: "sb-proxy-shim", mode: "proxy", subnet: "10.77.61", vars: testenv.OVMFVarsMS,
		secureBoot: "  mode: shim\n", siteNextServer: true})
}

// TestSecureBootShimGRUBFullOVMF: the same with pxewim as the only DHCPv4 server.
func TestSecureBootShimGRUBFullOVMF(t *testing.T) {
	runShimGRUB(t, sbScenario{name: "sb-full-shim", mode: "full", subnet: "10.77.62", vars: testenv.OVMFVarsMS, secureBoot: "  mode: shim\n"})
}

func runShimGRUB(t *testing.T, sc sbScenario) {
	requireSecureBootLab(t, sc.vars)
	// "iPXE": no iPXE may run; "Access Denied"/"Security Violation": the firmware refused
	// something in the chain.
	fail := append(testenv.FatalConsoleLines(), "iPXE", "Access Denied", "Security Violation")
	r := runSecureBoot(t, sc, testenv.Marker, fail)
	if r.err != nil {
		r.fatal(t)
	}
	serial := r.res.Serial
	for _, want := range []string{
		"Secure boot enabled",                         // the kernel: the firmware enforced Secure Boot
		"pxewim: booting Rescue Linux from tools.wim", // grub.cfg's echo: pxewim's menu ran in GRUB
	} {
		if !strings.Contains(serial, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if !strings.Contains(r.res.MarkerLine, "pxewim.e2e="+sc.name) {
		t.Errorf("the kernel command line is not the entry's: %q", r.res.MarkerLine)
	}
	if err := r.a.CheckInitramfsReport(r.res.MarkerLine); err != nil {
		t.Error(err)
	}
	// The chain went out completely: shim and GRUB over TFTP, the grub.cfg, kernel and initrd.
	for suffix, host := range map[string]string{"secureboot/shimx64.efi": boot.DefaultSecureBootShim, "secureboot/grubx64.efi": boot.DefaultSecureBootGRUB} {
		if n, want := tftpSent(r.recs, suffix), fileSize(t, host); n != want {
			t.Errorf("TFTP %s: sent %d bytes, want %d (%s)", suffix, n, want, host)
		}
	}
	if n := tftpSent(r.recs, "grub/grub.cfg"); n <= 0 {
		t.Errorf("grub/grub.cfg was not sent over TFTP; TFTP log:\n%s", dumpLog(filterLogPrefix(r.recs, "tftp"), 20))
	}
	// GRUB fetched the kernel and the initramfs out of tools.wim over TFTP, completely.
	for suffix, size := range map[string]int64{"tools.wim:1/boot/vmlinuz": r.a.KernelSize, "tools.wim:1/boot/initrd": r.a.InitrdSize} {
		if n := tftpSent(r.recs, suffix); n != size {
			t.Errorf("TFTP %s: sent %d bytes, want %d", suffix, n, size)
		}
	}
	wantNoIPXE(t, r, sc.mac())
	wantNoErrorLogs(t, r.recs)
}

// TestSecureBootRefusesUnsignedIPXEOVMF: the same firmware, pxewim without secure_boot: it
// hands out Debian's unsigned snponly.efi, which the firmware fetches and refuses to start.
func TestSecureBootRefusesUnsignedIPXEOVMF(t *testing.T) {
	sc := sbScenario{name: "sb-unsigned-ipxe", mode: "proxy", subnet: "10.77.63", vars: testenv.OVMFVarsMS}
	requireSecureBootLab(t, sc.vars)
	// EDK2's boot manager reports the failed boot option with the LoadImage status.
	r := runSecureBoot(t, sc, "Access Denied", []string{"iPXE initialising", testenv.Marker})
	if r.err != nil {
		r.fatal(t)
	}
	t.Logf("firmware refusal: %s", r.res.MarkerLine)
	if !strings.Contains(r.res.MarkerLine, "BdsDxe: failed to load") {
		t.Errorf("refusal line is not the boot manager's: %q", r.res.MarkerLine)
	}
	size := fileSize(t, filepath.Join(testenv.IPXEDir, "snponly.efi"))
	if n := tftpSent(r.recs, "snponly.efi"); n != size {
		t.Errorf("snponly.efi: sent %d of %d bytes: the refusal must come after the whole file", n, size)
	}
	if strings.Contains(r.res.Serial, "iPXE") {
		t.Errorf("iPXE ran under Secure Boot")
	}
}

// TestSecureBootSiteSignedIPXEOVMF: a site's own signed iPXE as the UEFI loader (secure_boot:
// ipxe). The firmware's db holds Debian's snakeoil key (OVMF_VARS_4M.snakeoil.fd); the test
// signs Debian's snponly.efi and the cloud kernel with it (sbsign), as a site signs with its own
// db key, and puts the kernel into a WIM. iPXE runs, fetches pxewim's script and boots the linux
// entry from inside the WIM as it does without Secure Boot.
func TestSecureBootSiteSignedIPXEOVMF(t *testing.T) {
	runSiteSignedIPXE(t, sbScenario{name: "sb-site-ipxe", mode: "full", subnet: "10.77.64", vars: testenv.OVMFVarsSnakeoil})
}

// TestSecureBootSiteSignedIPXEHTTPBootOVMF: the same through UEFI HTTP Boot (PXE boot options
// off): the HTTPClient offer names the signed iPXE's URL, which the firmware checks and starts.
func TestSecureBootSiteSignedIPXEHTTPBootOVMF(t *testing.T) {
	runSiteSignedIPXE(t, sbScenario{name: "sb-site-ipxe-http", mode: "full", subnet: "10.77.65", vars: testenv.OVMFVarsSnakeoil, httpBoot: true})
}

func runSiteSignedIPXE(t *testing.T, sc sbScenario) {
	requireSecureBootLab(t, sc.vars)
	requireTool(t, "sbsign", "sbsigntool")
	requireTool(t, "wimlib-imagex", "wimtools")
	testenv.RequireFiles(t, "ovmf", testenv.SnakeoilKey, testenv.SnakeoilCert)
	a := mustAssets(t)
	requireTool(t, "openssl", "openssl")
	signDir := t.TempDir()
	// Debian's snakeoil key is encrypted with the passphrase "snakeoil" (ovmf's README.Debian);
	// sbsign cannot take one.
	key := filepath.Join(signDir, "snakeoil.key")
	if b, err := exec.Command("openssl", "pkey", "-in", testenv.SnakeoilKey, "-passin", "pass:snakeoil", "-out", key).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkey: %v: %s", err, b)
	}
	sign := func(in, out string) {
		t.Helper()
		if b, err := exec.Command("sbsign", "--key", key, "--cert", testenv.SnakeoilCert, "--output", out, in).CombinedOutput(); err != nil {
			t.Fatalf("sbsign %s: %v: %s", in, err, b)
		}
	}
	signedIPXE := filepath.Join(signDir, "ipxe-site-signed.efi")
	sign(filepath.Join(testenv.IPXEDir, "snponly.efi"), signedIPXE)
	tree := filepath.Join(signDir, "tree", "boot")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	sign(a.Kernel, filepath.Join(tree, "vmlinuz"))
	initrd, err := os.ReadFile(a.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "initrd"), initrd, 0o644); err != nil {
		t.Fatal(err)
	}
	siteWIM := filepath.Join(signDir, "site.wim")
	if b, err := exec.Command("wimlib-imagex", "capture", filepath.Dir(tree), siteWIM, "site", "--compress=LZX").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex capture: %v: %s", err, b)
	}
	sc.secureBoot = "  mode: ipxe\n  ipxe: " + signedIPXE + "\n"
	sc.extraStore = map[string]string{"site.wim": siteWIM}
	sc.kernelWIM = "site.wim"
	r := runSecureBoot(t, sc, testenv.Marker, append(testenv.FatalConsoleLines(), "Access Denied", "Security Violation"))
	if r.err != nil {
		r.fatal(t)
	}
	for _, want := range []string{"iPXE", "Secure boot enabled", "pxewim: booting Rescue Linux from tools.wim"} {
		if !strings.Contains(r.res.Serial, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if want := fileSize(t, signedIPXE); sc.httpBoot {
		var got int64 = -1
		for _, rec := range filterLog(r.recs, "http request", func(rec logRecord) bool { return strings.HasSuffix(rec.str("path"), "secureboot/ipxe.efi") }) {
			if st, _ := rec.num("status"); st == 200 {
				got, _ = rec.num("bytes")
			}
		}
		if got != want {
			t.Errorf("HTTP secureboot/ipxe.efi: sent %d bytes, want %d", got, want)
		}
		for _, tr := range testenv.TFTPTransfers(r.pkts) {
			t.Errorf("UEFI HTTP Boot used TFTP: RRQ %q", tr.File)
		}
	} else if n := tftpSent(r.recs, "secureboot/ipxe.efi"); n != want {
		t.Errorf("TFTP secureboot/ipxe.efi: sent %d bytes, want %d", n, want)
	}
	if err := r.a.CheckInitramfsReport(r.res.MarkerLine); err != nil {
		t.Error(err)
	}
	for _, rec := range filterLog(r.recs, "dhcp decision", func(rec logRecord) bool { return strings.EqualFold(rec.str("mac"), sc.mac()) }) {
		t.Logf("decision: ipxe=%v file=%s reason=%s", rec["ipxe"], rec.str("file"), rec.str("reason"))
		if strings.Contains(rec.str("file"), "snponly") {
			t.Errorf("the unsigned iPXE was offered: %s", rec)
		}
	}
}
