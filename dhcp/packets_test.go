package dhcp

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// Packets shaped like the ones captured from real clients in ../shared/e2e-proto (observed/*.txt:
// option order, vendor classes, arch, NDI, flags, PRL, xid 0 for iPXE's PXEBS request).

type rawOpt struct {
	code byte
	val  []byte
}

type rawPkt struct {
	xid    uint32
	flags  uint16
	hops   byte
	ciaddr string
	giaddr string
	mac    net.HardwareAddr
	opts   []rawOpt
}

func (p rawPkt) bytes() []byte {
	b := make([]byte, 240, 600)
	b[0], b[1], b[2], b[3] = 1, 1, 6, p.hops
	binary.BigEndian.PutUint32(b[4:], p.xid)
	binary.BigEndian.PutUint16(b[10:], p.flags)
	putIP(b[12:16], p.ciaddr)
	putIP(b[24:28], p.giaddr)
	copy(b[28:44], p.mac)
	copy(b[236:240], []byte{99, 130, 83, 99})
	for _, o := range p.opts {
		b = append(b, o.code, byte(len(o.val)))
		b = append(b, o.val...)
	}
	b = append(b, 255)
	for len(b) < 300 {
		b = append(b, 0)
	}
	return b
}

func putIP(dst []byte, s string) {
	if s != "" {
		copy(dst, net.ParseIP(s).To4())
	}
}

func (p rawPkt) parse(t testing.TB) *dhcpv4.DHCPv4 {
	t.Helper()
	pkt, err := dhcpv4.FromBytes(p.bytes())
	if err != nil {
		t.Fatalf("parse test packet: %v", err)
	}
	return pkt
}

func (p rawPkt) with(opts ...rawOpt) rawPkt {
	q := p
	q.opts = nil
	for _, o := range p.opts {
		replaced := false
		for _, n := range opts {
			if n.code == o.code {
				replaced = true
			}
		}
		if !replaced {
			q.opts = append(q.opts, o)
		}
	}
	for _, n := range opts {
		if n.val != nil {
			q.opts = append(q.opts, n)
		}
	}
	return q
}

func without(code byte) rawOpt { return rawOpt{code: code} }

var (
	macBIOS = net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x0d}
	macEFI  = net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x0e}
	macOVMF = net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x0f}
	macHTTP = net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x10}

	prlIPXE = []byte{1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203}
	prlOVMF = []byte{1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135}
	prlHTTP = []byte{1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 235, 67, 97}
	uuid0   = make([]byte, 17)
	// iPXE's option 175: bus id (177: PCI 8086:100e), version 235 = 1.0.0, HTTP/TFTP/PXE flags.
	ipxe175 = []byte{177, 5, 1, 0x80, 0x86, 0x10, 0x0e, 235, 3, 1, 0, 0, 19, 1, 1, 21, 1, 1, 33, 1, 1}
	server  = netip.MustParseAddr("10.77.0.1")
	site    = netip.MustParseAddr("10.77.0.2")
)

func msg(t dhcpv4.MessageType) rawOpt { return rawOpt{53, []byte{byte(t)}} }
func u16(v uint16) []byte             { return binary.BigEndian.AppendUint16(nil, v) }
func ipb(s string) []byte             { return net.ParseIP(s).To4() }

// iPXE BIOS ROM and undionly.kpxe (byte-identical): 53,57,93,94,60,77,55,175,61,97.
func ipxeBIOSDiscover() rawPkt {
	return rawPkt{xid: 0x7d3a11c2, mac: macBIOS, opts: []rawOpt{
		msg(dhcpv4.MessageTypeDiscover), {57, u16(1472)}, {93, u16(0)}, {94, []byte{1, 2, 1}},
		{60, []byte("PXEClient:Arch:00000:UNDI:002001")}, {77, []byte("iPXE")}, {55, prlIPXE},
		{175, ipxe175}, {61, append([]byte{1}, macBIOS...)}, {97, uuid0},
	}}
}

