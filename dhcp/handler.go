package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// Mode selects what the server does: boot.DHCPMode, the config's one definition ("off",
// "proxy", "full"; the zero value counts as off).
type Mode = boot.DHCPMode

const (
	ModeOff   = boot.DHCPOff   // no DHCP at all
	ModeProxy = boot.DHCPProxy // proxy DHCP (67 + 4011) beside the site's DHCP server
	ModeFull  = boot.DHCPFull  // full DHCP with an address pool (isolated labs)
)

// ParseMode parses "off", "proxy" or "full".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "off", "":
		return ModeOff, nil
	case "proxy":
		return ModeProxy, nil
	case "full":
		return ModeFull, nil
	}
	return ModeOff, fmt.Errorf("dhcp mode %q: want off, proxy or full", s)
}

// Ports.
const (
	portServer = 67
	portClient = 68
	portPXE    = 4011
)

// request is one received packet with where it came from.
type request struct {
	pkt    *dhcpv4.DHCPv4
	port   int            // local port it arrived on: 67 or 4011
	src    netip.AddrPort // sender
	server netip.Addr     // our address facing the client (or the relay)
	iface  string         // receiving interface name
}

// response is one packet to send.
type response struct {
	pkt *dhcpv4.DHCPv4
	dst netip.AddrPort
}

// handler turns requests into responses. It owns no sockets, so tests and the fuzzer drive it
// directly.
type handler struct {
	mode     Mode
	policy   Policy
	observer Observer
	log      *slog.Logger
	full     *fullState // nil unless ModeFull
	// nextServer is the advertised TFTP server (Config.NextServer); zero: the reply's server.
	nextServer netip.Addr
	// raspberryPi answers Raspberry Pi bootloaders with the Pi boot menu (Config.RaspberryPi).
	raspberryPi bool
	// limit is the Server's rate limit (nil: none, as in tests that drive a handler).
	limit *limiter
}

// errIgnored marks a request that gets no reply on purpose (not for us).
var errIgnored = errors.New("ignored")

// handle answers one request. It returns (nil, reason) when there is nothing to send.
func (h *handler) handle(ctx context.Context, rq request) (*response, error) {
	if rq.pkt.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, fmt.Errorf("%w: not a BOOTREQUEST", errIgnored)
	}
	if h.mode == ModeFull && rq.port == portServer {
		return h.full.handle(ctx, h, rq)
	}
	c, ok, why := Classify(rq.pkt)
	if !ok {
		return nil, fmt.Errorf("%w: %s", errIgnored, why)
	}
	c.Interface = rq.iface
	if rq.port == portPXE {
		return h.boot4011(ctx, rq, c)
	}
	return h.proxy67(ctx, rq, c)
}

// proxy67 answers a netboot client on port 67 in proxy mode: DISCOVER gets a proxy offer, a
// REQUEST gets an ACK only when it names us in option 54.
func (h *handler) proxy67(ctx context.Context, rq request, c boot.Client) (*response, error) {
	mt := rq.pkt.MessageType()
	var build func(*dhcpv4.DHCPv4, boot.Client, netip.Addr, Decision) (*dhcpv4.DHCPv4, error)
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		build = ProxyOffer
	case dhcpv4.MessageTypeRequest:
		if !namesServer(rq.pkt, rq.server) {
			return nil, fmt.Errorf("%w: REQUEST for another server", errIgnored)
		}
		build = ProxyAck
	default:
		return nil, fmt.Errorf("%w: %s on port 67 in proxy mode", errIgnored, mt)
	}
	if err := h.limit.allow(rq.pkt, rq.src); err != nil {
		return nil, err
	}
	d, err := h.decide(ctx, rq.pkt, c, rq.server)
	if err != nil || d.NoBoot {
		h.observe(c, mt, d, err)
		return nil, err
	}
	r, err := build(rq.pkt, c, rq.server, d)
	h.observe(c, mt, d, err)
	if err != nil {
		return nil, err
	}
	return &response{pkt: r, dst: broadcastDst(rq.pkt)}, nil
}

