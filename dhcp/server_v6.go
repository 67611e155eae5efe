package dhcp

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/net/ipv6"
)

// DHCPv6 ports: servers listen on 547; EDK2's PXE asks a proxy offer's server for the boot
// file on 4011 (PxeBcRequestBootService: UDP from 4011 to 4011).
const (
	port6Server = 547
	port6PXE    = 4011
)

// Config6 configures a Server6 (DHCPv6). It mirrors Config: the same Policy decides what a
// client boots, and the same lease file keeps full-mode leases.
type Config6 struct {
	Mode Mode
	// Interfaces names the interfaces to serve; the sockets are bound to [::] and join
	// ff02::1:2 on each, packets from other interfaces are dropped. Required unless ModeOff.
	Interfaces []string
	Policy     Policy
	Observer   Observer6    // optional
	Logger     *slog.Logger // optional
	Full       FullConfig6  // ModeFull only
	// Advertise, when valid, is the server address put into boot URLs (tftp://[addr]/...,
	// http://[addr]:port/...) instead of the receiving interface's first global address.
	Advertise netip.Addr
	// MaxInFlight bounds the packets handled at once (default 256); more are dropped (clients
	// retransmit). Fixed by NewServer6.
	MaxInFlight int
	// Port and PXEPort override 547 and 4011 (tests and benchmarks on loopback only).
	Port, PXEPort int
	// RateLimit bounds answers per DUID and per source (all link-local senders count as one
	// source, the link); zero value: DefaultRateLimit. Reconfigure changes it, buckets stay.
	RateLimit RateLimit
}

// Observer6 sees every DHCPv6 exchange with a netboot client (dashboard, metrics).
type Observer6 interface {
	Exchange6(c Client6, msgType dhcpv6.MessageType, d Decision, err error)
}

// Server6 is the DHCPv6 server (proxy or full). Create it with NewServer6, run it with Serve,
// change it with Reconfigure, stop it with Close.
type Server6 struct {
	// lifecycle holds the generation, the sockets (547 and 4011), Serve and Close.
	lifecycle[generation6, *generation6, *ipv6.PacketConn]
	addrs addrCache6
}

// generation6 is one DHCPv6 configuration in effect (see lifecycle).
type generation6 struct {
	genState
	cfg    Config6
	h      *handler6 // nil in ModeOff
	ifaces map[int]string
}

func (g *generation6) settings() (Mode, []string) { return g.cfg.Mode, g.cfg.Interfaces }

// release closes the lease file (if the generation still owns it).
func (g *generation6) release() error {
	if g.h != nil && g.h.full != nil {
		return g.h.full.close()
	}
	return nil
}

// NewServer6 opens the sockets (without SO_REUSEADDR/SO_REUSEPORT: another DHCPv6 server in
// this network namespace makes it fail with ErrPortInUse) and, in full mode, the lease file.
func NewServer6(cfg Config6) (*Server6, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	s := &Server6{}
	s.init("dhcp6", cfg.Logger, cfg.MaxInFlight, cfg.RateLimit, s)
	if err := s.configure(true, func() error { return s.apply(cfg) }); err != nil {
		return nil, err
	}
	return s, nil
}

// Reconfigure switches to cfg in place (mode, interfaces, pool, policy); on error the running
// configuration stays. Sockets open when the mode leaves off and close when it becomes off.
func (s *Server6) Reconfigure(cfg Config6) error {
	return s.configure(false, func() error { return s.apply(cfg) })
}

