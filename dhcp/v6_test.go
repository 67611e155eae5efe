package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pxewim/pxewim/boot"
)

var (
	server6   = netip.MustParseAddr("fd00:77::1")
	clientLL6 = netip.MustParseAddrPort("[fe80::5054:ff:fe12:3456]:546")
	macOVMF6  = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
)

// testPolicy6 is testPolicy with bracketed IPv6 literals.
type testPolicy6 struct{}

func (testPolicy6) Decide(_ context.Context, c boot.Client, srv netip.Addr) (Decision, error) {
	base := "http://" + net.JoinHostPort(srv.String(), "8080")
	switch {
	case c.IPXE:
		return Decision{BootFile: base + "/boot.ipxe?mac=" + c.MAC.String()}, nil
	case c.HTTPBoot:
		return Decision{BootFile: base + "/files/ipxe/snponly.efi"}, nil
	case c.Firmware.IsEFI():
		return Decision{BootFile: "ipxe/snponly.efi"}, nil
	}
	return Decision{NoBoot: true}, nil
}

// edk2Solicit6 is a Solicit as EDK2's PXE (vendor class "PXEClient:Arch:00007:UNDI:003000") or
// HTTP Boot (arch 16, "HTTPClient:...") driver sends it: DUID-UUID, IA_NA, ORO 59/60, option 62
// (UNDI), arch, vendor class, elapsed time (PxeBcBuildDhcp6Options, Dhcp6SendSolicitMsg).
func edk2Solicit6(http bool) *dhcpv6.Message {
	class, arch := "PXEClient:Arch:00007:UNDI:003000", iana.EFI_X86_64
	if http {
		class, arch = "HTTPClient:Arch:00016:UNDI:003000", iana.Arch(16)
	}
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDUUID{UUID: [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}}))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	ia := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 7}}
	m.AddOption(ia)
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionBootfileURL, dhcpv6.OptionBootfileParam))
	m.AddOption(&dhcpv6.OptionGeneric{OptionCode: 62, OptionData: []byte{1, 3, 0}})
	m.AddOption(dhcpv6.OptClientArchType(arch))
	m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(class)}})
	return m
}

// ipxeSolicit6 is iPXE's Solicit (dhcpv6_tx): DUID-LL, IA_NA, ORO, user class "iPXE", no
// vendor class and no architecture.
func ipxeSolicit6(mt dhcpv6.MessageType) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: mt, TransactionID: dhcpv6.TransactionID{4, 5, 6}}
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: macOVMF6}))
	if mt == dhcpv6.MessageTypeSolicit {
		m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{9, 9, 9, 9}})
	}
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionBootfileURL))
	m.AddOption(&dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte("iPXE")}})
	m.AddOption(dhcpv6.OptElapsedTime(0))
	return m
}

func handler6For(t *testing.T, mode Mode) *handler6 {
	h := &handler6{mode: mode, policy: testPolicy6{}, log: quietLog(),
		serverID: &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}}
	if mode == ModeFull {
		full, err := newFullState6(FullConfig6{PoolStart: netip.MustParseAddr("fd00:77::100"),
			PoolEnd: netip.MustParseAddr("fd00:77::102"), LeaseDB: filepath.Join(t.TempDir(), "leases.db"),
			DNS: []netip.Addr{server6}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { full.close() })
		h.full = full
	}
	return h
}

// roundTrip sends m through the handler and re-parses the reply from its bytes, as a client would.
func roundTrip(t *testing.T, h *handler6, m *dhcpv6.Message, src netip.AddrPort, pxePort bool) (*dhcpv6.Message, error) {
	t.Helper()
	in, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.handle(context.Background(), request6{msg: in, src: src, server: server6, iface: "br0", pxePort: pxePort})
	if err != nil || resp == nil {
		return nil, err
	}
	if resp.dst != src {
		t.Errorf("reply goes to %v, want the sender %v", resp.dst, src)
	}
	out, err := dhcpv6.MessageFromBytes(resp.msg.ToBytes())
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if out.TransactionID != m.TransactionID {
		t.Errorf("transaction id %x, want %x", out.TransactionID, m.TransactionID)
	}
	if !out.Options.ClientID().Equal(m.Options.ClientID()) {
		t.Errorf("client id not echoed")
	}
	if out.Options.ServerID() == nil {
		t.Errorf("no server id")
	}
	return out, nil
}

