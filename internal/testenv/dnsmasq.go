package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Dnsmasq describes one dnsmasq-base instance in a lab namespace: DNS off, every file (config,
// log, leases, pid) under Dir, `no-ping` so offers are not delayed ~3 s by the ICMP probe.
type Dnsmasq struct {
	Dir       string // where dnsmasq.conf, dnsmasq.log and the lease file go (the test's temp dir)
	Name      string // file name stem, default "dnsmasq"
	Interface string // interface to serve, e.g. lab.DHCPIf or lab.Bridge
	// Range is an IPv4 pool "first,last" (netmask /24, 10 min leases); empty: no DHCPv4 at all.
	Range  string
	Router string // option 3, empty for none
	// RA sends IPv6 router advertisements (ra-only, no DHCPv6) on Interface, which needs an IPv6
	// address. Without an RA Debian's iPXE waits ~12 s for IPv6 autoconf before it boots.
	RA       bool
	TFTPRoot string   // enables dnsmasq's TFTP server on this world-readable folder
	Extra    []string // more config lines (dhcp-boot=..., dhcp-match=...)
}

// ConfPath, LogPath and LeasePath are the files dnsmasq uses.
func (d *Dnsmasq) ConfPath() string  { return filepath.Join(d.Dir, d.stem()+".conf") }
func (d *Dnsmasq) LogPath() string   { return filepath.Join(d.Dir, d.stem()+".log") }
func (d *Dnsmasq) LeasePath() string { return filepath.Join(d.Dir, d.stem()+".leases") }

func (d *Dnsmasq) stem() string {
	if d.Name == "" {
		return "dnsmasq"
	}
	return d.Name
}

// Config renders the configuration file.
func (d *Dnsmasq) Config() string {
	lines := []string{
		"# written by internal/testenv for one test run",
		"port=0", // no DNS
		"no-resolv", "no-hosts",
		"interface=" + d.Interface, "bind-interfaces",
		// Stay root: the files live in the test's 0700 temp dir, which "nobody" cannot open.
		"user=root",
		"pid-file=" + filepath.Join(d.Dir, d.stem()+".pid"),
		"dhcp-leasefile=" + d.LeasePath(),
		"log-facility=" + d.LogPath(),
		"log-dhcp",
		"no-ping",
	}
	if d.Range != "" {
		lines = append(lines, "dhcp-range="+d.Range+",255.255.255.0,10m")
		if d.Router != "" {
			lines = append(lines, "dhcp-option=option:router,"+d.Router)
		}
	}
	if d.RA {
		lines = append(lines, "enable-ra", "dhcp-range=::,constructor:"+d.Interface+",ra-only,64,10m")
	}
	if d.TFTPRoot != "" {
		lines = append(lines, "enable-tftp", "tftp-root="+d.TFTPRoot)
	}
	lines = append(lines, d.Extra...)
	return strings.Join(lines, "\n") + "\n"
}

// Start writes the config and runs dnsmasq in the foreground inside ns (its PID is the one
// tracked), then waits until it listens on UDP 67 (or 69 for TFTP-only, or just gives it a
// moment for RA-only).
func (d *Dnsmasq) Start(ctx context.Context, ns *Netns) (*Proc, error) {
	if err := os.WriteFile(d.ConfPath(), []byte(d.Config()), 0o644); err != nil {
		return nil, fmt.Errorf("dnsmasq config: %w", err)
	}
	p, err := ns.Start(d.stem(), filepath.Join(d.Dir, d.stem()+".out"),
		"dnsmasq", "--conf-file="+d.ConfPath(), "--keep-in-foreground")
	if err != nil {
		return nil, err
	}
	port := 0
	switch {
	case d.Range != "":
		port = 67
	case d.TFTPRoot != "":
		port = 69
	}
	if port != 0 {
		if err := WaitListening(ctx, ns, "udp", port, 5*time.Second); err != nil {
			out, _ := os.ReadFile(p.LogPath)
			return p, fmt.Errorf("dnsmasq did not come up: %w; output: %s", err, out)
		}
	} else {
		time.Sleep(300 * time.Millisecond)
	}
	if done, err := p.Exited(); done {
		out, _ := os.ReadFile(p.LogPath)
		return p, fmt.Errorf("dnsmasq exited at once (%v): %s", err, out)
	}
	return p, nil
}

// Log returns dnsmasq's log so far.
func (d *Dnsmasq) Log() string {
	b, _ := os.ReadFile(d.LogPath())
	return string(b)
}
