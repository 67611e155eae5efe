package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
)

// checkReservations lists what dhcp.full.reservations meet on this machine: a reserved
// address that is a DHCP interface's own address (a problem), and live leases in the lease
// file that a reservation takes away from another MAC (information: that client gets a NAK at
// its next renewal and then a pool address). The lease file is read only when no server holds
// it.
func checkReservations(cfg *boot.Config) []problem {
	f := cfg.DHCP.Full
	var ps []problem
	if cfg.DHCP.Mode != boot.DHCPFull {
		for i, r := range cfg.Rules {
			if len(r.DHCPOptions) > 0 {
				ps = append(ps, problem{info: true, what: fmt.Sprintf("%s:%d: rules[%d].dhcp_options: ignored with DHCP %s (only full mode hands out options)", cfg.Source, r.Line, i, cfg.DHCP.Mode),
					fix: "set them in the site's DHCP server, or use dhcp.mode: full"})
			}
		}
		return ps
	}
	if f == nil || len(f.Reservations) == 0 {
		return ps
	}
	own := map[netip.Addr]string{}
	for _, name := range cfg.DHCP.Interfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			continue // checkInterface reports it
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				own[p.Addr()] = name
			}
		}
	}
	for _, r := range f.Reservations {
		if name, ok := own[r.IP]; ok {
			ps = append(ps, problem{what: fmt.Sprintf("%s:%d: dhcp.full.reservations: %s (for %s) is the address of %s, this server's interface", cfg.Source, r.Line, r.IP, r.MAC, name),
				fix: "reserve another address for that machine"})
		}
	}
	conflicts, err := dhcp.ReservationConflicts(f.Leases, f.Reservations)
	switch {
	case errors.Is(err, dhcp.ErrLeaseFileBusy):
		ps = append(ps, problem{info: true, what: fmt.Sprintf("dhcp.full.leases: %s is in use by a running server; leases on reserved addresses not checked", f.Leases),
			fix: "nothing to do: the server gives reserved addresses only to their MACs"})
	case err != nil:
		ps = append(ps, problem{what: "dhcp.full.leases: " + err.Error(), fix: "make the lease file readable by pxewim"})
	}
	for _, c := range conflicts {
		ps = append(ps, problem{info: true, what: fmt.Sprintf("%s:%d: dhcp.full.reservations: %s is reserved for %s but leased to %s until %s",
			cfg.Source, c.Reservation.Line, c.Reservation.IP, c.Reservation.MAC, c.Lease.MAC, c.Lease.Expires.UTC().Format("2006-01-02 15:04 UTC")),
			fix: "nothing to do: that client gets a NAK at its next renewal, then a pool address (the reservation wins)"})
	}
	return ps
}
