package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/internal/testenv"
)

// IPv6-only network boot: the lab's IPv6 prefix (fd77:N::/64), no DHCPv4 server anywhere.
//
// Proxy mode: the site's dnsmasq (netns DHCP) sends router advertisements (M flag: stateful
// DHCPv6) and hands out addresses from fd77:N::100-1ff; pxewim (dhcp.v6 proxy) answers only
// the firmware. iPXE has no proxy DHCPv6 (see the dhcp package doc), so the site gives clients
// that send a user class (iPXE does, EDK2 does not) option 59 with pxewim's script URL: the
// line README's IPv6 section tells sites to add.
//
// OVMF (Debian's 2022.11) has PXEv6 and HTTPv6 boot options; IPv4PXESupport=n (fw_cfg) drops
// PXEv4, so PXEv6 is tried first.

type v6scenario struct {
	name     string
	mode     string // proxy | full
	subnet   string // the lab's IPv4 /24 (unused by the clients), which also names fd77:N::/64
	httpBoot bool
	// dualStack: the site hands out IPv4 too and pxewim runs DHCPv4 proxy beside DHCPv6 proxy;
	// OVMF keeps its default order (PXEv4 first).
	dualStack bool
	// winpe: the menu's default is a winpe entry (boot.wim built by wimlib, the wimboot.efi
	// stand-in as tools/wimboot); the run ends when the stand-in has read every file iPXE
	// handed it, boot.wim included, all fetched over IPv6.
	winpe bool
	// uuid is the VM's SMBIOS UUID: EDK2 and iPXE then send a DUID-UUID, which pxewim must read
	// as the UUID QEMU was given (what rules match).
	uuid string
}

func TestIPv6ProxyOVMFPXE(t *testing.T) {
	runV6Scenario(t, v6scenario{name: "ipv6-proxy-ovmf-pxe", mode: "proxy", subnet: "10.77.81",
		uuid: "6b1e3f2a-4b1d-4c5e-9f00-0123456789ab"})
}

func TestIPv6ProxyOVMFHTTPBoot(t *testing.T) {
	runV6Scenario(t, v6scenario{name: "ipv6-proxy-ovmf-httpboot", mode: "proxy", subnet: "10.77.82", httpBoot: true})
}

// TestDualStackOVMFPXE: IPv4 and IPv6 on the link, both DHCP servers of pxewim in proxy
// mode. OVMF boots PXEv4 first (its default order); iPXE then configures IPv4 and IPv6 (the
// site gives it an IPv6 address and the script URL over DHCPv6 too) and boots the menu.
func TestDualStackOVMFPXE(t *testing.T) {
	runV6Scenario(t, v6scenario{name: "dualstack-ovmf-pxe", mode: "proxy", subnet: "10.77.84", dualStack: true})
}

// TestIPv6WinPEOVMFPXE: OVMF PXEv6 (proxy) -> iPXE -> a winpe entry: pxewim's wimboot script
// over IPv6, and the wimboot.efi stand-in reads bootmgfw.efi, BCD, boot.sdi and boot.wim as
// pxewim served them (compared with wimlib-imagex's extraction and a curl of the served
// boot.wim over IPv6).
func TestIPv6WinPEOVMFPXE(t *testing.T) {
	runV6Scenario(t, v6scenario{name: "ipv6-winpe-ovmf-pxe", mode: "proxy", subnet: "10.77.85", winpe: true})
}

// TestIPv6FullOVMFPXE: pxewim is the only DHCPv6 server (dhcp.v6 full); dnsmasq sends router
// advertisements only (M flag, the prefix on-link, no addresses of its own).
func TestIPv6FullOVMFPXE(t *testing.T) {
	runV6Scenario(t, v6scenario{name: "ipv6-full-ovmf-pxe", mode: "full", subnet: "10.77.83"})
}

func (sc v6scenario) mac() string {
	return "52:54:00:77:" + strings.Split(sc.subnet, ".")[2] + ":6a"
}

