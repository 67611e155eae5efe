package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
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
	// MaxInFlight bounds the packets handled at once (default 256); more wait.
	MaxInFlight int
}

// ErrPortInUse means another process already listens on a DHCP port in this network namespace.
var ErrPortInUse = errors.New("port already in use")

// iface is one served interface, resolved at start.
type iface struct {
	name  string
	index int
	addrs []netip.Prefix // IPv4 only; the first is the default server address
}

// Server is a proxy or full DHCP server. Create it with New (which opens the sockets, so a
// busy port fails there), run it with Serve, stop it with Close or by cancelling Serve's ctx.
type Server struct {
	cfg    Config
	log    *slog.Logger
	h      *handler
	ifaces map[int]iface
	conns  []*ipv4.PacketConn
	ports  []int
	sem    chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// New resolves the interfaces, opens the sockets on ports 67 and 4011 (without SO_REUSEADDR or
// SO_REUSEPORT, so an existing DHCP server on this host makes it fail with ErrPortInUse) and, in
// full mode, opens the lease database. Interface addresses are read once, here.
func New(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With("component", "dhcp", "mode", cfg.Mode.String())}
	if cfg.Mode == ModeOff {
		return s, nil
	}
	if cfg.Mode != ModeProxy && cfg.Mode != ModeFull {
		return nil, fmt.Errorf("dhcp: unknown mode %d", cfg.Mode)
	}
	if cfg.Mode == ModeProxy && cfg.Policy == nil {
		return nil, errors.New("dhcp: proxy mode needs a boot Policy (it only ever sends boot information)")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	s.sem = make(chan struct{}, cfg.MaxInFlight)
	var err error
	if s.ifaces, err = resolveInterfaces(cfg.Interfaces); err != nil {
		return nil, err
	}
	s.h = &handler{mode: cfg.Mode, policy: cfg.Policy, observer: cfg.Observer, log: s.log}
	for _, port := range []int{portServer, portPXE} {
		pc, err := listen(port)
		if err != nil {
			s.closeConns()
			return nil, err
		}
		s.conns, s.ports = append(s.conns, pc), append(s.ports, port)
	}
	if cfg.Mode == ModeFull {
		if s.h.full, err = newFullState(cfg.Full); err != nil {
			s.closeConns()
			return nil, err
		}
	}
	return s, nil
}

func resolveInterfaces(names []string) (map[int]iface, error) {
	if len(names) == 0 {
		return nil, errors.New("dhcp: no interfaces configured (name at least one; DHCP never runs on every interface by default)")
	}
	out := make(map[int]iface, len(names))
	for _, name := range names {
		ni, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("dhcp: interface %q: %w", name, err)
		}
		addrs, err := ni.Addrs()
		if err != nil {
			return nil, fmt.Errorf("dhcp: addresses of interface %q: %w", name, err)
		}
		ifc := iface{name: name, index: ni.Index}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				ifc.addrs = append(ifc.addrs, p)
			}
		}
		if len(ifc.addrs) == 0 {
			return nil, fmt.Errorf("dhcp: interface %q has no IPv4 address", name)
		}
		out[ni.Index] = ifc
	}
	return out, nil
}

// listen opens udp4 0.0.0.0:port with SO_BROADCAST and IP_PKTINFO, deliberately without
// SO_REUSEADDR/SO_REUSEPORT: with them, a second DHCP daemon would share the port silently and
// clients would get answers from both.
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
	c, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("dhcp: refusing to start: UDP port %d is already in use in this network namespace%s; "+
				"another DHCP or proxy DHCP server (dnsmasq, dhcpd, WDS...) is running here: stop it, or run pxewim with --dhcp off: %w",
				port, portOwner(port), ErrPortInUse)
		}
		return nil, fmt.Errorf("dhcp: listen on udp4 port %d: %w", port, err)
	}
	// A burst of machines powering on at once must not overflow the socket: ask for a larger
	// receive buffer (best effort; the kernel caps it at net.core.rmem_max).
	_ = c.(*net.UDPConn).SetReadBuffer(4 << 20)
	pc := ipv4.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("dhcp: enable IP_PKTINFO on port %d: %w", port, err)
	}
	return pc, nil
}

// Serve answers packets until ctx is cancelled or Close is called. In ModeOff it just waits.
func (s *Server) Serve(ctx context.Context) error {
	if s.cfg.Mode == ModeOff {
		<-ctx.Done()
		return nil
	}
	s.log.Info("dhcp serving", "interfaces", s.cfg.Interfaces)
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	errc := make(chan error, len(s.conns))
	var loops sync.WaitGroup
	for i, pc := range s.conns {
		// The loops count in s.wg too: Close then waits for them, so no handler can start
		// after Close has waited for the handlers and closed the lease database.
		loops.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer loops.Done()
			errc <- s.readLoop(ctx, pc, s.ports[i])
		}()
	}
	loops.Wait()
	close(errc)
	for err := range errc {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.Close()
			return err
		}
	}
	return nil
}

// Close stops the server, waits for packets in flight and closes the lease database.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.closeConns()
		s.wg.Wait()
		if s.h != nil && s.h.full != nil {
			s.err = s.h.full.close()
		}
	})
	return s.err
}

func (s *Server) closeConns() {
	for _, pc := range s.conns {
		pc.Close()
	}
}

// Leases returns the full-mode lease store (nil in proxy mode), for dashboards.
func (s *Server) Leases() *LeaseStore {
	if s.h == nil || s.h.full == nil {
		return nil
	}
	return s.h.full.leases
}

func (s *Server) readLoop(ctx context.Context, pc *ipv4.PacketConn, port int) error {
	for {
		buf := make([]byte, 1500)
		n, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("dhcp: read on port %d: %w", port, err)
		}
		if cm == nil {
			continue
		}
		ifc, ok := s.ifaces[cm.IfIndex]
		if !ok {
			continue // not an interface we serve
		}
		s.sem <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.sem; s.wg.Done() }()
			s.serveOne(ctx, pc, port, ifc, cm.Dst, src, buf[:n])
		}()
	}
}

// serveOne parses, answers and sends one packet.
func (s *Server) serveOne(ctx context.Context, pc *ipv4.PacketConn, port int, ifc iface, dst net.IP, src net.Addr, b []byte) {
	pkt, err := dhcpv4.FromBytes(b)
	if err != nil {
		s.log.Debug("dropping malformed packet", "interface", ifc.name, "src", src, "err", err)
		return
	}
	srcAP, _ := netip.ParseAddrPort(src.String())
	rq := request{pkt: pkt, port: port, src: srcAP, server: ifc.serverAddr(ip4(dst), ip4(pkt.GatewayIPAddr)), iface: ifc.name}
	resp, err := s.h.handle(ctx, rq)
	if err != nil {
		if errors.Is(err, errIgnored) {
			s.log.Debug("no reply", "interface", ifc.name, "mac", pkt.ClientHWAddr.String(), "type", pkt.MessageType(), "port", port, "why", err)
		} else {
			s.log.Warn("no reply", "interface", ifc.name, "mac", pkt.ClientHWAddr.String(), "type", pkt.MessageType(), "port", port, "err", err)
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
		s.log.Warn("send reply", "interface", ifc.name, "to", resp.dst, "err", err)
		return
	}
	s.log.Debug("replied", "interface", ifc.name, "mac", pkt.ClientHWAddr.String(), "type", resp.pkt.MessageType(),
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
