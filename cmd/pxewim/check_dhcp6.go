package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
)

// checkDHCP6 reports what keeps IPv6 clients from booting with dhcp.v6 (serve_dhcp6.go).
func checkDHCP6(cfg *boot.Config) []problem {
	v6 := cfg.DHCP.V6
	if !v6.On() {
		return nil
	}
	var ps []problem
	if err := cfg.CheckDHCP6(); err != nil {
		return append(ps, problem{what: err.Error(), fix: "add the missing part of dhcp.v6, or set dhcp.v6.mode: off"})
	}
	if v6.Mode == boot.DHCPFull {
		f := v6.Full
		if err := dhcp.CheckFullConfig6(dhcp.FullConfig6{PoolStart: f.RangeStart, PoolEnd: f.RangeEnd, DNS: f.DNS,
			LeaseTime: f.Lease, LeaseDB: cfg.DHCP6LeasesPath()}); err != nil {
			ps = append(ps, problem{what: fmt.Sprintf("%s: dhcp.v6.full: %v", cfg.Source, err), fix: "correct dhcp.v6.full.range"})
		}
	}
	for _, name := range cfg.DHCP6Interfaces() {
		ni, err := net.InterfaceByName(name)
		if err != nil {
			ps = append(ps, problem{what: fmt.Sprintf("dhcp.v6: interface %q: %v", name, err), fix: "name an interface of this host"})
			continue
		}
		if v6.Advertise.IsValid() {
			continue
		}
		if !hasGlobal6(ni) {
			ps = append(ps, problem{what: fmt.Sprintf("dhcp.v6: interface %s has no global or unique-local IPv6 address", name),
				fix: "boot URLs need one (a link-local address cannot go in a URL): give the interface one, or set dhcp.v6.advertise"})
		}
	}
	for _, l := range []struct{ key, addr string }{{"listen.http", cfg.Listen.HTTP}, {"listen.tftp", cfg.Listen.TFTP}} {
		host, _, err := net.SplitHostPort(l.addr)
		if err != nil || host == "" {
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
			ps = append(ps, problem{what: fmt.Sprintf("%s is %s, an IPv4 address: IPv6 clients cannot reach it", l.key, l.addr),
				fix: "listen on :PORT (all addresses, IPv4 and IPv6)"})
		}
	}
	if v6.Mode == boot.DHCPProxy {
		ps = append(ps, problem{info: true, what: "dhcp.v6 proxy: iPXE has no proxy DHCPv6 (it takes only an Advertise with an address)",
			fix: "have the site's DHCPv6 server give clients with a user class (iPXE) option 59 = http://[this server]/boot.ipxe (README, IPv6 network boot)"})
	}
	return ps
}

func hasGlobal6(ni *net.Interface) bool {
	addrs, err := ni.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			ip := p.Addr()
			if ip.Is6() && !ip.Is4In6() && !ip.IsLinkLocalUnicast() && !ip.IsLoopback() && !ip.IsMulticast() {
				return true
			}
		}
	}
	return false
}
