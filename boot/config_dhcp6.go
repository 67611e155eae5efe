package boot

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DHCP6Config is the dhcp.v6 section: DHCPv6 beside (or instead of) DHCPv4, with the same
// policy, menu and lease file.
//
//	dhcp:
//	  interfaces: [br0]
//	  v6:
//	    mode: proxy                 # off (default), proxy or full
//	    interfaces: [br0]           # default: dhcp.interfaces
//	    advertise: "fd00:77::1"     # optional: the address boot URLs name
//	    full:                       # mode full only
//	      range: fd00:77::100-fd00:77::1ff
//	      dns: ["fd00:77::1"]
//	      lease: 1h
//
// Full-mode leases go to the lease file of dhcp.full.leases (its leases6 bucket), or the
// default lease file. Router advertisements stay the site's job (see the README).
type DHCP6Config struct {
	Mode       DHCPMode // "" = off
	Interfaces []string
	Advertise  netip.Addr
	Full       *FullDHCP6
}

// FullDHCP6 is the address pool of full DHCPv6 mode.
type FullDHCP6 struct {
	RangeStart, RangeEnd netip.Addr
	DNS                  []netip.Addr
	Lease                time.Duration
}

// On reports whether DHCPv6 is on.
func (c DHCP6Config) On() bool { return c.Mode == DHCPProxy || c.Mode == DHCPFull }

// DHCP6Interfaces returns the interfaces DHCPv6 serves: its own list, else dhcp.interfaces.
func (c *Config) DHCP6Interfaces() []string {
	if len(c.DHCP.V6.Interfaces) > 0 {
		return c.DHCP.V6.Interfaces
	}
	return c.DHCP.Interfaces
}

// DHCP6LeasesPath is the lease file full DHCPv6 mode uses: dhcp.full.leases, else the default.
func (c *Config) DHCP6LeasesPath() string {
	if c.DHCP.Full != nil && c.DHCP.Full.Leases != "" {
		return c.DHCP.Full.Leases
	}
	return DefaultLeasesPath
}

// CheckDHCP6 reports what DHCPv6 cannot run with (for serve and check).
func (c *Config) CheckDHCP6() error {
	v6 := c.DHCP.V6
	switch {
	case !v6.On():
		return nil
	case len(c.DHCP6Interfaces()) == 0:
		return fmt.Errorf("%s: dhcp.v6.interfaces: DHCPv6 mode %q needs at least one interface (dhcp.v6.interfaces or dhcp.interfaces)", c.Source, v6.Mode)
	case v6.Mode == DHCPFull && v6.Full == nil:
		return fmt.Errorf("%s: dhcp.v6.full: DHCPv6 mode full needs the dhcp.v6.full section (range, ...)", c.Source)
	}
	return nil
}

func (d *decoder) ipv6(n *yaml.Node, key string, dst *netip.Addr) {
	var s string
	if !d.str(n, key, &s) {
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || a.IsMulticast() || a.IsUnspecified() {
		d.errorf(n, key, "want an IPv6 unicast address such as fd00:77::1, got %q", s)
		return
	}
	*dst = a
}

func (d *decoder) dhcp6(n *yaml.Node, key string, dst *DHCP6Config) {
	d.mapping(n, key, fields{
		"mode":       func(v *yaml.Node, k string) { d.dhcpMode(v, k, &dst.Mode) },
		"interfaces": func(v *yaml.Node, k string) { d.interfaces(v, k, &dst.Interfaces) },
		"advertise": func(v *yaml.Node, k string) {
			d.ipv6(v, k, &dst.Advertise)
			if dst.Advertise.IsLinkLocalUnicast() {
				d.errorf(v, k, "%s is link-local: a URL cannot carry its zone; give a global or unique-local address", dst.Advertise)
				dst.Advertise = netip.Addr{}
			}
		},
		"full": func(v *yaml.Node, k string) { dst.Full = d.full6(v, k) },
	})
}

func (d *decoder) full6(n *yaml.Node, key string) *FullDHCP6 {
	f := &FullDHCP6{Lease: time.Hour}
	seen := d.mapping(n, key, fields{
		"range": func(v *yaml.Node, k string) {
			var s string
			if !d.str(v, k, &s) {
				return
			}
			a, b, ok := strings.Cut(s, "-")
			start, err1 := netip.ParseAddr(strings.TrimSpace(a))
			end, err2 := netip.ParseAddr(strings.TrimSpace(b))
			if !ok || err1 != nil || err2 != nil || !start.Is6() || !end.Is6() || start.Is4In6() || end.Is4In6() ||
				start.Zone() != "" || end.Zone() != "" {
				d.errorf(v, k, "want FIRST-LAST IPv6 addresses such as fd00:77::100-fd00:77::1ff, got %q", s)
				return
			}
			if start.IsLinkLocalUnicast() || start.IsMulticast() || start.IsUnspecified() || start.IsLoopback() {
				d.errorf(v, k, "range %q: not addresses clients can be given", s)
				return
			}
			if end.Less(start) {
				d.errorf(v, k, "range %q ends before it starts", s)
				return
			}
			sb, eb := start.As16(), end.As16()
			if [12]byte(sb[:12]) != [12]byte(eb[:12]) || uint32(eb[12])<<24|uint32(eb[13])<<16|uint32(eb[14])<<8|uint32(eb[15])-
				(uint32(sb[12])<<24|uint32(sb[13])<<16|uint32(sb[14])<<8|uint32(sb[15])) >= 1<<16 {
				d.errorf(v, k, "range %q holds more than 65536 addresses", s)
				return
			}
			f.RangeStart, f.RangeEnd = start, end
		},
		"dns": func(v *yaml.Node, k string) {
			var ss []string
			d.strList(v, k, &ss)
			for i, s := range ss {
				a, err := netip.ParseAddr(s)
				if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
					d.errorf(v, fmt.Sprintf("%s[%d]", k, i), "want an IPv6 address, got %q", s)
					continue
				}
				f.DNS = append(f.DNS, a)
			}
		},
		"lease": func(v *yaml.Node, k string) {
			d.duration(v, k, &f.Lease)
			if f.Lease < time.Minute {
				d.errorf(v, k, "lease %s is too short (at least 1m)", f.Lease)
			}
		},
	})
	if _, ok := seen["range"]; !ok {
		d.errorf(n, joinKey(key, "range"), "required in full DHCPv6 mode")
	}
	return f
}
