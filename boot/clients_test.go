package boot

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func newTestRegistry(t *testing.T, max int, ttl time.Duration) (*Registry, *fakeClock) {
	r := NewRegistry(max, ttl)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r.now = clk.now
	r.arpPath = ""
	return r, clk
}

func TestRegistryObserveAndLookup(t *testing.T) {
	r, clk := newTestRegistry(t, 10, time.Minute)
	m := mac("52:54:00:12:34:56")
	ip := netip.MustParseAddr("10.77.0.50")
	r.Observe(Client{MAC: m, Arch: 7, Firmware: FirmwareEFI64, UUID: "u1", Interface: "br0"})
	if _, ok := r.LookupIP(ip); ok {
		t.Fatal("IP known before anyone told us")
	}
	r.LearnIP(m, ip)
	c, ok := r.LookupIP(ip)
	if !ok || c.Firmware != FirmwareEFI64 || c.UUID != "u1" || c.IP != ip {
		t.Fatalf("LookupIP = %+v, %v", c, ok)
	}
	// A later DISCOVER (no IP, no UUID) keeps what we knew, and updates the rest.
	r.Observe(Client{MAC: m, Arch: 7, Firmware: FirmwareEFI64, IPXE: true})
	c, _ = r.LookupIP(ip)
	if !c.IPXE || c.UUID != "u1" || c.Interface != "br0" {
		t.Errorf("after merge: %+v", c)
	}
	// The address moves to another machine: the first one loses it.
	m2 := mac("52:54:00:00:00:02")
	r.LearnIP(m2, ip)
	if c, _ := r.LookupIP(ip); c.MAC.String() != m2.String() {
		t.Errorf("IP owner = %v, want %v", c.MAC, m2)
	}
	if c, _ := r.LookupMAC(m); c.IP.IsValid() {
		t.Errorf("old owner still has %v", c.IP)
	}
	// The client changes address: the old IP no longer points at it.
	ip2 := netip.MustParseAddr("10.77.0.51")
	r.LearnIP(m2, ip2)
	if _, ok := r.LookupIP(ip); ok {
		t.Error("stale IP still resolves")
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if _, ok := r.LookupIP(ip2); ok {
		t.Error("expired client still resolves")
	}
}

func TestRegistryBounded(t *testing.T) {
	r, clk := newTestRegistry(t, 3, time.Hour)
	for i := range 10 {
		clk.t = clk.t.Add(time.Second)
		r.Observe(Client{MAC: mac(fmt.Sprintf("52:54:00:00:00:%02x", i))})
		if r.Len() > 3 {
			t.Fatalf("registry grew to %d", r.Len())
		}
	}
	if _, ok := r.LookupMAC(mac("52:54:00:00:00:09")); !ok {
		t.Error("newest client evicted")
	}
	if _, ok := r.LookupMAC(mac("52:54:00:00:00:00")); ok {
		t.Error("oldest client kept")
	}
	r.Observe(Client{}) // no MAC: ignored
	if r.Len() != 3 {
		t.Errorf("len = %d", r.Len())
	}
}

const arpTable = `IP address       HW type     Flags       HW address            Mask     Device
10.77.0.9        0x1         0x0         00:00:00:00:00:00     *        br0
10.77.0.50       0x1         0x2         52:54:00:12:34:56     *        br0
10.77.0.51       0x1         0x2         zz:54:00:12:34:56     *        br0
`

func TestRegistryARPFallback(t *testing.T) {
	r, _ := newTestRegistry(t, 10, time.Hour)
	path := filepath.Join(t.TempDir(), "arp")
	if err := os.WriteFile(path, []byte(arpTable), 0o644); err != nil {
		t.Fatal(err)
	}
	r.arpPath = path
	r.Observe(Client{MAC: mac("52:54:00:12:34:56"), Firmware: FirmwareBIOS})
	c, ok := r.LookupIP(netip.MustParseAddr("10.77.0.50"))
	if !ok || c.Firmware != FirmwareBIOS || c.IP != netip.MustParseAddr("10.77.0.50") {
		t.Errorf("ARP fallback: %+v %v", c, ok)
	}
	for _, ip := range []string{"10.77.0.9", "10.77.0.51", "10.77.0.99"} {
		if c, ok := r.LookupIP(netip.MustParseAddr(ip)); ok {
			t.Errorf("%s resolved to %+v", ip, c)
		}
	}
	if m, err := findARP(strings.NewReader(strings.Repeat("x", 100)), netip.MustParseAddr("1.2.3.4")); m != nil || err != nil {
		t.Errorf("garbage table: %v %v", m, err)
	}
}
