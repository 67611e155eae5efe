package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func newFullHandler(t *testing.T, db string) *handler {
	t.Helper()
	fs, err := newFullState(FullConfig{
		PoolStart: netip.MustParseAddr("10.77.0.100"), PoolEnd: netip.MustParseAddr("10.77.0.110"),
		Netmask: netip.MustParseAddr("255.255.255.0"), Router: server,
		DNS: []netip.Addr{server}, Domain: "lab.test", LeaseTime: time.Hour, LeaseDB: db,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.close() })
	return &handler{mode: ModeFull, policy: testPolicy{}, log: quietLog(), full: fs}
}

func (h *handler) do(t *testing.T, p rawPkt) *response {
	t.Helper()
	resp, err := h.handle(context.Background(), request{pkt: p.parse(t), port: 67, server: server, iface: "br0",
		src: netip.MustParseAddrPort("0.0.0.0:68")})
	if err != nil {
		t.Fatalf("%s: %v", p.parse(t).MessageType(), err)
	}
	return resp
}

// dora runs DISCOVER then REQUEST (selecting) for p and returns the ACK.
func (h *handler) dora(t *testing.T, p rawPkt) *dhcpv4.DHCPv4 {
	t.Helper()
	offer := h.do(t, p)
	if offer == nil || offer.pkt.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("no offer: %+v", offer)
	}
	ack := h.do(t, p.with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, server.AsSlice()}, rawOpt{50, offer.pkt.YourIPAddr.To4()}))
	if ack == nil || ack.pkt.MessageType() != dhcpv4.MessageTypeAck || !ack.pkt.YourIPAddr.Equal(offer.pkt.YourIPAddr) {
		t.Fatalf("bad ack: %+v", ack)
	}
	return ack.pkt
}

func TestFullModeNetbootAndPlain(t *testing.T) {
	h := newFullHandler(t, filepath.Join(t.TempDir(), "l.db"))
	for _, tt := range []struct {
		name   string
		pkt    rawPkt
		file   string
		vendor string
		opt43  bool
	}{
		{"plain client gets an address only", plainDiscover(), "", "", false},
		{"OVMF PXE gets address and file", ovmfPXEDiscover(), "snponly.efi", "PXEClient", false},
		{"iPXE BIOS gets address, script, 43.6", ipxeBIOSDiscover(), "http://10.77.0.1:8080/boot.ipxe?mac=52:54:00:77:00:0d", "PXEClient", true},
		{"HTTP Boot gets HTTPClient and URL", ovmfHTTPDiscover(), "http://10.77.0.1/ipxe/snponly.efi", "HTTPClient", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ack := h.dora(t, tt.pkt)
			yi := ip4(ack.YourIPAddr)
			if !h.full.leases.InPool(yi) {
				t.Errorf("yiaddr %v not in pool", yi)
			}
			if ack.BootFileNameOption() != tt.file || string(ack.Options.Get(opt60)) != tt.vendor || ack.Options.Has(opt43) != tt.opt43 {
				t.Errorf("67=%q 60=%q 43=%x", ack.BootFileNameOption(), ack.Options.Get(opt60), ack.Options.Get(opt43))
			}
			if ack.IPAddressLeaseTime(0) != time.Hour || !ack.Router()[0].Equal(server.AsSlice()) ||
				net.IP(ack.SubnetMask()).String() != "255.255.255.0" || !ack.ServerIdentifier().Equal(server.AsSlice()) ||
				ack.DomainName() != "lab.test" || len(ack.DNS()) != 1 {
				t.Errorf("lease options: %s", ack.Summary())
			}
			if rec, _ := h.full.leases.Get(yi); rec == nil || rec.State != LeaseBound || rec.MAC != tt.pkt.mac.String() {
				t.Errorf("store: %+v", rec)
			}
		})
	}
}

