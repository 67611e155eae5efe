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
	bc := c6.Client
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	c := h.lookup(bc.MAC, bc.IP.Unmap(), now)
	if c == nil {
		return
	}
	h.touch(c, now)
	v := &c.view
	c.dhcpSeen, v.DHCP = true, true
	v.Arch, v.Firmware, v.IPXE, v.HTTPBoot = int(bc.Arch), bc.Firmware.String(), bc.IPXE, bc.HTTPBoot
	if bc.UUID != "" {
		v.UUID = bc.UUID
	}
	what := "DHCPv6 " + mt.String() + " (DUID " + c6.DUID + ")"
	status := "answered"
	switch {
	case err != nil:
		status = "no reply"
	case d.NoBoot:
		status, what = "not netbooted", what+" (policy: no boot)"
	default:
		v.BootFile = d.BootFile
		what += " -> " + d.BootFile
	}
	if mt == dhcpv6.MessageTypeSolicit && len(c.live) == 0 {
		v.Stage = StageDHCP
	}
	e := TraceEntry{Time: now, Proto: "dhcp", What: what, Status: status}
	if err != nil {
		e.Err = err.Error()
		v.LastError, v.Hint = e.Err, dhcpHint(err)
	}
	h.addTrace(c, e)
	h.changed()
}