func (sc v6scenario) config(lab *testenv.Lab, store, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `store: %s
listen:
  http: ":80"
  tftp: ":69"
dhcp:
  mode: %s
  interfaces: [%s]
  v6:
    mode: %s
`, store, map[bool]string{true: "proxy", false: "off"}[sc.dualStack], lab.Bridge, sc.mode)
	if sc.mode == "full" {
		p := lab.SrvIP6.As16()
		lo, hi := p, p
		lo[14], lo[15], hi[14], hi[15] = 0x02, 0x00, 0x02, 0x40
		fmt.Fprintf(&b, "    full:\n      range: %s-%s\n      lease: 10m\n  full:\n    range: %s-%s\n    netmask: 255.255.255.0\n    leases: %s\n",
			netip.AddrFrom16(lo), netip.AddrFrom16(hi), lab.Host(100), lab.Host(150), filepath.Join(dir, "leases.db"))
	}
	fmt.Fprintf(&b, `ipxe:
  dir: %s
  efi64: snponly.efi
  httpboot: snponly.efi
menu:
  title: "pxewim e2e %s"
  timeout: 1s
  default: %s
entries:
  - name: rescue
    title: "Rescue Linux from tools.wim"
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: [tools.wim:1/boot/initrd]
      cmdline: "console=ttyS0 pxewim.e2e=%s"
`, testenv.IPXEDir, sc.name, map[bool]string{true: "pe", false: "rescue"}[sc.winpe], sc.name)
	if sc.winpe {
		b.WriteString(`  - name: pe
    title: WinPE over IPv6
    winpe:
      image: boot.wim
winpe:
  wimboot: tools/wimboot
`)
	}
	return b.String()
}

