package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/tftp"
)

// Listeners and how a reload moves them.
//
// A reload that changes listen.http or listen.tftp binds the new address first and starts a
// server on it; only then does the old server stop accepting and drain (downloads and TFTP
// transfers in progress on it finish, for up to drainTimeout). If the new address cannot be
// bound, the old server keeps running and the log names the address. DHCP keeps its sockets:
// dhcp.Server.Reconfigure switches mode, interfaces, pool and options in place.

// listenerSlot is the HTTP or TFTP server on one address.
type listenerSlot struct {
	kind    string // "HTTP" or "TFTP"
	addr    string // as configured
	local   string // as bound
	httpLn  net.Listener
	udp     *net.UDPConn
	cancel  context.CancelFunc // set once started: stop accepting, drain
	retired atomic.Bool
}

// servers is what run sets up so that a reload can start servers of its own.
type servers struct {
	ctx   context.Context // the daemon's serving context
	wg    *sync.WaitGroup
	errc  chan<- error // a current server's end (fatal); retired servers only log
	httpH http.Handler
}

func (d *daemon) listenHTTP(addr string) (*listenerSlot, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP: listening on %s: %w%s", addr, err, bindHint(err, "--http"))
	}
	return &listenerSlot{kind: "HTTP", addr: addr, local: ln.Addr().String(), httpLn: ln}, nil
}

func (d *daemon) listenUDP(addr string) (*listenerSlot, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	var c *net.UDPConn
	if err == nil {
		c, err = net.ListenUDP("udp", ua)
	}
	if err != nil {
		return nil, fmt.Errorf("TFTP: listening on %s: %w%s", addr, err, bindHint(err, "--tftp"))
	}
	return &listenerSlot{kind: "TFTP", addr: addr, local: c.LocalAddr().String(), udp: c}, nil
}

// start runs the slot's server under d.srv.
func (d *daemon) start(s *listenerSlot) error {
	ctx, cancel := context.WithCancel(d.srv.ctx)
	s.cancel = cancel
	if s.kind == "HTTP" {
		hs := &httpboot.Server{Handler: d.srv.httpH, Logger: d.log, ShutdownTimeout: drainTimeout}
		d.srv.wg.Go(func() { d.ended(s, hs.Serve(ctx, s.httpLn)) })
		return nil
	}
	ts, err := tftp.New(tftp.Config{Resolve: d.tftpResolve, Logger: d.log, Observer: d.ops.tftpObserver()})
	if err != nil {
		cancel()
		s.udp.Close()
		return err
	}
	// tftp.Serve stops transfers at once when its ctx ends; Shutdown below drains them first.
	tctx, tcancel := context.WithCancel(context.WithoutCancel(d.srv.ctx))
	d.srv.wg.Go(func() {
		err := ts.Serve(tctx, s.udp)
		tcancel()
		d.ended(s, err)
	})
	d.srv.wg.Go(func() {
		<-ctx.Done()
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(d.srv.ctx), drainTimeout)
		defer dcancel()
		if err := ts.Shutdown(dctx); err != nil {
			d.log.Warn("TFTP drain cut short", "addr", s.local, "error", err)
		}
		tcancel()
	})
	return nil
}

// ended reports a server's end: fatal for the current one, a log line for a retired one.
func (d *daemon) ended(s *listenerSlot, err error) {
	if !s.retired.Load() {
		d.srv.errc <- err
		return
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn("old listener drained with an error", "kind", s.kind, "addr", s.local, "error", err)
		return
	}
	d.log.Info("old listener closed; its transfers finished", "kind", s.kind, "addr", s.local)
}

// retire stops s accepting and lets its transfers finish in the background.
func (d *daemon) retire(s *listenerSlot) {
	if s == nil {
		return
	}
	s.retired.Store(true)
	if s.cancel != nil {
		s.cancel()
		return
	}
	// Never started (the daemon is not serving yet).
	if s.httpLn != nil {
		s.httpLn.Close()
	}
	if s.udp != nil {
		s.udp.Close()
	}
}