// edk2Class reads the reply's option 16 as EDK2 does: OpLen >= 13/16, enterprise 343 in the
// first 4 bytes, the class string at byte 6 (PxeBcParseDhcp6Packet, HttpBootParseDhcp6Packet).
func edk2Class(t *testing.T, r *dhcpv6.Message) string {
	t.Helper()
	o := r.GetOneOption(dhcpv6.OptionVendorClass)
	if o == nil {
		t.Fatal("no vendor class (option 16): EDK2 takes the offer for a plain DHCPv6 offer, not a PXE/HTTP one")
	}
	b := o.ToBytes()
	if len(b) < 13 || b[0] != 0 || b[1] != 0 || b[2] != 1 || b[3] != 0x57 {
		t.Fatalf("vendor class bytes %x: want enterprise 343 first", b)
	}
	return string(b[6:])
}

func TestProxy6PXEAdvertise(t *testing.T) {
	h := handler6For(t, ModeProxy)
	r, err := roundTrip(t, h, edk2Solicit6(false), clientLL6, false)
	if err != nil || r == nil {
		t.Fatalf("no Advertise: %v", err)
	}
	if r.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("type %s", r.MessageType)
	}
	if r.Options.OneIANA() != nil {
		t.Error("proxy Advertise carries IA_NA: EDK2 would take it for an address offer")
	}
	if got := edk2Class(t, r); got != "PXEClient" {
		t.Errorf("vendor class %q", got)
	}
	if got, want := r.Options.BootFileURL(), "tftp://[fd00:77::1]/ipxe/snponly.efi"; got != want {
		t.Errorf("option 59 = %q, want %q", got, want)
	}
}

func TestProxy6HTTPBootAdvertise(t *testing.T) {
	h := handler6For(t, ModeProxy)
	r, err := roundTrip(t, h, edk2Solicit6(true), clientLL6, false)
	if err != nil || r == nil {
		t.Fatalf("no Advertise: %v", err)
	}
	if r.Options.OneIANA() != nil {
		t.Error("proxy Advertise carries IA_NA")
	}
	if got := edk2Class(t, r); got != "HTTPClient" {
		t.Errorf("vendor class %q", got)
	}
	if got, want := r.Options.BootFileURL(), "http://[fd00:77::1]:8080/files/ipxe/snponly.efi"; got != want {
		t.Errorf("option 59 = %q, want %q", got, want)
	}
}

func TestProxy6IgnoresOthers(t *testing.T) {
	h := handler6For(t, ModeProxy)
	plain := edk2Solicit6(false)
	plain.Options.Del(dhcpv6.OptionVendorClass)
	plain.Options.Del(dhcpv6.OptionClientArchType)
	other := edk2Solicit6(false)
	other.MessageType = dhcpv6.MessageTypeRequest
	other.AddOption(dhcpv6.OptServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 9, 9, 9, 9, 9}}))
	noArch := edk2Solicit6(false)
	noArch.Options.Del(dhcpv6.OptionClientArchType)
	wrongVendor := edk2Solicit6(false)
	wrongVendor.Options.Del(dhcpv6.OptionVendorClass)
	wrongVendor.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte("MSFT 5.0")}})
	debianIPXE := edk2Solicit6(false) // as captured from Debian's snponly.efi: 16, 61, 62 and user class
	debianIPXE.AddOption(&dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte("iPXE")}})
	for name, m := range map[string]*dhcpv6.Message{"plain host": plain, "request for the site": other, "Debian iPXE solicit": debianIPXE,
		"no arch": noArch, "other vendor class": wrongVendor, "iPXE solicit": ipxeSolicit6(dhcpv6.MessageTypeSolicit)} {
		r, err := roundTrip(t, h, m, clientLL6, false)
		if r != nil {
			t.Errorf("%s: answered with %s", name, r.MessageType)
		}
		if !errors.Is(err, errIgnored) {
			t.Errorf("%s: err %v, want errIgnored", name, err)
		}
	}
}

