package dhcp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// FullConfig6 configures full DHCPv6 mode: stateful addresses (IA_NA) from a pool. Router
// advertisements stay the site's (or the lab router's) job: clients learn the on-link prefix
// and their default route only from an RA with the M flag set (see the package doc).
type FullConfig6 struct {
	PoolStart, PoolEnd netip.Addr
	DNS                []netip.Addr
	LeaseTime          time.Duration // valid and preferred lifetime (default 1h)
	LeaseDB            string        // the same bbolt file as the DHCPv4 leases (bucket leases6)
	OfferHold          time.Duration // how long an advertised address stays reserved (default 1 min)
	DeclineHold        time.Duration // how long a declined address stays parked (default 10 min)
}

func (fc *FullConfig6) setDefaults() { setLeaseTimes(&fc.LeaseTime, &fc.OfferHold, &fc.DeclineHold) }

// CheckFullConfig6 reports what NewServer6 would refuse in fc, without opening anything.
func CheckFullConfig6(fc FullConfig6) error {
	fc.setDefaults()
	if err := checkPool6(fc.PoolStart, fc.PoolEnd); err != nil {
		return err
	}
	for _, a := range fc.DNS {
		if !a.Is6() || a.Is4In6() {
			return fmt.Errorf("dhcpv6 full mode: DNS server %v is not an IPv6 address", a)
		}
	}
	if fc.LeaseDB == "" {
		return errors.New("dhcpv6 full mode: lease database path is empty")
	}
	return nil
}

type fullState6 struct {
	cfg    FullConfig6
	leases *LeaseStore6
	ownsDB bool
}

func newFullState6(fc FullConfig6, prev *fullState6) (*fullState6, error) {
	fc.setDefaults()
	if err := CheckFullConfig6(fc); err != nil {
		return nil, err
	}
	if prev != nil && prev.ownsDB && filepath.Clean(prev.cfg.LeaseDB) == filepath.Clean(fc.LeaseDB) {
		ls, err := prev.leases.withPool(fc.PoolStart, fc.PoolEnd)
		if err != nil {
			return nil, err
		}
		prev.ownsDB = false
		return &fullState6{cfg: fc, leases: ls, ownsDB: true}, nil
	}
	ls, err := OpenLeaseStore6(fc.LeaseDB, fc.PoolStart, fc.PoolEnd)
	if err != nil {
		return nil, err
	}
	return &fullState6{cfg: fc, leases: ls, ownsDB: true}, nil
}

func (f *fullState6) close() error {
	if !f.ownsDB {
		return nil
	}
	return f.leases.Close()
}

// leaseKey6 names one IA_NA of one client: DUID and IAID.
func leaseKey6(duid []byte, iaid [4]byte) string {
	return hex.EncodeToString(duid) + "/" + hex.EncodeToString(iaid[:])
}