// applyListeners moves HTTP and TFTP to cfg's addresses and reconfigures DHCP; called by reload
// with reloadMu held, before the new state is published. An address that cannot be bound keeps
// the old listener, and cfgs (the new state's configs) are patched to say so, so that URLs keep
// pointing at the port really served.
func (d *daemon) applyListeners(cfg *boot.Config, cfgs ...*boot.Config) {
	patch := func(set func(*boot.Config)) {
		for _, c := range append(cfgs, cfg) {
			set(c)
		}
	}
	if want := cfg.Listen.HTTP; want != d.httpSlot.addr {
		from := d.httpSlot.local
		ns, err := d.move(d.httpSlot, want, d.listenHTTP)
		if ns == nil { // nothing could be bound: remember that, the next reload tries again
			ns = &listenerSlot{kind: "HTTP", local: "none"}
		}
		if ns != d.httpSlot {
			d.retire(d.httpSlot)
			d.httpSlot = ns
		}
		if err != nil {
			d.log.Error("listen.http changed but the new address cannot be used; HTTP serves on the old one",
				"new", want, "serving", d.httpSlot.local, "error", err)
			patch(func(c *boot.Config) { c.Listen.HTTP = d.httpSlot.addr })
		} else {
			d.log.Info("HTTP listener moved; downloads in progress finish on the old one", "from", from, "to", ns.local)
		}
	}
	if want := cfg.Listen.TFTP; want != d.tftpAddr {
		from := "off"
		if d.tftpSlot != nil {
			from = d.tftpSlot.local
		}
		ns, err := d.move(d.tftpSlot, want, d.listenUDP)
		if ns != d.tftpSlot {
			d.retire(d.tftpSlot)
			d.tftpSlot, d.tftpConn = ns, nil
			if ns != nil {
				d.tftpConn = ns.udp
			}
		}
		if err != nil {
			d.tftpAddr = ""
			if ns != nil {
				d.tftpAddr = ns.addr
			}
			d.log.Error("listen.tftp changed but the new address cannot be used; TFTP serves on the old one",
				"new", want, "serving", d.tftpAddr, "error", err)
			patch(func(c *boot.Config) { c.Listen.TFTP = d.tftpAddr })
		} else {
			to := "off"
			if ns != nil {
				to = ns.local
			}
			d.tftpAddr = want
			d.log.Info("TFTP listener moved; transfers in progress finish on the old one", "from", from, "to", to)
		}
	}
	d.reloadDHCP6(cfg) // serve_dhcp6.go
	dc := d.dhcpConfig(cfg)
	if dhcpSettings(dc) == d.dhcpApplied {
		return // unchanged: the running DHCP server already follows interface addresses
	}
	if err := d.dhcpSrv.Reconfigure(dc); err != nil {
		hint := ""
		if errors.Is(err, syscall.EACCES) {
			hint = " (DHCP ports need root or CAP_NET_BIND_SERVICE)"
		}
		d.log.Error("DHCP settings changed but cannot be applied; the previous DHCP settings keep running",
			"mode", string(cfg.DHCP.Mode), "interfaces", cfg.DHCP.Interfaces, "error", err.Error()+hint)
		return
	}
	d.dhcpApplied = dhcpSettings(dc)
}

// dhcpSettings is the part of a DHCP config that a reload compares: what the config file sets
// (the policy and observer are the daemon's own and never change).
func dhcpSettings(dc dhcp.Config) string {
	// Rules' matches hold *bool: print what they point at, not where.
	rules := make([]string, 0, len(dc.Full.RuleOptions))
	for _, r := range dc.Full.RuleOptions {
		m := r.Match
		rules = append(rules, fmt.Sprintf("%d %q %s %q %s %s %+v", r.Line, m.MAC, m.Arch, m.UUID, boolPtr(m.IPXE), boolPtr(m.HTTPBoot), r.Options))
	}
	full := dc.Full
	full.RuleOptions = nil
	return fmt.Sprintf("%v|%q|%+v|%q|%v|%v|%+v", dc.Mode, dc.Interfaces, full, rules, dc.NextServer, dc.RaspberryPi, dc.RateLimit)
}

func boolPtr(b *bool) string {
	if b == nil {
		return "-"
	}
	return fmt.Sprint(*b)
}

