package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/internal/testenv"
)

// scenario is one firmware booting from `pxewim serve`.
type scenario struct {
	name   string // also put on the kernel command line as pxewim.e2e=NAME
	mode   string // proxy | full
	subnet string // lab /24, distinct per scenario so logs never mix
	vm     testenv.VMSpec
	// useMenu: no rule; the client gets the menu, whose default (rescue) boots after 1 s.
	// Otherwise a rule must send the client to rescue while the menu's default is the iPXE
	// shell, so a rule that does not match shows up as an "iPXE>" prompt.
	useMenu  bool
	uuid     string // SMBIOS UUID for the VM (DHCP option 97); the rule then matches it, not the MAC
	arch     uint16 // DHCP option 93 of the firmware's first request
	firmware string // what pxewim must classify the first stage as
	httpBoot bool   // UEFI HTTP Boot: the offer carries HTTPClient and a URL, no TFTP
	tftpNBP  string // iPXE binary the first stage must fetch completely over TFTP ("" = none)
	httpNBP  string // iPXE binary the first stage must fetch completely over HTTP ("" = none)
	// port4011: the firmware must ask pxewim for its boot file on port 4011 after the address
	// ACK (OVMF's PxeBcDxe does, from source port 4011) and get an ACK carrying it.
	port4011 bool
	// windowsize the TFTP server must acknowledge for tftpNBP (OVMF asks for 4, RFC 7440).
	windowsize string
}

var (
	seabiosE1000 = testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000"}
	ovmfNative   = testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM()}
	ovmfHTTPBoot = testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(),
		FwCfg: testenv.HTTPBootOnly()}
)

// Proxy mode: the site's dnsmasq (netns DHCP) hands out addresses only; pxewim --dhcp proxy
// tells network-boot clients where their boot file is.

// TestProxySeaBIOS: SeaBIOS + QEMU's iPXE e1000 ROM (already iPXE, so no chainload): proxy offer
// -> iPXE script over HTTP -> kernel and initrd from tools.wim over HTTP.
func TestProxySeaBIOS(t *testing.T) {
	runScenario(t, scenario{name: "proxy-bios", mode: "proxy", subnet: "10.77.43", vm: seabiosE1000,
		arch: 0, firmware: "bios"})
}

// TestProxyOVMFPXE: OVMF's own PxeBcDxe (virtio-net, no option ROM): proxy offer -> TFTP
// snponly.efi -> iPXE's DHCP -> HTTP script -> kernel and initrd from tools.wim.
func TestProxyOVMFPXE(t *testing.T) {
	runScenario(t, scenario{name: "proxy-ovmf-pxe", mode: "proxy", subnet: "10.77.44", vm: ovmfNative,
		arch: 7, firmware: "efi64", tftpNBP: "snponly.efi", windowsize: "4", port4011: true})
}

// TestProxyOVMFHTTPBoot: OVMF's HttpBootDxe (PXE boot options off via fw_cfg): the proxy offer
// echoes HTTPClient and carries an http:// URL of the iPXE binary (snponly.efi, pxewim's
// default for HTTP Boot); no TFTP, no port 4011. The rule matches the SMBIOS UUID (option 97).
func TestProxyOVMFHTTPBoot(t *testing.T) {
	runScenario(t, scenario{name: "proxy-ovmf-httpboot", mode: "proxy", subnet: "10.77.45", vm: ovmfHTTPBoot,
		arch: 16, firmware: "efi64", httpBoot: true, httpNBP: "snponly.efi",
		uuid: "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab"})
}

// Full mode: no DHCPv4 server but pxewim --dhcp full (dnsmasq only sends IPv6 router
// advertisements, which spare iPXE a 12 s IPv6 autoconf wait and hand out no IPv4 address).

// TestFullSeaBIOS boots through the iPXE menu (no rule), which times out to its default entry.
func TestFullSeaBIOS(t *testing.T) {
	runScenario(t, scenario{name: "full-bios", mode: "full", subnet: "10.77.46", vm: seabiosE1000,
		useMenu: true, arch: 0, firmware: "bios"})
}

