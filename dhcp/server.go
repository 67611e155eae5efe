package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/ipv4"
)

// Config configures a Server.
type Config struct {
	Mode Mode
	// Interfaces names the interfaces to serve. The sockets are bound to 0.0.0.0 (Linux does
	// not deliver 255.255.255.255 to a socket bound to a unicast address) and packets that
	// arrive on any other interface are dropped. Required unless Mode is ModeOff.
	Interfaces []string
	Policy     Policy
	Observer   Observer     // optional
	Logger     *slog.Logger // optional; slog.Default() when nil
	Full       FullConfig   // ModeFull only
	// MaxInFlight bounds the packets handled at once (default 256); more wait. It is fixed
	// by New: Reconfigure keeps the first value.
	MaxInFlight int
	// NextServer, when valid, is the TFTP server address clients are told (siaddr, option 66)
	// instead of the receiving interface's address: a NAT address, or one of several.
	NextServer netip.Addr
	// RaspberryPi answers Raspberry Pi bootloaders (Pi MAC or Pi 3 UUID, arch 0, not iPXE)
	// with the Pi boot menu in option 43 instead of asking the Policy.
	RaspberryPi bool
	// RateLimit bounds answers per client MAC and per source (zero value: DefaultRateLimit).
	// Reconfigure changes the limits; the buckets carry over.
	RateLimit RateLimit
}

// ErrPortInUse means another process already listens on a DHCP port in this network namespace.
var ErrPortInUse = errors.New("port already in use")

// ErrClosed is returned by Reconfigure after Close.
var ErrClosed = errors.New("dhcp: server closed")

// iface is one served interface. Its addresses follow the kernel: see addrWatcher.
type iface struct {
	name  string
	index int
	addrs []netip.Prefix // IPv4 only; the first is the default server address
}

// generation is one DHCPv4 configuration in effect (see lifecycle).
type generation struct {
	genState
	cfg Config
	log *slog.Logger
	h   *handler // nil in ModeOff
}

func (g *generation) settings() (Mode, []string) { return g.cfg.Mode, g.cfg.Interfaces }

// release closes the lease database (if the generation still owns it).
func (g *generation) release() error {
	if g.h != nil && g.h.full != nil {
		if err := g.h.full.close(); err != nil {
			g.log.Warn("closing the lease database", "file", g.h.full.cfg.LeaseDB, "error", err)
			return err
		}
	}
	return nil
}

// Server is a proxy or full DHCP server. Create it with New (which opens the sockets, so a
// busy port fails there), run it with Serve, change its settings with Reconfigure, stop it
// with Close or by cancelling Serve's ctx.
type Server struct {
	// lifecycle holds the generation, the sockets (67 and 4011), Serve and Close; its wg
	// also counts the address watcher.
	lifecycle[generation, *generation, *ipv4.PacketConn]
	ifaces atomic.Pointer[map[int]iface]
	watch  *addrWatcher // guarded by mu
}

// New resolves the interfaces, opens the sockets on ports 67 and 4011 (without SO_REUSEADDR or
// SO_REUSEPORT, so an existing DHCP server on this host makes it fail with ErrPortInUse) and, in
// full mode, opens the lease database. Interface addresses are then followed as they change.
func New(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeOff
	}
	s := &Server{}
	s.init("dhcp", log, cfg.MaxInFlight, cfg.RateLimit, s)
	if err := s.configure(true, func() error { return s.apply(cfg) }); err != nil {
		return nil, err
	}
	return s, nil
}

// Reconfigure switches the server to cfg without dropping its sockets: mode (off, proxy,
// full), interfaces, pool, options, lease time, policy. Sockets open when the mode leaves off
// and close when it becomes off (so another DHCP server may take the ports). In full mode the
// same lease file stays open across reloads and keeps every lease. If anything in cfg cannot be
// set up (an interface without IPv4, a busy port, a locked lease file), Reconfigure returns
// the error and the previous configuration keeps running. Packets being answered finish with
// the configuration they started with.
func (s *Server) Reconfigure(cfg Config) error {
	if cfg.Mode == "" {
		cfg.Mode = ModeOff
	}
	return s.configure(false, func() error { return s.apply(cfg) })
}

