package dhcp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// FullConfig configures full DHCP mode.
type FullConfig struct {
	PoolStart, PoolEnd netip.Addr
	Netmask            netip.Addr   // e.g. 255.255.255.0
	Router             netip.Addr   // optional
	DNS                []netip.Addr // optional
	Domain             string       // optional, option 15
	LeaseTime          time.Duration
	LeaseDB            string        // bbolt file
	OfferHold          time.Duration // how long an offered address stays reserved (default 1 min)
	DeclineHold        time.Duration // how long a declined address stays parked (default 10 min)
	// Reservations give a MAC a fixed address (in the pool or elsewhere in its network) and
	// a host name (option 12); see reserve.go for how they meet existing leases.
	Reservations []boot.Reservation
	// Options go to every client; RuleOptions to the clients a rule matches, before Options
	// (extraopts.go). Codes pxewim sets itself are refused by the config decoder.
	Options     []boot.DHCPOption
	RuleOptions []RuleOptions
}

func (fc *FullConfig) setDefaults() { setLeaseTimes(&fc.LeaseTime, &fc.OfferHold, &fc.DeclineHold) }

// setLeaseTimes fills in the defaults of FullConfig and FullConfig6: leases of 1 h, offers
// held 1 min, declined addresses parked 10 min.
func setLeaseTimes(lease, offerHold, declineHold *time.Duration) {
	if *lease <= 0 {
		*lease = time.Hour
	}
	if *offerHold <= 0 {
		*offerHold = time.Minute
	}
	if *declineHold <= 0 {
		*declineHold = 10 * time.Minute
	}
}

// CheckFullConfig reports what New and Reconfigure would refuse in fc (pool, netmask, lease
// file path), without opening anything: for "pxewim check".
func CheckFullConfig(fc FullConfig) error {
	fc.setDefaults()
	return fc.validate()
}

func (fc *FullConfig) validate() error {
	if err := checkPool(fc.PoolStart, fc.PoolEnd); err != nil {
		return err
	}
	if !fc.Netmask.Is4() {
		return fmt.Errorf("dhcp full mode: netmask %v is not an IPv4 mask", fc.Netmask)
	}
	if _, err := maskBits(fc.Netmask); err != nil {
		return err
	}
	if fc.LeaseDB == "" {
		return errors.New("dhcp full mode: lease database path is empty")
	}
	bits, _ := maskBits(fc.Netmask)
	subnet, _ := fc.PoolStart.Prefix(bits)
	if err := validateReservations(fc.Reservations, subnet); err != nil {
		return err
	}
	return validateOptions(fc.Options, fc.RuleOptions)
}

// maskBits turns a dotted netmask into a prefix length, refusing non-contiguous masks.
func maskBits(m netip.Addr) (int, error) {
	v := u32(m)
	bits := 0
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return 0, fmt.Errorf("dhcp full mode: netmask %v is not contiguous", m)
	}
	return bits, nil
}

// fullState is the full-mode part of the handler.
type fullState struct {
	cfg    FullConfig
	leases *LeaseStore
	subnet netip.Prefix
	// ownsDB is false once a reload handed the open lease database to the next fullState.
	ownsDB bool
}

// newFullState opens the lease database. When prev (the state being replaced, may be nil)
// uses the same file, its open database is taken over instead: same leases, no lock wait.
func newFullState(fc FullConfig, prev *fullState) (*fullState, error) {
	fc.setDefaults()
	if err := fc.validate(); err != nil {
		return nil, err
	}
	bits, _ := maskBits(fc.Netmask)
	subnet, _ := fc.PoolStart.Prefix(bits)
	if prev != nil && prev.ownsDB && filepath.Clean(prev.cfg.LeaseDB) == filepath.Clean(fc.LeaseDB) {
		ls, err := prev.leases.withPool(fc.PoolStart, fc.PoolEnd)
		if err != nil {
			return nil, err
		}
		ls.setReservations(fc.Reservations)
		prev.ownsDB = false
		return &fullState{cfg: fc, leases: ls, subnet: subnet, ownsDB: true}, nil
	}
	ls, err := OpenLeaseStore(fc.LeaseDB, fc.PoolStart, fc.PoolEnd)
	if err != nil {
		return nil, err
	}
	ls.setReservations(fc.Reservations)
	return &fullState{cfg: fc, leases: ls, subnet: subnet, ownsDB: true}, nil
}