// TestProxy6BootServer is EDK2's PxeBcRequestBootService: a Request with our server id from
// [address]:4011 to port 4011, answered with a Reply carrying option 59 back to the sender.
func TestProxy6BootServer(t *testing.T) {
	h := handler6For(t, ModeProxy)
	m := edk2Solicit6(false)
	m.MessageType = dhcpv6.MessageTypeRequest
	m.Options.Del(dhcpv6.OptionIANA)
	m.AddOption(dhcpv6.OptServerID(h.serverID))
	src := netip.MustParseAddrPort("[fd00:77::1:105]:4011")
	r, err := roundTrip(t, h, m, src, true)
	if err != nil || r == nil {
		t.Fatalf("no Reply on 4011: %v", err)
	}
	if r.MessageType != dhcpv6.MessageTypeReply || r.Options.BootFileURL() != "tftp://[fd00:77::1]/ipxe/snponly.efi" {
		t.Errorf("reply %s url %q", r.MessageType, r.Options.BootFileURL())
	}
	if edk2Class(t, r) != "PXEClient" {
		t.Error("4011 reply without PXEClient")
	}
	m.UpdateOption(dhcpv6.OptServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 9, 9, 9, 9, 9}}))
	if r, _ := roundTrip(t, h, m, src, true); r != nil {
		t.Error("answered a 4011 request naming another server")
	}
}

// TestProxy6IPXEInformationRequest: iPXE on a stateless (O flag) link asks with
// Information-request; the proxy answers with the script URL.
func TestProxy6IPXEInformationRequest(t *testing.T) {
	h := handler6For(t, ModeProxy)
	r, err := roundTrip(t, h, ipxeSolicit6(dhcpv6.MessageTypeInformationRequest), clientLL6, false)
	if err != nil || r == nil {
		t.Fatalf("no Reply: %v", err)
	}
	if got, want := r.Options.BootFileURL(), "http://[fd00:77::1]:8080/boot.ipxe?mac="+macOVMF6.String(); got != want {
		t.Errorf("option 59 = %q, want %q", got, want)
	}
}

func TestClassify6MAC(t *testing.T) {
	c, ok, why := Classify6(edk2Solicit6(false), clientLL6.Addr())
	if !ok {
		t.Fatal(why)
	}
	if c.MAC.String() != macOVMF6.String() {
		t.Errorf("MAC from EUI-64 link-local = %v, want %v", c.MAC, macOVMF6)
	}
	// EDK2's DUID-UUID holds the SMBIOS UUID in EFI byte order (first three fields little-endian).
	if c.UUID != "78563412-bc9a-f0de-0102-030405060708" || c.Arch != 7 || c.Firmware != boot.FirmwareEFI64 {
		t.Errorf("client %+v", c)
	}
	c, ok, _ = Classify6(ipxeSolicit6(dhcpv6.MessageTypeSolicit), netip.MustParseAddr("fe80::1"))
	if !ok || !c.IPXE || c.MAC.String() != macOVMF6.String() {
		t.Errorf("iPXE client %+v ok=%v (MAC from DUID-LL)", c, ok)
	}
	// iPXE's DUID-UUID is in network byte order (RFC 6355).
	m := ipxeSolicit6(dhcpv6.MessageTypeSolicit)
	m.UpdateOption(dhcpv6.OptClientID(&dhcpv6.DUIDUUID{UUID: [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}}))
	if c, _, _ := Classify6(m, clientLL6.Addr()); c.UUID != "12345678-9abc-def0-0102-030405060708" {
		t.Errorf("iPXE DUID-UUID read as %q", c.UUID)
	}
}

