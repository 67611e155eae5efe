package boot

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// floodMAC is the i-th MAC of a DHCP flood (random-looking, locally administered).
func floodMAC(rng *rand.Rand) net.HardwareAddr {
	var b [6]byte
	v := rng.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	b[0] = b[0]&^1 | 2
	return b[:]
}

func labMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x52, 0x54, 0x00, byte(i >> 16), byte(i >> 8), byte(i)}
}

func labIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(100 + i>>16), byte(i >> 8), byte(i)})
}

// bootUntilServed is what a native client does before its first transfer: a DISCOVER, the
// port-4011 REQUEST that tells us its address, then a TFTP lookup by that address.
func bootUntilServed(t *testing.T, r *Registry, i int) {
	t.Helper()
	r.Observe(Client{MAC: labMAC(i), Firmware: FirmwareBIOS})
	r.Observe(Client{MAC: labMAC(i), Firmware: FirmwareBIOS, IP: labIP(i), UUID: fmt.Sprint("uuid-", i)})
	if c, ok := r.LookupIP(labIP(i)); !ok || c.MAC.String() != labMAC(i).String() {
		t.Fatalf("client %d not found by its address before the flood: %+v %v", i, c, ok)
	}
}

// TestRegistryFloodKeepsServedClients: the issue-11 symptom. A native client did DHCP and its
// first TFTP transfer; 20,000 DISCOVERs from random MACs follow; its next TFTP request must
// still find it by address (its per-client tree hangs on the record). The registry stays
// within its cap, and the flood only displaced never-served records.
func TestRegistryFloodKeepsServedClients(t *testing.T) {
	r, clk := newTestRegistry(t, 1024, time.Hour)
	for i := range 50 {
		bootUntilServed(t, r, i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		clk.t = clk.t.Add(20 * time.Microsecond) // 20,000 in 0.4 s
		r.Observe(Client{MAC: floodMAC(rng), Firmware: FirmwareEFI64})
		if r.Len() > 1024 {
			t.Fatalf("registry grew to %d records, cap 1024", r.Len())
		}
	}
	for i := range 50 {
		c, ok := r.LookupIP(labIP(i))
		if !ok || c.MAC.String() != labMAC(i).String() || c.UUID != fmt.Sprint("uuid-", i) {
			t.Errorf("served client %d lost to the flood: %+v %v", i, c, ok)
		}
	}
	st := r.Stats()
	if st.Clients != 1024 || st.Served != 50 || st.Refused != 0 || st.Evicted != 20000-(1024-50) {
		t.Errorf("stats after the flood = %+v, want 1024 clients, 50 served, %d evicted, none refused", st, 20000-(1024-50))
	}
}

// TestRegistryEvictionOrder: expired records go first (served or not), then the least
// recently seen never-served one; a served record inside the TTL is never evicted, and a
// newcomer that finds only such records is refused (and counted) rather than recorded.
func TestRegistryEvictionOrder(t *testing.T) {
	r, clk := newTestRegistry(t, 3, time.Hour)
	has := func(m net.HardwareAddr) bool { _, ok := r.byMAC[m.String()]; return ok } // no lookup: no refresh
	a, b, c, d, e := labMAC(1), labMAC(2), labMAC(3), labMAC(4), labMAC(5)
	r.Observe(Client{MAC: a})
	r.LookupMAC(a) // a is served at t0
	clk.t = clk.t.Add(50 * time.Minute)
	r.Observe(Client{MAC: b}) // b: DHCP only, at t0+50m
	clk.t = clk.t.Add(time.Minute)
	r.Observe(Client{MAC: c}) // c: DHCP only, at t0+51m
	clk.t = clk.t.Add(time.Minute)
	r.Observe(Client{MAC: b}) // b seen again: now c is the least recently seen idle record
	r.Observe(Client{MAC: d}) // full: c goes (a is served within the TTL, b seen later)
	if has(c) || !has(a) || !has(b) || !has(d) {
		t.Fatalf("after d: a %v b %v c %v d %v, want c evicted only", has(a), has(b), has(c), has(d))
	}
	r.LookupMAC(b) // b and d are served now, at t0+52m
	r.LookupMAC(d)
	// Everyone is served within the TTL: a newcomer is refused, nobody is evicted.
	r.Observe(Client{MAC: e})
	if has(e) || !has(a) || !has(b) || !has(d) {
		t.Fatalf("full of served clients: a %v b %v d %v e %v, want e refused", has(a), has(b), has(d), has(e))
	}
	var logged strings.Builder
	r.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	r.Observe(Client{MAC: e}) // refused again: logged once
	r.Observe(Client{MAC: e}) // and again: within the minute, not logged
	if n := strings.Count(logged.String(), "client registry full"); n != 1 || !strings.Contains(logged.String(), "refused=2") {
		t.Errorf("refusals logged %d times, want once:\n%s", n, logged.String())
	}
	if st := r.Stats(); st.Clients != 3 || st.Served != 3 || st.Refused != 3 || st.Evicted != 1 {
		t.Errorf("stats = %+v, want 3 clients all served, 3 refused, 1 evicted", st)
	}
	// At t0+61m a's TTL has run out (not b's or d's): e takes a's place.
	clk.t = clk.t.Add(9 * time.Minute)
	r.Observe(Client{MAC: e})
	if !has(e) || has(a) || !has(b) || !has(d) {
		t.Errorf("after a expired: a %v b %v d %v e %v, want a replaced by e", has(a), has(b), has(d), has(e))
	}
	if st := r.Stats(); st.Evicted != 1 || st.Refused != 3 {
		t.Errorf("an expired record counted as evicted: %+v", st)
	}
}

// TestRegistryTransfersKeepClientsAlive: a client whose DHCP exchange is older than the TTL
// but whose transfers go on (a long TFTP download, then the next file) stays known; a lookup
// refreshes it.
func TestRegistryTransfersKeepClientsAlive(t *testing.T) {
	r, clk := newTestRegistry(t, 10, time.Hour)
	bootUntilServed(t, r, 7)
	for range 5 {
		clk.t = clk.t.Add(50 * time.Minute)
		if _, ok := r.LookupIP(labIP(7)); !ok {
			t.Fatalf("client with transfers every 50 minutes expired at %v", clk.t)
		}
	}
	clk.t = clk.t.Add(61 * time.Minute)
	if _, ok := r.LookupIP(labIP(7)); ok {
		t.Error("client idle for longer than the TTL still resolves")
	}
	if r.Len() != 0 {
		t.Errorf("expired record kept: %d records", r.Len())
	}
}

// TestRegistryLab5000: with the default size, a lab of 5,000 clients inside the TTL (all
// served) survives 20,000 flood DISCOVERs, and 5,000 more clients that boot during the flood
// (DHCP, then their first transfer 2,000 flood packets later) are all found by address. A
// never-served record lasts as long as it takes DefaultRegistrySize-served newer strangers to
// arrive: at the dhcp package's default per-source rate (dhcp.DefaultRateLimit) that is
// seconds, far more than a client needs from its DHCP ACK to its first TFTP request.
func TestRegistryLab5000(t *testing.T) {
	r, clk := newTestRegistry(t, 0, 0)
	const served, pending, gap = 5000, 5000, 2000
	for i := range served {
		clk.t = clk.t.Add(time.Millisecond)
		bootUntilServed(t, r, i)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	lostPending := 0
	for s := range 20000 + gap {
		clk.t = clk.t.Add(20 * time.Microsecond)
		if s%4 == 0 && s/4 < pending {
			i := served + s/4
			r.Observe(Client{MAC: labMAC(i)})
			r.Observe(Client{MAC: labMAC(i), IP: labIP(i)})
		}
		if j := (s - gap); j >= 0 && j%4 == 0 && j/4 < pending {
			if _, ok := r.LookupIP(labIP(served + j/4)); !ok {
				lostPending++
			}
		}
		if s < 20000 {
			r.Observe(Client{MAC: floodMAC(rng)})
		}
		if r.Len() > DefaultRegistrySize {
			t.Fatalf("%d records, over the cap %d", r.Len(), DefaultRegistrySize)
		}
	}
	lost := 0
	for i := range served {
		if _, ok := r.LookupIP(labIP(i)); !ok {
			lost++
		}
	}
	if lost > 0 || lostPending > 0 {
		t.Errorf("lost to the flood: %d of %d served clients, %d of %d clients booting during it", lost, served, lostPending, pending)
	}
	st := r.Stats()
	if st.Served != served+pending || st.Refused != 0 {
		t.Errorf("stats = %+v, want %d served, none refused", st, served+pending)
	}
	t.Logf("after the flood: %+v", st)
}

// TestRegistryMemoryPerEntry measures the heap one record costs (MAC, IP, UUID, interface,
// both indexes and the list element), so the default cap's footprint is known: the doc
// comment quotes it. The bound is loose (Go's map growth makes it vary by up to 2x).
func TestRegistryMemoryPerEntry(t *testing.T) {
	const n = DefaultRegistrySize
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := NewRegistry(n, time.Hour)
	r.arpPath = ""
	for i := range n {
		r.Observe(Client{MAC: labMAC(i), IP: labIP(i), Arch: 7, Firmware: FirmwareEFI64,
			UUID: "4c4c4544-0031-3510-8052-b4c04f4e3732", Interface: "enp3s0"})
		r.LookupIP(labIP(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("registry: %d records, %.0f bytes of heap each, %.1f MiB in all", r.Len(), per, per*n/(1<<20))
	if r.Len() != n {
		t.Fatalf("%d records, want %d", r.Len(), n)
	}
	if per > 600 {
		t.Errorf("%.0f bytes per record: more than the 600 the default cap was sized for", per)
	}
	runtime.KeepAlive(r)
}

// BenchmarkRegistryFloodObserve is the cost of one flood DISCOVER against a full registry
// (the default cap, every record a never-served stranger): eviction is O(1).
func BenchmarkRegistryFloodObserve(b *testing.B) {
	r := NewRegistry(0, 0)
	r.arpPath = ""
	rng := rand.New(rand.NewPCG(5, 6))
	for range DefaultRegistrySize {
		r.Observe(Client{MAC: floodMAC(rng)})
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Observe(Client{MAC: floodMAC(rng)})
	}
}
