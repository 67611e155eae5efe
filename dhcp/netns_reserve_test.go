package dhcp

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/pxewim/pxewim/boot"
)

// TestNetnsReservationsAndOptionsUdhcpc: BusyBox udhcpc as the client. A reserved MAC gets its
// address (outside the pool) and host name, other MACs get pool addresses, and the extra
// options (42, 150, a hex site option; one more by rule) arrive as udhcpc reports them to its
// script. Then a reload adds a reservation for the address a plain client holds: the reserved
// MAC gets it, and the plain client asking for it again gets another pool address.
func TestNetnsReservationsAndOptionsUdhcpc(t *testing.T) {
	needNetns(t)
	S, C := newNetns(t, "s"), newNetns(t, "c")
	veth(t, S, "s0", "10.205.0.1/24", C, "c0", "")
	const macA, macB, macR = "02:00:00:00:21:01", "02:00:00:00:21:02", "02:00:00:00:21:50"
	fc := FullConfig{
		PoolStart: netip.MustParseAddr("10.205.0.100"), PoolEnd: netip.MustParseAddr("10.205.0.120"),
		Netmask: netip.MustParseAddr("255.255.255.0"), Router: netip.MustParseAddr("10.205.0.1"),
		Domain: "lab.test", LeaseTime: time.Hour, LeaseDB: filepath.Join(t.TempDir(), "leases.db"),
		Reservations: []boot.Reservation{{MAC: macR, IP: netip.MustParseAddr("10.205.0.50"), Name: "bench-50"}},
		Options:      []boot.DHCPOption{opt(42, 10, 205, 0, 1), opt(150, 10, 205, 0, 5, 10, 205, 0, 6), opt(224, 1, 2, 10)},
		RuleOptions:  []RuleOptions{{Match: boot.Match{MAC: macR}, Options: []boot.DHCPOption{opt(225, 0xbe, 0xef)}}},
	}
	cfg := Config{Mode: ModeFull, Interfaces: []string{"s0"}, Policy: testPolicy{}, Full: fc}
	srv := startServer(t, S, cfg)
	ask := []string{"-O", "42", "-O", "150", "-O", "224", "-O", "225", "-O", "hostname", "-O", "domain"}
	as := func(mac string, extra ...string) map[string]string {
		t.Helper()
		sh(t, "ip", "-n", C, "link", "set", "c0", "address", mac)
		env := runUdhcpc(t, C, "c0", append(append([]string(nil), ask...), extra...))
		t.Logf("udhcpc as %s: %v", mac, env)
		return env
	}
	inPool := func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && !a.Less(fc.PoolStart) && !fc.PoolEnd.Less(a)
	}

	a := as(macA)
	if !inPool(a["ip"]) || a["ntpsrv"] != "10.205.0.1" || a["opt150"] != "0acd00050acd0006" || a["opt224"] != "01020a" ||
		a["hostname"] != "" || a["opt225"] != "" || a["domain"] != "lab.test" {
		t.Errorf("plain client A: %v", a)
	}
	r := as(macR)
	if r["ip"] != "10.205.0.50" || r["hostname"] != "bench-50" || r["opt225"] != "beef" || r["ntpsrv"] != "10.205.0.1" ||
		r["opt150"] != "0acd00050acd0006" || r["subnet"] != "255.255.255.0" || r["router"] != "10.205.0.1" {
		t.Errorf("reserved client: %v", r)
	}

	// Reload: B reserves the address A holds.
	cfg.Full.Reservations = append(cfg.Full.Reservations, boot.Reservation{MAC: macB, IP: netip.MustParseAddr(a["ip"]), Name: "pc-b"})
	if err := inNetns(S, func() error { return srv.Reconfigure(cfg) }); err != nil {
		t.Fatal(err)
	}
	b := as(macB)
	if b["ip"] != a["ip"] || b["hostname"] != "pc-b" {
		t.Errorf("client B after the reload: %v, want %s named pc-b", b, a["ip"])
	}
	a2 := as(macA, "-r", a["ip"])
	if a2["ip"] == a["ip"] || !inPool(a2["ip"]) {
		t.Errorf("client A asking for its old address after the reload got %v", a2)
	}
}