// boot4011 answers the PXE boot-server port: REQUEST or INFORM, any architecture, ACK unicast
// back to the sender's address and port.
func (h *handler) boot4011(ctx context.Context, rq request, c boot.Client) (*response, error) {
	mt := rq.pkt.MessageType()
	if mt != dhcpv4.MessageTypeRequest && mt != dhcpv4.MessageTypeInform {
		return nil, fmt.Errorf("%w: %s on port 4011", errIgnored, mt)
	}
	dst := rq.src
	if !dst.Addr().Is4() || dst.Addr().IsUnspecified() {
		ci, ok := netip.AddrFromSlice(rq.pkt.ClientIPAddr.To4())
		if !ok || ci.IsUnspecified() {
			return nil, fmt.Errorf("%w: port 4011 request without a source or client address", errIgnored)
		}
		dst = netip.AddrPortFrom(ci, rq.src.Port())
	}
	if err := h.limit.allow(rq.pkt, rq.src); err != nil {
		return nil, err
	}
	if !c.IP.IsValid() {
		c.IP = dst.Addr()
	}
	d, err := h.decide(ctx, rq.pkt, c, rq.server)
	if err != nil || d.NoBoot {
		h.observe(c, mt, d, err)
		return nil, err
	}
	if d.BootFile == "" {
		// iPXE ignores a boot-server ACK without option 67 or 43.9, and EDK2 has nothing to load.
		err = fmt.Errorf("port 4011 request from %s: policy gave no boot file", c.MAC)
		h.observe(c, mt, d, err)
		return nil, err
	}
	r, err := ProxyAck4011(rq.pkt, c, rq.server, d)
	h.observe(c, mt, d, err)
	if err != nil {
		return nil, err
	}
	return &response{pkt: r, dst: dst}, nil
}

// policyTimeout bounds one Policy call: iPXE waits only ~2 s for the proxy offer after the
// address offer (danderson/netboot#38), so a late answer is as good as none.
const policyTimeout = time.Second

// decide asks the Policy what c boots, except for Raspberry Pi bootloaders, which boot fixed
// file names and get the Pi boot menu instead. The advertised TFTP server fills NextServer
// when the Policy left it empty.
func (h *handler) decide(ctx context.Context, pkt *dhcpv4.DHCPv4, c boot.Client, server netip.Addr) (Decision, error) {
	if h.raspberryPi && isRaspberryPi(pkt, c) {
		return Decision{RaspberryPi: true, NextServer: h.nextServer}, nil
	}
	if h.policy == nil {
		return Decision{NoBoot: true}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, policyTimeout)
	defer cancel()
	d, err := h.policy.Decide(ctx, c, server)
	if err != nil {
		return d, fmt.Errorf("boot policy for %s (arch %d): %w", c.MAC, c.Arch, err)
	}
	if !d.NextServer.IsValid() {
		d.NextServer = h.nextServer
	}
	return d, nil
}

func (h *handler) observe(c boot.Client, mt dhcpv4.MessageType, d Decision, err error) {
	if h.observer != nil {
		h.observer.Exchange(c, mt, d, err)
	}
}

// namesServer reports whether option 54 of pkt is server.
func namesServer(pkt *dhcpv4.DHCPv4, server netip.Addr) bool {
	sid, ok := netip.AddrFromSlice(pkt.ServerIdentifier().To4())
	return ok && sid == server
}

// broadcastDst is where a reply to a client without an address goes: the relay when there is
// one (giaddr), else the link broadcast (the socket picks the interface).
func broadcastDst(req *dhcpv4.DHCPv4) netip.AddrPort {
	if gi, ok := netip.AddrFromSlice(req.GatewayIPAddr.To4()); ok && !gi.IsUnspecified() {
		return netip.AddrPortFrom(gi, portServer)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), portClient)
}

func ip4(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return netip.Addr{}
	}
	return a
}
