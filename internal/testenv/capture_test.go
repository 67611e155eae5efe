package testenv

import (
	"context"
	"encoding/binary"
	"net"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestCaptureDecodesDHCPAndTFTP sends a DHCP DISCOVER and a small TFTP exchange over loopback
// in a fresh namespace while tcpdump records it, then checks what ReadPcap, DHCPMessages and
// TFTPTransfers make of the real pcap file.
func TestCaptureDecodesDHCPAndTFTP(t *testing.T) {
	RequireRoot(t)
	RequireTools(t, "ip", "tcpdump")
	ctx := context.Background()
	ns := MustNetns(t, "cap")
	dir := t.TempDir()
	c, err := StartCapture(ctx, ns, "lo", filepath.Join(dir, "lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}

	server, err := ns.ListenPacket("udp4", "127.0.0.1:67")
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	client, err := ns.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tftpTID, err := ns.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tftpTID.Close()

	mac := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	disc, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000")))
	if err != nil {
		t.Fatal(err)
	}
	send := func(from net.PacketConn, to string, b []byte) {
		t.Helper()
		addr, _ := net.ResolveUDPAddr("udp4", to)
		if _, err := from.WriteTo(b, addr); err != nil {
			t.Fatal(err)
		}
	}
	send(client, "127.0.0.1:67", disc.ToBytes())
	// TFTP: RRQ to 69 (nobody listens; the capture still has it), then two DATA blocks from the
	// server's transfer port, the second one twice (a retransmit counts once), and an ERROR.
	send(client, "127.0.0.1:69", []byte("\x00\x01snponly.efi\x00octet\x00windowsize\x004\x00"))
	clientAddr := client.LocalAddr().String()
	block := func(n uint16, size int) []byte {
		b := make([]byte, 4+size)
		binary.BigEndian.PutUint16(b, 3)
		binary.BigEndian.PutUint16(b[2:], n)
		return b
	}
	send(tftpTID, clientAddr, []byte("\x00\x06windowsize\x004\x00"))
	send(tftpTID, clientAddr, block(1, 512))
	send(tftpTID, clientAddr, block(2, 100))
	send(tftpTID, clientAddr, block(2, 100))

	pkts, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	msgs := DHCPMessages(pkts)
	if len(msgs) != 1 || msgs[0].MessageType() != dhcpv4.MessageTypeDiscover ||
		msgs[0].ClientHWAddr.String() != mac.String() || msgs[0].ClassIdentifier() != "PXEClient:Arch:00007:UNDI:003000" {
		t.Fatalf("DHCP decode: got %d messages: %+v", len(msgs), msgs)
	}
	trs := TFTPTransfers(pkts)
	if len(trs) != 1 {
		t.Fatalf("TFTP: got %d transfers, want 1", len(trs))
	}
	tr := trs[0]
	if tr.File != "snponly.efi" || tr.Options["windowsize"] != "4" || tr.OACK["windowsize"] != "4" || tr.Bytes != 612 {
		t.Errorf("TFTP transfer = %+v, want snponly.efi, windowsize 4 asked and acked, 612 bytes", tr)
	}
}

func TestClientUUIDSMBIOSOrder(t *testing.T) {
	// What OVMF and iPXE sent for QEMU -uuid 8c8e3f2a-4b1d-4c5e-9f00-0123456789ab.
	wire := []byte{0, 0x2a, 0x3f, 0x8e, 0x8c, 0x1d, 0x4b, 0x5e, 0x4c, 0x9f, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab}
	tests := []struct {
		opt  []byte
		want string
	}{
		{wire, "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab"},
		{wire[:16], ""},                      // short
		{append([]byte{1}, wire[1:]...), ""}, // type must be 0
		{nil, ""},
	}
	for _, tt := range tests {
		m, _ := dhcpv4.New()
		if tt.opt != nil {
			m.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(97), tt.opt))
		}
		if got := (DHCPMessage{DHCPv4: m}).ClientUUID(); got != tt.want {
			t.Errorf("ClientUUID(% x) = %q, want %q", tt.opt, got, tt.want)
		}
	}
}

func TestSplitGSO(t *testing.T) {
	block := func(n uint16, size int) []byte {
		b := make([]byte, 4+size)
		b[1], b[2], b[3] = 3, byte(n>>8), byte(n)
		return b
	}
	super := append(append(block(7, 1468), block(8, 1468)...), block(9, 100)...)
	tests := []struct {
		name    string
		payload []byte
		oack    map[string]string
		want    []int // payload sizes of the blocks
	}{
		{"one block", block(1, 1468), map[string]string{"blksize": "1468"}, []int{1468}},
		{"GSO window", super, map[string]string{"blksize": "1468"}, []int{1468, 1468, 100}},
		{"default 512", append(block(1, 512), block(2, 0)...), nil, []int{512, 0}},
	}
	for _, tt := range tests {
		got := splitGSO(tt.payload, tt.oack)
		if len(got) != len(tt.want) {
			t.Fatalf("%s: %d blocks, want %d", tt.name, len(got), len(tt.want))
		}
		for i, d := range got {
			if len(d)-4 != tt.want[i] {
				t.Errorf("%s: block %d has %d bytes, want %d", tt.name, i, len(d)-4, tt.want[i])
			}
		}
	}
}