// apply builds and publishes a generation for cfg; s.mu is held. Everything that can fail
// happens before anything is published, so a failure leaves the running configuration alone.
func (s *Server) apply(cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	if err := checkConfig(cfg); err != nil {
		return err
	}
	g, table, opened, err := s.prepare(cfg, s.gen.Load())
	if err != nil {
		return err
	}
	s.publish(g, cfg.RateLimit, opened, func() {
		if table != nil {
			s.ifaces.Store(&table)
		}
	})
	return nil
}

// checkConfig refuses what no generation can be built from, before any socket is opened.
func checkConfig(cfg Config) error {
	switch {
	case cfg.Mode == ModeOff:
	case cfg.Mode != ModeProxy && cfg.Mode != ModeFull:
		return fmt.Errorf("dhcp: unknown mode %q", cfg.Mode)
	case cfg.Mode == ModeProxy && cfg.Policy == nil:
		return errors.New("dhcp: proxy mode needs a boot Policy (it only ever sends boot information)")
	case cfg.Mode == ModeFull:
		fc := cfg.Full
		fc.setDefaults()
		return fc.validate()
	}
	return nil
}

// prepare builds the generation for cfg: the interface table, the sockets if none are open
// yet (opened, to be published by the caller), and in full mode the lease store (taken over
// from old when it uses the same file). s.mu is held.
func (s *Server) prepare(cfg Config, old *generation) (g *generation, table map[int]iface, opened *sockets[*ipv4.PacketConn], err error) {
	log := s.log.With("mode", cfg.Mode.String())
	g = &generation{cfg: cfg, log: log}
	if cfg.Mode == ModeOff {
		return g, nil, nil, nil
	}
	if s.watch == nil {
		s.startWatcher()
	}
	if table, err = s.resolveInterfaces(cfg.Interfaces, true); err != nil {
		return nil, nil, nil, err
	}
	if s.socks == nil {
		if opened, err = openSockets([]int{portServer, portPXE}, listen); err != nil {
			return nil, nil, nil, err
		}
	}
	g.h = &handler{mode: cfg.Mode, policy: cfg.Policy, observer: cfg.Observer, log: log,
		nextServer: cfg.NextServer, raspberryPi: cfg.RaspberryPi, limit: s.limit}
	if cfg.Mode == ModeFull {
		var prev *fullState
		if old != nil && old.h != nil {
			prev = old.h.full
		}
		if g.h.full, err = newFullState(cfg.Full, prev); err != nil {
			if opened != nil {
				opened.close()
			}
			return nil, nil, nil, err
		}
	}
	return g, table, opened, nil
}

// resolveInterfaces finds the named interfaces and their IPv4 addresses. strict (start and
// reload) refuses a missing interface or one without IPv4; otherwise (an address change at
// run time) such an interface stays in the table without addresses and is not answered.
func (s *Server) resolveInterfaces(names []string, strict bool) (map[int]iface, error) {
	if len(names) == 0 {
		return nil, errors.New("dhcp: no interfaces configured (name at least one; DHCP never runs on every interface by default)")
	}
	links, err := s.links()
	if err != nil {
		return nil, err
	}
	out := make(map[int]iface, len(names))
	for _, name := range names {
		la, ok := links[name]
		if !ok {
			if strict {
				return nil, fmt.Errorf("dhcp: interface %q: no such network interface", name)
			}
			s.log.Warn("served interface is gone: not answering there until it is back", "interface", name)
			continue
		}
		if len(la.addrs) == 0 && strict {
			return nil, fmt.Errorf("dhcp: interface %q has no IPv4 address", name)
		}
		out[la.index] = iface{name: name, index: la.index, addrs: la.addrs}
	}
	return out, nil
}