// TestFullOVMFPXE: OVMF PXE with pxewim as the only DHCPv4 server.
func TestFullOVMFPXE(t *testing.T) {
	runScenario(t, scenario{name: "full-ovmf-pxe", mode: "full", subnet: "10.77.47", vm: ovmfNative,
		arch: 7, firmware: "efi64", tftpNBP: "snponly.efi", windowsize: "4"})
}

func (sc scenario) mac() string {
	third := strings.Split(sc.subnet, ".")[2]
	return "52:54:00:77:" + third + ":0a"
}

// config renders the pxewim config for the scenario (schema: boot/config.go, configs/*.yaml).
func (sc scenario) config(lab *testenv.Lab, store, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `store: %s
listen:
  http: "%s:80"
  tftp: "%s:69"
dhcp:
  mode: %s
  interfaces: [%s]
`, store, lab.SrvIP, lab.SrvIP, sc.mode, lab.Bridge)
	if sc.mode == "full" {
		fmt.Fprintf(&b, `  full:
    range: %s-%s
    netmask: 255.255.255.0
    router: %s
    lease: 10m
    leases: %s
`, lab.Host(100), lab.Host(150), lab.SrvIP, filepath.Join(dir, "leases.db"))
	}
	fmt.Fprintf(&b, `ipxe:
  dir: %s
  bios: undionly.kpxe
  efi64: snponly.efi
  httpboot: snponly.efi
menu:
  title: "pxewim e2e %[2]s"
  timeout: 1s
  default: %[3]s
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
      cmdline: "console=ttyS0 pxewim.e2e=%[2]s"
`, testenv.IPXEDir, sc.name, map[bool]string{true: "rescue", false: "shell"}[sc.useMenu])
	switch {
	case sc.useMenu:
	case sc.uuid != "":
		fmt.Fprintf(&b, "rules:\n  - match: { uuid: %q }\n    entry: rescue\n", sc.uuid)
	default:
		fmt.Fprintf(&b, "rules:\n  - match: { mac: %q }\n    entry: rescue\n", sc.mac())
	}
	return b.String()
}

