package main

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
)

func reservationsConfig(t *testing.T, leases, reservedIP string) *boot.Config {
	t.Helper()
	src := `dhcp:
  mode: full
  interfaces: [pxwnone0]
  full:
    range: 10.77.0.100-10.77.0.200
    netmask: 255.255.255.0
    leases: ` + leases + `
    options: [{code: 42, value: 10.77.0.1}]
    reservations:
      - {mac: "52:54:00:77:00:10", ip: ` + reservedIP + `, name: bench-10}
entries: [{name: a, ipxe: exit}]
rules:
  - {match: {mac: "52:54:00:*", ipxe: false}, entry: a, dhcp_options: [{code: 150, value: 10.77.0.5}]}
`
	cfg, err := boot.ParseConfig("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDHCPFullConfigPassesOptions: what the config says reaches the DHCP server's config, and
// the reload comparison sees a changed reservation but not a re-read of the same file (rules'
// matches hold pointers).
func TestDHCPFullConfigPassesOptions(t *testing.T) {
	cfg := reservationsConfig(t, "/tmp/x.db", "10.77.0.10")
	fc := dhcpFullConfig(cfg.DHCP.Full, cfg.Rules)
	if len(fc.Reservations) != 1 || fc.Reservations[0].Name != "bench-10" || len(fc.Options) != 1 ||
		len(fc.RuleOptions) != 1 || fc.RuleOptions[0].Options[0].Code != 150 || fc.RuleOptions[0].Line != 13 {
		t.Fatalf("full config: %+v", fc)
	}
	if err := dhcp.CheckFullConfig(fc); err != nil {
		t.Fatal(err)
	}
	settings := func(c *boot.Config) string {
		return dhcpSettings(dhcp.Config{Mode: dhcp.ModeFull, Full: dhcpFullConfig(c.DHCP.Full, c.Rules)})
	}
	if a, b := settings(cfg), settings(reservationsConfig(t, "/tmp/x.db", "10.77.0.10")); a != b {
		t.Errorf("same config, different settings:\n%s\n%s", a, b)
	}
	if a, b := settings(cfg), settings(reservationsConfig(t, "/tmp/x.db", "10.77.0.11")); a == b {
		t.Errorf("changed reservation, same settings: %s", a)
	}
}

// TestCheckReservationConflicts: pxewim check names a live lease of another MAC on a reserved
// address (with the reservation's line), and says so when a server holds the lease file.
func TestCheckReservationConflicts(t *testing.T) {
	db := filepath.Join(t.TempDir(), "leases.db")
	ls, err := dhcp.OpenLeaseStore(db, netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("10.77.0.200"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Bind("hw:02:00:00:00:00:09", "02:00:00:00:00:09", netip.MustParseAddr("10.77.0.120"), time.Hour); err != nil {
		t.Fatal(err)
	}
	ps := checkReservations(reservationsConfig(t, db, "10.77.0.120"))
	if len(ps) != 1 || !strings.Contains(ps[0].what, "in use by a running server") {
		t.Errorf("lease file held: %v", ps)
	}
	ls.Close()
	ps = checkReservations(reservationsConfig(t, db, "10.77.0.120"))
	if len(ps) != 1 || !ps[0].info || !strings.Contains(ps[0].what, "p.yaml:10: dhcp.full.reservations: 10.77.0.120 is reserved for 52:54:00:77:00:10 but leased to 02:00:00:00:00:09") {
		t.Errorf("conflict: %v", ps)
	}
	if ps := checkReservations(reservationsConfig(t, db, "10.77.0.121")); len(ps) != 0 {
		t.Errorf("no conflict: %v", ps)
	}
}

func TestCheckRuleOptionsOutsideFullMode(t *testing.T) {
	cfg := reservationsConfig(t, "/tmp/x.db", "10.77.0.10")
	cfg.DHCP.Mode = boot.DHCPProxy
	ps := checkReservations(cfg)
	if len(ps) != 1 || !ps[0].info || !strings.Contains(ps[0].what, "p.yaml:13: rules[0].dhcp_options: ignored with DHCP proxy") {
		t.Errorf("%v", ps)
	}
}
