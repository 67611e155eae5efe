package dhcp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	macPi4  = net.HardwareAddr{0xd8, 0x3a, 0xdd, 0xe8, 0x27, 0x1e}
	macPi3  = net.HardwareAddr{0xb8, 0x27, 0xeb, 0x64, 0x46, 0x1c}
	macX86  = net.HardwareAddr{0x00, 0x1b, 0x21, 0x01, 0x02, 0x03} // an Intel NIC
	natTFTP = netip.MustParseAddr("192.0.2.69")
	// prlPi is the Pi 4 EEPROM bootloader's parameter request list.
	prlPi = []byte{1, 3, 43, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135}
)

// piDiscover is a Raspberry Pi bootloader DISCOVER: the x86 BIOS vendor class, arch 0, no
// iPXE options.
func piDiscover(mac net.HardwareAddr, uuid []byte) rawPkt {
	p := rawPkt{xid: 0x0a485863, mac: mac, opts: []rawOpt{
		msg(dhcpv4.MessageTypeDiscover), {55, prlPi}, {93, u16(0)}, {94, []byte{1, 2, 1}},
		{60, []byte("PXEClient:Arch:00000:UNDI:002001")},
	}}
	if uuid != nil {
		p.opts = append(p.opts, rawOpt{97, uuid})
	}
	return p
}

// The exact option 43 the Pi bootloader looks for (dnsmasq's pxe-service=0,"Raspberry Pi Boot   ").
func TestRaspberryPiMenuBytes(t *testing.T) {
	want := []byte{
		6, 1, 3, // discovery control: no broadcast/multicast discovery
		10, 4, 0, 'P', 'X', 'E', // menu prompt: timeout 0, "PXE"
		9, 23, 0, 0, 20, // boot menu: item type 0, 20-byte description
		'R', 'a', 's', 'p', 'b', 'e', 'r', 'r', 'y', ' ', 'P', 'i', ' ', 'B', 'o', 'o', 't', ' ', ' ', ' ',
		255,
	}
	if !bytes.Equal(raspberryPiMenu, want) {
		t.Fatalf("option 43:\n got % x\nwant % x", raspberryPiMenu, want)
	}
}

func TestIsRaspberryPi(t *testing.T) {
	piUUID := append([]byte{0}, bytes.Repeat([]byte{0x44}, 16)...)
	tests := []struct {
		name string
		pkt  rawPkt
		want bool
	}{
		{"Pi 4 by MAC", piDiscover(macPi4, nil), true},
		{"Pi 3 by MAC", piDiscover(macPi3, uuid0), true},
		{"Pi 3 by its UUID, unknown MAC", piDiscover(macX86, piUUID), true},
		{"x86 BIOS ROM, same vendor class", piDiscover(macX86, uuid0), false},
		{"Pi MAC running iPXE", piDiscover(macPi4, nil).with(rawOpt{77, []byte("iPXE")}), false},
		{"Pi MAC, arch 11 (UEFI firmware on a Pi)", piDiscover(macPi4, nil).with(rawOpt{93, u16(11)}, rawOpt{60, []byte("PXEClient:Arch:00011:UNDI:003000")}), false},
		{"Pi UUID but another vendor class", piDiscover(macX86, piUUID).with(rawOpt{60, []byte("PXEClient:Arch:00000:UNDI:002000")}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := tt.pkt.parse(t)
			c, ok, why := Classify(pkt)
			if !ok {
				t.Fatalf("not a netboot client: %s", why)
			}
			if got := isRaspberryPi(pkt, c); got != tt.want {
				t.Errorf("isRaspberryPi = %v, want %v", got, tt.want)
			}
		})
	}
}

// piExpect is what a reply must carry.
type piExpect struct {
	pi       bool       // Pi boot menu in 43, option 66, no boot file
	siaddr   netip.Addr // also option 66 when pi or advertised
	opt66    bool
	bootFile string
	yiaddr   bool // full mode: an address
}