func runScenario(t *testing.T, sc scenario) {
	requireVMLab(t)
	testenv.RequireTools(t, "dnsmasq", "ss")
	testenv.RequireFiles(t, "ipxe", filepath.Join(testenv.IPXEDir, "snponly.efi"), filepath.Join(testenv.IPXEDir, "ipxe.efi"))
	if sc.vm.Firmware == testenv.OVMF {
		testenv.RequireOVMF(t)
	}
	ctx := context.Background()
	t0 := time.Now()
	assets := mustAssets(t)
	pxewimBinary(t)  // build before the lab exists: a compile error fails fast
	dir := runDir(t) // before the lab: cleanups run LIFO, so processes stop before it goes
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: sc.subnet})
	store := storeWith(t, dir, assets)

	site := &testenv.Dnsmasq{Dir: dir, Name: "site-dnsmasq", Interface: lab.DHCPIf, RA: true}
	if sc.mode == "proxy" {
		site.Range = fmt.Sprintf("%s,%s", lab.Host(100), lab.Host(199))
		site.Router = lab.DHCPIP.String()
	}
	if _, err := site.Start(ctx, lab.DHCP); err != nil {
		t.Fatal(err)
	}
	capture := startCapture(t, ctx, lab, dir)
	d := startPxewim(t, ctx, lab, dir, sc.mode, sc.config(lab, store, dir))

	vm := sc.vm
	vm.Name, vm.MAC, vm.Dir, vm.UUID = sc.name, sc.mac(), dir, sc.uuid
	// "iPXE>": the shell, i.e. the menu default, i.e. the rule did not match.
	vm.FailOn = append(testenv.FatalConsoleLines(), "iPXE>")
	t.Logf("lab, dnsmasq, tcpdump and pxewim ready after %.1fs", time.Since(t0).Seconds())
	res, vmErr := testenv.RunVM(ctx, lab.Srv, vm, testenv.Marker, vmTimeout)
	pkts := stopCapture(t, capture)
	recs := d.stop(t)
	logRun(t, sc.name, res, pkts)
	if sc.uuid != "" {
		checkUUIDOnWire(t, sc, pkts)
	}
	if vmErr != nil {
		t.Fatalf("%v\n\npxewim log (last 40 lines):\n%s\nsite dnsmasq log (last 20 lines):\n%s",
			vmErr, dumpLog(recs, 40), testenv.Tail(site.Log(), 20))
	}
	// The menu (titled "pxewim e2e NAME") shows only when no rule sends the client to an entry.
	if menu := strings.Contains(res.Serial, "pxewim e2e "+sc.name); menu != sc.useMenu {
		t.Errorf("iPXE menu shown: %v, want %v (rule-matched clients boot without it)", menu, sc.useMenu)
	}
	if !strings.Contains(res.Serial, "pxewim: booting Rescue Linux") {
		t.Errorf("the console lacks pxewim's \"booting Rescue Linux\" line")
	}
	if !strings.Contains(res.MarkerLine, "pxewim.e2e="+sc.name) {
		t.Errorf("the kernel command line is not the config entry's: %q", res.MarkerLine)
	}
	// What the kernel unpacked is what went into tools.wim (/init prints the SHA-1s).
	if err := assets.CheckInitramfsReport(res.MarkerLine); err != nil {
		t.Error(err)
	}
	checkDecision(t, sc, recs)
	checkHTTP(t, sc, assets, recs)
	checkTFTP(t, sc, recs, pkts)
	checkDHCP(t, sc, lab, site, pkts)
	checkReplies(t, sc, recs)
	if sc.mode == "full" {
		// Leases live in the configured bbolt file, not only in memory.
		if fi, err := os.Stat(filepath.Join(dir, "leases.db")); err != nil || fi.Size() == 0 {
			t.Errorf("full mode: lease database %s missing or empty (%v)", filepath.Join(dir, "leases.db"), err)
		}
	}
	wantNoErrorLogs(t, recs)
}

// checkDecision: pxewim classified the first stage by option 93 and answered it.
func checkDecision(t *testing.T, sc scenario, recs []logRecord) {
	t.Helper()
	dec := filterLog(recs, "dhcp decision", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), sc.mac()) })
	if len(dec) == 0 {
		t.Errorf("no \"dhcp decision\" log line for %s:\n%s", sc.mac(), dumpLog(recs, 40))
		return
	}
	first := dec[0]
	if arch, _ := first.num("arch"); arch != int64(sc.arch) || first.str("firmware") != sc.firmware {
		t.Errorf("first decision: arch=%v firmware=%q, want arch=%d firmware=%q: %s",
			first["arch"], first.str("firmware"), sc.arch, sc.firmware, first)
	}
	if sc.httpBoot != (first.str("httpboot") == "true") {
		t.Errorf("first decision: httpboot=%v, want %v: %s", first["httpboot"], sc.httpBoot, first)
	}
	if first.str("file") == "" || first.str("noboot") == "true" {
		t.Errorf("first decision gave no boot file: %s", first)
	}
	for _, r := range dec {
		t.Logf("decision: arch=%v firmware=%s ipxe=%v httpboot=%v file=%s", r["arch"], r.str("firmware"), r["ipxe"], r["httpboot"], r.str("file"))
	}
}

