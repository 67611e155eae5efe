package dhcp

import "net/netip"

// allow6 is allow for DHCPv6: the per-client bucket is keyed by DUID (the MAC table, with a
// "duid:" prefix), the per-source one by the sender, except that every client sending from a
// link-local address (all clients on the server's links: EDK2 and iPXE solicit from fe80::)
// shares one bucket, "::", as DHCPv4 clients on the link share 0.0.0.0. So random link-local
// sources with random DUIDs are still capped at PerSource for the whole link.
func (l *limiter) allow6(duid string, src netip.AddrPort) error {
	if l == nil {
		return nil
	}
	source := src.Addr().WithZone("")
	if source.IsLinkLocalUnicast() || !source.IsValid() {
		source = netip.IPv6Unspecified()
	}
	return l.take("duid:"+duid, duid, source, clientKind{proto: "dhcp6", name: "duid", rate: "per_client"})
}