// move starts a server on addr ("" = none) and returns the slot that serves afterwards: the
// new one, or, with an error, the one still serving (old, or old's address bound again; nil if
// nothing could be). The caller retires old when the result differs.
//
// Normally the new listener starts while old still runs. When the new address overlaps old's
// (same port, e.g. 10.0.0.1:80 -> :80), the kernel refuses that; then old stops accepting first
// (its transfers go on) and the new address is bound after it. If that still fails, old's
// address is bound again so the service does not vanish.
func (d *daemon) move(old *listenerSlot, addr string, bind func(string) (*listenerSlot, error)) (*listenerSlot, error) {
	if addr == "" {
		return nil, nil
	}
	ns, err := d.bindStart(addr, bind, false)
	if err == nil {
		return ns, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) || old == nil || !samePort(old.local, addr) {
		return old, err
	}
	d.log.Info("the new listen address overlaps the old one: the old listener stops accepting first",
		"kind", old.kind, "old", old.local, "new", addr)
	d.retire(old)
	if ns, err = d.bindStart(addr, bind, true); err == nil {
		return ns, nil
	}
	back, berr := d.bindStart(old.addr, bind, true)
	if berr != nil {
		return nil, fmt.Errorf("%w; binding the old address %s again failed too: %v", err, old.addr, berr)
	}
	return back, err
}

// bindStart binds addr and starts a server there. wait retries for a second while the port is
// in use: a retired listener closes its socket asynchronously.
func (d *daemon) bindStart(addr string, bind func(string) (*listenerSlot, error), wait bool) (*listenerSlot, error) {
	for try := 0; ; try++ {
		ns, err := bind(addr)
		if err == nil {
			if err := d.start(ns); err != nil {
				return nil, err
			}
			return ns, nil
		}
		if !wait || try >= 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// samePort reports whether two host:port addresses use the same port.
func samePort(a, b string) bool {
	_, pa, errA := net.SplitHostPort(a)
	_, pb, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && pa == pb
}

// dhcpConfig turns the dhcp: section (and listen.tftp_advertise) into the DHCP server's config.
func (d *daemon) dhcpConfig(cfg *boot.Config) dhcp.Config {
	dc := dhcp.Config{Mode: dhcpMode(cfg.DHCP.Mode), Interfaces: cfg.DHCP.Interfaces,
		Policy: dhcp.PolicyFunc(d.decide), Logger: d.log, Observer: dhcpRegistrar{d.ops.dhcpObserver(), d.clients},
		NextServer: cfg.Listen.TFTPServer(), RaspberryPi: cfg.DHCP.RaspberryPi.Enabled}
	rl := cfg.DHCP.RateLimit
	dc.RateLimit = dhcp.RateLimit{Off: rl.Off, PerMAC: dhcp.Rate{PerSecond: rl.MACPerSecond, Burst: rl.MACBurst},
		PerSource: dhcp.Rate{PerSecond: rl.SourcePerSecond, Burst: rl.SourceBurst}, Tracked: rl.Tracked}
	if f := cfg.DHCP.Full; f != nil {
		dc.Full = dhcpFullConfig(f, cfg.Rules)
	}
	return dc
}

// dhcpFullConfig turns dhcp.full (and the rules' dhcp_options) into the DHCP server's full-mode
// config; "pxewim check" validates the same.
func dhcpFullConfig(f *boot.FullDHCP, rules []boot.Rule) dhcp.FullConfig {
	fc := dhcp.FullConfig{PoolStart: f.RangeStart, PoolEnd: f.RangeEnd, Netmask: f.Netmask,
		Router: f.Router, DNS: f.DNS, Domain: f.Domain, LeaseTime: f.Lease, LeaseDB: f.Leases,
		Reservations: f.Reservations, Options: f.Options}
	for _, r := range rules {
		if len(r.DHCPOptions) > 0 {
			fc.RuleOptions = append(fc.RuleOptions, dhcp.RuleOptions{Match: r.Match, Options: r.DHCPOptions, Line: r.Line})
		}
	}
	return fc
}

// dhcpRegistrar remembers Raspberry Pi clients, which the DHCP server answers without asking
// the policy (decide remembers every other client), then passes the exchange on.
type dhcpRegistrar struct {
	next    dhcp.Observer
	clients *boot.Registry
}

func (r dhcpRegistrar) Exchange(c boot.Client, mt dhcpv4.MessageType, dec dhcp.Decision, err error) {
	if dec.RaspberryPi {
		r.clients.Observe(c)
	}
	r.next.Exchange(c, mt, dec, err)
}
