package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// MaxReply6Size bounds a DHCPv6 reply: the IPv6 minimum MTU (1280) less the IPv6 and UDP
// headers, so no reply ever needs fragmenting.
const MaxReply6Size = 1280 - 40 - 8

// request6 is one received DHCPv6 message.
type request6 struct {
	msg     *dhcpv6.Message
	pxePort bool           // arrived on 4011 (EDK2's boot-server request), not 547
	src     netip.AddrPort // sender, without zone
	server  netip.Addr     // our address for boot URLs
	iface   string
	// relay is the relay agent that forwarded the message (zero: none); src is then the
	// client's address as the relay saw it (peer-address), linkAddr its link-address.
	relay    netip.AddrPort
	linkAddr netip.Addr
}

// response6 is one message to send.
type response6 struct {
	msg *dhcpv6.Message
	dst netip.AddrPort
}

// handler6 turns DHCPv6 requests into replies; it owns no sockets (tests and the fuzzer drive
// it directly).
type handler6 struct {
	mode     Mode
	policy   Policy
	observer Observer6
	log      *slog.Logger
	full     *fullState6 // nil unless ModeFull
	serverID dhcpv6.DUID
	limit    *limiter // the Server6's (nil in tests that drive a handler: no limit)
}

// handle answers one message; (nil, reason) when there is nothing to send.
func (h *handler6) handle(ctx context.Context, rq request6) (*response6, error) {
	m := rq.msg
	if m.Options.ClientID() == nil {
		return nil, fmt.Errorf("%w: %s without client identifier", errIgnored, m.MessageType)
	}
	if rq.pxePort {
		return h.bootServer(ctx, rq)
	}
	if h.mode == ModeFull {
		return h.full.handle(ctx, h, rq)
	}
	return h.proxy(ctx, rq)
}

// proxy answers port 547 in proxy mode: netboot clients only, boot information only.
func (h *handler6) proxy(ctx context.Context, rq request6) (*response6, error) {
	m := rq.msg
	c, ok, why := Classify6(m, rq.src.Addr())
	if !ok {
		return nil, fmt.Errorf("%w: %s", errIgnored, why)
	}
	c.Interface = rq.iface
	var mt dhcpv6.MessageType
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit:
		if c.IPXE {
			// iPXE takes only an Advertise with an address (dhcpv6_rx: DHCPV6_RX_RECORD_IAADDR),
			// so a proxy answer is noise; its Information-request (stateless links) is answered.
			return nil, fmt.Errorf("%w: iPXE Solicit (iPXE ignores an Advertise without an address; the site's DHCPv6 server must give iPXE option 59)", errIgnored)
		}
		mt = dhcpv6.MessageTypeAdvertise
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew:
		if !h.namesUs(m) {
			return nil, fmt.Errorf("%w: %s for another server", errIgnored, m.MessageType)
		}
		mt = dhcpv6.MessageTypeReply
	case dhcpv6.MessageTypeInformationRequest:
		if sid := m.Options.ServerID(); sid != nil && !sid.Equal(h.serverID) {
			return nil, fmt.Errorf("%w: Information-request for another server", errIgnored)
		}
		mt = dhcpv6.MessageTypeReply
	default:
		return nil, fmt.Errorf("%w: %s in proxy mode", errIgnored, m.MessageType)
	}
	if err := h.limit.allow6(c.DUID, rq.limitSource()); err != nil {
		return nil, err
	}
	d, err := h.decide(ctx, c, rq.server)
	if err != nil || d.NoBoot {
		h.observe(c, m.MessageType, d, err)
		return nil, err
	}
	r, err := h.bootReply(m, mt, c, rq.server, d)
	h.observe(c, m.MessageType, d, err)
	if err != nil {
		return nil, err
	}
	return &response6{msg: r, dst: rq.src}, nil
}

// limitSource is the sender the rate limit counts: the relay, else the client.
func (rq request6) limitSource() netip.AddrPort {
	if rq.relay.IsValid() {
		return rq.relay
	}
	return rq.src
}

// bootServer answers EDK2's request on port 4011: after combining our proxy Advertise
// (ProxyBinl: "PXEClient" without IA_NA) with the site's address, EDK2 sends its Request, with
// our server identifier, from [its address]:4011 to the host of our boot file URL on 4011, and
// takes the Reply's option 59 (PxeBcRetryDhcp6Binl). The Reply goes back to the sender.
func (h *handler6) bootServer(ctx context.Context, rq request6) (*response6, error) {
	m := rq.msg
	switch m.MessageType {
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeInformationRequest, dhcpv6.MessageTypeSolicit:
	default:
		return nil, fmt.Errorf("%w: %s on port 4011", errIgnored, m.MessageType)
	}
	if sid := m.Options.ServerID(); sid != nil && !sid.Equal(h.serverID) {
		return nil, fmt.Errorf("%w: port 4011 request for another server", errIgnored)
	}
	if !rq.src.IsValid() || rq.src.Port() == 0 || rq.src.Addr().IsUnspecified() || rq.src.Addr().IsMulticast() {
		return nil, fmt.Errorf("%w: port 4011 request without a usable source", errIgnored)
	}
	c, ok, why := Classify6(m, rq.src.Addr())
	if !ok {
		return nil, fmt.Errorf("%w: %s", errIgnored, why)
	}
	c.Interface = rq.iface
	if err := h.limit.allow6(c.DUID, rq.src); err != nil {
		return nil, err
	}
	d, err := h.decide(ctx, c, rq.server)
	if err == nil && !d.NoBoot && d.BootFile == "" {
		err = fmt.Errorf("port 4011 request from %s: policy gave no boot file", c.DUID)
	}
	if err != nil || d.NoBoot {
		h.observe(c, m.MessageType, d, err)
		return nil, err
	}
	r, err := h.bootReply(m, dhcpv6.MessageTypeReply, c, rq.server, d)
	h.observe(c, m.MessageType, d, err)
	if err != nil {
		return nil, err
	}
	return &response6{msg: r, dst: rq.src}, nil
}

