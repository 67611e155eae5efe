package stress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pxewim/pxewim/internal/testenv"
)

// dhcpPort is a shared client socket on 0.0.0.0:68 inside the client namespace; replies are
// handed to the waiting client by transaction ID, so one socket plays many clients (each with
// its own MAC in chaddr, broadcast flag set so the server never needs to ARP for them).
type dhcpPort struct {
	c    *net.UDPConn
	mu   sync.Mutex
	wait map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
	// acks records every ACK received (transaction ID and server identifier), so a test can
	// show who answered what after the fact.
	acks []replySeen
}

type replySeen struct {
	xid    dhcpv4.TransactionID
	server netip.Addr
}

func openDHCPPort(ns *testenv.Netns) (*dhcpPort, error) {
	var c *net.UDPConn
	err := ns.InNetns(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 68})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp client socket: %w", err)
	}
	c.SetReadBuffer(4 << 20)
	p := &dhcpPort{c: c, wait: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}}
	go p.readLoop()
	return p, nil
}

func (p *dhcpPort) Close() error { return p.c.Close() }

func (p *dhcpPort) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, _, err := p.c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		p.mu.Lock()
		ch := p.wait[m.TransactionID]
		if m.MessageType() == dhcpv4.MessageTypeAck {
			p.acks = append(p.acks, replySeen{m.TransactionID, mustAddr(m.ServerIdentifier())})
		}
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	}
}

// listen routes replies with transaction ID xid to the returned channel until done is called.
func (p *dhcpPort) listen(xid dhcpv4.TransactionID) (ch chan *dhcpv4.DHCPv4, done func()) {
	ch = make(chan *dhcpv4.DHCPv4, 8)
	p.mu.Lock()
	p.wait[xid] = ch
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.wait, xid)
		p.mu.Unlock()
	}
}

// acksFrom counts the ACKs server sent for the given transactions.
func (p *dhcpPort) acksFrom(server netip.Addr, xids map[dhcpv4.TransactionID]bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.acks {
		if a.server == server && xids[a.xid] {
			n++
		}
	}
	return n
}

// exchange sends pkt to dst until a reply of type want arrives (retrying every 500 ms).
func (p *dhcpPort) exchange(ctx context.Context, pkt *dhcpv4.DHCPv4, dst *net.UDPAddr, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	ch, done := p.listen(pkt.TransactionID)
	defer done()
	for try := 0; try < 8; try++ {
		if _, err := p.c.WriteToUDP(pkt.ToBytes(), dst); err != nil {
			return nil, err
		}
		t := time.NewTimer(500 * time.Millisecond)
	loop:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case m := <-ch:
				if m.MessageType() == want {
					t.Stop()
					return m, nil
				}
				if m.MessageType() == dhcpv4.MessageTypeNak {
					t.Stop()
					return nil, fmt.Errorf("%s: NAK: %s", pkt.ClientHWAddr, m.Message())
				}
			case <-t.C:
				break loop
			}
		}
	}
	return nil, fmt.Errorf("%s: no %s after 8 tries", pkt.ClientHWAddr, want)
}

// pxeMods are the options of a BIOS PXE ROM's DISCOVER (as in pxe-protocol.md): vendor class
// PXEClient, arch 0, UNDI 2.1, a client UUID, and the parameter request list.
func pxeMods(mac net.HardwareAddr) []dhcpv4.Modifier {
	uuid := append([]byte{0}, make([]byte, 16)...)
	copy(uuid[11:], mac)
	return []dhcpv4.Modifier{
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, uuid),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
			dhcpv4.OptionVendorSpecificInformation, dhcpv4.OptionClassIdentifier,
			dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName),
	}
}

// bootInfo is what a client learned from DHCP.
type bootInfo struct {
	IP       netip.Addr // leased from pxewim (full mode) or from the site's dnsmasq (proxy mode)
	BootFile string
	Server   netip.Addr // siaddr / next server
}

var bcast = &net.UDPAddr{IP: net.IPv4bcast, Port: 67}

// fullDORA runs DISCOVER/OFFER/REQUEST/ACK for mac against a full-mode server.
func (p *dhcpPort) fullDORA(ctx context.Context, mac net.HardwareAddr) (bootInfo, error) {
	disc, err := dhcpv4.NewDiscovery(mac, pxeMods(mac)...)
	if err != nil {
		return bootInfo{}, err
	}
	offer, err := p.exchange(ctx, disc, bcast, dhcpv4.MessageTypeOffer)
	if err != nil {
		return bootInfo{}, fmt.Errorf("discover: %w", err)
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, pxeMods(mac)...)
	if err != nil {
		return bootInfo{}, err
	}
	ackm, err := p.exchange(ctx, req, bcast, dhcpv4.MessageTypeAck)
	if err != nil {
		return bootInfo{}, fmt.Errorf("request %s: %w", offer.YourIPAddr, err)
	}
	ip, _ := netip.AddrFromSlice(ackm.YourIPAddr.To4())
	if ip != mustAddr(offer.YourIPAddr) {
		return bootInfo{}, fmt.Errorf("ACK %s differs from OFFER %s", ip, offer.YourIPAddr)
	}
	return bootInfo{IP: ip, BootFile: ackm.BootFileName, Server: mustAddr(ackm.ServerIPAddr)}, nil
}

func mustAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// clientMAC is the MAC of simulated client i (locally administered).
func clientMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x57, 0x52, 0x4d, byte(i >> 8), byte(i)}
}