func checkConfig6(cfg Config6) error {
	switch {
	case cfg.Mode == ModeOff:
	case cfg.Mode != ModeProxy && cfg.Mode != ModeFull:
		return fmt.Errorf("dhcp6: unknown mode %q", cfg.Mode)
	case cfg.Mode == ModeProxy && cfg.Policy == nil:
		return errors.New("dhcp6: proxy mode needs a boot Policy (it only ever sends boot information)")
	case len(cfg.Interfaces) == 0:
		return errors.New("dhcp6: no interfaces configured (name at least one; DHCPv6 never runs on every interface by default)")
	case cfg.Advertise.IsValid() && (!cfg.Advertise.Is6() || cfg.Advertise.Is4In6() || cfg.Advertise.IsLinkLocalUnicast() || cfg.Advertise.IsMulticast()):
		return fmt.Errorf("dhcp6: advertise %v: want a global or unique-local IPv6 address", cfg.Advertise)
	case cfg.Mode == ModeFull:
		return CheckFullConfig6(cfg.Full)
	}
	return nil
}

func (s *Server6) apply(cfg Config6) error {
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	if err := checkConfig6(cfg); err != nil {
		return err
	}
	old := s.gen.Load()
	g := &generation6{cfg: cfg}
	var opened *sockets[*ipv6.PacketConn]
	if cfg.Mode != ModeOff {
		ifaces := make(map[int]string, len(cfg.Interfaces))
		for _, name := range cfg.Interfaces {
			ni, err := net.InterfaceByName(name)
			if err != nil {
				return fmt.Errorf("dhcp6: interface %q: %w", name, err)
			}
			ifaces[ni.Index] = name
		}
		g.ifaces = ifaces
		if s.socks == nil {
			var err error
			if opened, err = openSockets6(cfg.Port, cfg.PXEPort); err != nil {
				return err
			}
		}
		g.h = &handler6{mode: cfg.Mode, policy: cfg.Policy, observer: cfg.Observer, log: s.log.With("mode", cfg.Mode.String()),
			serverID: serverDUID(cfg.Interfaces), limit: s.limit}
		if cfg.Mode == ModeFull {
			var prev *fullState6
			if old != nil && old.h != nil {
				prev = old.h.full
			}
			var err error
			if g.h.full, err = newFullState6(cfg.Full, prev); err != nil {
				if opened != nil {
					opened.close()
				}
				return err
			}
		}
	}
	s.publish(g, cfg.RateLimit, opened, func() {
		if s.socks != nil && cfg.Mode != ModeOff {
			join6(s.socks, g.ifaces, s.log)
		}
	})
	return nil
}

// listen6 opens udp6 [::]:port with IPV6_RECVPKTINFO (see listenUDP).
func listen6(port int) (*ipv6.PacketConn, error) {
	c, err := listenUDP(net.ListenConfig{}, "dhcp6", "udp6", port, " (IPv6)",
		"another DHCPv6 server (dnsmasq, Kea, WDS...) is running here: stop it, or turn dhcp.v6 off")
	if err != nil {
		return nil, err
	}
	pc := ipv6.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("dhcp6: enable IPV6_RECVPKTINFO on port %d: %w", port, err)
	}
	return pc, nil
}

// openSockets6 binds port and pxePort (0: 547 and 4011).
func openSockets6(port, pxePort int) (*sockets[*ipv6.PacketConn], error) {
	if port == 0 {
		port = port6Server
	}
	if pxePort == 0 {
		pxePort = port6PXE
	}
	ss, err := openSockets([]int{port, pxePort}, listen6)
	if err != nil {
		return nil, err
	}
	ss.joined = map[int]bool{}
	return ss, nil
}

// join6 makes the server socket (547) a member of All_DHCP_Relay_Agents_and_Servers
// (ff02::1:2) on every served interface. A failure is logged (the interface may come up later,
// or not do multicast, as loopback); unicast still reaches the server.
func join6(ss *sockets[*ipv6.PacketConn], ifaces map[int]string, log *slog.Logger) {
	group := &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers}
	for idx, name := range ifaces {
		if ss.joined[idx] {
			continue
		}
		ni, err := net.InterfaceByIndex(idx)
		if err == nil {
			err = ss.conns[0].JoinGroup(ni, group)
		}
		if err != nil {
			log.Warn("cannot join ff02::1:2: DHCPv6 clients on this interface reach the server only by unicast", "interface", name, "error", err)
			continue
		}
		ss.joined[idx] = true
	}
}