// checkHTTP: the kernel and the initramfs left pxewim completely (bytes = their size), as did the
// HTTP-booted iPXE binary.
func checkHTTP(t *testing.T, sc scenario, a *testenv.Assets, recs []logRecord) {
	t.Helper()
	reqs := filterLog(recs, "http request", nil)
	want := map[string]int64{"kernel (tools.wim:1/boot/vmlinuz)": a.KernelSize, "initrd (tools.wim:1/boot/initrd)": a.InitrdSize}
	if sc.httpNBP != "" {
		want[sc.httpNBP] = fileSize(t, filepath.Join(testenv.IPXEDir, sc.httpNBP))
	}
	for what, size := range want {
		var found bool
		for _, r := range reqs {
			n, _ := r.num("bytes")
			st, _ := r.num("status")
			if r.str("method") == "GET" && n == size && (st == 200 || st == 206) {
				found = true
				t.Logf("HTTP %s: %s %s -> %d bytes, mac=%s ua=%q", what, r.str("method"), r.str("path"), n, r.str("mac"), r.str("user_agent"))
			}
		}
		if !found {
			t.Errorf("no complete HTTP download of %s (%d bytes); HTTP log:\n%s", what, size, dumpLog(reqs, 30))
		}
	}
}

// checkTFTP: the first-stage NBP went out completely over TFTP, per pxewim's log and the pcap.
func checkTFTP(t *testing.T, sc scenario, recs []logRecord, pkts []testenv.Packet) {
	t.Helper()
	if sc.tftpNBP == "" {
		if sc.httpBoot {
			for _, tr := range testenv.TFTPTransfers(pkts) {
				t.Errorf("UEFI HTTP Boot used TFTP: RRQ %q from %s", tr.File, tr.Client)
			}
		}
		return
	}
	size := fileSize(t, filepath.Join(testenv.IPXEDir, sc.tftpNBP))
	sent := filterLog(recs, "tftp: sent", func(r logRecord) bool { return strings.HasSuffix(r.str("path"), sc.tftpNBP) })
	if len(sent) == 0 {
		t.Errorf("no \"tftp: sent\" line for %s; TFTP lines:\n%s", sc.tftpNBP,
			dumpLog(filterLogPrefix(recs, "tftp"), 20))
	}
	for _, r := range sent {
		if n, _ := r.num("sent"); n != size {
			t.Errorf("TFTP %s: sent %d bytes, file has %d: %s", sc.tftpNBP, n, size, r)
		} else {
			t.Logf("TFTP %s: %d bytes, options %v, %s", r.str("path"), n, r["options"], time.Duration(mustNum(r, "duration")))
		}
	}
	if pkts == nil {
		return
	}
	var complete bool
	for _, tr := range testenv.TFTPTransfers(pkts) {
		if !strings.HasSuffix(tr.File, sc.tftpNBP) || tr.Bytes != size {
			continue
		}
		complete = true
		if sc.windowsize != "" && tr.OACK["windowsize"] != sc.windowsize {
			t.Errorf("capture: TFTP %s asked windowsize=%s, OACK %v (want windowsize=%s acknowledged)",
				tr.File, tr.Options["windowsize"], tr.OACK, sc.windowsize)
		}
	}
	if !complete {
		t.Errorf("capture: no complete TFTP transfer of %s (%d bytes)", sc.tftpNBP, size)
	}
}

func mustNum(r logRecord, key string) int64 {
	n, _ := r.num(key)
	return n
}

func filterLogPrefix(recs []logRecord, prefix string) []logRecord {
	var out []logRecord
	for _, r := range recs {
		if strings.HasPrefix(r.str("msg"), prefix) {
			out = append(out, r)
		}
	}
	return out
}

// checkUUIDOnWire: the firmware really sent the VM's UUID in option 97, so a uuid rule that
// does not match is pxewim's doing. Logs the wire bytes for the report.
func checkUUIDOnWire(t *testing.T, sc scenario, pkts []testenv.Packet) {
	t.Helper()
	if pkts == nil {
		return
	}
	var seen int
	for _, m := range testenv.DHCPMessages(pkts) {
		if m.OpCode != 1 || !strings.EqualFold(m.ClientHWAddr.String(), sc.mac()) {
			continue
		}
		seen++
		if got := m.ClientUUID(); got != sc.uuid {
			t.Errorf("%s sent option 97 = %q (wire % x), want the VM's UUID %s",
				m.ClassIdentifier(), got, m.Options.Get(dhcpv4.GenericOptionCode(97)), sc.uuid)
		}
	}
	if seen > 0 {
		t.Logf("option 97 on the wire decodes (SMBIOS byte order) to %s in all %d client messages", sc.uuid, seen)
	}
}

