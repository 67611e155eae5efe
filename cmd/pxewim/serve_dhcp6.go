package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/ops/metrics"
)

// DHCPv6 (dhcp.v6): started, reloaded and stopped like DHCPv4, from hooks in listen, run,
// applyListeners and closeListeners. The server always exists (mode off when DHCPv6 is off) so
// that a reload can turn it on.
type dhcp6State struct {
	srv     *dhcp.Server6
	applied string // dhcp6Settings of the config srv runs
	metrics *metrics.DHCP6
}

// listenDHCP6 opens the DHCPv6 sockets of the initial config.
func (d *daemon) listenDHCP6(cfg *boot.Config) error {
	if d.ops != nil && d.ops.metrics != nil && d.dhcp6.metrics == nil {
		m, err := metrics.NewDHCP6(d.ops.metrics.Registry())
		if err != nil {
			return fmt.Errorf("DHCPv6 metrics: %w", err)
		}
		d.dhcp6.metrics = m
	}
	if err := cfg.CheckDHCP6(); err != nil {
		return err
	}
	dc := d.dhcp6Config(cfg)
	srv, err := dhcp.NewServer6(dc)
	if err != nil {
		hint := ""
		if errors.Is(err, syscall.EACCES) {
			hint = " (port 547 needs root or CAP_NET_BIND_SERVICE)"
		}
		return fmt.Errorf("DHCPv6 (%s mode): %w%s", dc.Mode, err, hint)
	}
	d.dhcp6.srv, d.dhcp6.applied = srv, dhcp6Settings(dc)
	return nil
}

// serveDHCP6 runs the DHCPv6 server until ctx ends.
func (d *daemon) serveDHCP6(ctx context.Context) error {
	if d.dhcp6.srv == nil {
		<-ctx.Done()
		return nil
	}
	return d.dhcp6.srv.Serve(ctx)
}

// reloadDHCP6 applies a reloaded config's dhcp.v6; on error the previous settings keep running.
func (d *daemon) reloadDHCP6(cfg *boot.Config) {
	if d.dhcp6.srv == nil {
		return
	}
	if err := cfg.CheckDHCP6(); err != nil {
		d.log.Error("dhcp.v6 changed but cannot be applied; the previous DHCPv6 settings keep running", "error", err)
		return
	}
	dc := d.dhcp6Config(cfg)
	if dhcp6Settings(dc) == d.dhcp6.applied {
		return
	}
	if err := d.dhcp6.srv.Reconfigure(dc); err != nil {
		d.log.Error("dhcp.v6 changed but cannot be applied; the previous DHCPv6 settings keep running",
			"mode", dc.Mode.String(), "interfaces", dc.Interfaces, "error", err)
		return
	}
	d.dhcp6.applied = dhcp6Settings(dc)
}

func (d *daemon) closeDHCP6() {
	if d.dhcp6.srv != nil {
		d.dhcp6.srv.Close()
	}
}

func (d *daemon) dhcp6Config(cfg *boot.Config) dhcp.Config6 {
	v6 := cfg.DHCP.V6
	dc := dhcp.Config6{Mode: dhcpMode(v6.Mode), Interfaces: cfg.DHCP6Interfaces(), Advertise: v6.Advertise,
		Policy: dhcp.PolicyFunc(d.decide), Logger: d.log, Observer: dhcp6Tee{d}}
	rl := cfg.DHCP.RateLimit // dhcp.rate_limit covers DHCPv6 too (per DUID instead of per MAC)
	dc.RateLimit = dhcp.RateLimit{Off: rl.Off, PerMAC: dhcp.Rate{PerSecond: rl.MACPerSecond, Burst: rl.MACBurst},
		PerSource: dhcp.Rate{PerSecond: rl.SourcePerSecond, Burst: rl.SourceBurst}, Tracked: rl.Tracked}
	if f := v6.Full; f != nil {
		dc.Full = dhcp.FullConfig6{PoolStart: f.RangeStart, PoolEnd: f.RangeEnd, DNS: f.DNS, LeaseTime: f.Lease,
			LeaseDB: cfg.DHCP6LeasesPath()}
	}
	return dc
}

// dhcp6Settings is what a reload compares (the policy and observer never change).
func dhcp6Settings(dc dhcp.Config6) string {
	return fmt.Sprintf("%v|%q|%v|%+v|%+v", dc.Mode, dc.Interfaces, dc.Advertise, dc.Full, dc.RateLimit)
}

// dhcp6Tee passes DHCPv6 exchanges to the dashboard and the metrics.
type dhcp6Tee struct{ d *daemon }

func (t dhcp6Tee) Exchange6(c dhcp.Client6, mt dhcpv6.MessageType, dec dhcp.Decision, err error) {
	if t.d.ops != nil && t.d.ops.hub != nil {
		t.d.ops.hub.Exchange6(c, mt, dec, err)
	}
	if t.d.dhcp6.metrics != nil {
		t.d.dhcp6.metrics.Exchange6(c, mt, dec, err)
	}
}