// links lists interfaces with their IPv4 addresses: from the watcher's netlink socket (bound to
// the server's network namespace), or from the net package when there is no watcher.
func (s *Server) links() (map[string]linkAddrs, error) {
	if s.watch != nil {
		return s.watch.snapshot()
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("dhcp: listing interfaces: %w", err)
	}
	out := make(map[string]linkAddrs, len(ifs))
	for _, ni := range ifs {
		la := linkAddrs{index: ni.Index}
		addrs, err := ni.Addrs()
		if err != nil {
			return nil, fmt.Errorf("dhcp: addresses of interface %q: %w", ni.Name, err)
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				la.addrs = append(la.addrs, p)
			}
		}
		out[ni.Name] = la
	}
	return out, nil
}

// startWatcher follows address changes; without it (netlink refused) addresses are read at
// start and on each reload only. s.mu is held.
func (s *Server) startWatcher() {
	w, err := newAddrWatcher()
	if err != nil {
		s.log.Warn("interface address changes will not be followed until a reload", "error", err)
		return
	}
	s.watch = w
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := w.run(s.refreshInterfaces); err != nil {
			s.log.Warn("stopped following interface address changes", "error", err)
		}
	}()
}

// refreshInterfaces re-reads the served interfaces' addresses after a kernel notification.
func (s *Server) refreshInterfaces() {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gen.Load()
	if s.closed || g == nil || g.cfg.Mode == ModeOff {
		return
	}
	table, err := s.resolveInterfaces(g.cfg.Interfaces, false)
	if err != nil {
		s.log.Warn("re-reading interface addresses", "error", err)
		return
	}
	old := s.ifaces.Load()
	for idx, ifc := range table {
		if old == nil || !slices.Equal((*old)[idx].addrs, ifc.addrs) {
			if len(ifc.addrs) == 0 {
				s.log.Warn("interface lost its IPv4 address: not answering there until it has one", "interface", ifc.name)
			} else {
				s.log.Info("interface addresses changed", "interface", ifc.name, "addrs", ifc.addrs)
			}
		}
	}
	s.ifaces.Store(&table)
}

// listen opens udp4 0.0.0.0:port with SO_BROADCAST and IP_PKTINFO (see listenUDP).
func listen(port int) (*ipv4.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := listenUDP(lc, "dhcp", "udp4", port, "",
		"another DHCP or proxy DHCP server (dnsmasq, dhcpd, WDS...) is running here: stop it, or run pxewim with --dhcp off")
	if err != nil {
		return nil, err
	}
	pc := ipv4.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("dhcp: enable IP_PKTINFO on port %d: %w", port, err)
	}
	return pc, nil
}

// listenUDP opens network (udp4 or udp6) on the wildcard address and port, deliberately
// without SO_REUSEADDR/SO_REUSEPORT: with them, a second DHCP daemon would share the port
// silently and clients would get answers from both. A busy port is ErrPortInUse, with what
// owns it and busy (what to do); family qualifies the port in that message. name is the
// server's ("dhcp", "dhcp6").
func listenUDP(lc net.ListenConfig, name, network string, port int, family, busy string) (*net.UDPConn, error) {
	host := "0.0.0.0"
	if network == "udp6" {
		host = "::"
	}
	c, err := lc.ListenPacket(context.Background(), network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s: refusing to start: UDP port %d%s is already in use in this network namespace%s; %s: %w",
				name, port, family, portOwner(port), busy, ErrPortInUse)
		}
		return nil, fmt.Errorf("%s: listen on %s port %d: %w", name, network, port, err)
	}
	// A burst of machines powering on at once must not overflow the socket: ask for a larger
	// receive buffer (best effort; the kernel caps it at net.core.rmem_max).
	_ = c.(*net.UDPConn).SetReadBuffer(4 << 20)
	return c.(*net.UDPConn), nil
}

