package boot

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigDHCP6(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("dhcp:\n  interfaces: [br0]\n  v6:\n    mode: full\n    advertise: fd00:77::1\n"+
		"    full:\n      range: fd00:77::100-fd00:77::1ff\n      dns: [\"fd00:77::53\"]\n      lease: 2h\n"))
	if err != nil {
		t.Fatal(err)
	}
	v6 := cfg.DHCP.V6
	if v6.Mode != DHCPFull || v6.Advertise != netip.MustParseAddr("fd00:77::1") || v6.Full == nil ||
		v6.Full.RangeStart != netip.MustParseAddr("fd00:77::100") || v6.Full.RangeEnd != netip.MustParseAddr("fd00:77::1ff") ||
		len(v6.Full.DNS) != 1 || v6.Full.Lease != 2*time.Hour {
		t.Errorf("dhcp.v6 = %+v (full %+v)", v6, v6.Full)
	}
	if got := cfg.DHCP6Interfaces(); len(got) != 1 || got[0] != "br0" {
		t.Errorf("interfaces default to dhcp.interfaces: %v", got)
	}
	if err := cfg.CheckDHCP6(); err != nil {
		t.Error(err)
	}
	if cfg.DHCP6LeasesPath() != DefaultLeasesPath {
		t.Errorf("leases %q", cfg.DHCP6LeasesPath())
	}
	if cfg, _ := ParseConfig("c.yaml", []byte("dhcp: {mode: off}\n")); cfg.DHCP.V6.On() {
		t.Error("DHCPv6 on without a dhcp.v6 section")
	}
	cfg, err = ParseConfig("c.yaml", []byte("dhcp:\n  v6:\n    mode: full\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckDHCP6(); err == nil || !strings.Contains(err.Error(), "dhcp.v6.interfaces") {
		t.Errorf("no interfaces: %v", err)
	}
	_, err = ParseConfig("c.yaml", []byte("dhcp:\n  v6:\n    mode: both\n    advertise: fe80::1\n    interfaces: [\"a b\"]\n"+
		"    full:\n      range: 10.0.0.1-10.0.0.9\n      dns: [10.0.0.1]\n"))
	for _, w := range []string{"dhcp.v6.mode: want off, proxy or full", "dhcp.v6.advertise: fe80::1 is link-local",
		"is not an interface name", "dhcp.v6.full.range: want FIRST-LAST IPv6", "dhcp.v6.full.dns[0]: want an IPv6 address"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q: %v", w, err)
		}
	}
	for _, r := range []string{"fd00::1:0-fd00::2:1", "fd00::9-fd00::1", "fe80::1-fe80::9", "ff02::1-ff02::9"} {
		if _, err := ParseConfig("c.yaml", []byte("dhcp:\n  v6:\n    full:\n      range: "+r+"\n")); err == nil {
			t.Errorf("range %s accepted", r)
		}
	}
}

func TestHTTPBaseIPv6(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("listen:\n  http: \":8080\"\n  advertise: 10.77.0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.HTTPBase(netip.MustParseAddr("fd00:77::1")); got != "http://[fd00:77::1]:8080" {
		t.Errorf("IPv6 client with an IPv4 advertise: %q", got)
	}
	if got := p.HTTPBase(netip.MustParseAddr("10.77.0.9")); got != "http://10.77.0.1:8080" {
		t.Errorf("IPv4 client: %q", got)
	}
}