func runV6Scenario(t *testing.T, sc v6scenario) {
	requireVMLab(t)
	testenv.RequireTools(t, "dnsmasq", "ss")
	testenv.RequireFiles(t, "ipxe", filepath.Join(testenv.IPXEDir, "snponly.efi"))
	testenv.RequireOVMF(t)
	ctx := context.Background()
	assets := mustAssets(t)
	pxewimBinary(t)
	dir := runDir(t)
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: sc.subnet})
	store := storeWith(t, dir, assets)
	var standin []byte
	if sc.winpe {
		standin = testenv.WimbootEFIStandIn(t) // skips without gcc or gnu-efi
		testenv.BuildWinPE(t, filepath.Join(store, "boot.wim"), []testenv.WinPEImage{{Name: "Microsoft Windows PE (amd64)"}}, "--compress=LZX")
		if err := os.MkdirAll(filepath.Join(store, "tools"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(store, "tools", "wimboot"), standin, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prefix := netip.PrefixFrom(lab.SrvIP6, 64).Masked()

	// The site: RA with the M flag and the prefix on-link. In proxy mode it also hands out
	// addresses and gives iPXE (user class present) the script URL; in full mode only the RA.
	site := &testenv.Dnsmasq{Dir: dir, Name: "site-dnsmasq", Interface: lab.DHCPIf}
	site.Extra = []string{"enable-ra", "ra-param=" + lab.DHCPIf + ",10,600"}
	if sc.mode == "proxy" {
		p := lab.DHCPIP6.As16()
		lo, hi := p, p
		lo[14], lo[15], hi[14], hi[15] = 0x01, 0x00, 0x01, 0xff
		site.Extra = append(site.Extra,
			fmt.Sprintf("dhcp-range=%s,%s,64,10m", netip.AddrFrom16(lo), netip.AddrFrom16(hi)),
			"dhcp-match=set:ipxe,option6:15",
			fmt.Sprintf("dhcp-option=tag:ipxe,option6:bootfile-url,http://[%s]/boot.ipxe", lab.SrvIP6))
	} else {
		// RA only, with M set (the addresses come from pxewim): a stateful range on a prefix
		// dnsmasq serves nowhere would not set M, so ra-names/ra-only cannot; "ra-stateless"
		// sets O only. dnsmasq sets M for a constructor range marked ra-only? No: use a
		// zero-size stateful range that dnsmasq never hands out from (a reserved address).
		p := lab.DHCPIP6.As16()
		one := p
		one[14], one[15] = 0xff, 0xfe
		site.Extra = append(site.Extra,
			fmt.Sprintf("dhcp-range=%s,%s,64,10m", netip.AddrFrom16(one), netip.AddrFrom16(one)),
			"dhcp-host=id:00:00:00:00,["+netip.AddrFrom16(one).String()+"]", // never a real client's
			"dhcp-ignore=tag:!known")
	}
	if sc.dualStack {
		site.Range = fmt.Sprintf("%s,%s", lab.Host(100), lab.Host(199))
		site.Router = lab.DHCPIP.String()
	}
	if _, err := site.Start(ctx, lab.DHCP); err != nil {
		t.Fatal(err)
	}
	siteLL := linkLocal(t, lab.DHCP, lab.DHCPIf)
	capture := startCapture(t, ctx, lab, dir)
	d := startPxewim6(t, ctx, lab, dir, sc.config(lab, store, dir), sc.dualStack)

	vm := testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(),
		FwCfg: []testenv.FwCfg{{Name: "opt/org.tianocore/IPv4PXESupport", Value: "n"}}}
	switch {
	case sc.httpBoot:
		vm.FwCfg = testenv.HTTPBootOnly()
	case sc.dualStack:
		vm.FwCfg = nil
	}
	vm.Name, vm.MAC, vm.Dir, vm.UUID = sc.name, sc.mac(), dir, sc.uuid
	vm.FailOn = append(testenv.FatalConsoleLines(), "iPXE>")
	if sc.httpBoot {
		// OVMF tries UEFI HTTPv4 first (no fw_cfg switch turns it off alone): its DHCPv4 times
		// out (~60 s, "failed to load ... HTTPv4") and then HTTPv6 runs. Only that failure is
		// expected.
		vm.FailOn = slices.DeleteFunc(vm.FailOn, func(s string) bool { return s == "BdsDxe: failed to load" })
	}
	marker := testenv.Marker
	if sc.winpe {
		marker = testenv.EFIStandInDone
		vm.FailOn = append(vm.FailOn, "pxewim: boot failed")
	}
	res, vmErr := testenv.RunVM(ctx, lab.Srv, vm, marker, 2*vmTimeout)
	served := filepath.Join(dir, "served-boot.wim")
	if sc.winpe && vmErr == nil {
		// Fetch boot.wim again, over IPv6, at the path the client used, while pxewim runs.
		if recs := filterLog(readLog(t, d.logPath), "http request", func(r logRecord) bool {
			st, _ := r.num("status")
			return st == 200 && strings.HasSuffix(r.str("path"), "/boot.wim")
		}); len(recs) > 0 {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			if out, err := lab.Srv.Exec(cctx, "curl", "-g", "-sSf", "-o", served, fmt.Sprintf("http://[%s]%s", lab.SrvIP6, recs[0].str("path"))); err != nil {
				t.Errorf("curl boot.wim over IPv6: %v %s", err, out)
			}
			cancel()
		}
	}
	var pkts []packet6
	if capture != nil {
		stopCapture(t, capture)
		pkts = readPcap6(t, capture.Path)
	}
	recs := d.stop(t)
	logRun6(t, sc.name, res, pkts, siteLL)
	if vmErr != nil {
		t.Fatalf("%v\n\npxewim log (last 50 lines):\n%s\nsite dnsmasq log (last 30 lines):\n%s", vmErr, dumpLog(recs, 50), testenv.Tail(site.Log(), 30))
	}
	if sc.winpe {
		checkStandIn6(t, res, filepath.Join(store, "boot.wim"), served)
	} else {
		if !strings.Contains(res.Serial, "pxewim: booting Rescue Linux") || !strings.Contains(res.MarkerLine, "pxewim.e2e="+sc.name) {
			t.Errorf("not the config's rescue entry: %q", res.MarkerLine)
		}
		if err := assets.CheckInitramfsReport(res.MarkerLine); err != nil {
			t.Error(err)
		}
	}
	if !sc.httpBoot {
		wantTFTPSent(t, recs, "ipxe/snponly.efi", fileSize(t, filepath.Join(testenv.IPXEDir, "snponly.efi")))
	}
	wantNoErrorLogs(t, recs)
	switch {
	case capture == nil:
	case sc.dualStack:
		checkDualStack(t, pkts, recs, siteLL, prefix)
	default:
		checkV6Exchanges(t, sc, pkts, siteLL, prefix, lab.SrvIP6)
	}
}

// checkStandIn6: the wimboot.efi stand-in read bootmgfw.efi, BCD and boot.sdi with the bytes of
// the source image and boot.wim with the bytes pxewim serves.
func checkStandIn6(t *testing.T, res *testenv.VMResult, src, served string) {
	t.Helper()
	if !strings.Contains(res.Serial, "pxewim: booting WinPE over IPv6") {
		t.Errorf("console lacks the entry's \"booting WinPE over IPv6\" line")
	}
	rep, err := testenv.ParseEFIStandIn(res.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Done || len(rep.Errors) > 0 {
		t.Fatalf("stand-in did not read every file (errors %q):\n%s", rep.Errors, testenv.Tail(res.Serial, 30))
	}
	wim, err := os.ReadFile(served)
	if err != nil {
		t.Fatalf("boot.wim as served: %v", err)
	}
	want := map[string][]byte{
		"bootmgfw.efi": testenv.WimExtract(t, src, 1, "Windows/Boot/EFI/bootmgfw.efi"),
		"BCD":          testenv.WimExtract(t, src, 1, "Windows/Boot/DVD/EFI/BCD"),
		"boot.sdi":     testenv.WimExtract(t, src, 1, "Windows/Boot/DVD/EFI/boot.sdi"),
		"boot.wim":     wim,
	}
	for name, b := range want {
		sum := sha1.Sum(b)
		got, ok := rep.ByName(name)
		switch {
		case !ok:
			t.Errorf("%s: not among the files iPXE handed the stand-in", name)
		case got.Size != int64(len(b)) || got.SHA1 != hex.EncodeToString(sum[:]):
			t.Errorf("%s: the stand-in read %d bytes, SHA-1 %s; want %d bytes, %x", name, got.Size, got.SHA1, len(b), sum)
		default:
			t.Logf("stand-in read %-12s %9d bytes, as served", name, got.Size)
		}
	}
}

// checkDualStack: the firmware took pxewim's DHCPv4 proxy answer (the log's decision for the
// PXE client), and iPXE also configured IPv6: it got an address in the lab prefix from the site
// over DHCPv6, which pxewim's DHCPv6 proxy (running beside its DHCPv4) did not disturb.
func checkDualStack(t *testing.T, pkts []packet6, recs []logRecord, siteLL netip.Addr, prefix netip.Prefix) {
	t.Helper()
	v4 := filterLog(recs, "dhcp decision", func(r logRecord) bool { return r.str("firmware") == "efi64" && r.str("file") != "" })
	if len(v4) == 0 {
		t.Error("no DHCP decision for the UEFI client in pxewim's log")
	}
	var got netip.Addr
	for _, m := range dhcp6Messages(pkts) {
		if m.Src.Addr() != siteLL || m.msg.MessageType != dhcpv6.MessageTypeReply {
			continue
		}
		if ia := m.msg.Options.OneIANA(); ia != nil && ia.Options.OneAddress() != nil {
			got, _ = netip.AddrFromSlice(ia.Options.OneAddress().IPv6Addr)
		}
	}
	if !prefix.Contains(got.Unmap()) {
		t.Errorf("no DHCPv6 address in %v from the site on the wire (got %v): iPXE did not configure IPv6", prefix, got)
	}
	for _, m := range dhcp6Messages(pkts) {
		if m.Src.Port() == 547 && m.Src.Addr() != siteLL && m.msg.Options.OneIANA() != nil {
			t.Errorf("pxewim's DHCPv6 proxy sent an IA_NA: %v", m.msg)
		}
	}
}

// startPxewim6 runs `pxewim serve` with dhcp.v6 in lab.Srv and waits for 547, 69 and 80.
func startPxewim6(t *testing.T, ctx context.Context, lab *testenv.Lab, dir, cfg string, v4 bool) *daemon {
	t.Helper()
	conf := filepath.Join(dir, "pxewim.yaml")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{logPath: filepath.Join(dir, "pxewim.log")}
	p, err := lab.Srv.Start("pxewim", d.logPath, pxewimBinary(t), "serve", "--config", conf, "--log-format", "json", "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	d.proc = p
	for _, l := range []struct {
		proto string
		port  int
	}{{"udp", 547}, {"udp", 4011}, {"udp", 69}, {"tcp", 80}, {"udp", map[bool]int{true: 67, false: 547}[v4]}} {
		if err := testenv.WaitListening(ctx, lab.Srv, l.proto, l.port, 15*time.Second); err != nil {
			out, _ := os.ReadFile(d.logPath)
			_ = p.Stop(2 * time.Second)
			t.Fatalf("pxewim serve did not come up: %v\nconfig:\n%s\nlog:\n%s", err, cfg, out)
		}
	}
	return d
}

func linkLocal(t *testing.T, ns *testenv.Netns, dev string) netip.Addr {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := ns.IP("-6", "-o", "addr", "show", "dev", dev, "scope", "link")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				return p.Addr()
			}
		}
	}
	t.Fatalf("no link-local address on %s", dev)
	return netip.Addr{}
}

