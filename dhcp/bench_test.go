package dhcp

import (
	"context"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// BenchmarkProxyDiscover is the per-packet CPU cost of the proxy path without sockets: parse,
// classify, policy, build, serialise.
func BenchmarkProxyDiscover(b *testing.B) {
	raw := ipxeBIOSDiscover().bytes()
	h := &handler{mode: ModeProxy, policy: testPolicy{}, log: quietLog()}
	src := netip.MustParseAddrPort("0.0.0.0:68")
	b.ReportAllocs()
	for b.Loop() {
		pkt, err := dhcpv4.FromBytes(raw)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := h.handle(context.Background(), request{pkt: pkt, port: 67, src: src, server: server, iface: "br0"})
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.pkt.ToBytes()
	}
}