// checkReplies: pxewim's own account of its DHCP replies to the VM (works without tcpdump):
// proxy mode never hands out an address, full mode does.
func checkReplies(t *testing.T, sc scenario, recs []logRecord) {
	t.Helper()
	replies := filterLog(recs, "replied", func(r logRecord) bool { return strings.EqualFold(r.str("mac"), sc.mac()) })
	var withAddr int
	for _, r := range replies {
		if yi := r.str("yiaddr"); yi != "" && yi != "0.0.0.0" {
			withAddr++
		}
	}
	switch {
	case len(replies) == 0:
		t.Errorf("pxewim logged no \"replied\" line for %s:\n%s", sc.mac(), dumpLog(recs, 30))
	case sc.mode == "proxy" && withAddr > 0:
		t.Errorf("proxy mode: %d of pxewim's %d replies carried an address:\n%s", withAddr, len(replies), dumpLog(replies, 10))
	case sc.mode == "full" && withAddr == 0:
		t.Errorf("full mode: none of pxewim's %d replies carried an address:\n%s", len(replies), dumpLog(replies, 10))
	}
}

// checkDHCP: on the wire, who handed out the address and who sent the boot information.
func checkDHCP(t *testing.T, sc scenario, lab *testenv.Lab, site *testenv.Dnsmasq, pkts []testenv.Packet) {
	t.Helper()
	if sc.mode == "proxy" && !strings.Contains(site.Log(), "DHCPACK("+lab.DHCPIf+")") {
		t.Errorf("site dnsmasq never acknowledged an address:\n%s", testenv.Tail(site.Log(), 20))
	}
	if pkts == nil {
		return
	}
	var fromPxewim, addrFromPxewim, fromSite, httpURL, ack4011 int
	for _, m := range testenv.DHCPMessages(pkts) {
		if m.Src == netip.AddrPortFrom(lab.SrvIP, 4011) && m.MessageType().String() == "ACK" &&
			(m.BootFileName != "" || m.BootFileNameOption() != "") {
			ack4011++
		}
		if m.OpCode != 2 || !strings.EqualFold(m.ClientHWAddr.String(), sc.mac()) {
			continue
		}
		yi, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
		switch m.Src.Addr() {
		case lab.SrvIP:
			fromPxewim++
			if !yi.IsUnspecified() {
				addrFromPxewim++
				if sc.mode == "full" && (yi.Compare(lab.Host(100)) < 0 || yi.Compare(lab.Host(150)) > 0) {
					t.Errorf("full mode handed out %s, outside the pool: %s", yi, m.Summary())
				}
			}
			if sc.httpBoot && m.ClassIdentifier() == "HTTPClient" {
				file := m.BootFileNameOption()
				if file == "" {
					file = m.BootFileName
				}
				if strings.HasPrefix(file, "http://"+lab.SrvIP.String()) {
					httpURL++
				}
			}
		case lab.DHCPIP:
			fromSite++
		}
	}
	switch sc.mode {
	case "proxy":
		if fromPxewim == 0 || addrFromPxewim != 0 || fromSite == 0 {
			t.Errorf("proxy mode on the wire: %d replies from pxewim (%d with an address, want 0), %d from the site DHCP (want > 0)",
				fromPxewim, addrFromPxewim, fromSite)
		}
	case "full":
		if addrFromPxewim == 0 || fromSite != 0 {
			t.Errorf("full mode on the wire: %d address replies from pxewim (want > 0), %d from the site (want 0)", addrFromPxewim, fromSite)
		}
	}
	if sc.port4011 && ack4011 == 0 {
		t.Errorf("no ACK with a boot file from %s:4011 (the firmware's boot-server request went unanswered)", lab.SrvIP)
	}
	if sc.httpBoot && httpURL == 0 {
		t.Errorf("no reply from pxewim with vendor class HTTPClient and an http://%s/... URL", lab.SrvIP)
	}
}