// stopLocked: the DHCPv6 server runs nothing besides its sockets.
func (s *Server6) stopLocked() {}

// Leases returns the full-mode lease store (nil otherwise).
func (s *Server6) Leases() *LeaseStore6 {
	g := s.gen.Load()
	if g == nil || g.h == nil || g.h.full == nil {
		return nil
	}
	return g.h.full.leases
}

// Addrs returns the bound local addresses (tests: ports chosen by the kernel).
func (s *Server6) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.socks == nil {
		return nil
	}
	var out []net.Addr
	for _, pc := range s.socks.conns {
		out = append(out, pc.LocalAddr())
	}
	return out
}

// readLoop reads one socket; packets beyond MaxInFlight are dropped (clients retransmit).
func (s *Server6) readLoop(pc *ipv6.PacketConn, port int, pxePort bool) error {
	for {
		buf := make([]byte, 1500)
		n, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("dhcp6: read on port %d: %w", port, err)
		}
		if cm == nil {
			continue
		}
		g := s.gen.Load()
		if g == nil || g.h == nil {
			continue
		}
		name, ok := g.ifaces[cm.IfIndex]
		if !ok {
			continue // not an interface we serve
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.log.Debug("dropping packet: too many in flight", "interface", name)
			continue
		}
		s.handle(func(g *generation6) { s.serveOne(g, pc, pxePort, cm.IfIndex, name, cm.Dst, src, buf[:n]) })
	}
}

func (s *Server6) serveOne(g *generation6, pc *ipv6.PacketConn, pxePort bool, ifIndex int, ifName string, dst net.IP, src net.Addr, b []byte) {
	log := g.h.log
	ua, ok := src.(*net.UDPAddr)
	if !ok {
		return
	}
	srcAP := ua.AddrPort()
	srcAP = netip.AddrPortFrom(srcAP.Addr().WithZone(""), srcAP.Port())
	msg, relay, err := parse6(b, pxePort)
	if err != nil {
		log.Debug("dropping malformed DHCPv6 packet", "interface", ifName, "src", src, "err", err)
		return
	}
	rqSrc := srcAP
	if relay != nil {
		// The client is the relay's peer; the relay's own address is where the answer goes.
		peer, _ := netip.AddrFromSlice(relay.PeerAddr)
		rqSrc = netip.AddrPortFrom(peer.Unmap(), 546)
	}
	server := g.cfg.Advertise
	if !server.IsValid() {
		if server, err = s.addrs.global(ifIndex); err != nil {
			log.Warn("no reply: the interface has no global IPv6 address for boot URLs (give it one, or set dhcp.v6.advertise)",
				"interface", ifName, "err", err)
			return
		}
	}
	rq := request6{msg: msg, pxePort: pxePort, src: rqSrc, server: server, iface: ifName}
	if relay != nil {
		rq.relay = srcAP
		rq.linkAddr, _ = netip.AddrFromSlice(relay.LinkAddr)
		rq.linkAddr = rq.linkAddr.Unmap()
	}
	resp, err := g.h.handle(s.ctx, rq)
	if err != nil {
		if errors.Is(err, errIgnored) {
			log.Debug("no reply", "interface", ifName, "type", msg.MessageType.String(), "src", srcAP, "why", err)
		} else {
			log.Warn("no reply", "interface", ifName, "type", msg.MessageType.String(), "src", srcAP, "err", err)
		}
		return
	}
	if resp == nil {
		return
	}
	out := resp.msg.ToBytes()
	if relay != nil {
		out = relayReply(relay, resp.msg).ToBytes()
		resp.dst = srcAP
	}
	cm := &ipv6.ControlMessage{IfIndex: ifIndex}
	if d, ok := netip.AddrFromSlice(dst); ok && !d.IsMulticast() {
		cm.Src = dst // a unicast request (4011) is answered from the address it was sent to
	}
	to := &net.UDPAddr{IP: resp.dst.Addr().AsSlice(), Port: int(resp.dst.Port())}
	if resp.dst.Addr().IsLinkLocalUnicast() {
		to.Zone = ifName
	}
	if _, err := pc.WriteTo(out, cm, to); err != nil {
		log.Warn("send reply", "interface", ifName, "to", to, "err", err)
		return
	}
	log.Debug("replied", "interface", ifName, "type", resp.msg.MessageType.String(), "to", to, "url", resp.msg.Options.BootFileURL())
}

