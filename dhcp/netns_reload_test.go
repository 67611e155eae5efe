package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestNetnsReconfigure switches one running server proxy -> full -> full with another pool ->
// off -> proxy, the way a config reload does, and checks on the wire after each step: proxy
// offers without an address, full offers from the pool, leases kept in the same bbolt file,
// ports 67 and 4011 released in off mode, a refused reconfiguration leaving the old one serving.
func TestNetnsReconfigure(t *testing.T) {
	needNetns(t)
	S, C := newNetns(t, "rs"), newNetns(t, "rc")
	veth(t, S, "s1", "10.203.1.1/24", C, "c1", "")
	srv := netip.MustParseAddr("10.203.1.1")
	base := Config{Mode: ModeProxy, Interfaces: []string{"s1"}, Policy: testPolicy{}}
	s := startServer(t, S, base)
	reconf := func(cfg Config) error {
		return inNetns(S, func() error { return s.Reconfigure(cfg) })
	}
	client := newRawClient(t, C, "c1", 68)

	// Proxy: a PXE client gets boot information and no address; a plain client nothing.
	// The first exchange is retransmitted as a DHCP client does: a just-made veth pair can drop
	// the first broadcast while its link comes up.
	p := ovmfPXEDiscover()
	var got []received
	for try := 0; try < 3 && len(got) == 0; try++ {
		client.send(t, p, "255.255.255.255:67")
		got = client.collect(t, p, 2*time.Second)
	}
	r := one(t, got, "proxy offer")
	if !r.pkt.YourIPAddr.IsUnspecified() || !r.pkt.ServerIdentifier().Equal(srv.AsSlice()) || r.pkt.BootFileNameOption() != "snponly.efi" {
		t.Fatalf("proxy offer: %s", r.pkt.Summary())
	}
	plain := plainDiscover()
	client.send(t, plain, "255.255.255.255:67")
	if got := client.collect(t, plain, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("proxy mode answered a plain client")
	}

	// Full: addresses from the pool for everyone, netboot clients get the boot file too.
	db := filepath.Join(t.TempDir(), "leases.db")
	full := base
	full.Mode = ModeFull
	full.Full = FullConfig{PoolStart: netip.MustParseAddr("10.203.1.100"), PoolEnd: netip.MustParseAddr("10.203.1.110"),
		Netmask: netip.MustParseAddr("255.255.255.0"), LeaseTime: time.Hour, LeaseDB: db}
	if err := reconf(full); err != nil {
		t.Fatal(err)
	}
	bound := dora(t, client, plain, srv)
	if s.Leases() == nil {
		t.Fatal("full mode without a lease store")
	}
	client.send(t, p, "255.255.255.255:67")
	r = one(t, client.collect(t, p, 2*time.Second), "full offer to a PXE client")
	if r.pkt.YourIPAddr.IsUnspecified() || r.pkt.BootFileNameOption() != "snponly.efi" {
		t.Fatalf("full offer: %s", r.pkt.Summary())
	}

	// Full again with a longer lease and a wider pool: same lease file, the lease is still there
	// and the client keeps its address.
	wider := full
	wider.Full.PoolEnd = netip.MustParseAddr("10.203.1.150")
	wider.Full.LeaseTime = 2 * time.Hour
	if err := reconf(wider); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Leases().Get(bound)
	if err != nil || rec == nil || rec.State != LeaseBound {
		t.Fatalf("lease for %v after reload: %+v, %v", bound, rec, err)
	}
	if again := dora(t, client, plain, srv); again != bound {
		t.Errorf("after reload the client got %v, had %v", again, bound)
	}

	// A reconfiguration that cannot work is refused and changes nothing.
	bad := wider
	bad.Interfaces = []string{"nosuch0"}
	if err := reconf(bad); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Fatalf("reconfigure to a missing interface: %v", err)
	}
	if s.Mode() != ModeFull {
		t.Fatalf("mode %v after a refused reload", s.Mode())
	}

	// Off: no answers, and the ports are free for another DHCP server.
	if err := reconf(Config{Mode: ModeOff}); err != nil {
		t.Fatal(err)
	}
	client.send(t, p, "255.255.255.255:67")
	if got := client.collect(t, p, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("off mode answered: %s", got[0].pkt.Summary())
	}
	var squatter net.PacketConn
	if err := inNetns(S, func() (err error) { squatter, err = net.ListenPacket("udp4", "0.0.0.0:67"); return err }); err != nil {
		t.Fatalf("port 67 still held in off mode: %v", err)
	}

	// Back to proxy while something else holds 67: refused, naming the port; still off.
	err = reconf(base)
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "port 67") {
		t.Fatalf("reconfigure with port 67 taken: %v", err)
	}
	if s.Mode() != ModeOff {
		t.Fatalf("mode %v after a refused reload", s.Mode())
	}
	squatter.Close()
	if err := reconf(base); err != nil {
		t.Fatal(err)
	}
	client.send(t, p, "255.255.255.255:67")
	r = one(t, client.collect(t, p, 2*time.Second), "proxy offer after off")
	if !r.pkt.YourIPAddr.IsUnspecified() {
		t.Errorf("proxy offer with an address: %s", r.pkt.Summary())
	}
	// The lease file was closed with full mode: another process could open it now.
	ls, err := OpenLeaseStore(db, full.Full.PoolStart, full.Full.PoolEnd)
	if err != nil {
		t.Fatalf("lease file still locked after leaving full mode: %v", err)
	}
	if rec, _ := ls.Get(bound); rec == nil || rec.State != LeaseBound {
		t.Errorf("lease for %v lost: %+v", bound, rec)
	}
	ls.Close()
}