// stopLocked stops following address changes; mu is held.
func (s *Server) stopLocked() {
	if s.watch != nil {
		s.watch.close()
		s.watch = nil
	}
}

// Leases returns the full-mode lease store (nil in other modes), for dashboards.
func (s *Server) Leases() *LeaseStore {
	g := s.gen.Load()
	if g == nil || g.h == nil || g.h.full == nil {
		return nil
	}
	return g.h.full.leases
}

// readLoop reads one socket; packets wait for a slot when MaxInFlight are being answered.
func (s *Server) readLoop(pc *ipv4.PacketConn, port int, _ bool) error {
	for {
		buf := make([]byte, 1500)
		n, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("dhcp: read on port %d: %w", port, err)
		}
		if cm == nil {
			continue
		}
		table := s.ifaces.Load()
		if table == nil {
			continue
		}
		ifc, ok := (*table)[cm.IfIndex]
		if !ok {
			continue // not an interface we serve
		}
		if len(ifc.addrs) == 0 {
			s.log.Debug("dropping packet: the interface has no IPv4 address now", "interface", ifc.name)
			continue
		}
		s.sem <- struct{}{}
		s.handle(func(g *generation) { s.serveOne(g, pc, port, ifc, cm.Dst, src, buf[:n]) })
	}
}

// serveOne parses, answers and sends one packet.
func (s *Server) serveOne(g *generation, pc *ipv4.PacketConn, port int, ifc iface, dst net.IP, src net.Addr, b []byte) {
	log := g.log
	pkt, err := dhcpv4.FromBytes(b)
	if err != nil {
		log.Debug("dropping malformed packet", "interface", ifc.name, "src", src, "err", err)
		return
	}
	srcAP, _ := netip.ParseAddrPort(src.String())
	rq := request{pkt: pkt, port: port, src: srcAP, server: ifc.serverAddr(ip4(dst), ip4(pkt.GatewayIPAddr)), iface: ifc.name}
	resp, err := g.h.handle(s.ctx, rq)
	if err != nil {
		if errors.Is(err, errIgnored) {
			log.Debug("no reply", "interface", ifc.name, "mac", pkt.ClientHWAddr.String(), "type", pkt.MessageType(), "port", port, "why", err)
		} else {
			log.Warn("no reply", "interface", ifc.name, "mac", pkt.ClientHWAddr.String(), "type", pkt.MessageType(), "port", port, "err", err)
		}
		return
	}
	if resp == nil {
		return
	}
	out := resp.pkt.ToBytes()
	cm := &ipv4.ControlMessage{IfIndex: ifc.index, Src: rq.server.AsSlice()}
	to := net.UDPAddrFromAddrPort(resp.dst)
	if _, err := pc.WriteTo(out, cm, to); err != nil {
		log.Warn("send reply", "interface", ifc.name, "to", resp.dst, "err", err)
		return
	}
	log.Debug("replied", "interface", ifc.name, "mac", pkt.ClientHWAddr.String(), "type", resp.pkt.MessageType(),
		"to", resp.dst, "file", resp.pkt.BootFileNameOption(), "yiaddr", resp.pkt.YourIPAddr)
}

// serverAddr picks our address as the client sees it: the unicast address the packet was sent
// to (a relay or a 4011 request), else the interface address on the relay's subnet, else the
// interface's first IPv4 address.
func (ifc iface) serverAddr(dst, giaddr netip.Addr) netip.Addr {
	for _, p := range ifc.addrs {
		if p.Addr() == dst {
			return dst
		}
	}
	if giaddr.IsValid() && !giaddr.IsUnspecified() {
		for _, p := range ifc.addrs {
			if p.Contains(giaddr) {
				return p.Addr()
			}
		}
	}
	return ifc.addrs[0].Addr()
}