// TestFull6LeasesAcrossRestart: Solicit -> Advertise with an address, Request -> Reply binds
// it; the lease file reopened (a restart) gives the client the same address, and another
// client a different one.
func TestFull6LeasesAcrossRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "leases.db")
	cfg := FullConfig6{PoolStart: netip.MustParseAddr("fd00:77::100"), PoolEnd: netip.MustParseAddr("fd00:77::1ff"), LeaseDB: db}
	sid := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	run := func(m *dhcpv6.Message) (*dhcpv6.Message, netip.Addr) {
		full, err := newFullState6(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer full.close()
		h := &handler6{mode: ModeFull, policy: testPolicy6{}, log: quietLog(), serverID: sid, full: full}
		adv, err := roundTrip(t, h, m, clientLL6, false)
		if err != nil || adv == nil || adv.MessageType != dhcpv6.MessageTypeAdvertise {
			t.Fatalf("advertise: %v %v", adv, err)
		}
		ia := adv.Options.OneIANA()
		if ia == nil || ia.Options.OneAddress() == nil {
			t.Fatalf("advertise without an address: %v", adv)
		}
		if adv.Options.BootFileURL() != "tftp://[fd00:77::1]/ipxe/snponly.efi" {
			t.Errorf("full-mode advertise url %q", adv.Options.BootFileURL())
		}
		req := *m
		req.Options = dhcpv6.MessageOptions{}
		for _, o := range m.Options.Options {
			if o.Code() != dhcpv6.OptionIANA {
				req.AddOption(o)
			}
		}
		req.MessageType = dhcpv6.MessageTypeRequest
		req.AddOption(dhcpv6.OptServerID(sid))
		req.AddOption(ia)
		rep, err := roundTrip(t, h, &req, clientLL6, false)
		if err != nil || rep == nil || rep.Options.OneIANA() == nil || rep.Options.OneIANA().Options.OneAddress() == nil {
			t.Fatalf("reply without the address: %v %v", rep, err)
		}
		ip, _ := netip.AddrFromSlice(rep.Options.OneIANA().Options.OneAddress().IPv6Addr)
		return rep, ip.Unmap()
	}
	_, first := run(edk2Solicit6(false))
	_, again := run(edk2Solicit6(false))
	if first != again {
		t.Errorf("after a restart the client got %v, had %v", again, first)
	}
	other := edk2Solicit6(false)
	other.UpdateOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 1, 1, 1, 1, 1}}))
	_, second := run(other)
	if second == first || !cfg.PoolStart.Less(second.Next()) {
		t.Errorf("second client got %v (first %v)", second, first)
	}
	ls, err := OpenLeaseStore6(db, cfg.PoolStart, cfg.PoolEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	all, _ := ls.All()
	bound := 0
	for _, r := range all {
		if r.State == LeaseBound && r.Expires.After(time.Now()) {
			bound++
		}
	}
	if bound != 2 {
		t.Errorf("%d bound leases in the file, want 2: %+v", bound, all)
	}
}