// parse6 reads a client message, or a Relay-forward (one relay hop; on port 547 only) and the
// client message inside it.
func parse6(b []byte, pxePort bool) (*dhcpv6.Message, *dhcpv6.RelayMessage, error) {
	if len(b) == 0 || dhcpv6.MessageType(b[0]) != dhcpv6.MessageTypeRelayForward {
		m, err := dhcpv6.MessageFromBytes(b)
		return m, nil, err
	}
	if pxePort {
		return nil, nil, errors.New("relayed message on port 4011")
	}
	rm, err := dhcpv6.RelayMessageFromBytes(b)
	if err != nil {
		return nil, nil, err
	}
	if len(rm.PeerAddr) != net.IPv6len || len(rm.LinkAddr) != net.IPv6len {
		return nil, nil, errors.New("relay message without peer or link address")
	}
	inner, ok := rm.Options.RelayMessage().(*dhcpv6.Message)
	if !ok || inner == nil {
		return nil, nil, errors.New("relay message without a client message (nested relays are not answered)")
	}
	return inner, rm, nil
}

// relayReply wraps an answer for the relay that forwarded the request (RFC 8415 19.3): same hop
// count, link and peer address, the interface-id echoed.
func relayReply(fw *dhcpv6.RelayMessage, m *dhcpv6.Message) *dhcpv6.RelayMessage {
	r := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayReply, HopCount: fw.HopCount,
		LinkAddr: fw.LinkAddr, PeerAddr: fw.PeerAddr}
	if id := fw.Options.InterfaceID(); id != nil {
		r.Options.Add(dhcpv6.OptInterfaceID(id))
	}
	r.Options.Add(dhcpv6.OptRelayMessage(m))
	return r
}

// addrCache6 remembers each interface's first global IPv6 address for a second, so that a
// burst of packets does not dump the kernel's address table for each one.
type addrCache6 struct {
	mu sync.Mutex
	m  map[int]cachedAddr6
}

type cachedAddr6 struct {
	addr netip.Addr
	at   time.Time
}

func (c *addrCache6) global(ifIndex int) (netip.Addr, error) {
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.m[ifIndex]; ok && now.Sub(e.at) < time.Second {
		c.mu.Unlock()
		return e.addr, nil
	}
	c.mu.Unlock()
	ni, err := net.InterfaceByIndex(ifIndex)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ni.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	var found netip.Addr
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := p.Addr()
		if ip.Is6() && !ip.Is4In6() && !ip.IsLinkLocalUnicast() && !ip.IsMulticast() && !ip.IsUnspecified() {
			if !found.IsValid() || (found.IsLoopback() && !ip.IsLoopback()) {
				found = ip
			}
		}
	}
	if !found.IsValid() {
		return netip.Addr{}, fmt.Errorf("interface %s has no global IPv6 address", ni.Name)
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[int]cachedAddr6{}
	}
	c.m[ifIndex] = cachedAddr6{addr: found, at: now}
	c.mu.Unlock()
	return found, nil
}

// serverDUID is the server identifier: DUID-LL with the first served interface's MAC, or, for
// interfaces without one (loopback), a locally administered address derived from the host name.
func serverDUID(ifaces []string) dhcpv6.DUID {
	for _, name := range ifaces {
		if ni, err := net.InterfaceByName(name); err == nil && len(ni.HardwareAddr) == 6 {
			return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: slices.Clone(ni.HardwareAddr)}
		}
	}
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte("pxewim dhcp6 " + host))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^1 | 2
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}
}
