package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

type limitClock struct{ t time.Time }

func (c *limitClock) now() time.Time { return c.t }

// limitedHandler is a proxy (or full) handler with a rate limit on a clock the test moves.
func limitedHandler(t *testing.T, mode Mode, cfg RateLimit) (*handler, *limitClock) {
	t.Helper()
	clk := &limitClock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(cfg, quietLog())
	l.now = clk.now
	h := &handler{mode: ModeProxy, policy: testPolicy{}, log: quietLog(), limit: l}
	if mode == ModeFull {
		h = newFullHandler(t, filepath.Join(t.TempDir(), "l.db"))
		h.limit = l
	}
	return h, clk
}

// try sends p from src to port and reports whether it was answered; a refusal must be the
// rate limit's.
func try(t *testing.T, h *handler, p rawPkt, port int, src string) bool {
	t.Helper()
	resp, err := h.handle(context.Background(), request{pkt: p.parse(t), port: port, server: server, iface: "br0",
		src: netip.MustParseAddrPort(src)})
	switch {
	case err == nil && resp != nil:
		return true
	case errors.Is(err, errRateLimited) && errors.Is(err, errIgnored):
		return false
	}
	t.Fatalf("%s from %s: neither answered nor rate limited: %v", p.parse(t).MessageType(), src, err)
	return false
}

func withMAC(p rawPkt, i int) rawPkt {
	p.mac = net.HardwareAddr{0x02, 0xf1, 0x00, byte(i >> 16), byte(i >> 8), byte(i)}
	return p.with(rawOpt{61, append([]byte{1}, p.mac...)}) // option 61 names the client too
}

// TestRateLimitPerMAC: one MAC gets its burst, then PerSecond; other MACs from the same
// source are not held back by it; the port-4011 path counts too.
func TestRateLimitPerMAC(t *testing.T) {
	h, clk := limitedHandler(t, ModeProxy, RateLimit{})
	burst := DefaultRateLimit.PerMAC.Burst
	n := 0
	for range burst + 10 {
		if try(t, h, ipxeBIOSDiscover(), 67, "0.0.0.0:68") {
			n++
		}
	}
	if n != burst {
		t.Errorf("one MAC got %d answers at once, want its burst %d", n, burst)
	}
	if try(t, h, withMAC(ipxeBIOSDiscover(), 1), 67, "0.0.0.0:68") != true {
		t.Error("another MAC on the same link was refused")
	}
	req := ovmfPXERequest4011()
	req.mac = macBIOS
	if try(t, h, req, 4011, "10.77.0.143:4011") {
		t.Error("port 4011 request answered although its MAC is over its limit")
	}
	clk.t = clk.t.Add(time.Second)
	n = 0
	for range 10 {
		if try(t, h, ipxeBIOSDiscover(), 67, "0.0.0.0:68") {
			n++
		}
	}
	if want := int(DefaultRateLimit.PerMAC.PerSecond); n != want {
		t.Errorf("after a second: %d answers, want %d", n, want)
	}
	st := h.limit.stats()
	if st.ByMAC != uint64(10+1+10-2) || st.BySource != 0 || st.Dropped != st.ByMAC {
		t.Errorf("stats = %+v", st)
	}
}

// TestRateLimitPerSource: a flood of random MACs from one source gets the source's burst,
// then its rate; a relay (giaddr) is a source of its own; packets nobody answers (plain DHCP
// clients in proxy mode) use no tokens.
func TestRateLimitPerSource(t *testing.T) {
	h, clk := limitedHandler(t, ModeProxy, RateLimit{PerSource: Rate{PerSecond: 100, Burst: 500}})
	for range 5000 { // not a netboot client: ignored before the limit
		_, err := h.handle(context.Background(), request{pkt: plainDiscover().parse(t), port: 67, server: server, iface: "br0",
			src: netip.MustParseAddrPort("0.0.0.0:68")})
		if !errors.Is(err, errIgnored) || errors.Is(err, errRateLimited) {
			t.Fatalf("plain DISCOVER: %v", err)
		}
	}
	n := 0
	for i := range 20000 {
		clk.t = clk.t.Add(20 * time.Microsecond) // 20,000 in 0.4 s
		if try(t, h, withMAC(ipxeBIOSDiscover(), i), 67, "0.0.0.0:68") {
			n++
		}
	}
	if want := 500 + 40; n < want-1 || n > want+1 {
		t.Errorf("flood: %d answered, want about %d (burst 500 + 0.4 s at 100/s)", n, want)
	}
	relayed := relayedDiscover()
	if !try(t, h, withMAC(relayed, 99999), 67, "10.78.0.1:67") {
		t.Error("a relayed client was refused for the local link's flood")
	}
	if try(t, h, withMAC(ipxeBIOSDiscover(), 99998), 67, "0.0.0.0:68") {
		t.Error("the flooded source answered again at once")
	}
	if st := h.limit.stats(); st.BySource != uint64(20000-n+1) || st.Sources != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// TestRateLimitTablesBounded: a flood of distinct MACs and sources keeps each table at
// Tracked entries.
func TestRateLimitTablesBounded(t *testing.T) {
	h, clk := limitedHandler(t, ModeProxy, RateLimit{Tracked: 64})
	for i := range 10000 {
		clk.t = clk.t.Add(time.Millisecond)
		ip := netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
		try(t, h, withMAC(ovmfPXERequest4011(), i), 4011, netip.AddrPortFrom(ip, 4011).String())
		if st := h.limit.stats(); st.MACs > 64 || st.Sources > 64 {
			t.Fatalf("tables grew to %d MACs, %d sources", st.MACs, st.Sources)
		}
	}
	// Lowering Tracked on a running server shrinks the tables.
	h.limit.set(RateLimit{Tracked: 8})
	if st := h.limit.stats(); st.MACs != 8 || st.Sources != 8 {
		t.Errorf("after set: %+v", st)
	}
}

// TestRateLimitOffAndFullMode: Off answers everything; in full mode the limit applies before
// the lease store, so a flood reserves no more addresses than it is answered.
func TestRateLimitOffAndFullMode(t *testing.T) {
	h, _ := limitedHandler(t, ModeProxy, RateLimit{Off: true})
	for range 100 {
		if !try(t, h, ipxeBIOSDiscover(), 67, "0.0.0.0:68") {
			t.Fatal("refused with the limit off")
		}
	}
	h, _ = limitedHandler(t, ModeFull, RateLimit{PerSource: Rate{PerSecond: 1, Burst: 5}})
	n := 0
	for i := range 11 { // the test pool holds 11 addresses
		if try(t, h, withMAC(plainDiscover(), i), 67, "0.0.0.0:68") {
			n++
		}
	}
	if n != 5 {
		t.Errorf("full mode: %d of 11 DISCOVERs answered, want 5", n)
	}
	leases, err := h.full.leases.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 5 {
		t.Errorf("the flood reserved %d addresses, want the 5 it was answered", len(leases))
	}
}