// TestLeaseFileShared: the DHCPv4 and DHCPv6 stores open the same bbolt file in one process
// (bbolt locks a file per handle) and it closes with the last.
func TestLeaseFileShared(t *testing.T) {
	db := filepath.Join(t.TempDir(), "leases.db")
	v4, err := OpenLeaseStore(db, netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("10.77.0.110"))
	if err != nil {
		t.Fatal(err)
	}
	v6, err := OpenLeaseStore6(db, netip.MustParseAddr("fd00:77::100"), netip.MustParseAddr("fd00:77::110"))
	if err != nil {
		t.Fatalf("v6 store beside the v4 store: %v", err)
	}
	if _, err := v6.Reserve("duid/1", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := v4.Reserve("hw:52:54:00:12:34:56", "52:54:00:12:34:56", netip.Addr{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	v4.Close()
	if all, err := v6.All(); err != nil || len(all) != 1 {
		t.Fatalf("v6 store after v4 closed: %v %v", all, err)
	}
	v6.Close()
	again, err := OpenLeaseStore6(db, netip.MustParseAddr("fd00:77::100"), netip.MustParseAddr("fd00:77::110"))
	if err != nil {
		t.Fatalf("reopen after both closed: %v", err)
	}
	again.Close()
}

func TestBootURL6Hostile(t *testing.T) {
	pxe := Client6{Client: boot.Client{Arch: 7, Firmware: boot.FirmwareEFI64}}
	http := Client6{Client: boot.Client{Arch: 16, HTTPBoot: true}}
	for _, tc := range []struct {
		file string
		c    Client6
		want string // "" = error
	}{
		{"ipxe/snponly.efi", pxe, "tftp://[fd00:77::1]/ipxe/snponly.efi"},
		{`\Boot\x64\wdsmgfw.efi`, pxe, "tftp://[fd00:77::1]/Boot/x64/wdsmgfw.efi"},
		{"a b/x?.efi", pxe, ""},
		{"dir/x?;mode=netascii", pxe, "tftp://[fd00:77::1]/dir/x%3F%3Bmode=netascii"},
		{"../etc/passwd", pxe, ""},
		{"ipxe/../../x", pxe, ""},
		{"http://[fd00:77::1]/x.efi", pxe, ""},
		{"ipxe/snponly.efi", http, ""},
		{"tftp://[fd00:77::1]/x.efi", http, ""},
		{"http://[fd00:77::1]:8080/x.efi", http, "http://[fd00:77::1]:8080/x.efi"},
		{"x\r\nimgfetch evil", pxe, ""},
		{"", pxe, ""},
	} {
		got, err := BootURL6(tc.file, tc.c, server6)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: got %q, want an error", tc.file, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.file, got, err, tc.want)
		}
	}
	long := strings.Repeat("a", 2000)
	h := handler6For(t, ModeProxy)
	h.policy = PolicyFunc(func(context.Context, boot.Client, netip.Addr) (Decision, error) { return Decision{BootFile: long}, nil })
	if r, err := roundTrip(t, h, edk2Solicit6(false), clientLL6, false); r != nil || err == nil {
		t.Error("a reply over 1232 bytes was sent")
	}
}

// TestServer6Loopback runs the sockets: a Solicit sent to [::1] on a free port (never 547, never
// a real interface) gets the Advertise back, naming ::1 in the URL; 4011 answers from the
// address it was sent to; Reconfigure to off closes the ports.
func TestServer6Loopback(t *testing.T) {
	free := func() int {
		c, err := net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	p547, p4011 := free(), free()
	cfg := Config6{Mode: ModeProxy, Interfaces: []string{"lo"}, Policy: testPolicy6{}, Logger: quietLog(), Port: p547, PXEPort: p4011}
	s, err := NewServer6(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	ask := func(port int, m *dhcpv6.Message) *dhcpv6.Message {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.WriteTo(m.ToBytes(), &net.UDPAddr{IP: net.IPv6loopback, Port: port}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer on port %d: %v", port, err)
		}
		if fp := from.(*net.UDPAddr).Port; fp != port {
			t.Errorf("answer from port %d, want %d", fp, port)
		}
		r, err := dhcpv6.MessageFromBytes(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	adv := ask(p547, edk2Solicit6(false))
	if adv.MessageType != dhcpv6.MessageTypeAdvertise || adv.Options.BootFileURL() != "tftp://[::1]/ipxe/snponly.efi" {
		t.Errorf("got %s with url %q", adv.MessageType, adv.Options.BootFileURL())
	}
	req := edk2Solicit6(false)
	req.MessageType = dhcpv6.MessageTypeRequest
	req.AddOption(dhcpv6.OptServerID(adv.Options.ServerID()))
	if rep := ask(p4011, req); rep.MessageType != dhcpv6.MessageTypeReply || rep.Options.BootFileURL() == "" {
		t.Errorf("4011: %s url %q", rep.MessageType, rep.Options.BootFileURL())
	}
	// Through a relay: the answer is a Relay-reply to the relay's address with the same link
	// and peer address and the interface-id echoed, holding the Advertise.
	fw := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, HopCount: 0,
		LinkAddr: net.ParseIP("fd00:77::"), PeerAddr: net.ParseIP(clientLL6.Addr().String())}
	fw.Options.Add(dhcpv6.OptInterfaceID([]byte("eth7")))
	fw.Options.Add(dhcpv6.OptRelayMessage(edk2Solicit6(false)))
	rc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.WriteTo(fw.ToBytes(), &net.UDPAddr{IP: net.IPv6loopback, Port: p547})
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := rc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no Relay-reply: %v", err)
	}
	rr, err := dhcpv6.RelayMessageFromBytes(buf[:n])
	if err != nil {
		t.Fatalf("answer to a relay is not a relay message: %v", err)
	}
	inner, _ := rr.Options.RelayMessage().(*dhcpv6.Message)
	if rr.MessageType != dhcpv6.MessageTypeRelayReply || !rr.PeerAddr.Equal(fw.PeerAddr) || !rr.LinkAddr.Equal(fw.LinkAddr) ||
		string(rr.Options.InterfaceID()) != "eth7" || inner == nil || inner.MessageType != dhcpv6.MessageTypeAdvertise ||
		inner.Options.BootFileURL() != "tftp://[::1]/ipxe/snponly.efi" {
		t.Errorf("relay reply %v", rr)
	}

	cfg.Mode = ModeOff
	if err := s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp6", net.JoinHostPort("::", strconv.Itoa(p547)))
	if err != nil {
		t.Errorf("port %d still taken after mode off: %v", p547, err)
	} else {
		c.Close()
	}
	cfg.Mode = ModeProxy
	if err := s.Reconfigure(cfg); err != nil {
		t.Fatalf("back to proxy: %v", err)
	}
	if adv := ask(p547, edk2Solicit6(true)); adv.Options.BootFileURL() != "http://[::1]:8080/files/ipxe/snponly.efi" {
		t.Errorf("after reload: url %q", adv.Options.BootFileURL())
	}
}

// TestRateLimit6: one DUID gets its burst and no more; random DUIDs from random link-local
// sources share the link's source bucket; the lease pool is not reserved by what is dropped.
func TestRateLimit6(t *testing.T) {
	h := handler6For(t, ModeFull)
	h.limit = newLimiter(RateLimit{PerMAC: Rate{PerSecond: 0.001, Burst: 3}, PerSource: Rate{PerSecond: 0.001, Burst: 10}}, quietLog())
	answered := 0
	for range 20 {
		if r, _ := roundTrip(t, h, edk2Solicit6(false), clientLL6, false); r != nil {
			answered++
		}
	}
	if answered != 3 {
		t.Errorf("one DUID: %d answers, want its burst of 3", answered)
	}
	answered = 0
	for i := range 50 {
		m := edk2Solicit6(false)
		m.UpdateOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}}))
		src := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(i + 1)}), 546)
		if r, _ := roundTrip(t, h, m, src, false); r != nil {
			answered++
		}
	}
	if answered != 7 {
		t.Errorf("50 DUIDs from 50 link-local sources: %d answers, want the link's remaining 7", answered)
	}
	all, _ := h.full.leases.All()
	if len(all) > 3 {
		t.Errorf("%d pool addresses held after the flood, want at most the pool's 3", len(all))
	}
	if st := h.limit.stats(); st.Dropped != 60 {
		t.Errorf("dropped %d, want 60", st.Dropped)
	}
}