// packet6 is one captured IPv6/UDP datagram.
type packet6 struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
}

// readPcap6 reads the IPv6 UDP datagrams of a classic pcap of Ethernet frames (testenv's
// reader keeps IPv4 only). Extension headers other than none are skipped.
func readPcap6(t *testing.T, path string) []packet6 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 24 {
		t.Fatalf("read pcap: %v", err)
	}
	bo := binary.ByteOrder(binary.LittleEndian)
	nanos := false
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		nanos = true
	default:
		bo = binary.BigEndian
		nanos = binary.BigEndian.Uint32(data) == 0xa1b23c4d
	}
	var out []packet6
	for off := 24; off+16 <= len(data); {
		sec, frac, incl := bo.Uint32(data[off:]), bo.Uint32(data[off+4:]), int(bo.Uint32(data[off+8:]))
		off += 16
		if incl < 0 || off+incl > len(data) {
			break
		}
		f := data[off : off+incl]
		off += incl
		if len(f) < 14+40+8 || binary.BigEndian.Uint16(f[12:]) != 0x86dd {
			continue
		}
		ip := f[14:]
		if ip[0]>>4 != 6 || ip[6] != 17 {
			continue
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) || plen < 8 {
			continue
		}
		udp := ip[40 : 40+plen]
		ns := int64(frac) * 1000
		if nanos {
			ns = int64(frac)
		}
		out = append(out, packet6{Time: time.Unix(int64(sec), ns),
			Src:     netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip[8:24])), binary.BigEndian.Uint16(udp)),
			Dst:     netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip[24:40])), binary.BigEndian.Uint16(udp[2:])),
			Payload: udp[8:]})
	}
	return out
}