// clientKey identifies a client for leases: option 61 when sent (RFC 2131 4.2), else chaddr.
func clientKey(pkt *dhcpv4.DHCPv4) string {
	if id := pkt.Options.Get(dhcpv4.OptionClientIdentifier); len(id) > 0 {
		return "id:" + hex.EncodeToString(id)
	}
	return "hw:" + pkt.ClientHWAddr.String()
}

// handle answers a port-67 message in full mode. Every client gets an address; netboot clients
// also get their boot file in the same reply.
func (f *fullState) handle(ctx context.Context, h *handler, rq request) (*response, error) {
	pkt := rq.pkt
	if len(pkt.ClientHWAddr) == 0 {
		return nil, fmt.Errorf("%w: no client hardware address", errIgnored)
	}
	if gi := ip4(pkt.GatewayIPAddr); isRelayed(pkt) && !f.subnet.Contains(gi) {
		// One pool, one subnet: a relay on another subnet needs another server.
		return nil, fmt.Errorf("%w: relayed from %v, outside the pool's subnet %v", errIgnored, gi, f.subnet)
	}
	var client *boot.Client
	if c, ok, _ := Classify(pkt); ok {
		c.Interface = rq.iface
		client = &c
	}
	key, mac := clientKey(pkt), pkt.ClientHWAddr.String()
	mt := pkt.MessageType()
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
		// Before the lease store: a flood must not reserve the pool either.
		if err := h.limit.allow(pkt, rq.src); err != nil {
			return nil, err
		}
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		ip, err := f.leases.Reserve(key, mac, ip4(pkt.RequestedIPAddress()), f.cfg.OfferHold)
		if err != nil {
			return nil, err
		}
		return f.reply(ctx, h, rq, client, ip, Offer)
	case dhcpv4.MessageTypeRequest:
		return f.request(ctx, h, rq, client, key, mac)
	case dhcpv4.MessageTypeDecline:
		return nil, f.leases.Decline(key, ip4(pkt.RequestedIPAddress()), f.cfg.DeclineHold)
	case dhcpv4.MessageTypeRelease:
		return nil, f.leases.Release(key, ip4(pkt.ClientIPAddr), false)
	case dhcpv4.MessageTypeInform:
		return f.reply(ctx, h, rq, client, netip.Addr{}, Ack)
	}
	return nil, fmt.Errorf("%w: message type %s", errIgnored, mt)
}

// request handles the three kinds of DHCPREQUEST (RFC 2131 4.3.2).
func (f *fullState) request(ctx context.Context, h *handler, rq request, client *boot.Client, key, mac string) (*response, error) {
	pkt := rq.pkt
	sid, requested, ciaddr := ip4(pkt.ServerIdentifier()), ip4(pkt.RequestedIPAddress()), ip4(pkt.ClientIPAddr)
	var ip netip.Addr
	switch {
	case sid.IsValid(): // SELECTING
		if sid != rq.server {
			// The client took another server's offer: free ours now.
			return nil, f.leases.Release(key, netip.Addr{}, true)
		}
		ip = requested
	case requested.IsValid() && !requested.IsUnspecified(): // INIT-REBOOT
		ip = requested
	case ciaddr.IsValid() && !ciaddr.IsUnspecified(): // RENEWING / REBINDING
		ip = ciaddr
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		return f.nak(rq, "request names no address")
	}
	if !f.leases.Serves(ip) {
		return f.nak(rq, fmt.Sprintf("%v is not on this network", ip))
	}
	if err := f.leases.Bind(key, mac, ip, f.cfg.LeaseTime); err != nil {
		if errors.Is(err, ErrAddrTaken) || errors.Is(err, ErrNotInPool) {
			return f.nak(rq, fmt.Sprintf("%v is not yours", ip))
		}
		return nil, err
	}
	return f.reply(ctx, h, rq, client, ip, Ack)
}

