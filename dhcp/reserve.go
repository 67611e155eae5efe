package dhcp

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/pxewim/pxewim/boot"
)

// Static reservations (dhcp.full.reservations) and how they meet the lease file.
//
//   - A reserved MAC always gets its address: DISCOVER offers it, REQUEST binds it, whatever
//     record the file holds for that address (a lease of another client is overwritten: the
//     reservation wins). The lease is recorded in the same bbolt file as pool leases, with the
//     same states and expiry, so the dashboard and a restart see it.
//   - Nobody else gets a reserved address: the pool scan skips it, and a REQUEST or renewal of
//     it by another MAC (a lease made before the reservation was added) gets a NAK, so that
//     client restarts from DISCOVER and gets a pool address. Until its next renewal (half the
//     lease time) it may still use the address: reserve addresses that are free, or shorten
//     dhcp.full.lease while moving a machine.
//   - A reserved MAC asking for any other address (its old pool lease) gets a NAK and then
//     its reservation.
//   - The reserved address may lie outside the pool, inside its network. When a reload drops
//     a reservation outside the pool, its lease stays in the file but is no longer served: the
//     client's renewal gets a NAK.
//   - A DECLINE of its reserved address by the reserved MAC parks the address as usual, but
//     the next DISCOVER of that MAC is offered it again (there is no other address to give):
//     a machine that keeps declining points at an address conflict for the admin to fix.
//   - Ownership of a reserved address goes by MAC, not by client identifier (option 61): PXE
//     firmware and the installed OS of one machine often send different identifiers.

// setReservations installs rs (validated) in the store; called before the store is in use.
func (s *LeaseStore) setReservations(rs []boot.Reservation) {
	s.reserved, s.byMAC = nil, nil
	if len(rs) == 0 {
		return
	}
	s.reserved = make(map[netip.Addr]string, len(rs))
	s.byMAC = make(map[string]netip.Addr, len(rs))
	for _, r := range rs {
		s.reserved[r.IP] = r.MAC
		s.byMAC[r.MAC] = r.IP
	}
}

// isReserved reports whether ip is reserved for some MAC.
func (s *LeaseStore) isReserved(ip netip.Addr) bool {
	_, ok := s.reserved[ip]
	return ok
}

// Serves reports whether ip is an address this store hands out: in the pool or reserved.
func (s *LeaseStore) Serves(ip netip.Addr) bool {
	return s.InPool(ip) || s.isReserved(ip)
}

// checkReservation refuses ip to mac when ip is reserved for another MAC or mac has another
// reserved address.
func (s *LeaseStore) checkReservation(mac string, ip netip.Addr) error {
	if owner, ok := s.reserved[ip]; ok && owner != mac {
		return fmt.Errorf("%w: reserved for %s", ErrAddrTaken, owner)
	}
	if rip, ok := s.byMAC[mac]; ok && rip != ip {
		return fmt.Errorf("%w: %s has the reserved address %v", ErrAddrTaken, mac, rip)
	}
	return nil
}

// validateReservations checks what the config decoder checks too, for callers that build a
// FullConfig themselves: addresses inside the subnet, not its network or broadcast address,
// valid MACs, no MAC or address twice.
func validateReservations(rs []boot.Reservation, subnet netip.Prefix) error {
	macs, ips := map[string]int{}, map[netip.Addr]int{}
	for i, r := range rs {
		where := fmt.Sprintf("dhcp full mode: reservation %d (%s -> %v)", i+1, r.MAC, r.IP)
		if r.Line > 0 {
			where += fmt.Sprintf(" on line %d", r.Line)
		}
		m, err := net.ParseMAC(r.MAC)
		if err != nil || len(m) != 6 || m.String() != r.MAC {
			return fmt.Errorf("%s: MAC must be lower-case aa:bb:cc:dd:ee:ff", where)
		}
		if !r.IP.Is4() || !subnet.Contains(r.IP) {
			return fmt.Errorf("%s: address outside the pool's network %v", where, subnet)
		}
		if r.IP == subnet.Masked().Addr() || u32(r.IP)|^maskOf(subnet) == u32(r.IP) && subnet.Bits() < 31 {
			return fmt.Errorf("%s: network or broadcast address of %v", where, subnet)
		}
		if j, dup := macs[r.MAC]; dup {
			return fmt.Errorf("%s: MAC already reserved by reservation %d", where, j+1)
		}
		if j, dup := ips[r.IP]; dup {
			return fmt.Errorf("%s: address already reserved by reservation %d", where, j+1)
		}
		macs[r.MAC], ips[r.IP] = i, i
	}
	return nil
}

func maskOf(p netip.Prefix) uint32 {
	if p.Bits() == 0 {
		return 0
	}
	return ^uint32(0) << (32 - p.Bits())
}

// Conflict is a live lease of another MAC on a reserved address.
type Conflict struct {
	Reservation boot.Reservation
	Lease       LeaseRecord
}

// ErrLeaseFileBusy means the lease file is held by a running server: ReservationConflicts
// cannot read it then (the running server enforces the reservations anyway).
var ErrLeaseFileBusy = errors.New("lease file in use by a running server")

// ReservationConflicts reads the lease file at path (read-only; a missing file has none) and
// lists the live leases that reservations take away: a lease of another MAC on a reserved
// address. That client gets a NAK at its next renewal ("pxewim check" shows them).
func ReservationConflicts(path string, rs []boot.Reservation) ([]Conflict, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, ErrLeaseFileBusy
		}
		return nil, fmt.Errorf("read lease database %s: %w", path, err)
	}
	defer db.Close()
	var out []Conflict
	now := time.Now()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(leaseBucket))
		if b == nil {
			return nil
		}
		for _, r := range rs {
			rec, err := records4.get(b, r.IP)
			if err != nil {
				return err
			}
			if rec.active(now) && rec.State != LeaseDeclined && rec.MAC != r.MAC {
				out = append(out, Conflict{Reservation: r, Lease: *rec})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read lease database %s: %w", path, err)
	}
	return out, nil
}