func TestRaspberryPiReplies(t *testing.T) {
	tests := []struct {
		name    string
		mode    Mode
		pi      bool // Config.RaspberryPi
		next    netip.Addr
		pkt     rawPkt
		port    int
		want    piExpect
		wantMsg dhcpv4.MessageType
	}{
		{"proxy: Pi 4 offer", ModeProxy, true, netip.Addr{}, piDiscover(macPi4, nil), 67,
			piExpect{pi: true, siaddr: server, opt66: true}, dhcpv4.MessageTypeOffer},
		{"proxy: Pi 4 REQUEST naming us", ModeProxy, true, netip.Addr{}, piDiscover(macPi4, nil).with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, server.AsSlice()}), 67,
			piExpect{pi: true, siaddr: server, opt66: true}, dhcpv4.MessageTypeAck},
		{"proxy: Pi with advertised TFTP server", ModeProxy, true, natTFTP, piDiscover(macPi3, uuid0), 67,
			piExpect{pi: true, siaddr: natTFTP, opt66: true}, dhcpv4.MessageTypeOffer},
		{"proxy: Pi support off: the policy's BIOS answer", ModeProxy, false, netip.Addr{}, piDiscover(macPi4, nil), 67,
			piExpect{siaddr: server, bootFile: "undionly.kpxe"}, dhcpv4.MessageTypeOffer},
		{"proxy: x86 BIOS with the same vendor class", ModeProxy, true, netip.Addr{}, piDiscover(macX86, uuid0), 67,
			piExpect{siaddr: server, bootFile: "undionly.kpxe"}, dhcpv4.MessageTypeOffer},
		{"proxy: x86 BIOS, advertised TFTP server", ModeProxy, true, natTFTP, piDiscover(macX86, uuid0), 67,
			piExpect{siaddr: natTFTP, opt66: true, bootFile: "undionly.kpxe"}, dhcpv4.MessageTypeOffer},
		{"proxy: OVMF on 4011, advertised TFTP server", ModeProxy, true, natTFTP, ovmfPXERequest4011(), 4011,
			piExpect{siaddr: natTFTP, opt66: true, bootFile: "snponly.efi"}, dhcpv4.MessageTypeAck},
		{"full: Pi 4 gets an address and the menu", ModeFull, true, netip.Addr{}, piDiscover(macPi4, nil), 67,
			piExpect{pi: true, siaddr: server, opt66: true, yiaddr: true}, dhcpv4.MessageTypeOffer},
		{"full: advertised TFTP server for a PXE client", ModeFull, true, natTFTP, ovmfPXEDiscover(), 67,
			piExpect{siaddr: natTFTP, opt66: true, bootFile: "snponly.efi", yiaddr: true}, dhcpv4.MessageTypeOffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &handler{mode: tt.mode, policy: testPolicy{}, log: quietLog(), raspberryPi: tt.pi, nextServer: tt.next}
			if tt.mode == ModeFull {
				h = newFullHandler(t, filepath.Join(t.TempDir(), "leases.db"))
				h.raspberryPi, h.nextServer = tt.pi, tt.next
			}
			req := tt.pkt.parse(t)
			resp, err := h.handle(context.Background(), request{pkt: req, port: tt.port, server: server, iface: "br0",
				src: netip.MustParseAddrPort("10.77.0.143:4011")})
			if err != nil {
				t.Fatal(err)
			}
			// Check the bytes on the wire, parsed back by insomniacslk/dhcp.
			wire := resp.pkt.ToBytes()
			r, err := dhcpv4.FromBytes(wire)
			if err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			checkPiReply(t, r, tt.want, tt.wantMsg)
		})
	}
}

func checkPiReply(t *testing.T, r *dhcpv4.DHCPv4, want piExpect, mt dhcpv4.MessageType) {
	t.Helper()
	if r.MessageType() != mt {
		t.Errorf("message type %v, want %v", r.MessageType(), mt)
	}
	if !r.ServerIdentifier().Equal(server.AsSlice()) {
		t.Errorf("option 54 = %v, want %v (the advertised TFTP address must not replace it)", r.ServerIdentifier(), server)
	}
	if !r.ServerIPAddr.Equal(want.siaddr.AsSlice()) {
		t.Errorf("siaddr = %v, want %v", r.ServerIPAddr, want.siaddr)
	}
	if got := r.TFTPServerName(); want.opt66 != (got != "") || (want.opt66 && got != want.siaddr.String()) {
		t.Errorf("option 66 = %q, want %v (%v)", got, want.siaddr, want.opt66)
	}
	if got := r.YourIPAddr.IsUnspecified(); got == want.yiaddr {
		t.Errorf("yiaddr = %v, want an address: %v", r.YourIPAddr, want.yiaddr)
	}
	if r.ServerHostName != "" && r.ServerHostName != want.siaddr.String() {
		t.Errorf("sname = %q, want the TFTP server %v", r.ServerHostName, want.siaddr)
	}
	if string(r.Options.Get(dhcpv4.OptionClassIdentifier)) != "PXEClient" {
		t.Errorf("option 60 = %q", r.Options.Get(dhcpv4.OptionClassIdentifier))
	}
	if got := r.BootFileNameOption(); got != want.bootFile {
		t.Errorf("option 67 = %q, want %q", got, want.bootFile)
	}
	sub := dhcpv4.Options{}
	if o43 := r.Options.Get(opt43); o43 != nil {
		if err := sub.FromBytes(o43); err != nil {
			t.Fatalf("option 43 % x does not parse: %v", o43, err)
		}
	}
	if !want.pi {
		if sub.Has(dhcpv4.GenericOptionCode(9)) {
			t.Errorf("43.9 menu sent to a non-Pi client: % x", r.Options.Get(opt43))
		}
		return
	}
	checks := []struct {
		code byte
		want []byte
	}{
		{6, []byte{3}},
		{10, []byte{0, 'P', 'X', 'E'}},
		{9, append([]byte{0, 0, 20}, "Raspberry Pi Boot   "...)},
	}
	for _, c := range checks {
		if got := sub.Get(dhcpv4.GenericOptionCode(c.code)); !bytes.Equal(got, c.want) {
			t.Errorf("43.%d = %q, want %q", c.code, got, c.want)
		}
	}
	if r.BootFileName != "" {
		t.Errorf("file = %q, want empty for a Pi", r.BootFileName)
	}
}
