package ops

import (
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/pxewim/pxewim/dhcp"
)

var _ dhcp.Observer6 = (*Hub)(nil)

// Exchange6 records one DHCPv6 exchange (dhcp.Observer6) in the client's trace, as Exchange
// does for DHCPv4. Clients are keyed by MAC (from the DUID or the link-local address); the
// DUID is shown in the trace line.
func (h *Hub) Exchange6(c6 dhcp.Client6, mt dhcpv6.MessageType, d dhcp.Decision, err error) {
	h.exchange(c6.Client, "DHCPv6 "+mt.String()+" (DUID "+c6.DUID+")", mt == dhcpv6.MessageTypeSolicit, d, err)
}