// iPXE EFI (e1000 ROM, ipxe.efi, snponly.efi).
func ipxeEFIDiscover() rawPkt {
	return rawPkt{xid: 0x7d3a11c3, mac: macEFI, opts: []rawOpt{
		msg(dhcpv4.MessageTypeDiscover), {57, u16(1472)}, {93, u16(7)}, {94, []byte{1, 3, 10}},
		{60, []byte("PXEClient:Arch:00007:UNDI:003010")}, {77, []byte("iPXE")}, {55, prlIPXE},
		{175, append(append([]byte(nil), ipxe175...), 36, 1, 1)}, {61, append([]byte{1}, macEFI...)}, {97, uuid0},
	}}
}

// OVMF PxeBcDxe: 53,57,55,97,94,93,60, broadcast flag.
func ovmfPXEDiscover() rawPkt {
	return rawPkt{xid: 0x1b2c3d4e, flags: 0x8000, mac: macOVMF, opts: []rawOpt{
		msg(dhcpv4.MessageTypeDiscover), {57, u16(1472)}, {55, prlOVMF}, {97, uuid0},
		{94, []byte{1, 3, 0}}, {93, u16(7)}, {60, []byte("PXEClient:Arch:00007:UNDI:003000")},
	}}
}

// OVMF's ProxyBinl request: from port 4011 to 4011, new xid, flag 0, 53,55,57,60,93,94,97.
func ovmfPXERequest4011() rawPkt {
	return rawPkt{xid: 0x1b2c3d99, ciaddr: "10.77.0.143", mac: macOVMF, opts: []rawOpt{
		msg(dhcpv4.MessageTypeRequest), {55, prlOVMF}, {57, u16(65280)},
		{60, []byte("PXEClient:Arch:00007:UNDI:003000")}, {93, u16(7)}, {94, []byte{1, 3, 0}}, {97, uuid0},
	}}
}

// OVMF HttpBootDxe: HTTPClient, arch 16.
func ovmfHTTPDiscover() rawPkt {
	return rawPkt{xid: 0x2c3d4e5f, flags: 0x8000, mac: macHTTP, opts: []rawOpt{
		msg(dhcpv4.MessageTypeDiscover), {57, u16(1472)}, {55, prlHTTP}, {97, uuid0},
		{94, []byte{1, 3, 0}}, {93, u16(16)}, {60, []byte("HTTPClient:Arch:00016:UNDI:003000")},
	}}
}

// iPXE's PXE boot-server discovery request to 4011: xid 0, vendor class exactly PXEClient,
// broadcast flag, ciaddr set, 43.71 boot item type 0x8002 layer 0.
func ipxePXEBSRequest() rawPkt {
	p := ipxeBIOSDiscover()
	p.xid, p.flags, p.ciaddr = 0, 0x8000, "10.77.0.142"
	return p.with(msg(dhcpv4.MessageTypeRequest), rawOpt{60, []byte("PXEClient")},
		rawOpt{43, []byte{71, 4, 0x80, 0x02, 0x00, 0x00, 255}})
}

// The same iPXE BIOS DISCOVER after a relay agent (giaddr, hops 1).
func relayedDiscover() rawPkt {
	p := ipxeBIOSDiscover()
	p.giaddr, p.hops = "10.78.0.1", 1
	return p
}

// A plain client (busybox udhcpc): not a netboot client.
func plainDiscover() rawPkt {
	return rawPkt{xid: 0x11223344, mac: net.HardwareAddr{2, 0, 0, 0, 0, 9}, opts: []rawOpt{
		msg(dhcpv4.MessageTypeDiscover), {61, []byte{1, 2, 0, 0, 0, 0, 9}}, {60, []byte("udhcp 1.35.0")},
		{55, []byte{1, 3, 6, 12, 15, 28, 42}},
	}}
}

// testPolicy is the choice the integrator makes (what issue 3 asks for).
type testPolicy struct{}

func (testPolicy) Decide(_ context.Context, c boot.Client, srv netip.Addr) (Decision, error) {
	switch {
	case c.HTTPBoot:
		return Decision{BootFile: "http://" + srv.String() + "/ipxe/snponly.efi"}, nil
	case c.IPXE:
		return Decision{BootFile: "http://" + srv.String() + ":8080/boot.ipxe?mac=" + c.MAC.String()}, nil
	case c.Firmware == boot.FirmwareBIOS:
		return Decision{BootFile: "undionly.kpxe"}, nil
	case c.Firmware.IsEFI():
		return Decision{BootFile: "snponly.efi"}, nil
	}
	return Decision{NoBoot: true}, nil
}