// handle answers port 547 in full mode: every client gets an address, netboot clients their
// boot file URL in the same message.
func (f *fullState6) handle(ctx context.Context, h *handler6, rq request6) (*response6, error) {
	m := rq.msg
	duid := m.Options.ClientID().ToBytes()
	var client *Client6
	if c, ok, _ := Classify6(m, rq.src.Addr()); ok {
		c.Interface = rq.iface
		client = &c
	}
	mac := ""
	if hw := clientMAC6(m, rq.src.Addr()); hw != nil {
		mac = hw.String()
	}
	ia := m.Options.OneIANA()
	if rq.relay.IsValid() && rq.linkAddr.IsValid() && !rq.linkAddr.IsUnspecified() {
		// One pool, one /64: a relay on another link needs another server.
		if p, _ := f.cfg.PoolStart.Prefix(64); !p.Contains(rq.linkAddr) {
			return nil, fmt.Errorf("%w: relayed from link %v, outside the pool's /64 %v", errIgnored, rq.linkAddr, p)
		}
	}
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind,
		dhcpv6.MessageTypeInformationRequest:
		// Before the lease store: a flood must not reserve the pool either.
		if err := h.limit.allow6(hex.EncodeToString(duid), rq.limitSource()); err != nil {
			return nil, err
		}
	}
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit:
		if m.GetOneOption(dhcpv6.OptionRapidCommit) != nil {
			return f.bind(ctx, h, rq, client, duid, mac, ia, true)
		}
		return f.advertise(ctx, h, rq, client, duid, mac, ia)
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew:
		if !h.namesUs(m) {
			if ia != nil {
				_ = f.releaseOffered(leaseKey6(duid, ia.IaId))
			}
			return nil, fmt.Errorf("%w: %s for another server", errIgnored, m.MessageType)
		}
		return f.bind(ctx, h, rq, client, duid, mac, ia, false)
	case dhcpv6.MessageTypeRebind:
		return f.bind(ctx, h, rq, client, duid, mac, ia, false)
	case dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if !h.namesUs(m) {
			return nil, fmt.Errorf("%w: %s for another server", errIgnored, m.MessageType)
		}
		for _, x := range m.Options.IANA() {
			for _, a := range x.Options.Addresses() {
				ip, ok := netip.AddrFromSlice(a.IPv6Addr)
				if !ok {
					continue
				}
				if m.MessageType == dhcpv6.MessageTypeRelease {
					_ = f.leases.Release(leaseKey6(duid, x.IaId), ip.Unmap())
				} else {
					_ = f.leases.Decline(leaseKey6(duid, x.IaId), ip.Unmap(), f.cfg.DeclineHold)
				}
			}
		}
		return f.status(h, rq, iana.StatusSuccess, "ok")
	case dhcpv6.MessageTypeConfirm:
		for _, x := range m.Options.IANA() {
			for _, a := range x.Options.Addresses() {
				if ip, ok := netip.AddrFromSlice(a.IPv6Addr); !ok || !f.leases.InPool(ip.Unmap()) {
					return f.status(h, rq, iana.StatusNotOnLink, "not on this link")
				}
			}
		}
		return f.status(h, rq, iana.StatusSuccess, "on link")
	case dhcpv6.MessageTypeInformationRequest:
		if sid := m.Options.ServerID(); sid != nil && !sid.Equal(h.serverID) {
			return nil, fmt.Errorf("%w: Information-request for another server", errIgnored)
		}
		r := f.newReply(h, m, dhcpv6.MessageTypeReply)
		f.addBoot(ctx, h, rq, client, r)
		return &response6{msg: r, dst: rq.src}, nil
	}
	return nil, fmt.Errorf("%w: %s", errIgnored, m.MessageType)
}

func (f *fullState6) newReply(h *handler6, req *dhcpv6.Message, mt dhcpv6.MessageType) *dhcpv6.Message {
	r := &dhcpv6.Message{MessageType: mt, TransactionID: req.TransactionID}
	r.AddOption(dhcpv6.OptClientID(req.Options.ClientID()))
	r.AddOption(dhcpv6.OptServerID(h.serverID))
	if len(f.cfg.DNS) > 0 {
		ips := make([]net.IP, 0, len(f.cfg.DNS))
		for _, a := range f.cfg.DNS {
			ips = append(ips, a.AsSlice())
		}
		r.AddOption(dhcpv6.OptDNS(ips...))
	}
	return r
}

// addBoot adds boot information for a netboot client; a Policy failure or an unusable boot
// file costs the client only its boot file, never its address.
func (f *fullState6) addBoot(ctx context.Context, h *handler6, rq request6, client *Client6, r *dhcpv6.Message) {
	if client == nil {
		return
	}
	d, err := h.decide(ctx, *client, rq.server)
	var u string
	if err == nil && !d.NoBoot {
		u, err = BootURL6(d.BootFile, *client, rq.server)
	}
	if err != nil {
		h.log.Warn("no boot file for this client; giving it an address only", "duid", client.DUID, "err", err)
	} else if !d.NoBoot {
		addBootOptions6(r, *client, u)
		if len(r.ToBytes()) > MaxReply6Size {
			r.Options.Del(dhcpv6.OptionBootfileURL)
			err = fmt.Errorf("reply with boot file URL over %d bytes", MaxReply6Size)
			h.log.Warn("boot file URL too long; giving an address only", "duid", client.DUID)
		}
	}
	h.observe(*client, rq.msg.MessageType, d, err)
}