func (h *handler6) namesUs(m *dhcpv6.Message) bool {
	sid := m.Options.ServerID()
	return sid != nil && sid.Equal(h.serverID)
}

// decide asks the Policy (with the same timeout as DHCPv4).
func (h *handler6) decide(ctx context.Context, c Client6, server netip.Addr) (Decision, error) {
	if h.policy == nil {
		return Decision{NoBoot: true}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, policyTimeout)
	defer cancel()
	d, err := h.policy.Decide(ctx, c.Client, server)
	if err != nil {
		return d, fmt.Errorf("boot policy for %s (arch %d): %w", c.DUID, c.Arch, err)
	}
	return d, nil
}

func (h *handler6) observe(c Client6, mt dhcpv6.MessageType, d Decision, err error) {
	if h.observer != nil {
		h.observer.Exchange6(c, mt, d, err)
	}
}

// bootReply builds an Advertise or Reply with boot information only: client and server
// identifiers, the vendor class EDK2 classifies offers by (enterprise 343 "PXEClient" or
// "HTTPClient"), option 59, and option 60 when the decision has parameters. It never carries
// IA_NA: EDK2 takes an offer with IA_NA (even one holding only a status code whose first byte
// is 0, which every defined code has) as an address offer, not a proxy offer.
func (h *handler6) bootReply(req *dhcpv6.Message, mt dhcpv6.MessageType, c Client6, server netip.Addr, d Decision) (*dhcpv6.Message, error) {
	u, err := BootURL6(d.BootFile, c, server)
	if err != nil {
		return nil, err
	}
	r := &dhcpv6.Message{MessageType: mt, TransactionID: req.TransactionID}
	r.AddOption(dhcpv6.OptClientID(req.Options.ClientID()))
	r.AddOption(dhcpv6.OptServerID(h.serverID))
	addBootOptions6(r, c, u)
	if n := len(r.ToBytes()); n > MaxReply6Size {
		return nil, fmt.Errorf("reply to %s would be %d bytes (at most %d): boot file URL too long", c.DUID, n, MaxReply6Size)
	}
	return r, nil
}

// addBootOptions6 appends the vendor class and option 59 for a netboot client (nothing for an
// empty URL).
func addBootOptions6(r *dhcpv6.Message, c Client6, u string) {
	if u == "" {
		return
	}
	if !c.IPXE || c.HTTPBoot || c.Arch != 0 {
		class := vendorPXE
		if c.HTTPBoot {
			class = vendorHTTP
		}
		r.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterprisePXE, Data: [][]byte{[]byte(class)}})
	}
	r.AddOption(dhcpv6.OptBootFileURL(u))
}

// BootURL6 turns a Policy's boot file into the URL of option 59: absolute http(s) URLs stay,
// a TFTP path becomes tftp://[server]/path (RFC 5970; EDK2 PxeBcExtractBootFileUrl wants
// exactly "tftp://[" literal "]/"), with each path segment percent-escaped. A PXE client gets
// only tftp URLs (EDK2 PXE refuses anything else) and an HTTP Boot client only http(s).
func BootURL6(file string, c Client6, server netip.Addr) (string, error) {
	if file == "" {
		return "", errors.New("no boot file")
	}
	if strings.ContainsAny(file, "\x00\r\n\t ") {
		return "", fmt.Errorf("boot file %q has control characters or spaces", file)
	}
	lower := strings.ToLower(file)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "tftp://") {
		pu, err := url.Parse(file)
		if err != nil || pu.Host == "" {
			return "", fmt.Errorf("boot file URL %q: %v", file, err)
		}
		isTFTP := pu.Scheme == "tftp"
		switch {
		case c.HTTPBoot && isTFTP:
			return "", fmt.Errorf("boot file %q: UEFI HTTP Boot needs an http URL", file)
		case !c.HTTPBoot && !c.IPXE && !isTFTP:
			return "", fmt.Errorf("boot file %q: UEFI PXE over IPv6 loads only tftp://[addr]/path", file)
		}
		return file, nil
	}
	if c.HTTPBoot {
		return "", fmt.Errorf("boot file %q: UEFI HTTP Boot needs an absolute http URL", file)
	}
	if !server.Is6() || server.Is4In6() {
		return "", fmt.Errorf("server address %v is not IPv6", server)
	}
	segs := strings.Split(strings.TrimLeft(strings.ReplaceAll(file, `\`, "/"), "/"), "/")
	for i, s := range segs {
		if s == ".." {
			return "", fmt.Errorf("boot file %q leaves the TFTP root", file)
		}
		segs[i] = url.PathEscape(s)
	}
	return "tftp://[" + server.WithZone("").String() + "]/" + strings.Join(segs, "/"), nil
}
