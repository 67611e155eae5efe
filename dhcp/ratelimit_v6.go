package dhcp

import (
	"fmt"
	"net/netip"
)

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
	key := "duid:" + duid
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Off {
		return nil
	}
	now := l.now()
	mb := l.macs.get(key, now, l.cfg.PerMAC)
	sb := l.sources.get(source, now, l.cfg.PerSource)
	clientOK, srcOK := mb.tokens >= 1, sb.tokens >= 1
	if clientOK && srcOK {
		mb.tokens--
		sb.tokens--
		return nil
	}
	l.dropped++
	l.sinceWarn++
	which := "source"
	if !clientOK {
		l.droppedMAC++
		which = "duid"
	} else {
		l.droppedSource++
	}
	if now.Sub(l.lastWarn) >= limitWarnEvery {
		l.log.Warn("dhcp6 rate limit: not answering a flood (see dhcp.RateLimit)", "limit", which, "duid", duid, "source", source,
			"dropped", l.sinceWarn, "dropped_total", l.dropped,
			"per_client", fmt.Sprintf("%g/s burst %d", l.cfg.PerMAC.PerSecond, l.cfg.PerMAC.Burst),
			"per_source", fmt.Sprintf("%g/s burst %d", l.cfg.PerSource.PerSecond, l.cfg.PerSource.Burst))
		l.lastWarn, l.sinceWarn = now, 0
	}
	return fmt.Errorf("%w (per %s: duid %s, source %s)", errRateLimited, which, duid, source)
}