type dhcp6Msg struct {
	packet6
	msg *dhcpv6.Message
}

func dhcp6Messages(pkts []packet6) []dhcp6Msg {
	var out []dhcp6Msg
	for _, p := range pkts {
		if p.Src.Port() != 546 && p.Src.Port() != 547 && p.Src.Port() != 4011 && p.Dst.Port() != 547 && p.Dst.Port() != 4011 {
			continue
		}
		if m, err := dhcpv6.MessageFromBytes(p.Payload); err == nil {
			out = append(out, dhcp6Msg{p, m})
		}
	}
	return out
}

func logRun6(t *testing.T, name string, res *testenv.VMResult, pkts []packet6, siteLL netip.Addr) {
	t.Helper()
	if res == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: marker after %.1fs (QEMU wall %.1fs): %s\n", name, res.TimeToMarker.Seconds(), res.Wall.Seconds(), res.MarkerLine)
	for _, m := range dhcp6Messages(pkts) {
		who := ""
		if m.Src.Addr() == siteLL {
			who = " (site)"
		}
		fmt.Fprintf(&b, "  %6.2fs %v -> %v%s %s ia_na=%v url=%q\n", m.Time.Sub(res.Started).Seconds(), m.Src, m.Dst, who,
			m.msg.MessageType, m.msg.Options.OneIANA() != nil, m.msg.Options.BootFileURL())
	}
	t.Log(b.String())
}