// TestLeaseFileOneOwnerPerProtocol: the v4 and v6 stores share a file, but a second store of
// the same protocol is refused as if another process held it.
func TestLeaseFileOneOwnerPerProtocol(t *testing.T) {
	db := filepath.Join(t.TempDir(), "leases.db")
	a, err := OpenLeaseStore6(db, netip.MustParseAddr("fd00:77::100"), netip.MustParseAddr("fd00:77::110"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if b, err := OpenLeaseStore6(db, netip.MustParseAddr("fd00:77::100"), netip.MustParseAddr("fd00:77::110")); err == nil {
		b.Close()
		t.Fatal("a second DHCPv6 store on a lease file in use opened")
	} else if !strings.Contains(err.Error(), "locked") {
		t.Errorf("error %v does not say the file is locked", err)
	}
}

// TestFull6Relayed: a relayed Solicit from the pool's link gets an address; one from another
// link (link-address outside the pool's /64) is not answered.
func TestFull6Relayed(t *testing.T) {
	h := handler6For(t, ModeFull)
	ask := func(link string) (*response6, error) {
		m, err := dhcpv6.MessageFromBytes(edk2Solicit6(false).ToBytes())
		if err != nil {
			t.Fatal(err)
		}
		return h.handle(context.Background(), request6{msg: m, src: clientLL6, server: server6, iface: "br0",
			relay: netip.MustParseAddrPort("[fd00:99::1]:547"), linkAddr: netip.MustParseAddr(link)})
	}
	if r, err := ask("fd00:77::"); err != nil || r == nil || r.msg.Options.OneIANA() == nil {
		t.Errorf("relayed from the pool's link: %v %v", r, err)
	}
	if r, err := ask("fd00:88::"); r != nil || !errors.Is(err, errIgnored) {
		t.Errorf("relayed from another link: answered %v, err %v", r, err)
	}
}
