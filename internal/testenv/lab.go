package testenv

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// LabConfig chooses the lab's addresses. The zero value is usable.
type LabConfig struct {
	// Subnet24 is the first three octets of the lab's IPv4 /24, default "10.77.42". It exists only
	// inside the lab's namespaces, so it cannot collide with the host's networks.
	Subnet24 string
	// Taps is how many tap devices to put on the bridge (one per VM run in parallel), default 1.
	Taps int
}

// Lab is the two-namespace topology of the e2e tests:
//
//	netns Srv                                        netns DHCP
//	  QEMU --tap0--+                                   vd1 .2/24, fd77:42::2/64: the "site"
//	               br0 .1/24, fd77:42::1/64                 DHCP server (addresses + IPv6 RA)
//	  boot server, |
//	  tcpdump      vd0 ========== veth ========== vd1
//
// The bridge forwards at once (STP off, forward delay 0). The IPv6 prefix exists only so that a
// router advertisement can be sent: without one Debian's iPXE waits ~12 s for IPv6 autoconf.
type Lab struct {
	Srv, DHCP *Netns
	Bridge    string       // bridge in Srv, holds SrvIP
	Taps      []string     // tap devices on the bridge, for QEMU run inside Srv
	DHCPIf    string       // veth end in DHCP, holds DHCPIP
	SrvIP     netip.Addr   // x.x.x.1
	DHCPIP    netip.Addr   // x.x.x.2
	SrvIP6    netip.Addr   // fd77:N::1
	DHCPIP6   netip.Addr   // fd77:N::2
	Prefix    netip.Prefix // the IPv4 /24
}

// NewLab builds the topology in two fresh namespaces and tears it down in t.Cleanup (processes
// first, then the namespaces), even when the test fails.
func NewLab(t testing.TB, cfg LabConfig) *Lab {
	t.Helper()
	SweepStale()
	if cfg.Subnet24 == "" {
		cfg.Subnet24 = "10.77.42"
	}
	if cfg.Taps == 0 {
		cfg.Taps = 1
	}
	prefix, err := netip.ParsePrefix(cfg.Subnet24 + ".0/24")
	if err != nil {
		t.Fatalf("lab subnet %q: %v", cfg.Subnet24, err)
	}
	third := strings.Split(cfg.Subnet24, ".")[2]
	l := &Lab{
		Bridge:  "br0",
		DHCPIf:  "vd1",
		Prefix:  prefix,
		SrvIP:   netip.MustParseAddr(cfg.Subnet24 + ".1"),
		DHCPIP:  netip.MustParseAddr(cfg.Subnet24 + ".2"),
		SrvIP6:  netip.MustParseAddr("fd77:" + third + "::1"),
		DHCPIP6: netip.MustParseAddr("fd77:" + third + "::2"),
	}
	for i := range cfg.Taps {
		l.Taps = append(l.Taps, fmt.Sprintf("tap%d", i))
	}
	// Deleting DHCP before Srv is not required, but Cleanup runs LIFO: Srv (QEMU, servers) goes
	// last so that nothing in it sees its peer vanish mid-test.
	l.Srv = MustNetns(t, "srv")
	l.DHCP = MustNetns(t, "dhcp")
	if err := l.wire(); err != nil {
		t.Fatalf("build lab: %v", err)
	}
	return l
}

func (l *Lab) wire() error {
	steps := []struct {
		ns   *Netns
		args []string
	}{
		{l.Srv, []string{"link", "add", l.Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"}},
		{l.Srv, []string{"addr", "add", l.SrvIP.String() + "/24", "dev", l.Bridge}},
		{l.Srv, []string{"addr", "add", l.SrvIP6.String() + "/64", "dev", l.Bridge, "nodad"}},
		{l.Srv, []string{"link", "set", l.Bridge, "up"}},
		{l.Srv, []string{"link", "add", "vd0", "type", "veth", "peer", "name", l.DHCPIf, "netns", l.DHCP.Name}},
		{l.Srv, []string{"link", "set", "vd0", "master", l.Bridge}},
		{l.Srv, []string{"link", "set", "vd0", "up"}},
		{l.DHCP, []string{"addr", "add", l.DHCPIP.String() + "/24", "dev", l.DHCPIf}},
		{l.DHCP, []string{"addr", "add", l.DHCPIP6.String() + "/64", "dev", l.DHCPIf, "nodad"}},
		{l.DHCP, []string{"link", "set", l.DHCPIf, "up"}},
	}
	for _, tap := range l.Taps {
		// The tap is created inside Srv: QEMU's TUNSETIFF looks the name up in the namespace of
		// the caller, so QEMU must run in Srv too (see RunVM).
		steps = append(steps,
			struct {
				ns   *Netns
				args []string
			}{l.Srv, []string{"tuntap", "add", "dev", tap, "mode", "tap"}},
			struct {
				ns   *Netns
				args []string
			}{l.Srv, []string{"link", "set", tap, "master", l.Bridge}},
			struct {
				ns   *Netns
				args []string
			}{l.Srv, []string{"link", "set", tap, "up"}},
		)
	}
	for _, s := range steps {
		if _, err := s.ns.IP(s.args...); err != nil {
			return err
		}
	}
	return nil
}

// Host returns the lab address x.x.x.n.
func (l *Lab) Host(n int) netip.Addr {
	a := l.Prefix.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// WaitListening waits until something in ns listens on proto ("udp" or "tcp") port, or fails
// after timeout. It asks `ss` inside the namespace, so it sees only that namespace's sockets.
func WaitListening(ctx context.Context, ns *Netns, proto string, port int, timeout time.Duration) error {
	flag := "-Hlnt"
	if proto == "udp" {
		flag = "-Hlnu"
	}
	deadline := time.Now().Add(timeout)
	suffix := fmt.Sprintf(":%d", port)
	for {
		out, err := ns.Exec(ctx, "ss", flag)
		if err == nil {
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) >= 4 && strings.HasSuffix(f[3], suffix) {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns %s: nothing listens on %s port %d after %v (ss: %v)", ns.Name, proto, port, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