// checkV6Exchanges asserts the DHCPv6 exchanges on the wire: the firmware's Solicit carries
// options 16 and 61; pxewim's answers to it carry option 59 for this server and, in proxy mode,
// option 16 and no IA_NA (the address came from the site, whose Advertise has IA_NA); PXE
// clients asked pxewim on port 4011 and got option 59 back from the URL's address.
func checkV6Exchanges(t *testing.T, sc v6scenario, pkts []packet6, siteLL netip.Addr, prefix netip.Prefix, srv netip.Addr) {
	t.Helper()
	msgs := dhcp6Messages(pkts)
	var fwSolicit, ours, site, req4011, rep4011 int
	wantClass := "PXEClient"
	if sc.httpBoot {
		wantClass = "HTTPClient"
	}
	for _, m := range msgs {
		switch {
		case m.msg.MessageType == dhcpv6.MessageTypeSolicit:
			vc := m.msg.Options.VendorClass(343)
			if len(vc) > 0 && strings.HasPrefix(string(vc[0]), wantClass) {
				fwSolicit++
				if len(m.msg.Options.ArchTypes()) == 0 {
					t.Errorf("firmware Solicit without option 61: %v", m.msg)
				}
			}
		case m.Src.Port() == 547 && m.Src.Addr() == siteLL:
			if m.msg.MessageType == dhcpv6.MessageTypeAdvertise && m.msg.Options.OneIANA() != nil {
				site++
			}
		case m.Src.Port() == 547 && (m.msg.MessageType == dhcpv6.MessageTypeAdvertise || m.msg.MessageType == dhcpv6.MessageTypeReply):
			u := m.msg.Options.BootFileURL()
			if u == "" {
				continue
			}
			if !strings.Contains(u, "["+srv.String()+"]") {
				t.Errorf("pxewim's option 59 %q does not name %v", u, srv)
			}
			if vc := m.msg.Options.VendorClass(343); m.msg.Options.UserClasses() == nil && len(vc) > 0 && string(vc[0]) != wantClass && !strings.Contains(u, "boot.ipxe") {
				t.Errorf("pxewim's vendor class %q, want %q", vc[0], wantClass)
			}
			if sc.mode == "proxy" {
				if m.msg.Options.OneIANA() != nil {
					t.Errorf("pxewim's proxy %s carries IA_NA", m.msg.MessageType)
				}
				if len(m.msg.Options.VendorClass(343)) == 0 {
					t.Errorf("pxewim's proxy %s lacks option 16", m.msg.MessageType)
				}
			} else if ia := m.msg.Options.OneIANA(); ia == nil || ia.Options.OneAddress() == nil {
				t.Errorf("full mode %s without an address", m.msg.MessageType)
			} else if a, _ := netip.AddrFromSlice(ia.Options.OneAddress().IPv6Addr); !prefix.Contains(a) {
				t.Errorf("full mode address %v outside %v", a, prefix)
			}
			ours++
		case m.Dst.Port() == 4011 && m.msg.MessageType == dhcpv6.MessageTypeRequest:
			req4011++
		case m.Src.Port() == 4011 && m.msg.MessageType == dhcpv6.MessageTypeReply:
			if m.Src.Addr() != srv || m.msg.Options.BootFileURL() == "" {
				t.Errorf("port 4011 reply from %v with url %q", m.Src, m.msg.Options.BootFileURL())
			}
			rep4011++
		}
	}
	t.Logf("firmware Solicits %d, pxewim answers with option 59 %d, site Advertises with IA_NA %d, 4011 requests %d replies %d",
		fwSolicit, ours, site, req4011, rep4011)
	if sc.uuid != "" {
		uuids := 0
		for _, m := range msgs {
			if m.msg.MessageType != dhcpv6.MessageTypeSolicit {
				continue
			}
			if _, ok := m.msg.Options.ClientID().(*dhcpv6.DUIDUUID); !ok {
				continue
			}
			c, ok, why := dhcp.Classify6(m.msg, m.Src.Addr())
			if !ok {
				continue // EDK2's Ip6Config solicits without a vendor class
			}
			uuids++
			t.Logf("DUID-UUID of a Solicit (ipxe=%v) reads as %s", c.IPXE, c.UUID)
			if c.UUID != sc.uuid {
				t.Errorf("DUID-UUID of a Solicit (ipxe=%v) reads as %q, want QEMU's -uuid %q (%s)", c.IPXE, c.UUID, sc.uuid, why)
			}
		}
		if uuids == 0 {
			t.Error("no netboot Solicit with a DUID-UUID although the VM has an SMBIOS UUID")
		}
	}
	if fwSolicit == 0 {
		t.Errorf("no %s Solicit with option 16 on the wire", wantClass)
	}
	if ours == 0 {
		t.Error("no answer from pxewim with option 59 on the wire")
	}
	if sc.mode == "proxy" && site == 0 {
		t.Error("no site Advertise with IA_NA on the wire")
	}
	if sc.mode == "proxy" && !sc.httpBoot && (req4011 == 0 || rep4011 == 0) {
		t.Error("the PXE firmware did not ask pxewim on port 4011, or got no reply")
	}
}