type fullBuilder func(*dhcpv4.DHCPv4, *boot.Client, netip.Addr, Decision, Lease) (*dhcpv4.DHCPv4, error)

// reply builds an OFFER/ACK for ip (zero for INFORM) with boot information for netboot clients.
func (f *fullState) reply(ctx context.Context, h *handler, rq request, client *boot.Client, ip netip.Addr, build fullBuilder) (*response, error) {
	l := Lease{IP: ip, Netmask: f.cfg.Netmask, Router: f.cfg.Router, DNS: f.cfg.DNS, Domain: f.cfg.Domain}
	if ip.IsValid() {
		l.LeaseTime = f.cfg.LeaseTime
	}
	l.HostName = f.hostName(rq.pkt.ClientHWAddr.String())
	l.Extra = f.extraOptions(rq.pkt, client)
	d := Decision{NoBoot: true}
	if client != nil {
		client.IP = ip
		if !ip.IsValid() {
			client.IP = ip4(rq.pkt.ClientIPAddr)
		}
		var err error
		if d, err = h.decide(ctx, rq.pkt, *client, rq.server); err != nil {
			h.log.Warn("boot policy failed; giving an address without boot file", "mac", client.MAC, "err", err)
			d = Decision{NoBoot: true}
		}
	}
	r, err := build(rq.pkt, client, rq.server, d, l)
	if errors.Is(err, ErrReplyTooLarge) && len(l.Extra) > 0 {
		// Too many extra options for this client: keep those it asked for (option 55), and
		// if that is still too much, none: the address matters more.
		l.Extra = requestedOnly(rq.pkt, l.Extra)
		if r, err = build(rq.pkt, client, rq.server, d, l); errors.Is(err, ErrReplyTooLarge) {
			l.Extra = nil
			r, err = build(rq.pkt, client, rq.server, d, l)
		}
		h.log.Warn("reply too large with every extra option; sent only those the client requested that fit",
			"mac", rq.pkt.ClientHWAddr.String(), "kept", len(l.Extra))
	}
	if err != nil && !d.NoBoot {
		// A bad boot file must not cost the client its address.
		h.log.Warn("boot file unusable; giving an address without it", "mac", rq.pkt.ClientHWAddr.String(), "err", err)
		r, err = build(rq.pkt, client, rq.server, Decision{NoBoot: true}, l)
	}
	if client != nil {
		h.observe(*client, rq.pkt.MessageType(), d, err)
	}
	if err != nil {
		return nil, err
	}
	return &response{pkt: r, dst: fullDst(rq.pkt)}, nil
}

func (f *fullState) nak(rq request, msg string) (*response, error) {
	r, err := Nak(rq.pkt, rq.server, msg)
	if err != nil {
		return nil, err
	}
	dst := broadcastDst(rq.pkt)
	if dst.Port() == portServer {
		r.SetBroadcast() // RFC 2131 4.3.2: relay must broadcast the NAK
	}
	return &response{pkt: r, dst: dst}, nil
}

// fullDst: relay first, then a client that has an address (renewal, INFORM), else broadcast.
func fullDst(req *dhcpv4.DHCPv4) netip.AddrPort {
	if ci := ip4(req.ClientIPAddr); ci.IsValid() && !ci.IsUnspecified() && !isRelayed(req) {
		return netip.AddrPortFrom(ci, portClient)
	}
	return broadcastDst(req)
}

func isRelayed(req *dhcpv4.DHCPv4) bool {
	gi := ip4(req.GatewayIPAddr)
	return gi.IsValid() && !gi.IsUnspecified()
}

// close closes the lease database unless a newer state took it over.
func (f *fullState) close() error {
	if !f.ownsDB {
		return nil
	}
	return f.leases.Close()
}