func TestFullModeRequests(t *testing.T) {
	h := newFullHandler(t, filepath.Join(t.TempDir(), "l.db"))
	a := ipxeBIOSDiscover()
	ack := h.dora(t, a)
	ip := ack.YourIPAddr.To4()

	// Renewal (RENEWING: ciaddr, no 54/50) -> ACK unicast to ciaddr:68.
	renew := a.with(msg(dhcpv4.MessageTypeRequest))
	renew.ciaddr = net.IP(ip).String()
	r := h.do(t, renew)
	if r.pkt.MessageType() != dhcpv4.MessageTypeAck || r.dst.String() != net.IP(ip).String()+":68" {
		t.Fatalf("renew: %v to %v", r.pkt.MessageType(), r.dst)
	}

	// INIT-REBOOT for a foreign address -> NAK, broadcast.
	r = h.do(t, a.with(msg(dhcpv4.MessageTypeRequest), rawOpt{50, ipb("192.168.5.5")}))
	if r.pkt.MessageType() != dhcpv4.MessageTypeNak || r.dst != bcast68 || !r.pkt.YourIPAddr.Equal(net.IPv4zero) {
		t.Fatalf("foreign init-reboot: %v to %v", r.pkt.MessageType(), r.dst)
	}

	// SELECTING without option 50 -> NAK.
	if r := h.do(t, a.with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, server.AsSlice()})); r.pkt.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("select without 50 got %v", r.pkt.MessageType())
	}

	// Another client asking for a's address (INIT-REBOOT or SELECTING) -> NAK: conflict.
	b := ovmfPXEDiscover()
	r = h.do(t, b.with(msg(dhcpv4.MessageTypeRequest), rawOpt{50, ip}))
	if r.pkt.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("conflicting init-reboot got %v", r.pkt.MessageType())
	}
	r = h.do(t, b.with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, server.AsSlice()}, rawOpt{50, ip}))
	if r.pkt.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("conflicting select got %v", r.pkt.MessageType())
	}
	// b's DISCOVER asking for a's address is offered another one.
	if o := h.do(t, b.with(rawOpt{50, ip})); o.pkt.YourIPAddr.Equal(ip) {
		t.Fatalf("offered a's address to b")
	}
	// b picks another server's offer: our reservation is freed, no reply.
	if r := h.do(t, b.with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, site.AsSlice()}, rawOpt{50, ipb("10.77.0.200")})); r != nil {
		t.Fatalf("replied to a REQUEST for another server")
	}
	all, _ := h.full.leases.All()
	if len(all) != 1 {
		t.Errorf("leases after b left: %+v", all)
	}

	// DECLINE parks the address; the next offer is different.
	h.do(t, a.with(msg(dhcpv4.MessageTypeDecline), rawOpt{50, ip}, rawOpt{54, server.AsSlice()}))
	if rec, _ := h.full.leases.Get(ip4(ip)); rec == nil || rec.State != LeaseDeclined {
		t.Fatalf("after decline: %+v", rec)
	}
	if o := h.do(t, a); o.pkt.YourIPAddr.Equal(ip) {
		t.Fatal("declined address offered again")
	}

	// RELEASE frees a's new lease.
	ack2 := h.dora(t, a)
	rel := a.with(msg(dhcpv4.MessageTypeRelease), rawOpt{54, server.AsSlice()})
	rel.ciaddr = ack2.YourIPAddr.String()
	h.do(t, rel)
	if rec, _ := h.full.leases.Get(ip4(ack2.YourIPAddr)); rec != nil {
		t.Errorf("released lease still there: %+v", rec)
	}

	// INFORM: ACK with config, no yiaddr, no lease time, sent to ciaddr.
	inf := plainDiscover().with(msg(dhcpv4.MessageTypeInform))
	inf.ciaddr = "10.77.0.50"
	r = h.do(t, inf)
	if r.pkt.MessageType() != dhcpv4.MessageTypeAck || !r.pkt.YourIPAddr.Equal(net.IPv4zero) ||
		r.pkt.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || r.dst.String() != "10.77.0.50:68" {
		t.Errorf("inform: %s to %v", r.pkt.Summary(), r.dst)
	}
}

func TestFullModeRelayed(t *testing.T) {
	h := newFullHandler(t, filepath.Join(t.TempDir(), "l.db"))
	p := relayedDiscover()
	p.giaddr = "10.77.0.254" // a relay on the pool's subnet
	r := h.do(t, p)
	if r.dst.String() != "10.77.0.254:67" || !r.pkt.GatewayIPAddr.Equal(net.ParseIP("10.77.0.254")) {
		t.Fatalf("relayed offer to %v giaddr %v", r.dst, r.pkt.GatewayIPAddr)
	}
	// A relay on another subnet: this pool cannot serve it.
	resp, err := h.handle(context.Background(), request{pkt: relayedDiscover().parse(t), port: 67, server: server})
	if resp != nil || !errors.Is(err, errIgnored) {
		t.Fatalf("foreign relay: resp %v err %v", resp, err)
	}
}

func TestFullModeLeasesSurviveRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "l.db")
	h := newFullHandler(t, db)
	ack := h.dora(t, ovmfPXEDiscover())
	h.full.close()

	h2 := newFullHandler(t, db)
	o := h2.do(t, ovmfPXEDiscover())
	if !o.pkt.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Fatalf("after restart offered %v, want the client's lease %v", o.pkt.YourIPAddr, ack.YourIPAddr)
	}
	if o := h2.do(t, ipxeBIOSDiscover()); o.pkt.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Fatal("after restart the lease went to another client")
	}
}

func TestFullConfigValidation(t *testing.T) {
	base := FullConfig{PoolStart: netip.MustParseAddr("10.0.0.10"), PoolEnd: netip.MustParseAddr("10.0.0.20"),
		Netmask: netip.MustParseAddr("255.255.255.0"), LeaseDB: filepath.Join(t.TempDir(), "l.db")}
	bad := []func(*FullConfig){
		func(c *FullConfig) { c.Netmask = netip.MustParseAddr("255.0.255.0") },
		func(c *FullConfig) { c.Netmask = netip.Addr{} },
		func(c *FullConfig) { c.LeaseDB = "" },
		func(c *FullConfig) { c.PoolEnd = netip.MustParseAddr("10.0.0.1") },
	}
	for i, mod := range bad {
		c := base
		mod(&c)
		if fs, err := newFullState(c, nil); err == nil {
			fs.close()
			t.Errorf("case %d accepted", i)
		}
	}
}
