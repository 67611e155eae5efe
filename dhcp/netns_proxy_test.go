package dhcp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestNetnsProxy runs the proxy in namespace S serving s1 and s2, with a third interface s3
// not configured. Crafted client packets from each side check: replies leave the receiving
// interface with that interface's address, the unlisted interface is ignored, port 4011 answers
// unicast to the source port, and relayed requests go back to the relay.
func TestNetnsProxy(t *testing.T) {
	needNetns(t)
	S, C1, C2, C3 := newNetns(t, "s"), newNetns(t, "c1"), newNetns(t, "c2"), newNetns(t, "c3")
	veth(t, S, "s1", "10.201.1.1/24", C1, "c1", "10.201.1.50/24")
	veth(t, S, "s2", "10.201.2.1/24", C2, "c2", "10.201.2.50/24")
	veth(t, S, "s3", "10.201.3.1/24", C3, "c3", "10.201.3.50/24")
	obs := &countingObserver{}
	startServer(t, S, Config{Mode: ModeProxy, Interfaces: []string{"s1", "s2"}, Policy: testPolicy{}, Observer: obs})

	t.Run("offer out of the receiving interface", func(t *testing.T) {
		for _, tt := range []struct {
			ns, ifname, srv string
			pkt             rawPkt
			file            string
			opt43           bool
		}{
			{C1, "c1", "10.201.1.1", ipxeBIOSDiscover(), "http://10.201.1.1:8080/boot.ipxe?mac=52:54:00:77:00:0d", true},
			{C2, "c2", "10.201.2.1", ovmfPXEDiscover(), "snponly.efi", false},
			{C2, "c2", "10.201.2.1", ovmfHTTPDiscover(), "http://10.201.2.1/ipxe/snponly.efi", false},
		} {
			c := newRawClient(t, tt.ns, tt.ifname, 68)
			// A listener on the other served interface must not hear this client's offer.
			otherNS, otherIf := C2, "c2"
			if tt.ns == C2 {
				otherNS, otherIf = C1, "c1"
			}
			other := newRawClient(t, otherNS, otherIf, 68)
			c.send(t, tt.pkt, "255.255.255.255:67")
			r := one(t, c.collect(t, tt.pkt, time.Second), "proxy offer")
			if leaked := other.collect(t, tt.pkt, 200*time.Millisecond); len(leaked) != 0 {
				t.Errorf("offer also sent out of the other interface (heard on %s)", otherIf)
			}
			other.conn.Close()
			srv := netip.MustParseAddr(tt.srv)
			if r.from != netip.AddrPortFrom(srv, 67) {
				t.Errorf("offer from %v, want %v:67", r.from, srv)
			}
			if r.pkt.MessageType() != dhcpv4.MessageTypeOffer || !r.pkt.YourIPAddr.IsUnspecified() ||
				!r.pkt.ServerIdentifier().Equal(srv.AsSlice()) || !r.pkt.ServerIPAddr.Equal(srv.AsSlice()) {
				t.Errorf("offer: %s", r.pkt.Summary())
			}
			if r.pkt.BootFileNameOption() != tt.file || r.pkt.Options.Has(opt43) != tt.opt43 {
				t.Errorf("67 = %q, 43 present = %v", r.pkt.BootFileNameOption(), r.pkt.Options.Has(opt43))
			}
			c.conn.Close()
		}
	})

	t.Run("unlisted interface ignored", func(t *testing.T) {
		c := newRawClient(t, C3, "c3", 68)
		p := ipxeEFIDiscover()
		c.send(t, p, "255.255.255.255:67")
		if got := c.collect(t, p, 700*time.Millisecond); len(got) != 0 {
			t.Fatalf("server answered on an interface it was not given: %s", got[0].pkt.Summary())
		}
		if n := len(obs.seen(p.mac.String())); n != 0 {
			t.Errorf("observer saw %d exchanges from the unlisted interface", n)
		}
	})

	t.Run("REQUEST for the site server ignored, for us acked", func(t *testing.T) {
		c := newRawClient(t, C1, "c1", 68)
		p := ipxeBIOSDiscover().with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, ipb("10.201.1.2")}, rawOpt{50, ipb("10.201.1.50")})
		c.send(t, p, "255.255.255.255:67")
		if got := c.collect(t, p, 500*time.Millisecond); len(got) != 0 {
			t.Fatalf("proxy answered a REQUEST for another server")
		}
		p = p.with(rawOpt{54, ipb("10.201.1.1")})
		c.send(t, p, "255.255.255.255:67")
		if r := one(t, c.collect(t, p, time.Second), "ack"); r.pkt.MessageType() != dhcpv4.MessageTypeAck {
			t.Errorf("got %v", r.pkt.MessageType())
		}
	})

	t.Run("4011 from 4011 (OVMF)", func(t *testing.T) {
		c := newRawClient(t, C1, "c1", 4011)
		p := ovmfPXERequest4011()
		p.ciaddr = "10.201.1.50"
		c.send(t, p, "10.201.1.1:4011")
		r := one(t, c.collect(t, p, time.Second), "4011 ack")
		if r.from.String() != "10.201.1.1:4011" || r.pkt.MessageType() != dhcpv4.MessageTypeAck || r.pkt.BootFileNameOption() != "snponly.efi" {
			t.Errorf("from %v: %s", r.from, r.pkt.Summary())
		}
	})

	t.Run("4011 PXEBS xid 0 from 68 (iPXE)", func(t *testing.T) {
		c := newRawClient(t, C1, "c1", 68)
		p := ipxePXEBSRequest()
		p.ciaddr = "10.201.1.50"
		c.send(t, p, "10.201.1.1:4011")
		r := one(t, c.collect(t, p, time.Second), "PXEBS ack")
		if r.from.String() != "10.201.1.1:4011" || binaryXID(r.pkt) != 0 {
			t.Errorf("from %v xid %v", r.from, r.pkt.TransactionID)
		}
		if !bytes.Equal(r.pkt.Options.Get(opt43), []byte{71, 4, 0x80, 0x02, 0, 0, 255}) {
			t.Errorf("43 = %x, want the 43.71 boot item echoed", r.pkt.Options.Get(opt43))
		}
	})

	t.Run("relayed request answered to giaddr:67", func(t *testing.T) {
		relay := newRawClient(t, C2, "c2", 67)
		p := relayedDiscover()
		p.giaddr = "10.201.2.50"
		relay.send(t, p, "10.201.2.1:67")
		r := one(t, relay.collect(t, p, time.Second), "relayed offer")
		if r.from.String() != "10.201.2.1:67" || !r.pkt.GatewayIPAddr.Equal(ipb("10.201.2.50")) ||
			!r.pkt.ServerIdentifier().Equal(ipb("10.201.2.1")) {
			t.Errorf("from %v: %s", r.from, r.pkt.Summary())
		}
	})

	if cs := obs.seen(macBIOS.String()); len(cs) == 0 || cs[0].Interface != "s1" || cs[0].Firmware.String() != "bios" {
		t.Errorf("observer: %+v", cs)
	}
}