func (f *fullState6) iaNA(ia *dhcpv6.OptIANA, ip netip.Addr) *dhcpv6.OptIANA {
	lt := f.cfg.LeaseTime
	out := &dhcpv6.OptIANA{IaId: ia.IaId, T1: lt / 2, T2: lt * 4 / 5}
	out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ip.AsSlice(), PreferredLifetime: lt, ValidLifetime: lt})
	return out
}

func noAddrs(ia *dhcpv6.OptIANA, code iana.StatusCode, msg string) *dhcpv6.OptIANA {
	out := &dhcpv6.OptIANA{IaId: ia.IaId}
	out.Options.Add(&dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: msg})
	return out
}

func (f *fullState6) advertise(ctx context.Context, h *handler6, rq request6, client *Client6, duid []byte, mac string, ia *dhcpv6.OptIANA) (*response6, error) {
	r := f.newReply(h, rq.msg, dhcpv6.MessageTypeAdvertise)
	if ia != nil {
		ip, err := f.leases.Reserve(leaseKey6(duid, ia.IaId), mac, f.cfg.OfferHold)
		if err != nil && !errors.Is(err, ErrPoolExhausted) {
			return nil, err
		}
		if err != nil {
			r.AddOption(noAddrs(ia, iana.StatusNoAddrsAvail, "pool exhausted"))
		} else {
			r.AddOption(f.iaNA(ia, ip))
		}
	}
	f.addBoot(ctx, h, rq, client, r)
	return &response6{msg: r, dst: rq.src}, nil
}

// bind answers Request, Renew, Rebind and a rapid-commit Solicit: the address the client asks
// for when it is its own, else the one reserved for it.
func (f *fullState6) bind(ctx context.Context, h *handler6, rq request6, client *Client6, duid []byte, mac string, ia *dhcpv6.OptIANA, rapid bool) (*response6, error) {
	r := f.newReply(h, rq.msg, dhcpv6.MessageTypeReply)
	if rapid {
		r.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	}
	if ia != nil {
		key := leaseKey6(duid, ia.IaId)
		var want netip.Addr
		if a := ia.Options.OneAddress(); a != nil {
			if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok {
				want = ip.Unmap()
			}
		}
		if !want.IsValid() || !f.leases.InPool(want) {
			if rq.msg.MessageType == dhcpv6.MessageTypeRenew || rq.msg.MessageType == dhcpv6.MessageTypeRebind {
				r.AddOption(noAddrs(ia, iana.StatusNoBinding, "no binding for this address"))
				return &response6{msg: r, dst: rq.src}, nil
			}
			ip, err := f.leases.Reserve(key, mac, f.cfg.OfferHold)
			if err != nil && !errors.Is(err, ErrPoolExhausted) {
				return nil, err
			}
			want = ip
		}
		if !want.IsValid() {
			r.AddOption(noAddrs(ia, iana.StatusNoAddrsAvail, "pool exhausted"))
		} else if err := f.leases.Bind(key, mac, want, f.cfg.LeaseTime); err != nil {
			if !errors.Is(err, ErrAddrTaken) && !errors.Is(err, ErrNotInPool) {
				return nil, err
			}
			r.AddOption(noAddrs(ia, iana.StatusNoBinding, "address not yours"))
		} else {
			r.AddOption(f.iaNA(ia, want))
		}
	}
	f.addBoot(ctx, h, rq, client, r)
	return &response6{msg: r, dst: rq.src}, nil
}

func (f *fullState6) releaseOffered(key string) error {
	f.leases.DropOffer(key)
	return nil
}

func (f *fullState6) status(h *handler6, rq request6, code iana.StatusCode, msg string) (*response6, error) {
	r := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: rq.msg.TransactionID}
	r.AddOption(dhcpv6.OptClientID(rq.msg.Options.ClientID()))
	r.AddOption(dhcpv6.OptServerID(h.serverID))
	r.AddOption(&dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: msg})
	return &response6{msg: r, dst: rq.src}, nil
}