// dora runs DISCOVER, REQUEST for p's MAC and returns the bound address.
func dora(t *testing.T, c *rawClient, p rawPkt, srv netip.Addr) netip.Addr {
	t.Helper()
	c.send(t, p, "255.255.255.255:67")
	offer := one(t, c.collect(t, p, 2*time.Second), "full offer")
	ip, ok := netip.AddrFromSlice(offer.pkt.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		t.Fatalf("offer without address: %s", offer.pkt.Summary())
	}
	req := p.with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, srv.AsSlice()}, rawOpt{50, ip.AsSlice()})
	c.send(t, req, "255.255.255.255:67")
	ack := one(t, c.collect(t, req, 2*time.Second), "full ack")
	if ack.pkt.MessageType() != dhcpv4.MessageTypeAck || !ack.pkt.YourIPAddr.Equal(ip.AsSlice()) {
		t.Fatalf("ack: %s", ack.pkt.Summary())
	}
	return ip
}

// TestNetnsAddressChange changes the served interface's address under a running proxy (ip addr
// del/add, as DHCP clients and admins do) and expects the next offer to name the new address
// in siaddr and option 54, without a restart or reload.
func TestNetnsAddressChange(t *testing.T) {
	needNetns(t)
	S, C := newNetns(t, "as"), newNetns(t, "ac")
	veth(t, S, "s1", "10.204.1.1/24", C, "c1", "")
	startServer(t, S, Config{Mode: ModeProxy, Interfaces: []string{"s1"}, Policy: testPolicy{}})
	client := newRawClient(t, C, "c1", 68)
	p := ovmfPXEDiscover()
	offerFrom := func() netip.Addr {
		client.send(t, p, "255.255.255.255:67")
		got := client.collect(t, p, time.Second)
		if len(got) == 0 {
			return netip.Addr{}
		}
		sid, _ := netip.AddrFromSlice(got[0].pkt.ServerIdentifier().To4())
		if !got[0].pkt.ServerIPAddr.Equal(sid.AsSlice()) {
			t.Errorf("siaddr %v differs from option 54 %v", got[0].pkt.ServerIPAddr, sid)
		}
		return sid
	}
	if got := offerFrom(); got != netip.MustParseAddr("10.204.1.1") {
		t.Fatalf("first offer from %v", got)
	}

	sh(t, "ip", "-n", S, "addr", "del", "10.204.1.1/24", "dev", "s1")
	waitFor(t, 5*time.Second, "interface without address: no offers", func() bool { return !offerFrom().IsValid() })

	sh(t, "ip", "-n", S, "addr", "add", "10.204.1.9/24", "dev", "s1")
	want := netip.MustParseAddr("10.204.1.9")
	waitFor(t, 5*time.Second, "offers from the new address", func() bool { return offerFrom() == want })

	// A second address: the first one stays the default, replies keep naming it.
	sh(t, "ip", "-n", S, "addr", "add", "10.204.2.9/24", "dev", "s1")
	time.Sleep(300 * time.Millisecond)
	if got := offerFrom(); got != want {
		t.Errorf("after adding a second address, offer from %v, want %v", got, want)
	}
}

func waitFor(t *testing.T, max time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), max)
	defer cancel()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
